//! The radio: how the Server-Sent Events lane frames things.
//!
//! Events of the stream go out as unnamed SSE messages (so a browser's `EventSource.onmessage` gets them)
//! with `id: SEQ` and the event's JSON as `data`. Everything else is a *named* SSE event without an id,
//! so it never moves the browser's `Last-Event-ID`: `hello` ([`crate::ws::Hello`]), `heartbeat`
//! ([`crate::ws::Heartbeat`]) and `gap` ([`crate::Gap`]).

/// The first event on every stream.
pub const HELLO: &str = "hello";
/// Proof of life, every heartbeat interval. Named (not an SSE comment) because `EventSource` hides
/// comments, and the page must see heartbeats.
pub const HEARTBEAT: &str = "heartbeat";
/// Seqs the server no longer holds for a resuming client.
pub const GAP: &str = "gap";
/// The query parameter that resumes a stream when the browser cannot send `Last-Event-ID`.
pub const AFTER_PARAM: &str = "after";
