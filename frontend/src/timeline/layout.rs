//! Where each lane's swimlane sits on the canvas, where each kind of mark sits within it, and what is
//! under the pointer. Pure geometry over the store, tested natively.

use switchboard_shared::LaneId;

use super::view::View;
use crate::store::{Mark, MarkKind, Span, Store};

/// Height of the time axis under the swimlanes.
pub const AXIS_PX: f64 = 22.0;
/// How close (px) the pointer must be to a mark or a span's end to pick it.
pub const PICK_PX: f64 = 6.0;

/// The canvas's size in CSS pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layout {
    pub width: f64,
    pub height: f64,
}

/// Where a mark sits relative to its swimlane's middle line: browser → server above it, server →
/// browser below it, the line's own signals on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Above,
    On,
    Below,
}

impl Layout {
    pub fn row_height(&self) -> f64 {
        ((self.height - AXIS_PX) / LaneId::ALL.len() as f64).max(1.0)
    }

    pub fn row_top(&self, lane: LaneId) -> f64 {
        lane.index() as f64 * self.row_height()
    }

    pub fn row_mid(&self, lane: LaneId) -> f64 {
        self.row_top(lane) + self.row_height() / 2.0
    }

    /// The swimlane under `y`, if any.
    pub fn lane_at(&self, y: f64) -> Option<LaneId> {
        if y < 0.0 || y >= self.height - AXIS_PX {
            return None;
        }
        LaneId::ALL.get((y / self.row_height()) as usize).copied()
    }
}

/// The side of the middle line a mark is drawn on.
pub fn side_of(mark: &Mark) -> Side {
    match mark.what {
        MarkKind::Sent { .. } => Side::Above,
        MarkKind::Heartbeat { .. }
        | MarkKind::Gap { .. }
        | MarkKind::Missed { .. }
        | MarkKind::Error { .. }
        | MarkKind::Dead { .. }
        | MarkKind::Restart { .. }
        | MarkKind::Moved { .. } => Side::On,
        MarkKind::Event { .. } | MarkKind::Received { .. } => Side::Below,
    }
}

/// What the pointer is on.
#[derive(Debug, Clone, PartialEq)]
pub enum Picked {
    Mark(Mark),
    Span(Span),
}

/// Finds the mark nearest to (`x`, `y`) within [`PICK_PX`], or else the exchange whose request or
/// answer is that close, or else the line that runs under the pointer. `now_ms` ends open spans.
pub fn pick(
    store: &Store,
    view: &View,
    layout: &Layout,
    x: f64,
    y: f64,
    now_ms: f64,
) -> Option<Picked> {
    let lane = layout.lane_at(y)?;
    let from = view.time_at(x - PICK_PX);
    let to = view.time_at(x + PICK_PX);
    let mark = store
        .marks_between(from, to)
        .filter(|mark| mark.lane == lane)
        .min_by(|a, b| {
            let da = (view.x_of(a.at_ms) - x).abs();
            let db = (view.x_of(b.at_ms) - x).abs();
            da.total_cmp(&db)
        });
    if let Some(mark) = mark {
        return Some(Picked::Mark(mark.clone()));
    }
    let t = view.time_at(x);
    store
        .spans()
        .rev()
        .filter(|span| span.lane == lane)
        .find(|span| {
            let end = span.end_ms.unwrap_or(now_ms);
            // A letter is also picked by its ends, which are drawn as marks; a line only by its length.
            (span.start_ms..=end).contains(&t)
                || span.shape.is_request()
                    && ((view.x_of(span.start_ms) - x).abs() <= PICK_PX
                        || (view.x_of(end) - x).abs() <= PICK_PX)
        })
        .map(|span| Picked::Span(span.clone()))
}

impl Picked {
    pub fn lane(&self) -> LaneId {
        match self {
            Picked::Mark(mark) => mark.lane,
            Picked::Span(span) => span.lane,
        }
    }

    /// Where it sits on the time axis: a mark at its time, a letter at its answer (or its request
    /// while it waits), a line at its start.
    pub fn at_ms(&self) -> f64 {
        match self {
            Picked::Mark(mark) => mark.at_ms,
            Picked::Span(span) if span.shape.is_request() => span.end_ms.unwrap_or(span.start_ms),
            Picked::Span(span) => span.start_ms,
        }
    }

    /// Whether both are the same thing on the timeline (a letter stays itself while it is answered).
    fn same(&self, other: &Picked) -> bool {
        match (self, other) {
            (Picked::Mark(a), Picked::Mark(b)) => a == b,
            (Picked::Span(a), Picked::Span(b)) => a.id == b.id,
            _ => false,
        }
    }
}

/// A move of the keyboard's selection on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Earlier,
    Later,
    /// To the lane above, nearest in time.
    LaneUp,
    LaneDown,
}

/// What the keyboard moves between, in time order: every mark in the view, and every letter (an empty
/// letter has no mark of its own, and is exactly what a person wants to find).
pub fn stops(store: &Store, view: &View) -> Vec<Picked> {
    let (from, to) = (view.start_ms(), view.end_ms);
    let mut stops: Vec<Picked> = store
        .marks_between(from, to)
        .map(|mark| Picked::Mark(mark.clone()))
        .chain(
            store
                .spans()
                .filter(|span| span.shape.is_request())
                .map(|span| Picked::Span(span.clone()))
                .filter(|letter| (from..=to).contains(&letter.at_ms())),
        )
        .collect();
    // A letter comes before the events it brought: its answer, then what was in it.
    stops.sort_by(|a, b| {
        a.at_ms()
            .total_cmp(&b.at_ms())
            .then_with(|| matches!(b, Picked::Span(_)).cmp(&matches!(a, Picked::Span(_))))
    });
    stops
}

/// Where the selection goes from `from` on `step`, among `stops` (see [`stops`]). With nothing
/// selected, any step lands on the newest stop of the topmost lane that has one; at the end of a lane
/// the selection stays.
pub fn step(stops: &[Picked], from: Option<&Picked>, step: Step) -> Option<Picked> {
    let Some(from) = from else {
        let lane = LaneId::ALL
            .into_iter()
            .find(|&lane| stops.iter().any(|stop| stop.lane() == lane))?;
        return stops.iter().rev().find(|stop| stop.lane() == lane).cloned();
    };
    let (lane, at) = (from.lane(), from.at_ms());
    match step {
        Step::Earlier | Step::Later => {
            let on_lane: Vec<&Picked> = stops.iter().filter(|stop| stop.lane() == lane).collect();
            let next = match on_lane.iter().position(|stop| stop.same(from)) {
                Some(i) if step == Step::Earlier => i.checked_sub(1).map(|i| on_lane[i]),
                Some(i) => on_lane.get(i + 1).copied(),
                // Scrolled out of view: the nearest one on that side of its time.
                None if step == Step::Earlier => {
                    on_lane.iter().rev().find(|stop| stop.at_ms() < at).copied()
                }
                None => on_lane.iter().find(|stop| stop.at_ms() > at).copied(),
            };
            Some(next.cloned().unwrap_or_else(|| from.clone()))
        }
        Step::LaneUp | Step::LaneDown => {
            let mut lanes: Vec<LaneId> = LaneId::ALL.to_vec();
            if step == Step::LaneUp {
                lanes.reverse();
            }
            let next = lanes
                .iter()
                .skip_while(|&&other| other != lane)
                .skip(1)
                .find_map(|&other| {
                    stops
                        .iter()
                        .filter(|stop| stop.lane() == other)
                        .min_by(|a, b| (a.at_ms() - at).abs().total_cmp(&(b.at_ms() - at).abs()))
                });
            Some(next.cloned().unwrap_or_else(|| from.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Wire;
    use switchboard_shared::{Batch, ChatMessage, ChatVia, Event, EventBody};

    fn layout() -> Layout {
        Layout {
            width: 1000.0,
            height: 6.0 * 40.0 + AXIS_PX,
        }
    }

    fn view() -> View {
        View {
            end_ms: 10_000.0,
            span_ms: 10_000.0,
            width_px: 1000.0,
            follow: false,
        }
    }

    fn event(seq: u64) -> Event {
        Event {
            seq,
            ts_ms: 0,
            body: EventBody::Chat(ChatMessage {
                author: "a".into(),
                text: "b".into(),
                via: ChatVia::Ws,
                client_ref: None,
            }),
        }
    }

    #[test]
    fn swimlanes_stack_in_lane_order_above_the_axis() {
        let layout = layout();
        // Six rows share the 240 px above the axis.
        assert_eq!(layout.row_height(), 40.0);
        assert_eq!(layout.row_mid(LaneId::Poll), 20.0);
        assert_eq!(layout.row_mid(LaneId::Ws), 180.0);
        assert_eq!(layout.row_mid(LaneId::WebTransport), 220.0);
        assert_eq!(layout.lane_at(10.0), Some(LaneId::Poll));
        assert_eq!(layout.lane_at(130.0), Some(LaneId::Sse));
        assert_eq!(layout.lane_at(250.0), None, "the axis is no lane");
    }

    fn letter(store: &mut Store, at: f64, events: Vec<Event>) -> crate::wire::SpanId {
        let span = store.new_span();
        store.apply(
            LaneId::Poll,
            at,
            Wire::RequestSent {
                span,
                label: "GET /api/poll".into(),
            },
        );
        store.apply(
            LaneId::Poll,
            at + 10.0,
            Wire::ReplyReceived {
                span,
                cached: false,
                bytes_up: 1,
                bytes_down: 2,
                batch: Batch {
                    epoch: 1,
                    head: 0,
                    gap: None,
                    events,
                    instance: None,
                },
            },
        );
        span
    }

    #[test]
    fn arrow_keys_walk_a_lane_in_time_and_cross_to_the_nearest_stop_on_the_next_lane() {
        let mut store = Store::new();
        store.start_after(0);
        let empty = letter(&mut store, 2000.0, vec![]);
        let news = letter(&mut store, 6000.0, vec![event(1)]);
        let line = store.new_span();
        store.apply(
            LaneId::Ws,
            1000.0,
            Wire::Dialing {
                span: line,
                label: "GET /ws".into(),
            },
        );
        for (seq, at) in [(1, 5000.0), (2, 8000.0)] {
            store.apply(
                LaneId::Ws,
                at,
                Wire::EventReceived {
                    span: line,
                    event: event(seq),
                    bytes_down: 100,
                },
            );
        }
        let stops = stops(&store, &view());
        let letter_id = |picked: &Option<Picked>| match picked {
            Some(Picked::Span(span)) => Some(span.id),
            _ => None,
        };
        let seq = |picked: &Option<Picked>| match picked {
            Some(Picked::Mark(Mark {
                what: MarkKind::Event { seq, .. },
                lane,
                ..
            })) => Some((*lane, *seq)),
            _ => None,
        };
        // Nothing selected: the newest stop of the top lane (the letter's event comes after its letter).
        let first = step(&stops, None, Step::Later);
        assert_eq!(seq(&first), Some((LaneId::Poll, 1)));
        // Left: the letter that brought it, then the empty letter, which stays selected at the edge.
        let back = step(&stops, first.as_ref(), Step::Earlier);
        assert_eq!(letter_id(&back), Some(news));
        let back = step(&stops, back.as_ref(), Step::Earlier);
        assert_eq!(letter_id(&back), Some(empty));
        assert_eq!(
            letter_id(&step(&stops, back.as_ref(), Step::Earlier)),
            Some(empty)
        );
        // Down from the letter at 2 s skips the empty lanes to the phone call's nearest event (5 s).
        let down = step(&stops, back.as_ref(), Step::LaneDown);
        assert_eq!(seq(&down), Some((LaneId::Ws, 1)));
        assert_eq!(
            seq(&step(&stops, down.as_ref(), Step::Later)),
            Some((LaneId::Ws, 2))
        );
        // Up again lands on the letters' stop nearest 5 s: the letter answered at 6 s.
        assert_eq!(
            letter_id(&step(&stops, down.as_ref(), Step::LaneUp)),
            Some(news)
        );
    }

    #[test]
    fn the_pointer_picks_the_nearest_mark_in_its_lane_then_the_span() {
        let mut store = Store::new();
        let line = store.new_span();
        store.apply(
            LaneId::Ws,
            1000.0,
            Wire::Dialing {
                span: line,
                label: "GET /ws".into(),
            },
        );
        for (seq, at) in [(1, 5000.0), (2, 5030.0)] {
            store.apply(
                LaneId::Ws,
                at,
                Wire::EventReceived {
                    span: line,
                    event: event(seq),
                    bytes_down: 100,
                },
            );
        }
        let letter = store.new_span();
        store.apply(
            LaneId::Poll,
            2000.0,
            Wire::RequestSent {
                span: letter,
                label: "GET /api/poll".into(),
            },
        );
        store.apply(
            LaneId::Poll,
            2010.0,
            Wire::ReplyReceived {
                span: letter,
                cached: false,
                bytes_up: 1,
                bytes_down: 2,
                batch: Batch {
                    epoch: 1,
                    head: 0,
                    gap: None,
                    events: vec![],
                    instance: None,
                },
            },
        );
        let (view, layout) = (view(), layout());
        let y_ws = layout.row_mid(LaneId::Ws);
        // 5030 ms is at x = 503: the second event is the nearer.
        match pick(&store, &view, &layout, 502.0, y_ws, 9000.0) {
            Some(Picked::Mark(mark)) => {
                assert!(matches!(mark.what, MarkKind::Event { seq: 2, .. }))
            }
            other => panic!("expected event 2, got {other:?}"),
        }
        // Between marks, on the open line: the line itself.
        assert!(matches!(
            pick(&store, &view, &layout, 300.0, y_ws, 9000.0),
            Some(Picked::Span(span)) if span.id == line
        ));
        // Before the line was dialled: nothing.
        assert_eq!(pick(&store, &view, &layout, 50.0, y_ws, 9000.0), None);
        // The same x in another lane does not pick the WebSocket's marks.
        assert_eq!(
            pick(
                &store,
                &view,
                &layout,
                502.0,
                layout.row_mid(LaneId::Sse),
                9000.0
            ),
            None
        );
        // Near an empty letter's answer: the letter.
        assert!(matches!(
            pick(&store, &view, &layout, 204.0, layout.row_mid(LaneId::Poll), 9000.0),
            Some(Picked::Span(span)) if span.id == letter
        ));
    }
}
