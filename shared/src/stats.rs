//! The server's own per-lane counters (`GET /api/stats`), and percentile math for delay figures.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::{LaneId, Seq};

/// What `GET /api/stats` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerStats {
    /// Which server instance answered.
    pub instance: String,
    /// The history's epoch (see [`crate::Batch::epoch`]).
    pub epoch: u64,
    pub uptime_ms: u64,
    /// The newest seq published.
    pub head: Seq,
    /// The oldest seq still held, if any.
    pub oldest: Option<Seq>,
    /// Events held in the history now, and the most it holds.
    pub history_len: usize,
    pub history_capacity: usize,
    /// Counters per lane.
    pub lanes: BTreeMap<LaneId, LaneCounters>,
    /// Requests that belong to no lane: chat posts, stats, health, the page itself.
    pub other: LaneCounters,
    /// TCP connections open now, and those the server closed or refused to protect the others.
    #[serde(default)]
    pub connections: ConnectionCounts,
    /// Whether the server puts a person's app through the lab (`--upstream`): the page asks
    /// `/api/app` only then.
    #[serde(default)]
    pub app_proxy: bool,
}

/// The server's TCP connections: open now, and cut or refused per reason (a slow reader is counted on
/// its lane, [`LaneCounters::slow_readers_cut`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionCounts {
    /// TCP connections open now, whatever they serve.
    pub tcp_open: u64,
    /// Closed because a request head was not complete within the request timeout.
    pub head_timeout: u64,
    /// Closed after idling between requests for the idle timeout.
    pub idle_timeout: u64,
    /// Answered 431 and closed: a request head over the size cap.
    pub head_too_large: u64,
    /// Refused at accept: the client address already held its most connections.
    pub over_client_limit: u64,
    /// Refused at accept: the process was near its open-file limit.
    pub over_file_limit: u64,
}

/// Counters of one lane, as the server sees it. Bytes are bytes on the wire: HTTP request and response
/// heads, bodies, chunked framing and WebSocket frame headers included (see `docs/PROTOCOL.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneCounters {
    /// Streams (SSE, WebSocket) or held requests (long poll) open now.
    pub connections_open: u64,
    /// Streams or held requests opened since start.
    pub connections_total: u64,
    /// HTTP requests answered (for SSE and WebSocket, the opening requests).
    pub requests: u64,
    /// Replies that carried no event (poll and long poll).
    pub empty_replies: u64,
    /// Events delivered to clients.
    pub messages: u64,
    /// Frames received from clients (WebSocket).
    pub frames_in: u64,
    /// Requests or frames refused with an error.
    pub errors: u64,
    /// Bytes received from clients.
    pub bytes_in: u64,
    /// Bytes sent to clients.
    pub bytes_out: u64,
    /// Connections cut because their reader took none of what was sent for the send timeout.
    #[serde(default)]
    pub slow_readers_cut: u64,
}

/// The usual delay figures of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    /// Summarises samples (sorting them in place); `None` when there are none.
    pub fn of(samples: &mut [f64]) -> Option<Summary> {
        samples.sort_by(f64::total_cmp);
        Some(Summary {
            count: samples.len(),
            p50: percentile(samples, 50.0)?,
            p95: percentile(samples, 95.0)?,
            p99: percentile(samples, 99.0)?,
            max: *samples.last()?,
        })
    }
}

/// The nearest-rank percentile `p` (0–100) of sorted samples; `None` when there are none.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The median of `values` (sorted in place): [`percentile`] 50, the lower middle of an even count —
/// the one median of the code base, for delays and for a HAR's intervals alike.
pub fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    percentile(values, 50.0)
}

/// `1600` as `1,600`: figures a person compares at a glance.
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_are_grouped() {
        assert_eq!(super::group_thousands(7), "7");
        assert_eq!(super::group_thousands(1_600), "1,600");
        assert_eq!(super::group_thousands(1_000_000), "1,000,000");
    }

    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 50.0), Some(50.0));
        assert_eq!(percentile(&sorted, 95.0), Some(95.0));
        assert_eq!(percentile(&sorted, 0.0), Some(1.0));
        assert_eq!(percentile(&sorted, 100.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn summary_sorts_first() {
        let mut samples = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        let summary = Summary::of(&mut samples).unwrap();
        assert_eq!((summary.count, summary.p50, summary.max), (5, 3.0, 5.0));
        assert!(Summary::of(&mut []).is_none());
    }

    #[test]
    fn stats_round_trip_with_lane_keys() {
        let mut lanes = BTreeMap::new();
        lanes.insert(
            LaneId::LongPoll,
            LaneCounters {
                requests: 3,
                ..LaneCounters::default()
            },
        );
        let stats = ServerStats {
            instance: "i".into(),
            epoch: 1,
            uptime_ms: 2,
            head: 3,
            oldest: Some(1),
            history_len: 3,
            history_capacity: 10,
            lanes,
            other: LaneCounters::default(),
            connections: ConnectionCounts {
                idle_timeout: 4,
                ..ConnectionCounts::default()
            },
            app_proxy: true,
        };
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(json["lanes"]["longpoll"]["requests"], 3);
        assert_eq!(json["connections"]["idle_timeout"], 4);
        assert_eq!(serde_json::from_value::<ServerStats>(json).unwrap(), stats);
    }
}
