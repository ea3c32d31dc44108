//! The timeline store: every wire report of every lane, turned into what the page shows.
//!
//! Split by concern, each part plain data with no clock of its own (every report carries its time), so
//! all of it is tested natively:
//! - [`timeline`] — spans (a letter and its answer; a line from dial to hang-up) and the marks on them
//!   (events, heartbeats, frames each way, gap notices), bounded: the oldest fall off;
//! - [`score`] — each lane's scoreboard, running the shared [`SeqTracker`](switchboard_shared::SeqTracker);
//! - [`outage`] — when a lane broke and came back, and the faults announced on the stream that caused it;
//! - [`period`] — the stretch of time the figures describe, and the one before it kept for comparison;
//! - [`clock`] — the server's clock as the page sees it, so delays are measured on one clock;
//! - [`live`] — each lane's own copy of the live data, so a stale lane *looks* stale;
//! - [`trace`] — one message followed across the lanes;
//! - `reports` — what each [`Wire`] report does to the parts; [`Store::apply`] only dispatches.

mod clock;
mod live;
mod outage;
mod period;
mod record;
mod reports;
mod score;
mod timeline;
mod trace;

#[cfg(test)]
pub(crate) mod tests;

pub use clock::Clock;
pub use live::LiveCopy;
pub use outage::{FAULT_BLAME_MS, FaultSpan, Outage};
pub use period::{Closed, KEPT_AFTER_MS, Period, PeriodCause, Setting};
pub use record::{Carried, Recording};
pub use score::{DELAY_BUCKETS, LaneScore, SPARK_SECONDS};
pub use timeline::{MARKS_HELD, Mark, MarkKind, Outcome, Receipt, SPANS_HELD, Span};
pub use trace::{Trace, Traced};

use std::collections::VecDeque;

use switchboard_shared::network::{LaneConditions, NetworkChange};
use switchboard_shared::traffic::TrafficChange;
use switchboard_shared::{LaneId, PerLane, Seq, SeqTracker};

use crate::conditions::{Conditions, WhileHidden};
use crate::wire::{SpanId, Wire};
use clock::ClockProbes;
use live::Published;
use outage::Outages;
use timeline::Timeline;

/// Why a letter the person's Stop left without its answer ended (its outcome: closed, not failed).
pub const WITHDRAWN: &str = "stopped before its answer";

/// Everything the page shows, fed by [`Store::apply`].
#[derive(Debug, Clone, Default)]
pub struct Store {
    scores: PerLane<LaneScore>,
    live: PerLane<LiveCopy>,
    outages: Outages,
    timeline: Timeline,
    clock: ClockProbes,
    published: Published,
    /// The network condition of each lane over time, the traffic pattern, and the times the page was
    /// hidden.
    conditions: Conditions,
    /// The period the scores describe, and the one before it (kept whole for before and after).
    period: Period,
    previous: Option<Box<Closed>>,
    /// The idle timeout of a proxy in front of the server, when the page is behind one: a line that
    /// closes after that much silence was cut by it.
    proxy_idle_ms: Option<f64>,
    /// What the export writes down, kept apart from the timeline's marks.
    recording: Recording,
}

impl Store {
    pub fn new() -> Store {
        Store::default()
    }

    /// A store whose first period begins at page time `at_ms`.
    pub fn started_at(at_ms: f64) -> Store {
        Store {
            period: Period {
                start_ms: at_ms,
                cause: PeriodCause::PageStart,
            },
            ..Store::default()
        }
    }

    /// Takes one report from `lane`, made at browser time `at_ms`.
    pub fn apply(&mut self, lane: LaneId, at_ms: f64, wire: Wire) {
        let span = wire.span();
        match wire {
            Wire::Carried { span, text } => {
                self.recording.carried(Carried {
                    span,
                    at_ms,
                    up: false,
                    text,
                });
                return;
            }
            Wire::FrameSent {
                span, ref detail, ..
            } => {
                self.recording.carried(Carried {
                    span,
                    at_ms,
                    up: true,
                    text: detail.clone(),
                });
                self.apply_to_timeline(lane, at_ms, wire);
            }
            wire => self.apply_to_timeline(lane, at_ms, wire),
        }
        if let Some(current) = span.and_then(|id| self.timeline.span(id)) {
            self.recording.span(current);
        }
    }

    /// What the export writes down.
    pub fn recording(&self) -> &Recording {
        &self.recording
    }

    fn apply_to_timeline(&mut self, lane: LaneId, at_ms: f64, wire: Wire) {
        match wire {
            Wire::RequestSent { span, label } => self.request_sent(lane, at_ms, span, label),
            Wire::ReplyReceived {
                span,
                bytes_up,
                bytes_down,
                batch,
                cached,
            } => self.reply_received(lane, at_ms, span, (bytes_up, bytes_down), batch, cached),
            Wire::RequestFailed {
                span,
                status,
                bytes_up,
                bytes_down,
                message,
            } => self.request_failed(lane, at_ms, span, status, (bytes_up, bytes_down), message),
            Wire::Withdrawn { span } => self.timeline.end(
                span,
                at_ms,
                Outcome::Closed {
                    code: None,
                    reason: WITHDRAWN.to_owned(),
                },
                0,
                0,
            ),
            Wire::Dialing { span, label } => self.dialing(lane, at_ms, span, label),
            Wire::Opened {
                span,
                hello,
                bytes_up,
                bytes_down,
            } => self.opened(lane, at_ms, span, hello, (bytes_up, bytes_down)),
            Wire::EventReceived {
                span,
                event,
                bytes_down,
            } => self.event_received(lane, at_ms, span, event, bytes_down),
            Wire::Heartbeat {
                span,
                heartbeat,
                bytes_down,
            } => self.heartbeat(lane, at_ms, span, heartbeat, bytes_down),
            Wire::FrameSent {
                span,
                label,
                detail,
                bytes_up,
            } => self.frame_sent(lane, at_ms, span, label, detail, bytes_up),
            Wire::FrameReceived {
                span,
                label,
                detail,
                bytes_down,
            } => self.frame_received(lane, at_ms, span, label, detail, bytes_down),
            Wire::GapNotice {
                span,
                gap,
                bytes_down,
            } => self.gap_notice(lane, at_ms, span, gap, bytes_down),
            Wire::Closed {
                span,
                by,
                code,
                reason,
            } => self.closed(lane, at_ms, span, by, code, reason),
            Wire::Dead { span, silent_ms } => self.dead(lane, at_ms, span, silent_ms),
            Wire::Error { span, message } => self.error(lane, at_ms, span, message),
            Wire::Reconnecting { .. } => self.scores[lane].reconnects += 1,
            Wire::NewConnection { span } => self.scores[lane].opened_connection(span),
            Wire::ClockSync { up_ms, down_ms } => self.clock.probe(up_ms, down_ms),
            Wire::Carried { .. } => {}
        }
    }

    /// Starts a period by hand ("Reset scoreboards").
    pub fn reset_scores(&mut self, at_ms: f64) {
        let setting = self.setting();
        self.new_period(at_ms, PeriodCause::Reset, setting);
    }

    /// Starts every lane's figures afresh at `at_ms` (figures mixed across network conditions or
    /// traffic mislead), keeping where each lane is in the stream, its live copy and an outage in
    /// progress; the timeline keeps what it shows. The period that ends is kept as the one before
    /// (unless it was too short to tell anything), `setting` being what it ran under.
    fn new_period(&mut self, at_ms: f64, cause: PeriodCause, setting: Setting) {
        if cause != PeriodCause::Reset && at_ms <= self.period.start_ms {
            // A change the page hears of late, dated before this period began: everything this
            // period counted already ran under it.
            return;
        }
        if at_ms - self.period.start_ms >= KEPT_AFTER_MS {
            let start_ms = self.period.start_ms;
            self.previous = Some(Box::new(Closed {
                period: self.period,
                end_ms: at_ms,
                setting,
                scores: self.scores.clone(),
                outages: *self.outages.lanes(),
                last_fault: self.last_fault_between(start_ms, at_ms).cloned(),
            }));
        }
        for (_, score) in self.scores.iter_mut() {
            *score = score.afresh();
        }
        self.outages.reset_figures();
        self.period = Period {
            start_ms: at_ms,
            cause,
        };
    }

    /// The period the figures describe now.
    pub fn period(&self) -> Period {
        self.period
    }

    /// The period before this one, whole, if one lasted long enough to compare with.
    pub fn previous(&self) -> Option<&Closed> {
        self.previous.as_deref()
    }

    /// What the lanes run under now: each lane's emulated network (none on a perfect line) and the
    /// traffic pattern.
    pub fn setting(&self) -> Setting {
        Setting {
            networks: PerLane::from_fn(|lane| {
                self.conditions
                    .current(lane)
                    .filter(|condition| !condition.is_perfect())
                    .map(|condition| condition.name.clone())
            }),
            traffic: self.conditions.traffic(),
        }
    }

    /// The last fault that began in this period: an older one's outages belong to the period before.
    pub fn last_fault(&self) -> Option<&FaultSpan> {
        self.last_fault_between(self.period.start_ms, f64::INFINITY)
    }

    fn last_fault_between(&self, from_ms: f64, to_ms: f64) -> Option<&FaultSpan> {
        self.faults()
            .iter()
            .rev()
            .find(|span| span.start_ms >= from_ms && span.start_ms < to_ms)
    }

    /// Every lane's network as the server listed it (`GET /api/network`) at page time `at_ms`: a
    /// difference from what the page knew starts a period.
    pub fn network_known(&mut self, lanes: &LaneConditions, at_ms: f64) {
        let before = self.setting();
        if self.conditions.known(lanes, at_ms) {
            self.new_period(at_ms, PeriodCause::Network, before);
        }
    }

    /// A network change announced on the stream (or answered to this page's own request), taking
    /// effect at page time `at_ms`: it starts a period.
    pub fn network_change(&mut self, change: &NetworkChange, at_ms: f64) {
        let before = self.setting();
        if self.conditions.change(change, at_ms) {
            self.new_period(at_ms, PeriodCause::Network, before);
        }
    }

    /// A traffic change, taking effect at page time `at_ms`: a different pattern starts a period.
    pub fn traffic_change(&mut self, change: &TrafficChange, at_ms: f64) {
        let before = self.setting();
        if self.conditions.traffic_change(change, at_ms) {
            self.new_period(at_ms, PeriodCause::Traffic, before);
        }
    }

    /// Every lane counts from the same point, so their delivered seqs can be compared one for one.
    pub fn start_after(&mut self, after: Seq) {
        for (_, score) in self.scores.iter_mut() {
            if score.tracker.last().is_none() {
                score.tracker = SeqTracker::resuming_after(after);
            }
        }
    }

    /// A lane's scoreboard.
    pub fn lane(&self, lane: LaneId) -> &LaneScore {
        &self.scores[lane]
    }

    /// A lane's copy of the live data.
    pub fn live(&self, lane: LaneId) -> &LiveCopy {
        &self.live[lane]
    }

    /// A lane's outages.
    pub fn outage(&self, lane: LaneId) -> &Outage {
        self.outages.lane(lane)
    }

    /// The faults announced so far (the most recent few hundred).
    pub fn faults(&self) -> &VecDeque<FaultSpan> {
        self.outages.faults()
    }

    /// The faults still in effect at `now_ms`.
    pub fn active_faults(&self, now_ms: f64) -> impl Iterator<Item = &FaultSpan> {
        self.outages.active_faults(now_ms)
    }

    /// Whether the server has turned `lane`'s heartbeats off (a `no_heartbeat` fault): its watchdog must
    /// not mistake the silence for a dead line.
    pub fn heartbeats_off(&self, lane: LaneId, now_ms: f64) -> bool {
        self.active_faults(now_ms).any(|span| {
            span.fault.kind == switchboard_shared::FaultKind::NoHeartbeat && span.covers(lane)
        })
    }

    /// The page is behind a proxy with this idle timeout (or not behind one).
    pub fn behind_proxy(&mut self, idle_ms: Option<f64>) {
        self.proxy_idle_ms = idle_ms;
    }

    pub fn clock(&self) -> Clock {
        self.clock.clock()
    }

    pub fn conditions(&self) -> &Conditions {
        &self.conditions
    }

    pub fn conditions_mut(&mut self) -> &mut Conditions {
        &mut self.conditions
    }

    /// A fresh id for an exchange or a line.
    pub fn new_span(&mut self) -> SpanId {
        self.timeline.new_span()
    }

    pub fn spans(&self) -> impl DoubleEndedIterator<Item = &Span> {
        self.timeline.spans()
    }

    pub fn span(&self, id: SpanId) -> Option<&Span> {
        self.timeline.span(id)
    }

    pub fn marks(&self) -> &VecDeque<Mark> {
        self.timeline.marks()
    }

    /// The marks whose time falls in `from..=to`.
    pub fn marks_between(&self, from: f64, to: f64) -> impl Iterator<Item = &Mark> {
        self.timeline.marks_between(from, to)
    }

    /// How long this lane's copy has been missing news that another lane already has: the age of the
    /// oldest event it has not received. Zero when it is up to date.
    pub fn behind_ms(&self, lane: LaneId, now_ms: f64) -> f64 {
        let last = self.scores[lane].tracker.last().unwrap_or(0);
        self.published
            .behind_ms(last, now_ms + self.clock().offset_ms)
    }

    /// What `lane` did while the page was hidden: letters sent or lines dialled, arrivals, dead lines.
    pub fn while_hidden(&self, lane: LaneId) -> WhileHidden {
        let mut seen = WhileHidden::default();
        for span in self.spans().filter(|span| span.lane == lane) {
            if self.conditions.was_hidden(span.start_ms) {
                seen.requests += 1;
            }
        }
        for mark in self.marks().iter().filter(|mark| mark.lane == lane) {
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
}
