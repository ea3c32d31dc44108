//! What the lanes ran under: the emulated network condition each lane was on (told by the server's
//! `network_changed` notices, which every lane hears), the traffic pattern of the stream (told by its
//! `traffic_changed` notices) and the times the page was hidden in a background tab (told by the Page
//! Visibility API), so the timeline can shade and mark them and a person can see what each lane did
//! meanwhile.

use std::collections::VecDeque;

use switchboard_shared::network::{Condition, LaneConditions, NetworkChange};
use switchboard_shared::traffic::TrafficChange;
use switchboard_shared::{LaneId, PerLane, Traffic};

/// Spans of either kind remembered for the timeline.
const SPANS_KEPT: usize = 200;

/// The time one lane ran over one condition, on the page's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkSpan {
    pub lane: LaneId,
    pub condition: Condition,
    pub start_ms: f64,
    /// `None` while it is still in effect.
    pub end_ms: Option<f64>,
}

/// A time the page was hidden (another tab in front, the window minimised).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HiddenSpan {
    pub start_ms: f64,
    pub end_ms: Option<f64>,
}

/// The moment the traffic pattern changed, on the page's clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrafficMark {
    pub pattern: Traffic,
    pub at_ms: f64,
}

/// What one lane did while the page was hidden.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WhileHidden {
    /// Letters sent, or lines dialled.
    pub requests: u32,
    /// Events and heartbeats that arrived.
    pub arrivals: u32,
    /// Lines the watchdog declared dead (on its own clock, which a hidden page slows down).
    pub dead: u32,
}

#[derive(Debug, Clone, Default)]
pub struct Conditions {
    current: PerLane<Option<Condition>>,
    /// The server time of the newest change applied: a lane that hears of an older one late ignores it.
    newest_change_ms: u64,
    spans: VecDeque<NetworkSpan>,
    hidden: VecDeque<HiddenSpan>,
    /// The pattern in effect, once known.
    traffic: Option<Traffic>,
    /// The server time of the newest traffic change applied.
    newest_traffic_ms: u64,
    traffic_marks: VecDeque<TrafficMark>,
}

impl Conditions {
    /// The condition `lane` runs over now, if any.
    pub fn current(&self, lane: LaneId) -> Option<&Condition> {
        self.current[lane].as_ref()
    }

    pub fn spans(&self) -> impl Iterator<Item = &NetworkSpan> {
        self.spans.iter()
    }

    pub fn hidden(&self) -> impl Iterator<Item = &HiddenSpan> {
        self.hidden.iter()
    }

    /// Every lane's condition as the server listed it (`GET /api/network`) at page time `at_ms`; true
    /// when that changed any lane's.
    pub fn known(&mut self, lanes: &LaneConditions, at_ms: f64) -> bool {
        let mut changed = false;
        for lane in LaneId::ALL {
            changed |= self.set(lane, lanes.get(lane).cloned(), at_ms);
        }
        changed
    }

    /// A change announced on the stream; `at_ms` is when it took effect, on the page's clock. Every lane
    /// hears it: applying it again changes nothing (and says false).
    pub fn change(&mut self, change: &NetworkChange, at_ms: f64) -> bool {
        if change.at_ms < self.newest_change_ms {
            return false;
        }
        self.newest_change_ms = change.at_ms;
        self.known(&change.lanes, at_ms)
    }

    fn set(&mut self, lane: LaneId, condition: Option<Condition>, at_ms: f64) -> bool {
        if self.current[lane] == condition {
            return false;
        }
        if let Some(open) = self
            .spans
            .iter_mut()
            .rev()
            .find(|span| span.lane == lane && span.end_ms.is_none())
        {
            open.end_ms = Some(at_ms.max(open.start_ms));
        }
        if let Some(condition) = &condition {
            self.spans.push_back(NetworkSpan {
                lane,
                condition: condition.clone(),
                start_ms: at_ms,
                end_ms: None,
            });
            if self.spans.len() > SPANS_KEPT {
                self.spans.pop_front();
            }
        }
        self.current[lane] = condition;
        true
    }

    /// The traffic pattern in effect, once the server has told.
    pub fn traffic(&self) -> Option<Traffic> {
        self.traffic
    }

    pub fn traffic_marks(&self) -> impl Iterator<Item = &TrafficMark> {
        self.traffic_marks.iter()
    }

    /// The pattern the server listed (`GET /api/traffic`): known, but not a change to mark.
    pub fn traffic_known(&mut self, pattern: Traffic) {
        if self.newest_traffic_ms == 0 {
            self.traffic = Some(pattern);
        }
    }

    /// A change of pattern announced on the stream (or answered to this page's own change); `at_ms` is
    /// when it took effect, on the page's clock. Every lane hears it: it is marked once, and true only
    /// when the pattern differs from the one in effect.
    pub fn traffic_change(&mut self, change: &TrafficChange, at_ms: f64) -> bool {
        if change.at_ms <= self.newest_traffic_ms {
            return false;
        }
        self.newest_traffic_ms = change.at_ms;
        let changed = self.traffic != Some(change.pattern);
        self.traffic = Some(change.pattern);
        self.traffic_marks.push_back(TrafficMark {
            pattern: change.pattern,
            at_ms,
        });
        if self.traffic_marks.len() > SPANS_KEPT {
            self.traffic_marks.pop_front();
        }
        changed
    }

    /// The page became hidden or visible at `at_ms`.
    pub fn visibility(&mut self, hidden: bool, at_ms: f64) {
        let open = self.hidden.back().is_some_and(|span| span.end_ms.is_none());
        match (hidden, open) {
            (true, false) => {
                self.hidden.push_back(HiddenSpan {
                    start_ms: at_ms,
                    end_ms: None,
                });
                if self.hidden.len() > SPANS_KEPT {
                    self.hidden.pop_front();
                }
            }
            (false, true) => {
                if let Some(span) = self.hidden.back_mut() {
                    span.end_ms = Some(at_ms);
                }
            }
            _ => {}
        }
    }

    /// How long the page has been hidden in all, up to `now_ms`.
    pub fn hidden_ms(&self, now_ms: f64) -> f64 {
        self.hidden
            .iter()
            .map(|span| span.end_ms.unwrap_or(now_ms) - span.start_ms)
            .sum()
    }

    /// When the page last came back to the front, or `None` while it is hidden (or was never hidden).
    pub fn back_since(&self) -> Option<f64> {
        self.hidden.back().and_then(|span| span.end_ms)
    }

    /// Whether `at_ms` falls in a time the page was hidden.
    pub fn was_hidden(&self, at_ms: f64) -> bool {
        self.hidden
            .iter()
            .any(|span| span.start_ms <= at_ms && span.end_ms.is_none_or(|end| at_ms < end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_shared::FaultTarget;
    use switchboard_shared::network::preset;

    fn change(at_ms: u64, lane: FaultTarget, condition: Option<Condition>) -> NetworkChange {
        let mut lanes = LaneConditions::default();
        for id in LaneId::ALL.into_iter().filter(|&id| lane.covers(id)) {
            lanes[id] = condition.clone();
        }
        NetworkChange {
            lane,
            condition,
            at_ms,
            lanes,
        }
    }

    #[test]
    fn a_condition_is_a_span_per_lane_until_it_changes() {
        let mut conditions = Conditions::default();
        let three_g = change(1_000, FaultTarget::ALL, preset("3g"));
        conditions.change(&three_g, 1_000.0);
        // Every lane hears the same notice; it is kept once.
        conditions.change(&three_g, 1_050.0);
        assert_eq!(conditions.spans().count(), LaneId::COUNT);
        assert_eq!(conditions.current(LaneId::Ws).unwrap().name, "3g");
        let cleared = change(5_000, FaultTarget::ALL, None);
        conditions.change(&cleared, 5_000.0);
        assert!(
            conditions
                .spans()
                .all(|span| span.end_ms == Some(5_000.0) && span.start_ms == 1_000.0)
        );
        // A lane that hears of the older change late does not bring it back.
        conditions.change(&three_g, 6_000.0);
        assert!(conditions.current(LaneId::Ws).is_none());
    }

    #[test]
    fn a_traffic_change_is_marked_once_however_many_lanes_hear_it() {
        let mut conditions = Conditions::default();
        conditions.traffic_known(Traffic::Bursty);
        assert_eq!(conditions.traffic(), Some(Traffic::Bursty));
        assert_eq!(conditions.traffic_marks().count(), 0);
        let quiet = TrafficChange {
            pattern: Traffic::Quiet,
            previous: Traffic::Bursty,
            at_ms: 10_000,
        };
        conditions.traffic_change(&quiet, 2_000.0);
        conditions.traffic_change(&quiet, 2_040.0);
        assert_eq!(conditions.traffic_marks().count(), 1);
        // A listing fetched before the change arrives late: it does not undo it.
        conditions.traffic_known(Traffic::Bursty);
        assert_eq!(conditions.traffic(), Some(Traffic::Quiet));
    }

    #[test]
    fn hidden_times_are_spans() {
        let mut conditions = Conditions::default();
        conditions.visibility(true, 1_000.0);
        conditions.visibility(true, 1_500.0);
        assert!(conditions.was_hidden(1_200.0));
        conditions.visibility(false, 4_000.0);
        assert_eq!(conditions.hidden_ms(9_000.0), 3_000.0);
        assert!(!conditions.was_hidden(4_500.0));
        conditions.visibility(true, 8_000.0);
        assert_eq!(conditions.hidden_ms(9_000.0), 4_000.0);
    }
}
