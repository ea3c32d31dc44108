//! The timeline store: every wire report of every lane, turned into what the page shows.
//!
//! - **Spans** are exchanges (a letter and its answer) and lines (a stream or a call, from dial to
//!   hang-up); the timeline draws them as round trips, held bars, bands and lines.
//! - **Marks** are the single things on a span: events, heartbeats, frames each way, gap notices.
//! - **Scores** are per-lane counters for the scoreboard, each lane running the shared [`SeqTracker`].
//! - **Live copies** are each lane's own view of the data (host load, ticker, chat), so a stale lane
//!   *looks* stale.
//!
//! Memory is bounded: the oldest spans and marks fall off, delays and sparklines keep a fixed window.
//! The store is plain data with no clock of its own (every report carries its time), so it is tested
//! natively.

use std::collections::{BTreeMap, VecDeque};

use switchboard_shared::stats::Summary;
use switchboard_shared::{
    Arrival, ChatMessage, EpochChange, Event, EventBody, Fault, HostLoad, LaneId, Notice, PerLane,
    Quote, Seq, SeqTracker,
};

use crate::conditions::{Conditions, WhileHidden};
use crate::wire::{ClosedBy, SpanId, Wire};

/// How many marks (messages, frames, heartbeats) the timeline holds before the oldest fall off.
pub const MARKS_HELD: usize = 10_000;
/// How many exchanges and lines are held.
pub const SPANS_HELD: usize = 4_000;
/// Delay samples kept per lane for percentiles and the histogram.
const DELAYS_KEPT: usize = 2_000;
/// Chat lines each lane's copy shows.
const CHAT_KEPT: usize = 5;
/// Seconds of deliveries the sparkline shows.
pub const SPARK_SECONDS: usize = 60;
/// Recently published seqs remembered to tell how far behind a lane is.
const RECENT_KEPT: usize = 4_096;
/// Clock probes the offset is chosen from (one every few seconds: the last minute or so, so a change of
/// path is followed within a minute).
const CLOCK_SAMPLES_KEPT: usize = 12;
/// Faults remembered for the timeline's shading.
const FAULTS_KEPT: usize = 200;
/// A break this long after a fault began is blamed on it (and timed from its start); later breaks are
/// timed from the last sign of life.
const FAULT_BLAME_MS: f64 = 60_000.0;

/// Upper bounds (ms) of the delay histogram's buckets; the last bucket takes everything above.
pub const DELAY_BUCKETS: [f64; 7] = [5.0, 20.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

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

/// The two shapes a span has on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanShape {
    /// A request and its answer; `held` when the server was asked to hold it for news.
    Exchange { held: bool },
    /// A connection that stays open; `two_way` when the browser talks on it too.
    Line { two_way: bool },
}

/// One exchange or line.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub id: SpanId,
    pub lane: LaneId,
    pub shape: SpanShape,
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

/// Each lane's own copy of the live data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveCopy {
    pub load: Option<HostLoad>,
    pub quotes: BTreeMap<String, Quote>,
    pub chat: VecDeque<ChatMessage>,
    pub notice: Option<Notice>,
    /// The server timestamp of the newest event this copy shows.
    pub newest_ts_ms: Option<u64>,
}

impl LiveCopy {
    fn show(&mut self, event: &Event) {
        if self.newest_ts_ms.is_some_and(|ts| ts > event.ts_ms) {
            // A replayed older event must not overwrite newer data.
            return;
        }
        self.newest_ts_ms = Some(event.ts_ms);
        match &event.body {
            EventBody::Load(load) => self.load = Some(load.clone()),
            EventBody::Ticker(ticker) => {
                for quote in &ticker.quotes {
                    self.quotes.insert(quote.symbol.clone(), quote.clone());
                }
            }
            EventBody::Chat(message) => {
                self.chat.push_back(message.clone());
                if self.chat.len() > CHAT_KEPT {
                    self.chat.pop_front();
                }
            }
            EventBody::Notice(notice) => self.notice = Some(notice.clone()),
        }
    }
}

/// One lane's scoreboard.
#[derive(Debug, Clone, Default)]
pub struct LaneScore {
    pub tracker: SeqTracker,
    pub requests: u64,
    pub empty_replies: u64,
    pub failed_requests: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub connects: u64,
    pub reconnects: u64,
    /// Letters and lines that needed a new TCP connection (a handshake) rather than a kept-alive one.
    pub new_connections: u64,
    pub errors: u64,
    /// Heartbeats received.
    pub heartbeats: u64,
    /// The last time the lane heard anything from the server.
    pub last_life_ms: Option<f64>,
    /// The server instance the lane last reached.
    pub instance: Option<String>,
    /// Why the last line closed.
    pub last_close: Option<(Option<u16>, String)>,
    pub last_error: Option<String>,
    /// Lines the watchdog declared dead.
    pub dead_lines: u64,
    /// The outage in progress: when it was detected.
    outage_since: Option<f64>,
    /// When the last outage was detected, so a fault announced later can still be blamed for it.
    last_broke_ms: Option<f64>,
    /// How long the last outage took to be noticed (from the fault's start when a fault caused it,
    /// otherwise from the last sign of life) and how long from then until the lane was back.
    pub last_detect_ms: Option<f64>,
    pub last_recover_ms: Option<f64>,
    delays: VecDeque<f64>,
    /// Deliveries per whole second (Unix seconds), newest last.
    per_second: VecDeque<(i64, u32)>,
    pub live: LiveCopy,
}

impl LaneScore {
    pub fn delivered(&self) -> u64 {
        self.tracker.counts().delivered
    }

    /// Seqs this lane should have had and has not: still missing, or declared lost by the server.
    pub fn missed(&self) -> u64 {
        self.tracker.missing_count() + self.tracker.counts().lost
    }

    pub fn duplicates(&self) -> u64 {
        self.tracker.counts().duplicates
    }

    /// Seqs gone for good (declared by the server, or left behind by a restart).
    pub fn lost(&self) -> u64 {
        self.tracker.counts().lost
    }

    /// Whether the lane is between a failure and its recovery.
    pub fn in_outage(&self) -> bool {
        self.outage_since.is_some()
    }

    pub fn recovered(&self) -> u64 {
        self.tracker.counts().recovered
    }

    /// The share of answers that said "nothing new", in percent.
    pub fn empty_percent(&self) -> Option<f64> {
        (self.requests > 0).then(|| 100.0 * self.empty_replies as f64 / self.requests as f64)
    }

    /// Bytes on the wire (both ways) per delivered message.
    pub fn bytes_per_message(&self) -> Option<f64> {
        let delivered = self.delivered();
        (delivered > 0).then(|| (self.bytes_up + self.bytes_down) as f64 / delivered as f64)
    }

    pub fn delay_summary(&self) -> Option<Summary> {
        let mut samples: Vec<f64> = self.delays.iter().copied().collect();
        Summary::of(&mut samples)
    }

    /// How many kept delay samples fall in each of [`DELAY_BUCKETS`] (plus one bucket above them).
    pub fn delay_histogram(&self) -> [u32; DELAY_BUCKETS.len() + 1] {
        let mut counts = [0; DELAY_BUCKETS.len() + 1];
        for delay in &self.delays {
            let bucket = DELAY_BUCKETS
                .iter()
                .position(|&upper| *delay <= upper)
                .unwrap_or(DELAY_BUCKETS.len());
            counts[bucket] += 1;
        }
        counts
    }

    /// Deliveries in each of the last [`SPARK_SECONDS`] seconds up to `now_ms`, oldest first.
    pub fn sparkline(&self, now_ms: f64) -> Vec<u32> {
        let now_s = (now_ms / 1000.0).floor() as i64;
        let first = now_s - SPARK_SECONDS as i64 + 1;
        let mut out = vec![0; SPARK_SECONDS];
        for &(second, count) in &self.per_second {
            if (first..=now_s).contains(&second) {
                out[(second - first) as usize] = count;
            }
        }
        out
    }

    fn count_delivery(&mut self, at_ms: f64, delay_ms: f64) {
        self.delays.push_back(delay_ms);
        if self.delays.len() > DELAYS_KEPT {
            self.delays.pop_front();
        }
        let second = (at_ms / 1000.0).floor() as i64;
        match self.per_second.back_mut() {
            Some((last, count)) if *last == second => *count += 1,
            _ => {
                self.per_second.push_back((second, 1));
                if self.per_second.len() > SPARK_SECONDS {
                    self.per_second.pop_front();
                }
            }
        }
    }
}

/// What the WebSocket lane's ping/pong measured.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Clock {
    /// Server clock minus browser clock, ms; every delay is corrected by it.
    pub offset_ms: f64,
    pub round_trip_ms: Option<f64>,
}

/// Everything the page shows, fed by [`Store::apply`].
#[derive(Debug, Clone)]
pub struct Store {
    lanes: [LaneScore; 4],
    spans: VecDeque<Span>,
    marks: VecDeque<Mark>,
    clock: Clock,
    /// The last few clock probes (round trip, offset), newest last: the offset in use is the one
    /// measured over the shortest round trip, as NTP does, because a probe whose two ways were delayed
    /// unequally (jitter) is off by half the difference, and the shortest round trip leaves the least
    /// room for that.
    clock_samples: VecDeque<(f64, f64)>,
    /// (seq, server timestamp) of recent events seen on any lane, ascending by seq.
    recent: VecDeque<(Seq, u64)>,
    next_span: SpanId,
    /// Faults announced on the stream, oldest first, in page time.
    faults: VecDeque<FaultSpan>,
    /// The network condition of each lane over time, and the times the page was hidden.
    conditions: Conditions,
    scores_since_ms: Option<f64>,
}

/// One seq followed across the lanes ([`Store::trace`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub seq: Seq,
    pub lanes: PerLane<Traced>,
}

/// What became of one seq on one lane.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Traced {
    /// It arrived at `at_ms` (page clock), `delay_ms` after the server stamped it.
    Arrived { at_ms: f64, delay_ms: f64 },
    /// The lane knows it is missing: a gap it has not filled.
    Missing,
    /// The lane went past it without it: declared lost by the server, or its mark has fallen off the
    /// timeline.
    Passed,
    /// The lane has not got that far yet.
    NotYet,
}

impl Trace {
    /// The earliest arrival on any lane.
    pub fn first_ms(&self) -> Option<f64> {
        self.lanes
            .iter()
            .filter_map(|(_, traced)| match traced {
                Traced::Arrived { at_ms, .. } => Some(*at_ms),
                _ => None,
            })
            .min_by(f64::total_cmp)
    }

    /// How one lane fared, in words: its delay and how far behind the first lane it came.
    pub fn describe(&self, lane: LaneId) -> String {
        match self.lanes[lane] {
            Traced::Arrived { at_ms, delay_ms } => {
                let behind = at_ms - self.first_ms().unwrap_or(at_ms);
                let after = if behind < 0.5 {
                    "first".to_owned()
                } else {
                    format!("+{} after the first", format_ms(behind))
                };
                format!("{} after the stamp · {after}", format_ms(delay_ms))
            }
            Traced::Missing => "missing: a gap this lane has not filled".to_owned(),
            Traced::Passed => "never arrived: declared lost, or fallen off the timeline".to_owned(),
            Traced::NotYet => "not yet: this lane has not got that far".to_owned(),
        }
    }
}

/// A fault as the timeline shades it.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpan {
    pub fault: Fault,
    /// Its start and end on the page's clock.
    pub start_ms: f64,
    pub end_ms: f64,
}

impl FaultSpan {
    pub fn covers(&self, lane: LaneId) -> bool {
        self.fault.lane.covers(lane)
    }
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    pub fn new() -> Store {
        Store {
            lanes: Default::default(),
            spans: VecDeque::new(),
            marks: VecDeque::new(),
            clock: Clock::default(),
            clock_samples: VecDeque::new(),
            recent: VecDeque::new(),
            next_span: 1,
            faults: VecDeque::new(),
            conditions: Conditions::default(),
            scores_since_ms: None,
        }
    }

    /// Starts every lane's figures afresh (figures mixed across network conditions or traffic mislead),
    /// keeping where each lane is in the stream, its live copy and an outage in progress; the timeline
    /// keeps what it shows.
    pub fn reset_scores(&mut self, at_ms: f64) {
        for score in &mut self.lanes {
            let fresh = LaneScore {
                tracker: score
                    .tracker
                    .last()
                    .map_or_else(SeqTracker::default, SeqTracker::resuming_after),
                instance: score.instance.take(),
                last_life_ms: score.last_life_ms,
                outage_since: score.outage_since,
                live: std::mem::take(&mut score.live),
                ..LaneScore::default()
            };
            *score = fresh;
        }
        self.scores_since_ms = Some(at_ms);
    }

    /// When the figures were last reset, if ever.
    pub fn scores_since_ms(&self) -> Option<f64> {
        self.scores_since_ms
    }

    pub fn conditions(&self) -> &Conditions {
        &self.conditions
    }

    pub fn conditions_mut(&mut self) -> &mut Conditions {
        &mut self.conditions
    }

    /// What `lane` did while the page was hidden: letters sent or lines dialled, arrivals, dead lines.
    pub fn while_hidden(&self, lane: LaneId) -> WhileHidden {
        let mut seen = WhileHidden::default();
        for span in self.spans.iter().filter(|span| span.lane == lane) {
            if self.conditions.was_hidden(span.start_ms) {
                seen.requests += 1;
            }
        }
        for mark in self.marks.iter().filter(|mark| mark.lane == lane) {
            if !self.conditions.was_hidden(mark.at_ms) {
                continue;
            }
            match mark.what {
                MarkKind::Event { .. } | MarkKind::Heartbeat { .. } => seen.arrivals += 1,
                MarkKind::Dead { .. } => seen.dead += 1,
                _ => {}
            }
        }
        seen
    }

    /// The faults announced so far (the most recent [`FAULTS_KEPT`]).
    pub fn faults(&self) -> &VecDeque<FaultSpan> {
        &self.faults
    }

    /// The faults still in effect at `now_ms`.
    pub fn active_faults(&self, now_ms: f64) -> impl Iterator<Item = &FaultSpan> {
        self.faults
            .iter()
            .filter(move |span| span.fault.kind.is_timed() && span.end_ms > now_ms)
    }

    /// Every lane counts from the same point, so their delivered seqs can be compared one for one.
    pub fn start_after(&mut self, after: Seq) {
        for lane in &mut self.lanes {
            if lane.tracker.last().is_none() {
                lane.tracker = SeqTracker::resuming_after(after);
            }
        }
    }

    /// A fresh id for an exchange or a line.
    pub fn new_span(&mut self) -> SpanId {
        let id = self.next_span;
        self.next_span += 1;
        id
    }

    pub fn lane(&self, lane: LaneId) -> &LaneScore {
        &self.lanes[lane.index()]
    }

    pub fn clock(&self) -> Clock {
        self.clock
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

    /// Where one seq got to on every lane: when it first arrived on each and how late, or why it did
    /// not — so one message can be followed across the four ways of receiving it.
    pub fn trace(&self, seq: Seq) -> Trace {
        let mut lanes = PerLane::from_fn(|_| Traced::NotYet);
        for mark in &self.marks {
            if let MarkKind::Event {
                seq: seen,
                delay_ms,
                receipt,
                ..
            } = &mark.what
                && *seen == seq
                && *receipt != Receipt::Duplicate
                && !matches!(lanes[mark.lane], Traced::Arrived { .. })
            {
                lanes[mark.lane] = Traced::Arrived {
                    at_ms: mark.at_ms,
                    delay_ms: *delay_ms,
                };
            }
        }
        for lane in LaneId::ALL {
            if matches!(lanes[lane], Traced::Arrived { .. }) {
                continue;
            }
            let tracker = &self.lane(lane).tracker;
            let missing = tracker
                .missing()
                .any(|gap| (gap.first..=gap.last).contains(&seq));
            lanes[lane] = if missing {
                Traced::Missing
            } else if tracker.last().is_some_and(|last| last >= seq) {
                Traced::Passed
            } else {
                Traced::NotYet
            };
        }
        Trace { seq, lanes }
    }

    /// How long this lane's copy has been missing news that another lane already has: the age of the
    /// oldest event it has not received. Zero when it is up to date.
    pub fn behind_ms(&self, lane: LaneId, now_ms: f64) -> f64 {
        let last = self.lanes[lane.index()].tracker.last().unwrap_or(0);
        let index = self.recent.partition_point(|&(seq, _)| seq <= last);
        match self.recent.get(index) {
            Some(&(_, ts_ms)) => (now_ms + self.clock.offset_ms - ts_ms as f64).max(0.0),
            None => 0.0,
        }
    }

    /// Takes one report from `lane`, made at browser time `at_ms`.
    pub fn apply(&mut self, lane: LaneId, at_ms: f64, wire: Wire) {
        let score = &mut self.lanes[lane.index()];
        match wire {
            Wire::RequestSent { span, label, held } => {
                score.requests += 1;
                self.push_span(Span {
                    id: span,
                    lane,
                    shape: SpanShape::Exchange { held },
                    label,
                    start_ms: at_ms,
                    end_ms: None,
                    outcome: Outcome::Pending,
                    bytes_up: 0,
                    bytes_down: 0,
                    events: 0,
                });
            }
            Wire::ReplyReceived {
                span,
                bytes_up,
                bytes_down,
                batch,
            } => {
                score.bytes_up += bytes_up;
                score.bytes_down += bytes_down;
                score.last_life_ms = Some(at_ms);
                self.back(lane, at_ms);
                if let Some(instance) = &batch.instance {
                    self.reached(lane, at_ms, span, instance);
                }
                self.epoch(lane, at_ms, span, batch.epoch, batch.head);
                let score = &mut self.lanes[lane.index()];
                if batch.events.is_empty() && batch.gap.is_none() {
                    score.empty_replies += 1;
                }
                let count = batch.events.len() as u32;
                self.end_span(
                    span,
                    at_ms,
                    if count == 0 {
                        Outcome::Empty
                    } else {
                        Outcome::News(count)
                    },
                    bytes_up,
                    bytes_down,
                );
                if let Some(gap) = batch.gap {
                    self.gap(lane, at_ms, span, gap.first, gap.last, 0);
                }
                // The answer's bytes are shared out over its events, so each mark shows its cost.
                let share = bytes_down / u64::from(count.max(1));
                for event in batch.events {
                    self.event(lane, at_ms, span, event, share);
                }
            }
            Wire::RequestFailed {
                span,
                status,
                bytes_up,
                bytes_down,
                message,
            } => {
                score.failed_requests += 1;
                score.errors += 1;
                score.bytes_up += bytes_up;
                score.bytes_down += bytes_down;
                if status.is_some() {
                    score.last_life_ms = Some(at_ms);
                }
                let text = match status {
                    Some(status) => format!("HTTP {status}: {message}"),
                    None => message,
                };
                score.last_error = Some(text.clone());
                self.end_span(span, at_ms, Outcome::Failed(text), bytes_up, bytes_down);
                self.broke(lane, at_ms);
            }
            Wire::Dialing {
                span,
                label,
                two_way,
            } => {
                self.push_span(Span {
                    id: span,
                    lane,
                    shape: SpanShape::Line { two_way },
                    label,
                    start_ms: at_ms,
                    end_ms: None,
                    outcome: Outcome::Pending,
                    bytes_up: 0,
                    bytes_down: 0,
                    events: 0,
                });
            }
            Wire::Opened {
                span,
                hello,
                bytes_up,
                bytes_down,
            } => {
                score.connects += 1;
                score.requests += 1;
                if hello.connection_request == Some(1) {
                    score.new_connections += 1;
                }
                score.bytes_up += bytes_up;
                score.bytes_down += bytes_down;
                score.last_life_ms = Some(at_ms);
                self.back(lane, at_ms);
                self.reached(lane, at_ms, span, &hello.instance);
                self.epoch(lane, at_ms, span, hello.epoch, hello.head);
                if let Some(open) = self.span_mut(span) {
                    open.outcome = Outcome::Open;
                    open.bytes_up += bytes_up;
                    open.bytes_down += bytes_down;
                }
                let detail = serde_json::to_string_pretty(&hello).unwrap_or_default();
                self.push_mark(Mark {
                    lane,
                    at_ms,
                    span,
                    bytes: bytes_down,
                    what: MarkKind::Received {
                        label: "hello".into(),
                        detail,
                    },
                });
            }
            Wire::EventReceived {
                span,
                event,
                bytes_down,
            } => {
                score.bytes_down += bytes_down;
                score.last_life_ms = Some(at_ms);
                self.add_down(span, bytes_down);
                self.event(lane, at_ms, span, event, bytes_down);
            }
            Wire::Heartbeat {
                span,
                heartbeat,
                bytes_down,
            } => {
                score.heartbeats += 1;
                score.tracker.observe_head(heartbeat.head);
                score.bytes_down += bytes_down;
                score.last_life_ms = Some(at_ms);
                self.add_down(span, bytes_down);
                self.push_mark(Mark {
                    lane,
                    at_ms,
                    span,
                    bytes: bytes_down,
                    what: MarkKind::Heartbeat {
                        head: heartbeat.head,
                    },
                });
            }
            Wire::FrameSent {
                span,
                label,
                detail,
                bytes_up,
            } => {
                score.bytes_up += bytes_up;
                if let Some(line) = self.span_mut(span) {
                    line.bytes_up += bytes_up;
                }
                self.push_mark(Mark {
                    lane,
                    at_ms,
                    span,
                    bytes: bytes_up,
                    what: MarkKind::Sent { label, detail },
                });
            }
            Wire::FrameReceived {
                span,
                label,
                detail,
                bytes_down,
            } => {
                score.bytes_down += bytes_down;
                score.last_life_ms = Some(at_ms);
                self.add_down(span, bytes_down);
                self.push_mark(Mark {
                    lane,
                    at_ms,
                    span,
                    bytes: bytes_down,
                    what: MarkKind::Received { label, detail },
                });
            }
            Wire::GapNotice {
                span,
                gap,
                bytes_down,
            } => {
                score.bytes_down += bytes_down;
                score.last_life_ms = Some(at_ms);
                self.add_down(span, bytes_down);
                self.gap(lane, at_ms, span, gap.first, gap.last, bytes_down);
            }
            Wire::Closed {
                span,
                by,
                code,
                reason,
            } => {
                score.last_close = Some((code, reason.clone()));
                self.end_span(span, at_ms, Outcome::Closed { code, reason }, 0, 0);
                // A line the person stopped is not an outage.
                if by != ClosedBy::Person {
                    self.broke(lane, at_ms);
                }
            }
            Wire::Dead { span, silent_ms } => {
                score.dead_lines += 1;
                self.push_mark(Mark {
                    lane,
                    at_ms,
                    span,
                    bytes: 0,
                    what: MarkKind::Dead { silent_ms },
                });
                self.broke(lane, at_ms);
            }
            Wire::Error { span, message } => {
                score.errors += 1;
                score.last_error = Some(message.clone());
                if let Some(span) = span {
                    self.push_mark(Mark {
                        lane,
                        at_ms,
                        span,
                        bytes: 0,
                        what: MarkKind::Error { message },
                    });
                }
            }
            Wire::Reconnecting { .. } => score.reconnects += 1,
            Wire::NewConnection { .. } => score.new_connections += 1,
            Wire::ClockSync {
                round_trip_ms,
                offset_ms,
            } => {
                self.clock_samples.push_back((round_trip_ms, offset_ms));
                if self.clock_samples.len() > CLOCK_SAMPLES_KEPT {
                    self.clock_samples.pop_front();
                }
                let (_, best_offset) = self
                    .clock_samples
                    .iter()
                    .copied()
                    .min_by(|a, b| a.0.total_cmp(&b.0))
                    .unwrap_or((round_trip_ms, offset_ms));
                self.clock = Clock {
                    offset_ms: best_offset,
                    // The round trip shown is the latest: it is what the line costs now.
                    round_trip_ms: Some(round_trip_ms),
                };
            }
        }
    }

    /// The lane found its line or letters broken at `at_ms`: an outage begins, unless one is on.
    fn broke(&mut self, lane: LaneId, at_ms: f64) {
        let blamed = self
            .faults
            .iter()
            .rev()
            .find(|span| {
                span.covers(lane)
                    && span.start_ms <= at_ms
                    && at_ms - span.start_ms < FAULT_BLAME_MS
            })
            .map(|span| span.start_ms);
        let score = &mut self.lanes[lane.index()];
        if score.outage_since.is_some() {
            return;
        }
        score.outage_since = Some(at_ms);
        score.last_broke_ms = Some(at_ms);
        let since = blamed.or(score.last_life_ms).unwrap_or(at_ms);
        score.last_detect_ms = Some((at_ms - since).max(0.0));
        score.last_recover_ms = None;
    }

    /// The lane is answered again: the outage, if any, is over.
    fn back(&mut self, lane: LaneId, at_ms: f64) {
        let score = &mut self.lanes[lane.index()];
        if let Some(since) = score.outage_since.take() {
            score.last_recover_ms = Some((at_ms - since).max(0.0));
            // The lane is back: its last error is history (the timeline keeps its mark), not news.
            score.last_error = None;
        }
    }

    /// Notes which instance answered the lane; a different one than before is a move, shown on the
    /// timeline.
    fn reached(&mut self, lane: LaneId, at_ms: f64, span: SpanId, instance: &str) {
        let score = &mut self.lanes[lane.index()];
        if score.instance.as_deref() == Some(instance) {
            return;
        }
        if let Some(from) = score.instance.replace(instance.to_owned()) {
            self.push_mark(Mark {
                lane,
                at_ms,
                span,
                bytes: 0,
                what: MarkKind::Moved {
                    from,
                    to: instance.to_owned(),
                },
            });
        }
    }

    /// Notes the history a batch or hello speaks of; a new epoch is a restart, shown on the timeline.
    fn epoch(&mut self, lane: LaneId, at_ms: f64, span: SpanId, epoch: u64, head: Seq) {
        let change = self.lanes[lane.index()].tracker.observe_epoch(epoch, head);
        if let EpochChange::Restarted { lost, .. } = change {
            self.push_mark(Mark {
                lane,
                at_ms,
                span,
                bytes: 0,
                what: MarkKind::Restart { lost },
            });
        }
    }

    /// Remembers a fault announced on the stream (every lane hears of it; it is kept once).
    fn fault(&mut self, fault: &Fault) {
        if self
            .faults
            .iter()
            .any(|known| known.fault.id == fault.id && known.fault.started_ms == fault.started_ms)
        {
            return;
        }
        let start_ms = fault.started_ms as f64 - self.clock.offset_ms;
        let span = FaultSpan {
            start_ms,
            end_ms: start_ms + fault.duration_ms() as f64,
            fault: fault.clone(),
        };
        // A drop or restart is announced after it struck: the lanes hear of it only once they are
        // back, so an outage they already timed from their last sign of life is timed from the fault.
        for lane in LaneId::ALL {
            let score = &mut self.lanes[lane.index()];
            if let Some(broke) = score.last_broke_ms
                && span.covers(lane)
                && broke >= start_ms
                && broke - start_ms < FAULT_BLAME_MS
            {
                score.last_detect_ms = Some(broke - start_ms);
            }
        }
        let index = self
            .faults
            .partition_point(|known| known.start_ms <= start_ms);
        self.faults.insert(index, span);
        if self.faults.len() > FAULTS_KEPT {
            self.faults.pop_front();
        }
    }

    fn event(&mut self, lane: LaneId, at_ms: f64, span: SpanId, event: Event, bytes: u64) {
        if let EventBody::Notice(Notice {
            fault: Some(fault), ..
        }) = &event.body
        {
            self.fault(fault);
        }
        if let EventBody::Notice(Notice {
            network: Some(change),
            ..
        }) = &event.body
        {
            let at_ms = change.at_ms as f64 - self.clock.offset_ms;
            self.conditions.change(change, at_ms);
        }
        if let EventBody::Notice(Notice {
            traffic: Some(change),
            ..
        }) = &event.body
        {
            let at_ms = change.at_ms as f64 - self.clock.offset_ms;
            self.conditions.traffic_change(change, at_ms);
        }
        let delay_ms = (at_ms + self.clock.offset_ms - event.ts_ms as f64).max(0.0);
        self.remember(event.seq, event.ts_ms);
        let score = &mut self.lanes[lane.index()];
        let receipt = match score.tracker.observe(event.seq) {
            Arrival::New => Receipt::New,
            Arrival::AfterGap(_) => Receipt::AfterGap,
            Arrival::Recovered => Receipt::Recovered,
            Arrival::Duplicate => Receipt::Duplicate,
        };
        if receipt != Receipt::Duplicate {
            score.count_delivery(at_ms, delay_ms);
            score.live.show(&event);
        }
        if let Some(carrier) = self.span_mut(span) {
            carrier.events += 1;
        }
        let payload = serde_json::to_string_pretty(&event).unwrap_or_default();
        self.push_mark(Mark {
            lane,
            at_ms,
            span,
            bytes,
            what: MarkKind::Event {
                seq: event.seq,
                kind: event.kind(),
                delay_ms,
                receipt,
                payload,
            },
        });
    }

    fn gap(&mut self, lane: LaneId, at_ms: f64, span: SpanId, first: Seq, last: Seq, bytes: u64) {
        self.lanes[lane.index()]
            .tracker
            .declare_lost(switchboard_shared::Gap { first, last });
        self.push_mark(Mark {
            lane,
            at_ms,
            span,
            bytes,
            what: MarkKind::Gap { first, last },
        });
    }

    fn remember(&mut self, seq: Seq, ts_ms: u64) {
        let index = self.recent.partition_point(|&(known, _)| known < seq);
        if self
            .recent
            .get(index)
            .is_some_and(|&(known, _)| known == seq)
        {
            return;
        }
        self.recent.insert(index, (seq, ts_ms));
        if self.recent.len() > RECENT_KEPT {
            self.recent.pop_front();
        }
    }

    fn push_span(&mut self, span: Span) {
        self.spans.push_back(span);
        if self.spans.len() > SPANS_HELD {
            // An open line is always drawn, however long ago it was dialled (after half an hour of
            // letters the radio's and the phone call's lines are the oldest spans): the oldest span
            // that is not an open line goes instead. Spans stay in id order either way.
            let index = self
                .spans
                .iter()
                .position(|span| {
                    !(span.end_ms.is_none() && matches!(span.shape, SpanShape::Line { .. }))
                })
                .unwrap_or(0);
            self.spans.remove(index);
        }
    }

    fn push_mark(&mut self, mark: Mark) {
        self.marks.push_back(mark);
        if self.marks.len() > MARKS_HELD {
            self.marks.pop_front();
        }
    }

    fn span_mut(&mut self, id: SpanId) -> Option<&mut Span> {
        let index = self.spans.partition_point(|span| span.id < id);
        self.spans.get_mut(index).filter(|span| span.id == id)
    }

    fn add_down(&mut self, span: SpanId, bytes: u64) {
        if let Some(line) = self.span_mut(span) {
            line.bytes_down += bytes;
        }
    }

    fn end_span(
        &mut self,
        id: SpanId,
        at_ms: f64,
        outcome: Outcome,
        bytes_up: u64,
        bytes_down: u64,
    ) {
        if let Some(span) = self.span_mut(id) {
            span.end_ms = Some(at_ms);
            span.outcome = outcome;
            span.bytes_up += bytes_up;
            span.bytes_down += bytes_down;
        }
    }
}

/// Milliseconds as a person reads them: `850 ms`, `1.4 s`, `2 min`.
pub fn format_ms(ms: f64) -> String {
    // Whole milliseconds everywhere: a tenth of one is below what a browser's clock can tell.
    if ms > 0.0 && ms < 0.5 {
        "<1 ms".to_owned()
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{:.0} min", ms / 60_000.0)
    }
}

/// A time of day to the millisecond, `07:45:12.345`, from milliseconds already in local time.
pub fn format_clock(local_ms: f64) -> String {
    let day_ms = local_ms.rem_euclid(86_400_000.0).floor() as u64;
    let (seconds, ms) = (day_ms / 1000, day_ms % 1000);
    format!(
        "{:02}:{:02}:{:02}.{ms:03}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// Bytes as a person reads them: `912 B`, `14.2 kB`, `3.1 MB`.
pub fn format_bytes(bytes: f64) -> String {
    if bytes < 1000.0 {
        format!("{bytes:.0} B")
    } else if bytes < 1_000_000.0 {
        format!("{:.1} kB", bytes / 1000.0)
    } else {
        format!("{:.1} MB", bytes / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_reset_starts_the_figures_afresh_where_each_lane_is() {
        let mut store = Store::new();
        store.start_after(0);
        let span = store.new_span();
        for seq in 1..=3 {
            store.apply(
                LaneId::Sse,
                100.0 * seq as f64,
                Wire::EventReceived {
                    span,
                    event: chat(seq, 50 * seq, "x"),
                    bytes_down: 10,
                },
            );
        }
        store.reset_scores(1_000.0);
        let sse = store.lane(LaneId::Sse);
        assert_eq!((sse.delivered(), sse.bytes_down), (0, 0));
        assert_eq!(sse.delay_summary(), None);
        assert_eq!(sse.tracker.last(), Some(3), "still knows where it is");
        store.apply(
            LaneId::Sse,
            2_000.0,
            Wire::EventReceived {
                span,
                event: chat(4, 1_990, "x"),
                bytes_down: 10,
            },
        );
        let sse = store.lane(LaneId::Sse);
        assert_eq!((sse.delivered(), sse.missed()), (1, 0));
        assert_eq!(store.scores_since_ms(), Some(1_000.0));
    }

    #[test]
    fn the_clock_offset_comes_from_the_shortest_round_trip() {
        let mut store = Store::new();
        // A jittery path: the two ways of each probe took different times.
        for (round_trip_ms, offset_ms) in [(310.0, 40.0), (204.0, 2.0), (290.0, -35.0)] {
            store.apply(
                LaneId::Ws,
                0.0,
                Wire::ClockSync {
                    round_trip_ms,
                    offset_ms,
                },
            );
        }
        assert_eq!(store.clock().offset_ms, 2.0);
        assert_eq!(store.clock().round_trip_ms, Some(290.0));
    }

    use super::*;
    use switchboard_shared::ws::{Heartbeat, Hello};
    use switchboard_shared::{Batch, ChatVia, Gap};

    pub(crate) fn chat(seq: Seq, ts_ms: u64, text: &str) -> Event {
        Event {
            seq,
            ts_ms,
            body: EventBody::Chat(ChatMessage {
                author: "ada".into(),
                text: text.into(),
                via: ChatVia::Post,
                client_ref: None,
            }),
        }
    }

    fn hello_at(epoch: u64, head: Seq) -> Hello {
        Hello {
            epoch,
            head,
            oldest: None,
            resumed_after: None,
            heartbeat_ms: 200,
            instance: "one".into(),
            server_ms: 0,
            request_bytes: None,
            connection_request: None,
        }
    }

    fn fault_notice(
        seq: Seq,
        kind: switchboard_shared::FaultKind,
        started_ms: u64,
        ms: u64,
    ) -> Event {
        Event {
            seq,
            ts_ms: started_ms,
            body: EventBody::Notice(Notice {
                level: switchboard_shared::NoticeLevel::Warning,
                code: format!("fault_{kind}"),
                text: "fault".into(),
                fault: Some(Fault {
                    id: seq,
                    kind,
                    lane: switchboard_shared::FaultTarget::Lane(LaneId::Ws),
                    started_ms,
                    until_ms: started_ms + ms,
                    delay_ms: None,
                }),
                network: None,
                traffic: None,
            }),
        }
    }

    #[test]
    fn an_outage_is_timed_from_the_fault_that_caused_it_to_the_lane_coming_back() {
        use switchboard_shared::FaultKind;
        let mut store = Store::new();
        let ws = LaneId::Ws;
        store.start_after(0);
        store.apply(
            ws,
            1_000.0,
            Wire::Dialing {
                span: 1,
                label: "dial".into(),
                two_way: true,
            },
        );
        store.apply(
            ws,
            1_010.0,
            Wire::Opened {
                span: 1,
                hello: hello_at(7, 0),
                bytes_up: 0,
                bytes_down: 0,
            },
        );
        // A half-open fault starts at 2,000 and is announced on the line at once.
        store.apply(
            ws,
            2_000.0,
            Wire::EventReceived {
                span: 1,
                event: fault_notice(1, FaultKind::HalfOpen, 2_000, 4_000),
                bytes_down: 0,
            },
        );
        assert_eq!(store.active_faults(3_000.0).count(), 1);
        assert_eq!(store.active_faults(6_500.0).count(), 0);
        // Silence; the watchdog gives up at 2,500 after 500 ms without anything.
        store.apply(
            ws,
            2_500.0,
            Wire::Dead {
                span: 1,
                silent_ms: 500.0,
            },
        );
        store.apply(
            ws,
            2_500.0,
            Wire::Closed {
                by: ClosedBy::Watchdog,
                span: 1,
                code: None,
                reason: "declared dead".into(),
            },
        );
        let score = store.lane(ws);
        assert!(score.in_outage());
        assert_eq!(
            (
                score.dead_lines,
                score.last_detect_ms,
                score.last_recover_ms
            ),
            (1, Some(500.0), None)
        );
        store.apply(
            ws,
            2_600.0,
            Wire::Dialing {
                span: 2,
                label: "dial".into(),
                two_way: true,
            },
        );
        store.apply(
            ws,
            2_650.0,
            Wire::Opened {
                span: 2,
                hello: hello_at(7, 1),
                bytes_up: 0,
                bytes_down: 0,
            },
        );
        let score = store.lane(ws);
        assert!(!score.in_outage());
        assert_eq!(score.last_recover_ms, Some(150.0));
        assert_eq!(store.faults().len(), 1);
        // A person stopping the lane is not an outage.
        store.apply(
            ws,
            3_000.0,
            Wire::Closed {
                by: ClosedBy::Person,
                span: 2,
                code: Some(1000),
                reason: "stopped".into(),
            },
        );
        assert!(!store.lane(ws).in_outage());
    }

    #[test]
    fn stopping_the_radio_is_no_outage_but_its_stream_breaking_is() {
        let mut store = Store::new();
        let sse = LaneId::Sse;
        store.start_after(0);
        for (span, at) in [(1, 0.0), (2, 2_000.0)] {
            store.apply(
                sse,
                at,
                Wire::Dialing {
                    span,
                    label: "GET /api/sse".into(),
                    two_way: false,
                },
            );
            store.apply(
                sse,
                at + 10.0,
                Wire::Opened {
                    span,
                    hello: hello_at(7, 0),
                    bytes_up: 0,
                    bytes_down: 0,
                },
            );
        }
        store.apply(
            sse,
            500.0,
            Wire::Error {
                span: Some(1),
                message: "a frame was garbage".into(),
            },
        );
        assert!(store.lane(sse).last_error.is_some());
        // The radio's stop has no close code: who closed it is what counts.
        store.apply(
            sse,
            1_000.0,
            Wire::Closed {
                by: ClosedBy::Person,
                span: 1,
                code: None,
                reason: "stopped".into(),
            },
        );
        assert!(!store.lane(sse).in_outage());
        store.apply(
            sse,
            3_000.0,
            Wire::Closed {
                by: ClosedBy::Failure,
                span: 2,
                code: None,
                reason: "the stream broke".into(),
            },
        );
        assert!(store.lane(sse).in_outage());
        store.apply(
            sse,
            3_500.0,
            Wire::Opened {
                span: 2,
                hello: hello_at(7, 0),
                bytes_up: 0,
                bytes_down: 0,
            },
        );
        assert!(!store.lane(sse).in_outage());
        assert_eq!(
            store.lane(sse).last_error,
            None,
            "a lane that is back shows no old error"
        );
    }

    #[test]
    fn a_drop_announced_after_it_struck_is_still_blamed_for_the_outage() {
        use switchboard_shared::FaultKind;
        let mut store = Store::new();
        let ws = LaneId::Ws;
        store.start_after(0);
        store.apply(
            ws,
            0.0,
            Wire::Dialing {
                span: 1,
                label: "dial".into(),
                two_way: true,
            },
        );
        store.apply(
            ws,
            10.0,
            Wire::Opened {
                span: 1,
                hello: hello_at(7, 0),
                bytes_up: 0,
                bytes_down: 0,
            },
        );
        store.apply(
            ws,
            5_020.0,
            Wire::Closed {
                by: ClosedBy::Server,
                span: 1,
                code: Some(1006),
                reason: "".into(),
            },
        );
        // Timed from the last sign of life until the fault is known…
        assert_eq!(store.lane(ws).last_detect_ms, Some(5_010.0));
        store.apply(
            ws,
            5_400.0,
            Wire::Opened {
                span: 2,
                hello: hello_at(7, 1),
                bytes_up: 0,
                bytes_down: 0,
            },
        );
        store.apply(
            ws,
            5_401.0,
            Wire::EventReceived {
                span: 2,
                event: fault_notice(1, FaultKind::Drop, 5_000, 0),
                bytes_down: 0,
            },
        );
        // …then from the fault's start.
        assert_eq!(store.lane(ws).last_detect_ms, Some(20.0));
        assert_eq!(store.lane(ws).last_recover_ms, Some(380.0));
    }

    #[test]
    fn a_new_epoch_is_marked_on_the_timeline() {
        let mut store = Store::new();
        let poll = LaneId::Poll;
        store.start_after(0);
        let mut first = batch(vec![chat(1, 0, "a")]);
        first.epoch = 1;
        store.apply(
            poll,
            0.0,
            Wire::RequestSent {
                span: 1,
                label: "GET".into(),
                held: false,
            },
        );
        store.apply(
            poll,
            1.0,
            Wire::ReplyReceived {
                span: 1,
                bytes_up: 0,
                bytes_down: 0,
                batch: first,
            },
        );
        let mut second = batch(vec![chat(5, 0, "b")]);
        second.epoch = 2;
        second.gap = Some(Gap { first: 2, last: 4 });
        store.apply(
            poll,
            2.0,
            Wire::RequestSent {
                span: 2,
                label: "GET".into(),
                held: false,
            },
        );
        store.apply(
            poll,
            3.0,
            Wire::ReplyReceived {
                span: 2,
                bytes_up: 0,
                bytes_down: 0,
                batch: second,
            },
        );
        let score = store.lane(poll);
        assert_eq!(
            (
                score.tracker.counts().restarts,
                score.lost(),
                score.missed()
            ),
            (1, 3, 3)
        );
        assert!(
            store
                .marks()
                .iter()
                .any(|mark| matches!(mark.what, MarkKind::Restart { lost: 0 }))
        );
    }

    #[test]
    fn a_letter_answered_by_another_instance_is_a_move_on_the_timeline() {
        let mut store = Store::new();
        let poll = LaneId::Poll;
        store.start_after(0);
        for (n, instance) in ["a", "a", "b"].into_iter().enumerate() {
            let span = store.new_span();
            let at = n as f64 * 10.0;
            store.apply(
                poll,
                at,
                Wire::RequestSent {
                    span,
                    label: "GET".into(),
                    held: false,
                },
            );
            let mut reply = batch(vec![chat(n as u64 + 1, 0, "x")]);
            reply.instance = Some(instance.into());
            store.apply(
                poll,
                at + 1.0,
                Wire::ReplyReceived {
                    span,
                    bytes_up: 0,
                    bytes_down: 0,
                    batch: reply,
                },
            );
        }
        let moves: Vec<_> = store
            .marks()
            .iter()
            .filter_map(|mark| match &mark.what {
                MarkKind::Moved { from, to } => Some((from.as_str(), to.as_str(), mark.at_ms)),
                _ => None,
            })
            .collect();
        assert_eq!(
            moves,
            vec![("a", "b", 21.0)],
            "one move, when b first answered"
        );
        assert_eq!(store.lane(poll).instance.as_deref(), Some("b"));
        assert_eq!(store.lane(poll).missed(), 0, "the move lost nothing");
    }

    fn batch(events: Vec<Event>) -> Batch {
        let head = events.last().map_or(0, |event| event.seq);
        Batch {
            epoch: 1,
            head,
            gap: None,
            events,
            instance: None,
        }
    }

    fn letter(store: &mut Store, at: f64, events: Vec<Event>) {
        let span = store.new_span();
        store.apply(
            LaneId::Poll,
            at,
            Wire::RequestSent {
                span,
                label: "GET /api/poll".into(),
                held: false,
            },
        );
        store.apply(
            LaneId::Poll,
            at + 5.0,
            Wire::ReplyReceived {
                span,
                bytes_up: 100,
                bytes_down: 300,
                batch: batch(events),
            },
        );
    }

    #[test]
    fn letters_count_requests_empty_replies_and_bytes() {
        let mut store = Store::new();
        store.start_after(10);
        letter(&mut store, 1000.0, vec![]);
        letter(
            &mut store,
            2000.0,
            vec![chat(11, 1500, "a"), chat(12, 1600, "b")],
        );
        letter(&mut store, 3000.0, vec![]);
        let poll = store.lane(LaneId::Poll);
        assert_eq!(poll.requests, 3);
        assert_eq!(poll.empty_replies, 2);
        assert_eq!(poll.delivered(), 2);
        assert_eq!((poll.bytes_up, poll.bytes_down), (300, 900));
        assert_eq!(poll.bytes_per_message(), Some(600.0));
        let outcomes: Vec<_> = store.spans().map(|span| span.outcome.clone()).collect();
        assert_eq!(outcomes, [Outcome::Empty, Outcome::News(2), Outcome::Empty]);
        assert_eq!(store.spans().nth(1).unwrap().end_ms, Some(2005.0));
        // Delay is from the server's stamp to the answer's arrival.
        assert_eq!(poll.delay_summary().unwrap().max, 2005.0 - 1500.0);
        assert_eq!(poll.live.chat.len(), 2);
    }

    #[test]
    fn duplicates_gaps_and_recoveries_are_counted_per_lane() {
        let mut store = Store::new();
        store.start_after(0);
        let span = store.new_span();
        let ws = LaneId::Ws;
        for seq in [1, 2, 2, 5] {
            store.apply(
                ws,
                100.0,
                Wire::EventReceived {
                    span,
                    event: chat(seq, 90, "x"),
                    bytes_down: 150,
                },
            );
        }
        assert_eq!(store.lane(ws).delivered(), 3);
        assert_eq!(store.lane(ws).duplicates(), 1);
        assert_eq!(store.lane(ws).missed(), 2, "3 and 4 are missing");
        store.apply(
            ws,
            200.0,
            Wire::EventReceived {
                span,
                event: chat(3, 95, "late"),
                bytes_down: 150,
            },
        );
        assert_eq!(store.lane(ws).recovered(), 1);
        assert_eq!(store.lane(ws).missed(), 1);
        store.apply(
            ws,
            300.0,
            Wire::GapNotice {
                span,
                gap: Gap { first: 4, last: 4 },
                bytes_down: 40,
            },
        );
        assert_eq!(
            store.lane(ws).missed(),
            1,
            "lost for good still counts as missed"
        );
        assert_eq!(store.lane(ws).tracker.counts().lost, 1);
        assert_eq!(store.lane(ws).tracker.missing_count(), 0);
        // The other lanes are untouched.
        assert_eq!(store.lane(LaneId::Sse).delivered(), 0);
        let receipts: Vec<_> = store
            .marks()
            .iter()
            .filter_map(|mark| match mark.what {
                MarkKind::Event { receipt, .. } => Some(receipt),
                _ => None,
            })
            .collect();
        assert_eq!(
            receipts,
            [
                Receipt::New,
                Receipt::New,
                Receipt::Duplicate,
                Receipt::AfterGap,
                Receipt::Recovered
            ]
        );
    }

    #[test]
    fn lines_open_carry_frames_and_close_with_a_code() {
        let mut store = Store::new();
        let span = store.new_span();
        let ws = LaneId::Ws;
        store.apply(
            ws,
            0.0,
            Wire::Dialing {
                span,
                label: "GET /ws".into(),
                two_way: true,
            },
        );
        let hello = Hello {
            epoch: 1,
            head: 0,
            oldest: None,
            resumed_after: None,
            heartbeat_ms: 2000,
            instance: "one".into(),
            server_ms: 0,
            request_bytes: Some(400),
            connection_request: None,
        };
        store.apply(
            ws,
            3.0,
            Wire::Opened {
                span,
                hello,
                bytes_up: 400,
                bytes_down: 300,
            },
        );
        store.apply(
            ws,
            2000.0,
            Wire::Heartbeat {
                span,
                heartbeat: Heartbeat {
                    server_ms: 2000,
                    head: 0,
                },
                bytes_down: 40,
            },
        );
        store.apply(
            ws,
            2500.0,
            Wire::FrameSent {
                span,
                label: "ping".into(),
                detail: String::new(),
                bytes_up: 50,
            },
        );
        store.apply(
            ws,
            3000.0,
            Wire::Closed {
                by: ClosedBy::Server,
                span,
                code: Some(1001),
                reason: "server shutting down".into(),
            },
        );
        store.apply(ws, 3000.0, Wire::Reconnecting { after_ms: 500 });
        let score = store.lane(ws);
        assert_eq!(
            (score.connects, score.reconnects, score.heartbeats),
            (1, 1, 1)
        );
        assert_eq!((score.bytes_up, score.bytes_down), (450, 340));
        assert_eq!(score.instance.as_deref(), Some("one"));
        let line = store.span(span).unwrap();
        assert_eq!(line.shape, SpanShape::Line { two_way: true });
        assert_eq!(line.end_ms, Some(3000.0));
        assert_eq!((line.bytes_up, line.bytes_down), (450, 340));
        assert!(matches!(
            line.outcome,
            Outcome::Closed {
                code: Some(1001),
                ..
            }
        ));
        assert_eq!(store.marks_between(1000.0, 2600.0).count(), 2);
    }

    #[test]
    fn delays_are_corrected_by_the_clock_offset() {
        let mut store = Store::new();
        store.apply(
            LaneId::Ws,
            0.0,
            Wire::ClockSync {
                round_trip_ms: 2.0,
                offset_ms: 250.0,
            },
        );
        let span = store.new_span();
        // The browser's clock is 250 ms behind the server's: received at browser 1000 = server 1250.
        store.apply(
            LaneId::Sse,
            1000.0,
            Wire::EventReceived {
                span,
                event: chat(1, 1240, "x"),
                bytes_down: 10,
            },
        );
        assert_eq!(store.lane(LaneId::Sse).delay_summary().unwrap().p50, 10.0);
    }

    #[test]
    fn a_lane_is_behind_by_the_age_of_the_oldest_news_it_lacks() {
        let mut store = Store::new();
        store.start_after(0);
        let span = store.new_span();
        for (seq, ts) in [(1, 1000), (2, 2000)] {
            store.apply(
                LaneId::Ws,
                ts as f64,
                Wire::EventReceived {
                    span,
                    event: chat(seq, ts, "x"),
                    bytes_down: 10,
                },
            );
        }
        letter(&mut store, 1500.0, vec![chat(1, 1000, "x")]);
        assert_eq!(store.behind_ms(LaneId::Ws, 2600.0), 0.0);
        assert_eq!(store.behind_ms(LaneId::Poll, 2600.0), 600.0);
        assert_eq!(store.behind_ms(LaneId::Sse, 2600.0), 1600.0);
    }

    #[test]
    fn memory_is_bounded_and_the_oldest_marks_fall_off() {
        let mut store = Store::new();
        store.start_after(0);
        let span = store.new_span();
        let total = MARKS_HELD as u64 + 500;
        for seq in 1..=total {
            store.apply(
                LaneId::Sse,
                seq as f64,
                Wire::EventReceived {
                    span,
                    event: chat(seq, seq, "x"),
                    bytes_down: 10,
                },
            );
        }
        assert_eq!(store.marks().len(), MARKS_HELD);
        assert_eq!(store.marks().front().unwrap().at_ms, 501.0);
        assert_eq!(store.lane(LaneId::Sse).delivered(), total);
        // A phone call dialled first and still open, then more letters than the timeline holds.
        let call = store.new_span();
        store.apply(
            LaneId::Ws,
            0.0,
            Wire::Dialing {
                span: call,
                label: "GET /ws".into(),
                two_way: true,
            },
        );
        for _ in 0..SPANS_HELD + 10 {
            letter(&mut store, 0.0, vec![]);
        }
        assert_eq!(store.spans().count(), SPANS_HELD);
        assert!(
            store.span(call).is_some(),
            "an open line is never dropped from the timeline"
        );
        assert!(
            store
                .spans()
                .zip(store.spans().skip(1))
                .all(|(a, b)| a.id < b.id)
        );
        // The sparkline and histogram keep fixed windows.
        assert_eq!(
            store.lane(LaneId::Sse).sparkline(10_000.0).len(),
            SPARK_SECONDS
        );
        let histogram: u32 = store.lane(LaneId::Sse).delay_histogram().iter().sum();
        assert_eq!(histogram as usize, DELAYS_KEPT);
    }

    #[test]
    fn sparkline_counts_deliveries_per_second() {
        let mut store = Store::new();
        store.start_after(0);
        let span = store.new_span();
        for (seq, at) in [(1, 58_100.0), (2, 58_900.0), (3, 59_500.0)] {
            store.apply(
                LaneId::Ws,
                at,
                Wire::EventReceived {
                    span,
                    event: chat(seq, 0, "x"),
                    bytes_down: 10,
                },
            );
        }
        let line = store.lane(LaneId::Ws).sparkline(59_999.0);
        assert_eq!(&line[SPARK_SECONDS - 2..], [2, 1]);
        assert_eq!(line.iter().sum::<u32>(), 3);
    }

    #[test]
    fn replayed_old_events_do_not_overwrite_newer_live_data() {
        let mut copy = LiveCopy::default();
        copy.show(&chat(2, 2000, "new"));
        copy.show(&Event {
            seq: 1,
            ts_ms: 1000,
            body: EventBody::Notice(Notice {
                level: switchboard_shared::NoticeLevel::Info,
                code: "x".into(),
                text: "old".into(),
                fault: None,
                network: None,
                traffic: None,
            }),
        });
        assert_eq!(copy.newest_ts_ms, Some(2000));
        assert!(copy.notice.is_none());
    }

    #[test]
    fn durations_and_sizes_read_like_a_person_wrote_them() {
        assert_eq!(format_ms(0.25), "<1 ms");
        assert_eq!(format_ms(0.0), "0 ms");
        assert_eq!(format_ms(0.8), "1 ms");
        assert_eq!(format_ms(850.0), "850 ms");
        assert_eq!(format_ms(1400.0), "1.4 s");
        assert_eq!(format_bytes(912.0), "912 B");
        assert_eq!(
            format_clock(((7.0 * 60.0 + 45.0) * 60.0 + 12.345) * 1000.0),
            "07:45:12.345"
        );
        assert_eq!(format_bytes(14_200.0), "14.2 kB");
    }
}
