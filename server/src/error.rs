//! The one error type of the HTTP layer: every refusal is a JSON body with a stable code and a human
//! message, logged with its cause, and never shows internals.

use axum::Json;
use axum::extract::FromRequest;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchboard_shared::{ChatRejection, ErrorBody};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A query parameter is missing, malformed or out of range.
    #[error("{0}")]
    BadQuery(String),
    /// A header the endpoint reads is malformed.
    #[error("{0}")]
    BadHeader(String),
    /// The request body is not what the endpoint takes (JSON errors, wrong content type, too large).
    #[error("{message}")]
    BadBody { status: StatusCode, message: String },
    /// A chat message over its limits.
    #[error("{0}")]
    Chat(#[from] ChatRejection),
    /// A well-formed request the endpoint cannot act on (a fault with a bad duration).
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// A request whose body or values the endpoint refuses outright (a network condition out of range).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// The request needs credentials it did not bring.
    #[error("{0}")]
    Unauthorized(String),
    /// The request is not allowed from this client (wrong token, not loopback, a cross-site origin).
    #[error("{0}")]
    Forbidden(String),
    /// One client asked too much too fast, or holds too many connections.
    #[error("{0}")]
    TooMany(String),
    /// The server cannot serve this now (a lane full, or a fault injected on purpose).
    #[error("{0}")]
    Unavailable(String),
    /// The request took longer than the server allows.
    #[error("the request took longer than {} ms", .0.as_millis())]
    Timeout(std::time::Duration),
    /// No such endpoint.
    #[error("no such endpoint")]
    NotFound,
    /// An endpoint of something the server was not started with (the app proxy without --upstream).
    #[error("{0}")]
    NotConfigured(String),
    /// A channel id the proxy has not seen.
    #[error("{0}")]
    ChannelNotFound(String),
    /// Something of its kind is already under way (a scenario running).
    #[error("{0}")]
    Busy(String),
}

/// A JSON body whose refusal is an [`AppError`] (the app's JSON envelope, not axum's plain text), and a
/// JSON answer. Take it as `Result<AppJson<T>, AppError>` where the request must be authorized before
/// its body is judged.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct AppJson<T>(pub T);

impl<T: Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

impl AppError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            AppError::BadQuery(_) => (StatusCode::BAD_REQUEST, "bad_query"),
            AppError::BadHeader(_) => (StatusCode::BAD_REQUEST, "bad_header"),
            AppError::BadBody { status, .. } => match *status {
                StatusCode::PAYLOAD_TOO_LARGE => (*status, "too_large"),
                StatusCode::UNSUPPORTED_MEDIA_TYPE => (*status, "unsupported_media_type"),
                _ => (StatusCode::BAD_REQUEST, "bad_body"),
            },
            AppError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            AppError::Chat(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_chat"),
            AppError::Invalid { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            AppError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            AppError::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many"),
            AppError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            AppError::Timeout(_) => (StatusCode::REQUEST_TIMEOUT, "timeout"),
            AppError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            AppError::NotConfigured(_) => (StatusCode::NOT_FOUND, "not_configured"),
            AppError::ChannelNotFound(_) => (StatusCode::NOT_FOUND, "unknown_channel"),
            AppError::Busy(_) => (StatusCode::CONFLICT, "busy"),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        tracing::info!(status = status.as_u16(), code, "refused a request: {self}");
        (status, Json(ErrorBody::new(code, self.to_string()))).into_response()
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> AppError {
        AppError::BadQuery(rejection.body_text())
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> AppError {
        AppError::BadBody {
            status: rejection.status(),
            message: rejection.body_text(),
        }
    }
}
