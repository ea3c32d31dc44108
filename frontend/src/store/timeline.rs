//! The timeline's contents: spans (exchanges and lines) and the marks on them, bounded.

use std::collections::VecDeque;

use switchboard_shared::{LaneId, Seq, Shape};

use crate::format::format_ms;
use crate::wire::SpanId;

/// How many marks (messages, frames, heartbeats) the timeline holds before it thins the oldest events.
pub const MARKS_HELD: usize = 10_000;
/// How many exchanges and lines are held.
pub const SPANS_HELD: usize = 4_000;

/// What an exchange or line ended as (or is, while it lasts).
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A letter not yet answered, or a line being dialled.
    Pending,
    /// A letter answered with `n` events.
    News(u32),
    /// A letter answered with nothing new: wasted postage.
    Empty,
    /// A letter answered with an error, or lost on the way.
    Failed(String),
    /// A line that is open.
    Open,
    /// A line that was closed, with its close code when the protocol has one.
    Closed { code: Option<u16>, reason: String },
}

/// One exchange or line.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub id: SpanId,
    pub lane: LaneId,
    /// Its lane's shape: a letter and its answer, or a line from dial to hang-up.
    pub shape: Shape,
    /// What carried it, in words a developer recognises (`GET /api/poll?after=12`).
    pub label: String,
    pub start_ms: f64,
    /// When the answer came back or the line closed; `None` while it lasts.
    pub end_ms: Option<f64>,
    pub outcome: Outcome,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Events it carried.
    pub events: u32,
    /// A letter answered by a proxy's cache, not by the server.
    pub cached: bool,
}

/// How an event's seq counted on its lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    New,
    /// The first seq after a hole.
    AfterGap,
    Recovered,
    Duplicate,
}

/// One single thing on the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub lane: LaneId,
    pub at_ms: f64,
    /// The exchange or line that carried it.
    pub span: SpanId,
    /// Its bytes on the wire, framing included.
    pub bytes: u64,
    pub what: MarkKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MarkKind {
    /// An event; `delay_ms` is from the server's timestamp to receipt, corrected by the clock offset.
    Event {
        seq: Seq,
        kind: &'static str,
        delay_ms: f64,
        receipt: Receipt,
        /// The event as JSON, for the detail view.
        payload: String,
    },
    Heartbeat {
        head: Seq,
    },
    /// Browser → server on a line.
    Sent {
        label: String,
        detail: String,
    },
    /// Server → browser on a line, other than an event.
    Received {
        label: String,
        detail: String,
    },
    /// Seqs the server declared lost.
    Gap {
        first: Seq,
        last: Seq,
    },
    /// Seqs skipped: an event came after them and they did not (the video call's datagrams, which
    /// nothing resends; on another lane a hole that a resume may still fill).
    Missed {
        first: Seq,
        last: Seq,
    },
    Error {
        message: String,
    },
    /// The watchdog gave up on a silent line.
    Dead {
        silent_ms: f64,
    },
    /// The server's history started over.
    Restart {
        lost: u64,
    },
    /// The lane is now served by another server instance (several share one stream through Redis): the
    /// call or the letters were picked up elsewhere, and resumed from where they were.
    Moved {
        from: String,
        to: String,
    },
}

impl Mark {
    /// A one-line summary for hovering.
    pub fn summary(&self) -> String {
        match &self.what {
            MarkKind::Event {
                seq,
                kind,
                delay_ms,
                receipt,
                ..
            } => {
                let note = match receipt {
                    Receipt::New => "",
                    Receipt::AfterGap => " · after a gap",
                    Receipt::Recovered => " · recovered",
                    Receipt::Duplicate => " · duplicate, dropped",
                };
                format!(
                    "#{seq} {kind} · {} late · {} B{note}",
                    format_ms(*delay_ms),
                    self.bytes
                )
            }
            MarkKind::Heartbeat { head } => format!("heartbeat · head #{head} · {} B", self.bytes),
            MarkKind::Sent { label, .. } => format!("browser → server: {label} · {} B", self.bytes),
            MarkKind::Received { label, .. } => {
                format!("server → browser: {label} · {} B", self.bytes)
            }
            MarkKind::Gap { first, last } => format!("gap: #{first}–#{last} lost for good"),
            MarkKind::Missed { first, last } if first == last => {
                format!("missed: #{first} never came (a later event did)")
            }
            MarkKind::Missed { first, last } => {
                format!("missed: #{first}–#{last} never came (a later event did)")
            }
            MarkKind::Error { message } => format!("error: {message}"),
            MarkKind::Dead { silent_ms } => format!(
                "declared dead: nothing for {} (2.5 heartbeats); hanging up to redial",
                format_ms(*silent_ms)
            ),
            MarkKind::Restart { lost } => {
                format!("the server's history started over (a new epoch); {lost} lost here")
            }
            MarkKind::Moved { from, to } => {
                format!("now served by instance {to} (was {from}); resumed where it left off")
            }
        }
    }
}

/// Every span and mark the timeline can draw: appended in time (and id) order, the oldest falling off.
#[derive(Debug, Clone)]
pub struct Timeline {
    spans: VecDeque<Span>,
    marks: VecDeque<Mark>,
    next_span: SpanId,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            spans: VecDeque::new(),
            marks: VecDeque::new(),
            next_span: 1,
        }
    }
}

impl Timeline {
    /// A fresh id for an exchange or a line.
    pub fn new_span(&mut self) -> SpanId {
        let id = self.next_span;
        self.next_span += 1;
        id
    }

    pub fn spans(&self) -> impl DoubleEndedIterator<Item = &Span> {
        self.spans.iter()
    }

    pub fn span(&self, id: SpanId) -> Option<&Span> {
        // Spans are appended in id order, so a binary search finds one.
        let index = self.spans.partition_point(|span| span.id < id);
        self.spans.get(index).filter(|span| span.id == id)
    }

    pub fn marks(&self) -> &VecDeque<Mark> {
        &self.marks
    }

    /// The marks whose time falls in `from..=to` (marks are appended in time order).
    pub fn marks_between(&self, from: f64, to: f64) -> impl Iterator<Item = &Mark> {
        let start = self.marks.partition_point(|mark| mark.at_ms < from);
        self.marks
            .range(start..)
            .take_while(move |mark| mark.at_ms <= to)
    }

    /// Starts a span: a letter sent or a line being dialled.
    pub(super) fn begin(&mut self, id: SpanId, lane: LaneId, label: String, at_ms: f64) {
        self.spans.push_back(Span {
            id,
            lane,
            shape: lane.shape(),
            label,
            start_ms: at_ms,
            end_ms: None,
            outcome: Outcome::Pending,
            bytes_up: 0,
            bytes_down: 0,
            events: 0,
            cached: false,
        });
        if self.spans.len() > SPANS_HELD {
            // An open line is always drawn, however long ago it was dialled (after half an hour of
            // letters the radio's and the phone call's lines are the oldest spans): the oldest span
            // that is not an open line goes instead. Spans stay in id order either way.
            let index = self
                .spans
                .iter()
                .position(|span| span.end_ms.is_some() || span.shape.is_request())
                .unwrap_or(0);
            self.spans.remove(index);
        }
    }

    pub(super) fn push(&mut self, mark: Mark) {
        self.marks.push_back(mark);
        if self.marks.len() > MARKS_HELD {
            self.thin();
        }
    }

    /// Makes room when the timeline is full. The older three quarters lose every other ordinary event (a
    /// firehose brings a thousand a second, and dropping the oldest marks whole emptied the rows of
    /// everything older than ten seconds, heartbeats included, so a line looked as if it had none);
    /// heartbeats, frames, gaps, errors, hang-ups and unusual arrivals (duplicates, recoveries) all
    /// stay. Each pass thins what is older again, so events grow sparser with age; only when the
    /// timeline is full of what is never thinned do the oldest marks go whole.
    fn thin(&mut self) {
        let older = self.marks.len() * 3 / 4;
        let mut index = 0;
        let mut ordinary = 0;
        self.marks.retain(|mark| {
            index += 1;
            let thinnable = index <= older
                && matches!(
                    mark.what,
                    MarkKind::Event {
                        receipt: Receipt::New,
                        ..
                    }
                );
            if !thinnable {
                return true;
            }
            ordinary += 1;
            ordinary % 2 == 0
        });
        while self.marks.len() > MARKS_HELD - MARKS_HELD / 4 {
            self.marks.pop_front();
        }
    }

    pub(super) fn span_mut(&mut self, id: SpanId) -> Option<&mut Span> {
        let index = self.spans.partition_point(|span| span.id < id);
        self.spans.get_mut(index).filter(|span| span.id == id)
    }

    /// Counts bytes carried on a span that lasts (a line's frames).
    pub(super) fn carried(&mut self, id: SpanId, bytes_up: u64, bytes_down: u64) {
        if let Some(span) = self.span_mut(id) {
            span.bytes_up += bytes_up;
            span.bytes_down += bytes_down;
        }
    }

    /// The line is open.
    pub(super) fn opened(&mut self, id: SpanId, bytes_up: u64, bytes_down: u64) {
        self.carried(id, bytes_up, bytes_down);
        if let Some(span) = self.span_mut(id) {
            span.outcome = Outcome::Open;
        }
    }

    /// Marks the letter `id` as answered by a proxy's cache.
    pub(super) fn answered_by_cache(&mut self, id: SpanId) {
        if let Some(span) = self.span_mut(id) {
            span.cached = true;
        }
    }

    pub(super) fn end(
        &mut self,
        id: SpanId,
        at_ms: f64,
        outcome: Outcome,
        bytes_up: u64,
        bytes_down: u64,
    ) {
        self.carried(id, bytes_up, bytes_down);
        if let Some(span) = self.span_mut(id) {
            span.end_ms = Some(at_ms);
            span.outcome = outcome;
        }
    }
}
