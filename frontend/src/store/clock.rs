//! The server's clock as the page sees it: every delay is measured on the server's clock, so the
//! browser's is corrected by the offset the phone line measures.
//!
//! Each way of the line is read on the two clocks: a pong gives the way up plus the offset (the server's
//! clock on arrival minus the browser's on sending) and the way down minus it; every event on the line
//! gives the way down minus the offset again (the browser's clock on receipt minus the server's stamp).
//! The offset is half the difference of the two *minima* over the last minute: the fastest trip each
//! way is the path's own delay, with nothing queued or jittered onto it, and a path's fastest trips are
//! alike both ways. Taking both ways from the one probe with the shortest round trip (as NTP does)
//! erred by up to half the jitter: on 3g (150 ± 50 ms each way) a probe whose round trip was the
//! shortest still went up in 146 ms and down in 113, and every delay read 17 ms off (10 %).

use std::collections::VecDeque;

/// Clock probes kept (one every few seconds: the last minute or so, so a change of path is followed
/// within a minute).
const CLOCK_SAMPLES_KEPT: usize = 12;

/// What the WebSocket lane's ping/pong measured.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Clock {
    /// Server clock minus browser clock, ms; every delay is corrected by it.
    pub offset_ms: f64,
    pub round_trip_ms: Option<f64>,
}

/// The last probes, and the clock they give.
#[derive(Debug, Clone, Default)]
pub struct ClockProbes {
    /// Per probe, newest last: the way up plus the offset, and the fastest way down minus the offset
    /// seen since the probe before (its pong's, or an event's on the line).
    samples: VecDeque<(f64, f64)>,
    /// The fastest way down heard since the last probe.
    down_since: Option<f64>,
    clock: Clock,
}

impl ClockProbes {
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// A pong: its way up and its way down, each as the two clocks read it (see [`Pong::legs`]).
    ///
    /// [`Pong::legs`]: switchboard_shared::ws::Pong::legs
    pub fn probe(&mut self, up_ms: f64, down_ms: f64) {
        let down = self.down_since.take().map_or(down_ms, |d| d.min(down_ms));
        self.samples.push_back((up_ms, down));
        if self.samples.len() > CLOCK_SAMPLES_KEPT {
            self.samples.pop_front();
        }
        let fastest = |way: fn(&(f64, f64)) -> f64| {
            self.samples.iter().map(way).fold(f64::INFINITY, f64::min)
        };
        self.clock = Clock {
            offset_ms: (fastest(|s| s.0) - fastest(|s| s.1)) / 2.0,
            // The round trip shown is the latest: it is what the line costs now.
            round_trip_ms: Some((up_ms + down_ms).max(0.0)),
        };
    }

    /// An event came down the phone line: its way down as the two clocks read it (the browser's clock
    /// on receipt minus the server's stamp). Counted at the next probe.
    pub fn heard(&mut self, down_ms: f64) {
        self.down_since = Some(self.down_since.map_or(down_ms, |d| d.min(down_ms)));
    }
}
