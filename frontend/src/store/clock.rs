//! The server's clock as the page sees it: every delay is measured on the server's clock, so the
//! browser's is corrected by the offset the phone line's ping/pong measured.

use std::collections::VecDeque;

/// Clock probes the offset is chosen from (one every few seconds: the last minute or so, so a change of
/// path is followed within a minute).
const CLOCK_SAMPLES_KEPT: usize = 12;

/// What the WebSocket lane's ping/pong measured.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Clock {
    /// Server clock minus browser clock, ms; every delay is corrected by it.
    pub offset_ms: f64,
    pub round_trip_ms: Option<f64>,
}

/// The last few clock probes and the clock they give.
#[derive(Debug, Clone, Default)]
pub struct ClockProbes {
    /// (round trip, offset), newest last: the offset in use is the one measured over the shortest round
    /// trip, as NTP does, because a probe whose two ways were delayed unequally (jitter) is off by half
    /// the difference, and the shortest round trip leaves the least room for that.
    samples: VecDeque<(f64, f64)>,
    clock: Clock,
}

impl ClockProbes {
    pub fn clock(&self) -> Clock {
        self.clock
    }

    pub fn probe(&mut self, round_trip_ms: f64, offset_ms: f64) {
        self.samples.push_back((round_trip_ms, offset_ms));
        if self.samples.len() > CLOCK_SAMPLES_KEPT {
            self.samples.pop_front();
        }
        let (_, best_offset) = self
            .samples
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
