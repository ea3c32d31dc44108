//! Outages: when a lane broke and when it was back, and the faults announced on the stream that are
//! blamed for them (and shaded on the timeline).

use std::collections::VecDeque;

use switchboard_shared::{Fault, LaneId, PerLane};

/// Faults remembered for the timeline's shading.
const FAULTS_KEPT: usize = 200;
/// A break this long after a fault began is blamed on it (and timed from its start); later breaks are
/// timed from the last sign of life.
pub const FAULT_BLAME_MS: f64 = 60_000.0;

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

    /// Whether a break at `at_ms` on `lane` is this fault's doing.
    fn caused(&self, lane: LaneId, at_ms: f64) -> bool {
        self.covers(lane) && self.start_ms <= at_ms && at_ms - self.start_ms < FAULT_BLAME_MS
    }
}

/// One lane's outages: the one in progress and how long the last took to notice and to heal.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Outage {
    /// The outage in progress: when it was detected.
    since: Option<f64>,
    /// When the last outage was detected, so a fault announced later can still be blamed for it.
    last_broke_ms: Option<f64>,
    /// How long the last outage took to be noticed (from the fault's start when a fault caused it,
    /// otherwise from the last sign of life) and how long from then until the lane was back.
    pub last_detect_ms: Option<f64>,
    pub last_recover_ms: Option<f64>,
}

impl Outage {
    /// Whether the lane is between a failure and its recovery.
    pub fn in_outage(&self) -> bool {
        self.since.is_some()
    }

    /// When the last outage was detected, on the page's clock.
    pub fn last_broke_ms(&self) -> Option<f64> {
        self.last_broke_ms
    }
}

/// Every lane's outages and the faults that explain them.
#[derive(Debug, Clone, Default)]
pub struct Outages {
    lanes: PerLane<Outage>,
    /// Faults announced on the stream, oldest first, in page time.
    faults: VecDeque<FaultSpan>,
}

impl Outages {
    pub fn lane(&self, lane: LaneId) -> &Outage {
        &self.lanes[lane]
    }

    pub(super) fn lanes(&self) -> &PerLane<Outage> {
        &self.lanes
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

    /// Forgets how long the last outages took (an outage in progress goes on).
    pub(super) fn reset_figures(&mut self) {
        for (_, outage) in self.lanes.iter_mut() {
            *outage = Outage {
                since: outage.since,
                ..Outage::default()
            };
        }
    }

    /// The lane found its line or letters broken at `at_ms`: an outage begins, unless one is on.
    pub(super) fn broke(&mut self, lane: LaneId, at_ms: f64, last_life_ms: Option<f64>) {
        let blamed = self
            .faults
            .iter()
            .rev()
            .find(|span| span.caused(lane, at_ms))
            .map(|span| span.start_ms);
        let outage = &mut self.lanes[lane];
        if outage.since.is_some() {
            return;
        }
        outage.since = Some(at_ms);
        outage.last_broke_ms = Some(at_ms);
        let since = blamed.or(last_life_ms).unwrap_or(at_ms);
        outage.last_detect_ms = Some((at_ms - since).max(0.0));
        outage.last_recover_ms = None;
    }

    /// The lane is answered again: the outage, if any, is over (and then true).
    pub(super) fn back(&mut self, lane: LaneId, at_ms: f64) -> bool {
        let outage = &mut self.lanes[lane];
        let Some(since) = outage.since.take() else {
            return false;
        };
        outage.last_recover_ms = Some((at_ms - since).max(0.0));
        true
    }

    /// Remembers a fault announced on the stream (every lane hears of it; it is kept once), its time
    /// moved onto the page's clock by `offset_ms`.
    pub(super) fn fault(&mut self, fault: &Fault, offset_ms: f64) {
        if self
            .faults
            .iter()
            .any(|known| known.fault.id == fault.id && known.fault.started_ms == fault.started_ms)
        {
            return;
        }
        let start_ms = fault.started_ms as f64 - offset_ms;
        let span = FaultSpan {
            start_ms,
            end_ms: start_ms + fault.duration_ms() as f64,
            fault: fault.clone(),
        };
        // A drop or restart is announced after it struck: the lanes hear of it only once they are
        // back, so an outage they already timed from their last sign of life is timed from the fault.
        for (lane, outage) in self.lanes.iter_mut() {
            if let Some(broke) = outage.last_broke_ms
                && span.caused(lane, broke)
            {
                outage.last_detect_ms = Some(broke - start_ms);
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
}
