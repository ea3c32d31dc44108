//! One message followed across the lanes: when it arrived on each and how late, or why it did not.

use switchboard_shared::{LaneId, PerLane, Seq};

use super::Store;
use super::timeline::{MarkKind, Receipt};
use crate::format::format_ms;

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

impl Store {
    /// Where one seq got to on every lane: when it first arrived on each and how late, or why it did
    /// not — so one message can be followed across every way of receiving it.
    pub fn trace(&self, seq: Seq) -> Trace {
        let mut lanes = PerLane::from_fn(|_| Traced::NotYet);
        for mark in self.marks() {
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
}
