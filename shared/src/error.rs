//! The error envelope every refusal of the HTTP API carries, so a client reads it in one place:
//! `{"error": {"code": "...", "message": "..."}}`. The code is stable (see docs/PROTOCOL.md); the
//! message is for people.

use serde::{Deserialize, Serialize};

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }

    /// The detail of an error answer's body, or `None` when the body is not the envelope (a proxy's
    /// error page, say).
    pub fn parse(body: &str) -> Option<ErrorDetail> {
        serde_json::from_str::<ErrorBody>(body)
            .ok()
            .map(|body| body.error)
    }

    /// The message to show for an error answer: the server's own sentence, or the body as it came.
    pub fn message_of(body: &str) -> String {
        ErrorBody::parse(body).map_or_else(|| body.trim().to_owned(), |detail| detail.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_round_trips_and_other_bodies_are_shown_as_they_came() {
        let json = serde_json::to_string(&ErrorBody::new("too_many", "slow down")).unwrap();
        assert_eq!(
            json,
            r#"{"error":{"code":"too_many","message":"slow down"}}"#
        );
        assert_eq!(ErrorBody::parse(&json).unwrap().code, "too_many");
        assert_eq!(ErrorBody::message_of(&json), "slow down");
        assert_eq!(
            ErrorBody::message_of(" 502 Bad Gateway\n"),
            "502 Bad Gateway"
        );
    }
}
