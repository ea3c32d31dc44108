//! One lane's scoreboard: what it cost (requests, empty replies, bytes, connections) and what it got
//! (deliveries, misses, delays).

use std::collections::VecDeque;

use switchboard_shared::SeqTracker;
use switchboard_shared::stats::Summary;

/// Delay samples kept per lane for percentiles and the histogram.
pub(super) const DELAYS_KEPT: usize = 2_000;
/// Seconds of deliveries the sparkline shows.
pub const SPARK_SECONDS: usize = 60;
/// Upper bounds (ms) of the delay histogram's buckets; the last bucket takes everything above.
pub const DELAY_BUCKETS: [f64; 7] = [5.0, 20.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

/// One lane's scoreboard.
#[derive(Debug, Clone, Default)]
pub struct LaneScore {
    /// Where the lane is in the stream: delivered, missing, lost, duplicated seqs.
    pub tracker: SeqTracker,
    pub requests: u64,
    pub empty_replies: u64,
    pub failed_requests: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub connects: u64,
    pub reconnects: u64,
    /// Letters and lines that needed a new TCP or QUIC connection (a handshake) rather than a
    /// kept-alive one. Counted through [`LaneScore::opened_connection`] only.
    pub new_connections: u64,
    /// The span whose new connection was counted last: the endless letter hears of it twice (its
    /// answer's header and its hello), and it is one connection.
    new_connection_span: Option<crate::wire::SpanId>,
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
    /// Letters a proxy answered from its cache.
    pub cache_hits: u64,
    /// Lines a proxy hung up on for being quiet longer than its idle timeout.
    pub proxy_cuts: u64,
    delays: VecDeque<f64>,
    /// The slowest delivery of the period: the kept samples are only the latest.
    delay_max: Option<f64>,
    /// Deliveries per whole second (Unix seconds), newest last.
    per_second: VecDeque<(i64, u32)>,
}

impl LaneScore {
    /// Fresh figures that still know where the lane is: its place in the stream, the instance it
    /// reached and when it last heard from the server.
    pub(super) fn afresh(&mut self) -> LaneScore {
        LaneScore {
            tracker: self.tracker.counting_afresh(),
            instance: self.instance.take(),
            last_life_ms: self.last_life_ms,
            ..LaneScore::default()
        }
    }

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

    /// The slowest delivery since the period began (every one, not only the kept samples).
    pub fn delay_max(&self) -> Option<f64> {
        self.delay_max
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

    /// `span` opened a new connection: counted once however many reports say so.
    pub(super) fn opened_connection(&mut self, span: crate::wire::SpanId) {
        if self.new_connection_span != Some(span) {
            self.new_connection_span = Some(span);
            self.new_connections += 1;
        }
    }

    /// Bytes the browser sent.
    pub(super) fn sent(&mut self, bytes_up: u64) {
        self.bytes_up += bytes_up;
    }

    /// Something came from the server at `at_ms`: an answer, a chunk or a frame, and a sign of life.
    pub(super) fn heard(&mut self, at_ms: f64, bytes_down: u64) {
        self.bytes_down += bytes_down;
        self.last_life_ms = Some(at_ms);
    }

    pub(super) fn count_delivery(&mut self, at_ms: f64, delay_ms: f64) {
        self.delay_max = Some(self.delay_max.map_or(delay_ms, |max| max.max(delay_ms)));
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
