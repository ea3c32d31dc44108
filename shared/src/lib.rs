//! The Switchboard wire protocol and the pure logic both sides of it need.
//!
//! Everything here compiles for native targets and for `wasm32-unknown-unknown` and pulls in no async
//! runtime, so the axum server, the Leptos frontend, the load generator and the tests all speak from one
//! definition. The full wire format, lane by lane, is written down in `docs/PROTOCOL.md`.
//!
//! Layout:
//! - [`app`] — "your app through the lab": the proxy's report, its faults and how a channel is named;
//! - [`lane`] — the ways of talking: each [`LaneId`]'s facts in one table (path, [`Shape`], title,
//!   explanation) and [`PerLane`], state indexed by lane;
//! - [`event`] — the one event stream: [`Event`] with its `seq`, `ts_ms` and typed body;
//! - [`batch`] — what a poll or long poll answers, including the explicit [`Gap`] notice;
//! - [`ws`] — WebSocket messages named by direction: [`BrowserMessage`] and [`ServerMessage`] (the
//!   endless letter and WebTransport carry the same messages as JSON lines);
//! - [`webtransport`] — where to dial a WebTransport session ([`WebTransportInfo`]) and how events come
//!   on it ([`WebTransportMode`]);
//! - [`sse`] — the event names and framing used on the Server-Sent Events lane;
//! - [`chat`] — the chat message a browser posts and the limits both sides enforce;
//! - [`error`] — the envelope of every error answer ([`ErrorBody`]), parsed in one place;
//! - [`network`] — emulated network conditions (round trip, jitter, bandwidth, loss) per lane, and the
//!   pure model of when a chunk written into a path comes out;
//! - [`traffic`] — the traffic patterns (quiet, steady, bursty, firehose) and when each source speaks;
//! - [`fault`] — the failure lab: the faults a person can inject and how an active one is described;
//! - [`recovery`] — how a client finds a dead line ([`Watchdog`]) and paces its redials ([`Backoff`]);
//! - [`tracker`] — [`SeqTracker`], which classifies every received seq as new, duplicate, recovered or
//!   after a gap;
//! - [`har`] — HAR files read and written, and the one classifier of traffic into channels (letters,
//!   held letters, radio, phone call), used by the page's import and the server's proxy;
//! - [`format`] — durations and sizes as a person reads them;
//! - [`stats`] — the server's per-lane counters as served at `/api/stats`, and percentile math.

pub mod app;
pub mod batch;
pub mod chat;
pub mod error;
pub mod event;
pub mod fault;
pub mod format;
pub mod har;
pub mod lane;
pub mod network;
pub mod proxy;
pub mod recovery;
pub mod sse;
pub mod stats;
pub mod time;
pub mod tracker;
pub mod traffic;
pub mod webtransport;
pub mod ws;

pub use batch::{Batch, Gap};
pub use chat::{ChatAccepted, ChatPost, ChatRejection};
pub use error::{ErrorBody, ErrorDetail};
pub use event::{
    ChatMessage, ChatVia, Event, EventBody, HostLoad, Notice, NoticeLevel, Quote, TickerQuotes,
};
pub use fault::{Fault, FaultAuth, FaultKind, FaultList, FaultRequest, FaultTarget, Reach};
pub use lane::{LaneId, PerLane, Shape};
pub use proxy::{PROXY_HEADER, proxy_idle_ms, proxy_words};
pub use recovery::{Backoff, Watchdog};
pub use stats::{ConnectionCounts, LaneCounters, ServerStats};
pub use tracker::{Arrival, EpochChange, SeqTracker};
pub use traffic::Traffic;
pub use webtransport::{WebTransportInfo, WebTransportMode};
pub use ws::{BrowserMessage, ErrorCode, ServerMessage};

/// A sequence number: strictly increasing across the whole stream and shared by every lane.
pub type Seq = u64;

/// The response header in which the server tells how many bytes the request's head took on the wire
/// (request line, headers and blank line, as the server read them). Pages cannot see the headers their
/// browser adds, so without it a letter's real cost could only be guessed.
pub const REQUEST_BYTES_HEADER: &str = "x-request-bytes";

/// The response header in which the server tells which request on its TCP connection this one was:
/// `1` means the browser opened a new connection for it (and paid the handshake), more means it reused
/// a kept-alive one. Pages cannot see connection reuse any other way.
pub const CONNECTION_REQUEST_HEADER: &str = "x-connection-request";
