//! What each wire report does to the store's parts: one method per [`Wire`](crate::wire::Wire) variant,
//! plus the steps several share (an event, a gap, a break, a recovery).

use switchboard_shared::ws::{Heartbeat, Hello};
use switchboard_shared::{Arrival, Batch, EpochChange, Event, EventBody, Gap, LaneId, Notice, Seq};

use super::Store;
use super::timeline::{Mark, MarkKind, Outcome, Receipt};
use crate::wire::{ClosedBy, SpanId};

/// Bytes (up, down) a report carried.
type Bytes = (u64, u64);

impl Store {
    pub(super) fn request_sent(&mut self, lane: LaneId, at_ms: f64, span: SpanId, label: String) {
        self.scores[lane].requests += 1;
        self.timeline.begin(span, lane, label, at_ms);
    }

    pub(super) fn reply_received(
        &mut self,
        lane: LaneId,
        at_ms: f64,
        span: SpanId,
        (bytes_up, bytes_down): Bytes,
        batch: Batch,
        cached: bool,
    ) {
        let score = &mut self.scores[lane];
        score.sent(bytes_up);
        score.heard(at_ms, bytes_down);
        if cached {
            score.cache_hits += 1;
            self.timeline.answered_by_cache(span);
        }
        self.back(lane, at_ms);
        if let Some(instance) = &batch.instance {
            self.reached(lane, at_ms, span, instance);
        }
        self.epoch(lane, at_ms, span, batch.epoch, batch.head);
        if batch.events.is_empty() && batch.gap.is_none() {
            self.scores[lane].empty_replies += 1;
        }
        let count = batch.events.len() as u32;
        let outcome = if count == 0 {
            Outcome::Empty
        } else {
            Outcome::News(count)
        };
        self.timeline
            .end(span, at_ms, outcome, bytes_up, bytes_down);
        if let Some(gap) = batch.gap {
            self.gap(lane, at_ms, span, gap, 0);
        }
        // The answer's bytes are shared out over its events, so each mark shows its cost.
        let share = bytes_down / u64::from(count.max(1));
        for event in batch.events {
            self.event(lane, at_ms, span, event, share);
        }
    }

    pub(super) fn request_failed(
        &mut self,
        lane: LaneId,
        at_ms: f64,
        span: SpanId,
        status: Option<u16>,
        (bytes_up, bytes_down): Bytes,
        message: String,
    ) {
        let score = &mut self.scores[lane];
        score.failed_requests += 1;
        score.errors += 1;
        score.sent(bytes_up);
        score.bytes_down += bytes_down;
        if status.is_some() {
            // An error answer is still the server talking; a request lost on the way is not.
            score.last_life_ms = Some(at_ms);
        }
        let text = match status {
            Some(status) => format!("HTTP {status}: {message}"),
            None => message,
        };
        score.last_error = Some(text.clone());
        self.timeline
            .end(span, at_ms, Outcome::Failed(text), bytes_up, bytes_down);
        self.broke(lane, at_ms);
    }

    pub(super) fn dialing(&mut self, lane: LaneId, at_ms: f64, span: SpanId, label: String) {
        self.timeline.begin(span, lane, label, at_ms);
    }

    pub(super) fn opened(
        &mut self,
        lane: LaneId,
        at_ms: f64,
        span: SpanId,
        hello: Hello,
        (bytes_up, bytes_down): Bytes,
    ) {
        let score = &mut self.scores[lane];
        score.connects += 1;
        score.requests += 1;
        if hello.connection_request == Some(1) {
            score.opened_connection(span);
        }
        score.sent(bytes_up);
        score.heard(at_ms, bytes_down);
        self.back(lane, at_ms);
        self.reached(lane, at_ms, span, &hello.instance);
        self.epoch(lane, at_ms, span, hello.epoch, hello.head);
        self.timeline.opened(span, bytes_up, bytes_down);
        let detail = serde_json::to_string_pretty(&hello).unwrap_or_default();
        self.timeline.push(Mark {
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

    pub(super) fn event_received(
        &mut self,
        lane: LaneId,
        at_ms: f64,
        span: SpanId,
        event: Event,
        bytes_down: u64,
    ) {
        self.heard_on_line(lane, at_ms, span, bytes_down);
        self.event(lane, at_ms, span, event, bytes_down);
    }

    pub(super) fn heartbeat(
        &mut self,
        lane: LaneId,
        at_ms: f64,
        span: SpanId,
        heartbeat: Heartbeat,
        bytes_down: u64,
    ) {
        let score = &mut self.scores[lane];
        score.heartbeats += 1;
        score.tracker.observe_head(heartbeat.head);
        self.heard_on_line(lane, at_ms, span, bytes_down);
        self.timeline.push(Mark {
            lane,
            at_ms,
            span,
            bytes: bytes_down,
            what: MarkKind::Heartbeat {
                head: heartbeat.head,
            },
        });
    }

    pub(super) fn frame_sent(
        &mut self,
        lane: LaneId,
        at_ms: f64,
        span: SpanId,
        label: String,
        detail: String,
        bytes_up: u64,
    ) {
        self.scores[lane].sent(bytes_up);
        self.timeline.carried(span, bytes_up, 0);
        self.timeline.push(Mark {
            lane,
            at_ms,
            span,
            bytes: bytes_up,
            what: MarkKind::Sent { label, detail },
        });
    }

    pub(super) fn frame_received(
        &mut self,
        lane: LaneId,
        at_ms: f64,
        span: SpanId,
        label: String,
        detail: String,
        bytes_down: u64,
    ) {
        self.heard_on_line(lane, at_ms, span, bytes_down);
        self.timeline.push(Mark {
            lane,
            at_ms,
            span,
            bytes: bytes_down,
            what: MarkKind::Received { label, detail },
        });
    }

    pub(super) fn gap_notice(
        &mut self,
        lane: LaneId,
        at_ms: f64,
        span: SpanId,
        gap: Gap,
        bytes_down: u64,
    ) {
        self.heard_on_line(lane, at_ms, span, bytes_down);
        self.gap(lane, at_ms, span, gap, bytes_down);
    }

    pub(super) fn closed(
        &mut self,
        lane: LaneId,
        at_ms: f64,
        span: SpanId,
        by: ClosedBy,
        code: Option<u16>,
        reason: String,
    ) {
        let silent_ms = self.scores[lane].last_life_ms.map(|last| at_ms - last);
        let reason = match (self.proxy_idle_ms, silent_ms) {
            // Closed by the far end after about the proxy's idle timeout of silence: the proxy did it
            // (a server ends a call with its own words, and sooner).
            (Some(idle), Some(silent)) if by != ClosedBy::Person && silent >= idle - 1_000.0 => {
                self.scores[lane].proxy_cuts += 1;
                format!(
                    "cut by the proxy after {} of silence (its idle timeout): {reason}",
                    crate::format::format_ms(silent)
                )
            }
            _ => reason,
        };
        self.scores[lane].last_close = Some((code, reason.clone()));
        self.timeline
            .end(span, at_ms, Outcome::Closed { code, reason }, 0, 0);
        // A line the person stopped is not an outage.
        if by != ClosedBy::Person {
            self.broke(lane, at_ms);
        }
    }

    pub(super) fn dead(&mut self, lane: LaneId, at_ms: f64, span: SpanId, silent_ms: f64) {
        self.scores[lane].dead_lines += 1;
        self.timeline.push(Mark {
            lane,
            at_ms,
            span,
            bytes: 0,
            what: MarkKind::Dead { silent_ms },
        });
        self.broke(lane, at_ms);
    }

    pub(super) fn error(
        &mut self,
        lane: LaneId,
        at_ms: f64,
        span: Option<SpanId>,
        message: String,
    ) {
        let score = &mut self.scores[lane];
        score.errors += 1;
        score.last_error = Some(message.clone());
        if let Some(span) = span {
            self.timeline.push(Mark {
                lane,
                at_ms,
                span,
                bytes: 0,
                what: MarkKind::Error { message },
            });
        }
    }

    /// Something came down an open line: the lane's bytes and sign of life, and the line's bytes.
    fn heard_on_line(&mut self, lane: LaneId, at_ms: f64, span: SpanId, bytes_down: u64) {
        self.scores[lane].heard(at_ms, bytes_down);
        self.timeline.carried(span, 0, bytes_down);
    }

    /// The lane found its line or letters broken at `at_ms`: an outage begins, unless one is on.
    fn broke(&mut self, lane: LaneId, at_ms: f64) {
        self.outages
            .broke(lane, at_ms, self.scores[lane].last_life_ms);
    }

    /// The lane is answered again: the outage, if any, is over.
    fn back(&mut self, lane: LaneId, at_ms: f64) {
        if self.outages.back(lane, at_ms) {
            // The lane is back: its last error is history (the timeline keeps its mark), not news.
            self.scores[lane].last_error = None;
        }
    }

    /// Notes which instance answered the lane; a different one than before is a move, shown on the
    /// timeline.
    fn reached(&mut self, lane: LaneId, at_ms: f64, span: SpanId, instance: &str) {
        let score = &mut self.scores[lane];
        if score.instance.as_deref() == Some(instance) {
            return;
        }
        if let Some(from) = score.instance.replace(instance.to_owned()) {
            self.timeline.push(Mark {
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
        let change = self.scores[lane].tracker.observe_epoch(epoch, head);
        if let EpochChange::Restarted { lost, .. } = change {
            self.timeline.push(Mark {
                lane,
                at_ms,
                span,
                bytes: 0,
                what: MarkKind::Restart { lost },
            });
        }
    }

    /// A notice on the stream may announce a fault, a network change or a traffic change: each is
    /// remembered once, on the page's clock.
    fn notice(&mut self, notice: &Notice) {
        let offset_ms = self.clock().offset_ms;
        if let Some(fault) = &notice.fault {
            self.outages.fault(fault, offset_ms);
        }
        if let Some(change) = &notice.network {
            self.network_change(change, change.at_ms as f64 - offset_ms);
        }
        if let Some(change) = &notice.traffic {
            self.traffic_change(change, change.at_ms as f64 - offset_ms);
        }
    }

    fn event(&mut self, lane: LaneId, at_ms: f64, span: SpanId, event: Event, bytes: u64) {
        if let EventBody::Notice(notice) = &event.body {
            self.notice(notice);
        }
        if lane == LaneId::Ws {
            // The phone line's own events tell the clock how fast its way down can be.
            self.clock.heard(at_ms - event.ts_ms as f64);
        }
        let delay_ms = (at_ms + self.clock().offset_ms - event.ts_ms as f64).max(0.0);
        self.published.remember(event.seq, event.ts_ms);
        let score = &mut self.scores[lane];
        let receipt = match score.tracker.observe(event.seq) {
            Arrival::New => Receipt::New,
            Arrival::AfterGap(gap) => {
                // Marked where the hole showed, just before the event that revealed it.
                self.timeline.push(Mark {
                    lane,
                    at_ms,
                    span,
                    bytes: 0,
                    what: MarkKind::Missed {
                        first: gap.first,
                        last: gap.last,
                    },
                });
                Receipt::AfterGap
            }
            Arrival::Recovered => Receipt::Recovered,
            Arrival::Duplicate => Receipt::Duplicate,
        };
        if receipt != Receipt::Duplicate {
            score.count_delivery(at_ms, delay_ms);
            self.live[lane].show(&event);
        }
        if let Some(carrier) = self.timeline.span_mut(span) {
            carrier.events += 1;
        }
        let payload = serde_json::to_string_pretty(&event).unwrap_or_default();
        self.timeline.push(Mark {
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

    fn gap(&mut self, lane: LaneId, at_ms: f64, span: SpanId, gap: Gap, bytes: u64) {
        self.scores[lane].tracker.declare_lost(gap);
        let Gap { first, last } = gap;
        self.timeline.push(Mark {
            lane,
            at_ms,
            span,
            bytes,
            what: MarkKind::Gap { first, last },
        });
    }
}
