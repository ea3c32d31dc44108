//! The one interface every lane client reports through: what happened on the wire, in the order it
//! happened. The store turns these into the timeline's spans and marks and into the scoreboard, so
//! nothing downstream knows which lane produced a report except through the data itself.

use switchboard_shared::ws::{Heartbeat, Hello};
use switchboard_shared::{Batch, Event, Gap};

/// Names one exchange (a letter and its answer) or one connection (a stream or a call) of a lane.
pub type SpanId = u64;

/// Who ended a line: only a line the server, the watchdog or a failure ended is an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedBy {
    /// The person stopped the lane.
    Person,
    /// The server hung up (its close code says why).
    Server,
    /// The page's watchdog gave up on a silent line.
    Watchdog,
    /// The connection failed or could not be opened.
    Failure,
}

/// One thing that happened on a lane's wire.
#[derive(Debug, Clone, PartialEq)]
pub enum Wire {
    /// A letter went out (held by the server until there is news when the lane's shape says so).
    RequestSent { span: SpanId, label: String },
    /// Its answer came back carrying `batch`: `bytes_down` on the wire (head and body), and
    /// `bytes_up`, the request's head as the server read it (only the answer can tell).
    ReplyReceived {
        span: SpanId,
        bytes_up: u64,
        bytes_down: u64,
        batch: Batch,
        /// A proxy in front answered it from its cache (`X-Cache-Status: HIT`): the instances never saw
        /// this letter.
        cached: bool,
    },
    /// The letter was answered with an error status, or never answered (network failure).
    RequestFailed {
        span: SpanId,
        status: Option<u16>,
        bytes_up: u64,
        bytes_down: u64,
        message: String,
    },
    /// The person stopped the lane while this letter was out: it will never be answered, and that is
    /// nobody's failure (not an outage, not a failed letter).
    Withdrawn { span: SpanId },
    /// A stream or call is being dialled.
    Dialing { span: SpanId, label: String },
    /// The line is open and the server said hello; `bytes_up` is the dial's request, `bytes_down` the
    /// answer's head and the hello itself.
    Opened {
        span: SpanId,
        hello: Hello,
        bytes_up: u64,
        bytes_down: u64,
    },
    /// The letter or line was carried by a connection the browser opened for it (and paid a
    /// handshake for), as the server told: not one kept alive from before.
    NewConnection { span: SpanId },
    /// One event of the stream arrived (on a line, or inside a letter's answer).
    EventReceived {
        span: SpanId,
        event: Event,
        bytes_down: u64,
    },
    /// The server's proof of life.
    Heartbeat {
        span: SpanId,
        heartbeat: Heartbeat,
        bytes_down: u64,
    },
    /// The browser said something on the line (a ping, a chat message, a resume).
    FrameSent {
        span: SpanId,
        label: String,
        detail: String,
        bytes_up: u64,
    },
    /// The server said something on the line that is not an event (a pong, an acceptance, an error).
    FrameReceived {
        span: SpanId,
        label: String,
        detail: String,
        bytes_down: u64,
    },
    /// The server no longer holds these seqs: they are lost for good.
    GapNotice {
        span: SpanId,
        gap: Gap,
        bytes_down: u64,
    },
    /// The line was closed, by whom, with the WebSocket close code when there is one.
    Closed {
        span: SpanId,
        by: ClosedBy,
        code: Option<u16>,
        reason: String,
    },
    /// Something failed outside any one exchange (the line could not be dialled, a frame was garbage).
    Error {
        span: Option<SpanId>,
        message: String,
    },
    /// The watchdog declared the line dead: nothing, not even a heartbeat, for `silent_ms`.
    Dead { span: SpanId, silent_ms: f64 },
    /// The lane will dial again after `after_ms`.
    Reconnecting { after_ms: u32 },
    /// A ping/pong: each way as the two clocks read it (the way up plus the offset, the way down minus
    /// it; see `store::clock`).
    ClockSync { up_ms: f64, down_ms: f64 },
    /// What crossed the wire on `span`, as it came: a letter's answer body, one line of the endless
    /// letter, one radio event block, one phone-call frame from the server (what the browser sends is
    /// in [`Wire::FrameSent`]). The export writes these down; reported before what was read from it.
    Carried { span: SpanId, text: String },
}

impl Wire {
    /// The exchange or line it is about, if one.
    pub fn span(&self) -> Option<SpanId> {
        match self {
            Wire::RequestSent { span, .. }
            | Wire::ReplyReceived { span, .. }
            | Wire::RequestFailed { span, .. }
            | Wire::Withdrawn { span }
            | Wire::Dialing { span, .. }
            | Wire::Opened { span, .. }
            | Wire::NewConnection { span }
            | Wire::EventReceived { span, .. }
            | Wire::Heartbeat { span, .. }
            | Wire::FrameSent { span, .. }
            | Wire::FrameReceived { span, .. }
            | Wire::GapNotice { span, .. }
            | Wire::Closed { span, .. }
            | Wire::Dead { span, .. }
            | Wire::Carried { span, .. } => Some(*span),
            Wire::Error { span, .. } => *span,
            Wire::Reconnecting { .. } | Wire::ClockSync { .. } => None,
        }
    }
}
