//! Chat as a browser sends it, and the limits both sides enforce.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::{ChatMessage, ChatVia, Seq};

/// The most characters an author name may have.
pub const MAX_AUTHOR_CHARS: usize = 32;
/// The most characters a chat text may have.
pub const MAX_TEXT_CHARS: usize = 500;
/// The most characters of the sender's opaque `client_ref`.
pub const MAX_CLIENT_REF_CHARS: usize = 64;

/// A chat message as a browser sends it: the body of `POST /api/messages`, or a `chat` WebSocket frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatPost {
    pub author: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ref: Option<String>,
}

impl ChatPost {
    /// Checks the limits and turns the post into the message everyone receives. Author and text are
    /// trimmed; control characters are refused except newlines and tabs in the text.
    pub fn validate(self, via: ChatVia) -> Result<ChatMessage, ChatRejection> {
        let author = self.author.trim();
        let text = self.text.trim();
        if author.is_empty() {
            return Err(ChatRejection::EmptyAuthor);
        }
        if author.chars().count() > MAX_AUTHOR_CHARS {
            return Err(ChatRejection::AuthorTooLong);
        }
        if author.chars().any(char::is_control) {
            return Err(ChatRejection::ControlCharacters);
        }
        if text.is_empty() {
            return Err(ChatRejection::EmptyText);
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(ChatRejection::TextTooLong);
        }
        if text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(ChatRejection::ControlCharacters);
        }
        if self
            .client_ref
            .as_ref()
            .is_some_and(|r| r.chars().count() > MAX_CLIENT_REF_CHARS)
        {
            return Err(ChatRejection::ClientRefTooLong);
        }
        Ok(ChatMessage {
            author: author.to_owned(),
            text: text.to_owned(),
            via,
            client_ref: self.client_ref,
        })
    }
}

/// Why a chat message was refused; its `Display` is the sentence shown to the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatRejection {
    EmptyAuthor,
    AuthorTooLong,
    EmptyText,
    TextTooLong,
    ControlCharacters,
    ClientRefTooLong,
}

impl fmt::Display for ChatRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatRejection::EmptyAuthor => f.write_str("author must not be empty"),
            ChatRejection::AuthorTooLong => {
                write!(f, "author must be at most {MAX_AUTHOR_CHARS} characters")
            }
            ChatRejection::EmptyText => f.write_str("text must not be empty"),
            ChatRejection::TextTooLong => {
                write!(f, "text must be at most {MAX_TEXT_CHARS} characters")
            }
            ChatRejection::ControlCharacters => f.write_str("control characters are not allowed"),
            ChatRejection::ClientRefTooLong => {
                write!(
                    f,
                    "client_ref must be at most {MAX_CLIENT_REF_CHARS} characters"
                )
            }
        }
    }
}

impl std::error::Error for ChatRejection {}

/// The answer to an accepted chat message: the seq it was published under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatAccepted {
    pub seq: Seq,
    pub ts_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ref: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(author: &str, text: &str) -> ChatPost {
        ChatPost {
            author: author.into(),
            text: text.into(),
            client_ref: None,
        }
    }

    #[test]
    fn valid_posts_are_trimmed() {
        let msg = post("  ana ", " hi\nthere ")
            .validate(ChatVia::Post)
            .unwrap();
        assert_eq!(
            (msg.author.as_str(), msg.text.as_str(), msg.via),
            ("ana", "hi\nthere", ChatVia::Post)
        );
    }

    #[test]
    fn limits_count_characters_not_bytes() {
        let author = "é".repeat(MAX_AUTHOR_CHARS);
        assert!(post(&author, "x").validate(ChatVia::Ws).is_ok());
        let author = "é".repeat(MAX_AUTHOR_CHARS + 1);
        assert_eq!(
            post(&author, "x").validate(ChatVia::Ws),
            Err(ChatRejection::AuthorTooLong)
        );
        let text = "x".repeat(MAX_TEXT_CHARS + 1);
        assert_eq!(
            post("a", &text).validate(ChatVia::Ws),
            Err(ChatRejection::TextTooLong)
        );
    }

    #[test]
    fn empty_and_control_characters_are_refused() {
        assert_eq!(
            post(" ", "x").validate(ChatVia::Post),
            Err(ChatRejection::EmptyAuthor)
        );
        assert_eq!(
            post("a", " \n ").validate(ChatVia::Post),
            Err(ChatRejection::EmptyText)
        );
        assert_eq!(
            post("a\u{7}", "x").validate(ChatVia::Post),
            Err(ChatRejection::ControlCharacters)
        );
        assert_eq!(
            post("a", "x\u{0}y").validate(ChatVia::Post),
            Err(ChatRejection::ControlCharacters)
        );
        let long_ref = ChatPost {
            client_ref: Some("r".repeat(65)),
            ..post("a", "b")
        };
        assert_eq!(
            long_ref.validate(ChatVia::Post),
            Err(ChatRejection::ClientRefTooLong)
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(
            serde_json::from_str::<ChatPost>(r#"{"author":"a","text":"b","admin":true}"#).is_err()
        );
    }
}
