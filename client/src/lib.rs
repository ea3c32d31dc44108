//! Rust clients of every Switchboard lane: one place that speaks the wire protocol natively, used by the
//! load generator, the server's tests, its examples and the end-to-end test.
//!
//! Layout:
//! - [`letters`] — a poll or long poll: one GET answered with a [`Batch`](switchboard_shared::Batch);
//! - [`stream`] — the endless letter: newline-delimited JSON over one response ([`StreamClient`]);
//! - [`sse`] — the radio: a real SSE parser over the response's bytes ([`SseClient`]);
//! - [`ws`] — the phone call: a WebSocket speaking [`ServerMessage`](switchboard_shared::ServerMessage)
//!   and [`BrowserMessage`](switchboard_shared::BrowserMessage) ([`WsClient`]);
//! - [`webtransport`] — the video call: a WebTransport session over QUIC, trusting the server's
//!   certificate by its hash as a browser does ([`WtClient`]);
//! - [`follower`] — a client of any lane that recovers on its own with the browser's policy (watchdog,
//!   backoff, resume, epochs) and keeps honest books; the load generator's clients do without it;
//! - [`redis`] — a private `redis-server` on loopback, for tests and examples of several instances;
//! - [`node_app`] — the real Node.js apps of `e2e/apps/` (Socket.IO, `ws`, plain HTTP), for the tests of
//!   the proxy in front of a person's app.
//!
//! The clients return errors rather than panic; tests add their own patience and assertions on top.

pub mod follower;
pub mod letters;
pub mod nginx;
pub mod node_app;
pub mod redis;
pub mod sse;
pub mod stream;
pub mod webtransport;
pub mod ws;

pub use follower::{Books, Follower, Policy};
pub use sse::SseClient;
pub use stream::StreamClient;
pub use webtransport::WtClient;
pub use ws::WsClient;

/// Why a client could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request failed or its answer could not be read.
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    /// The server refused, in its own words when it gave them.
    #[error("refused with {status}: {message}")]
    Refused { status: u16, message: String },
    /// The WebSocket failed.
    #[error("WebSocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    /// The SSE stream broke.
    #[error("SSE: {0}")]
    Sse(String),
    /// The WebTransport session failed.
    #[error("WebTransport: {0}")]
    WebTransport(String),
    /// The server sent something that is not the protocol.
    #[error("not the protocol: {0}")]
    Protocol(String),
}

impl ClientError {
    /// A refusal, with the message of the server's error envelope when the body is one.
    pub async fn refused(response: reqwest::Response) -> ClientError {
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        ClientError::Refused {
            status,
            message: switchboard_shared::ErrorBody::message_of(&body),
        }
    }
}
