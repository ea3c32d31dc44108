//! The figures the page compares the lanes by: one lane's scoreboard at a moment ([`Score`]), the
//! comparison table's rows with the lane that wins each ([`ROWS`], [`Row::best`]), and the verdict in
//! words ([`verdict`]). Plain data and pure functions, so the sentences are tested natively.

mod verdict;

pub use verdict::{Context, LastFault, verdict};

use switchboard_shared::stats::group_thousands;
use switchboard_shared::{LaneId, PerLane};

use crate::format::format_bytes;
use crate::store::{Closed, LaneScore, Outage, Store};

/// The scoreboard's figures for one lane at one moment; plain data so the page re-renders only when
/// a figure changed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Score {
    pub delivered: u64,
    pub requests: u64,
    pub empty: u64,
    pub empty_percent: Option<f64>,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub bytes_per_message: Option<f64>,
    /// Whether the lane's bytes are an estimate rather than counted: the video call's QUIC packets are
    /// out of the page's sight, so its lane adds constants per packet and per handshake.
    pub bytes_estimated: bool,
    pub delay_p50: Option<f64>,
    pub delay_p95: Option<f64>,
    pub delay_max: Option<f64>,
    pub missed: u64,
    pub lost: u64,
    pub dead_lines: u64,
    pub restarts: u64,
    pub detect_ms: Option<f64>,
    pub recover_ms: Option<f64>,
    pub in_outage: bool,
    /// When the last outage was detected (page clock), to tell whether it followed a fault.
    pub broke_at_ms: Option<f64>,
    pub duplicates: u64,
    pub recovered: u64,
    pub connects: u64,
    pub reconnects: u64,
    pub cache_hits: u64,
    pub proxy_cuts: u64,
    pub new_connections: u64,
    pub last_seq: u64,
    pub since_life_ms: Option<f64>,
    pub behind_ms: f64,
    pub sparkline: Vec<u32>,
    pub histogram: Vec<u32>,
    pub instance: Option<String>,
    pub last_error: Option<String>,
}

impl Score {
    /// A lane's figures in the period going on, at `now_ms`.
    pub fn of(store: &Store, lane: LaneId, now_ms: f64) -> Score {
        let score = store.lane(lane);
        Score {
            since_life_ms: score.last_life_ms.map(|at| (now_ms - at).max(0.0)),
            behind_ms: store.behind_ms(lane, now_ms),
            sparkline: score.sparkline(now_ms),
            bytes_estimated: lane == LaneId::WebTransport,
            ..Score::counted(score, store.outage(lane))
        }
    }

    /// A lane's figures in a period that ended, as they were when it ended.
    pub fn of_closed(closed: &Closed, lane: LaneId) -> Score {
        let score = &closed.scores[lane];
        Score {
            sparkline: score.sparkline(closed.end_ms),
            bytes_estimated: lane == LaneId::WebTransport,
            ..Score::counted(score, &closed.outages[lane])
        }
    }

    /// The figures a scoreboard and its outages counted, without the ones that age with the clock.
    fn counted(score: &LaneScore, outage: &Outage) -> Score {
        let delays = score.delay_summary();
        Score {
            delivered: score.delivered(),
            requests: score.requests,
            empty: score.empty_replies,
            empty_percent: score.empty_percent(),
            bytes_up: score.bytes_up,
            bytes_down: score.bytes_down,
            bytes_per_message: score.bytes_per_message(),
            bytes_estimated: false,
            delay_p50: delays.map(|d| d.p50),
            delay_p95: delays.map(|d| d.p95),
            delay_max: score.delay_max(),
            missed: score.missed(),
            lost: score.lost(),
            dead_lines: score.dead_lines,
            restarts: score.tracker.counts().restarts,
            detect_ms: outage.last_detect_ms,
            recover_ms: outage.last_recover_ms,
            in_outage: outage.in_outage(),
            broke_at_ms: outage.last_broke_ms(),
            duplicates: score.duplicates(),
            recovered: score.recovered(),
            connects: score.connects,
            reconnects: score.reconnects,
            cache_hits: score.cache_hits,
            proxy_cuts: score.proxy_cuts,
            new_connections: score.new_connections,
            last_seq: score.tracker.last().unwrap_or(0),
            since_life_ms: None,
            behind_ms: 0.0,
            sparkline: Vec::new(),
            histogram: score.delay_histogram().to_vec(),
            instance: score.instance.clone(),
            last_error: score.last_error.clone(),
        }
    }

    /// Whether the lane has done anything worth comparing: a lane that never ran (or cannot run in this
    /// browser) would otherwise "win" every row it has nothing in.
    pub fn took_part(&self) -> bool {
        self.delivered > 0 || self.requests > 0 || self.connects > 0
    }

    pub fn bytes_total(&self) -> u64 {
        self.bytes_up + self.bytes_down
    }

    /// A byte figure as the page shows it: with `≈` where the lane only estimates its bytes.
    pub fn bytes_shown(&self, bytes: f64) -> String {
        if self.bytes_estimated {
            format!("≈ {}", format_bytes(bytes))
        } else {
            format_bytes(bytes)
        }
    }
}

/// A delay in whole milliseconds with thousands separated (`1,250`), or `–` before the first: whole
/// milliseconds so the three delays compare at a glance and never need cutting.
pub fn whole_ms(ms: Option<f64>) -> String {
    let Some(ms) = ms else {
        return "–".into();
    };
    group_thousands(ms.max(0.0).round() as u64)
}

/// Which way a figure is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    More,
    Less,
}

/// One row of the comparison table: a figure every lane has.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// The test id suffix of its cells (`{lane}-{key}`), the same ids the panels used to carry.
    pub key: &'static str,
    pub name: &'static str,
    /// What the figure means, for the row header's tooltip.
    pub means: &'static str,
    pub better: Better,
    /// A byte count: a lane whose bytes are an estimate (the video call's) is not ranked on it.
    pub bytes: bool,
    /// A total of the period: ranked only among the lanes that delivered the most events (a lane that
    /// carried less news spent less by carrying less, which is no merit).
    pub total: bool,
    /// The value compared; `None` where the lane has none yet.
    pub value: fn(&Score) -> Option<f64>,
    /// The value as the cell shows it.
    pub shown: fn(&Score) -> String,
    /// A second figure shown small beside it, where there is one (the share of empty answers: the
    /// figure people quote).
    pub aside: Option<fn(&Score) -> Option<String>>,
}

fn count(value: u64) -> Option<f64> {
    Some(value as f64)
}

/// The table's rows, top to bottom: what each lane got, how fresh, what it cost, what it lost.
pub const ROWS: [Row; 12] = [
    Row {
        key: "delivered",
        name: "delivered",
        means: "events this lane received, each seq once",
        better: Better::More,
        bytes: false,
        total: false,
        value: |s| count(s.delivered),
        shown: |s| group_thousands(s.delivered),
        aside: None,
    },
    Row {
        key: "delay-p50",
        name: "delay p50",
        means: "half the events arrived within this many ms of the server stamping them",
        better: Better::Less,
        bytes: false,
        total: false,
        value: |s| s.delay_p50,
        shown: |s| whole_ms(s.delay_p50),
        aside: None,
    },
    Row {
        key: "delay-p95",
        name: "delay p95",
        means: "95 % of the events arrived within this many ms",
        better: Better::Less,
        bytes: false,
        total: false,
        value: |s| s.delay_p95,
        shown: |s| whole_ms(s.delay_p95),
        aside: None,
    },
    Row {
        key: "delay-max",
        name: "delay max",
        means: "the slowest event of the period, ms (every event counted, not only the latest)",
        better: Better::Less,
        bytes: false,
        total: false,
        value: |s| s.delay_max,
        shown: |s| whole_ms(s.delay_max),
        aside: None,
    },
    Row {
        key: "requests",
        name: "requests",
        means: "HTTP requests sent (a line that stays open is one)",
        better: Better::Less,
        bytes: false,
        total: false,
        value: |s| count(s.requests),
        shown: |s| group_thousands(s.requests),
        aside: None,
    },
    Row {
        key: "empty",
        name: "empty replies",
        means: "answers that said \"nothing new\": postage paid for nothing",
        better: Better::Less,
        bytes: false,
        total: false,
        value: |s| count(s.empty),
        shown: |s| group_thousands(s.empty),
        // Only where there were some: "0 %" on every line would be noise.
        aside: Some(|s| {
            s.empty_percent
                .filter(|_| s.empty > 0)
                .map(|p| format!(" {p:.0} %"))
        }),
    },
    Row {
        key: "bytes-per-message",
        name: "bytes per message",
        means: "bytes on the wire both ways, headers and framing included, per event delivered (≈: the video call's is an estimate — its QUIC packets are out of the page's sight — and is not ranked)",
        better: Better::Less,
        bytes: true,
        total: false,
        value: |s| s.bytes_per_message,
        shown: |s| s.bytes_per_message.map_or("–".into(), |b| s.bytes_shown(b)),
        aside: None,
    },
    Row {
        key: "bytes-total",
        name: "bytes in total",
        means: "bytes on the wire both ways (the panel splits them ↓ and ↑; ≈: an estimate, not ranked); starred only among the lanes that delivered the most events",
        better: Better::Less,
        bytes: true,
        total: true,
        value: |s| count(s.bytes_total()),
        shown: |s| s.bytes_shown(s.bytes_total() as f64),
        aside: None,
    },
    Row {
        key: "new-connections",
        name: "new connections",
        means: "new connections: TCP or QUIC connections this lane opened, each paying a handshake; a letter or a line that rides a kept-alive connection opens none (so a redial may add a connect and a reconnect but no new connection)",
        better: Better::Less,
        bytes: false,
        total: false,
        value: |s| count(s.new_connections),
        shown: |s| group_thousands(s.new_connections),
        aside: None,
    },
    Row {
        key: "missed",
        name: "missed",
        means: "seqs this lane should have had and has not: still missing, or lost for good",
        better: Better::Less,
        bytes: false,
        total: false,
        value: |s| count(s.missed),
        shown: |s| group_thousands(s.missed),
        aside: None,
    },
    Row {
        key: "lost",
        name: "lost for good",
        means: "seqs the server no longer had when the lane asked, or a restart left behind",
        better: Better::Less,
        bytes: false,
        total: false,
        value: |s| count(s.lost),
        shown: |s| group_thousands(s.lost),
        aside: None,
    },
    Row {
        key: "reconnects",
        name: "reconnects",
        means: "reconnects: lines dialled again after one was lost (letters never reconnect: each is a request of its own)",
        better: Better::Less,
        bytes: false,
        total: false,
        value: |s| count(s.reconnects),
        shown: |s| group_thousands(s.reconnects),
        aside: None,
    },
];

impl Row {
    /// The lanes that share this row's best value among those that took part, or none when fewer than
    /// two have a value or they all tie (a star on every lane tells nothing).
    pub fn best(&self, scores: &PerLane<Score>) -> Vec<LaneId> {
        // Totals compare only lanes that carried the same news: a lane that delivered fewer events
        // (letters under a firehose) spent fewer bytes by carrying less, which is no merit.
        let most_delivered = scores
            .iter()
            .filter(|(_, score)| score.took_part())
            .map(|(_, score)| score.delivered)
            .max()
            .unwrap_or(0);
        let values: Vec<(LaneId, f64)> = scores
            .iter()
            .filter(|(_, score)| score.took_part())
            .filter(|(_, score)| !self.total || score.delivered == most_delivered)
            // An estimate is not ranked against counted bytes.
            .filter(|(_, score)| !(self.bytes && score.bytes_estimated))
            .filter_map(|(lane, score)| (self.value)(score).map(|value| (lane, value)))
            .collect();
        if values.len() < 2 {
            return Vec::new();
        }
        // Delays and byte counts are compared as shown (whole ms, whole bytes), so two cells that read
        // the same are not told apart by a fraction nobody can see.
        let rounded = |value: f64| value.round();
        let best = values.iter().map(|&(_, value)| rounded(value)).fold(
            None,
            |best: Option<f64>, value| match (best, self.better) {
                (None, _) => Some(value),
                (Some(b), Better::More) => Some(b.max(value)),
                (Some(b), Better::Less) => Some(b.min(value)),
            },
        );
        let winners: Vec<LaneId> = values
            .iter()
            .filter(|&&(_, value)| Some(rounded(value)) == best)
            .map(|&(lane, _)| lane)
            .collect();
        if winners.len() == values.len() {
            Vec::new()
        } else {
            winners
        }
    }
}

/// A lane's name inside a sentence.
pub fn named(lane: LaneId) -> &'static str {
    match lane {
        LaneId::Poll => "letters",
        LaneId::LongPoll => "held letters",
        LaneId::HttpStream => "the endless letter",
        LaneId::Sse => "the radio",
        LaneId::Ws => "the phone call",
        LaneId::WebTransport => "the video call",
    }
}

/// Capitalises the first letter of a sentence. The page's sentences are its own, in English: ASCII case
/// is enough, and it keeps Unicode's case tables (~20 KB) out of the WebAssembly.
pub(crate) fn sentence(text: &str) -> String {
    let mut sentence = text.to_owned();
    if let Some(first) = sentence.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    sentence
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(super) fn lane(delivered: u64, p50: f64, bytes_per_message: f64) -> Score {
        Score {
            delivered,
            requests: 1,
            connects: 1,
            delay_p50: Some(p50),
            delay_p95: Some(p50 * 2.0),
            delay_max: Some(p50 * 3.0),
            bytes_per_message: Some(bytes_per_message),
            ..Score::default()
        }
    }

    pub(super) fn scores() -> PerLane<Score> {
        let mut scores = PerLane::<Score>::default();
        scores[LaneId::Poll] = Score {
            requests: 120,
            empty: 55,
            empty_percent: Some(55.0 / 120.0 * 100.0),
            ..lane(100, 558.0, 690.0)
        };
        scores[LaneId::Ws] = lane(100, 3.0, 330.0);
        scores[LaneId::Sse] = lane(100, 4.0, 340.0);
        scores
    }

    /// Under a firehose letters deliver fewer events and so fewer bytes: that is no win on "bytes in
    /// total", which ranks only lanes that delivered as much as the most.
    #[test]
    fn totals_rank_only_lanes_that_carried_the_same_news() {
        let mut scores = PerLane::<Score>::default();
        scores[LaneId::Poll] = Score {
            bytes_down: 1_000,
            ..lane(50, 500.0, 20.0)
        };
        scores[LaneId::Ws] = Score {
            bytes_down: 9_000,
            ..lane(400, 3.0, 22.0)
        };
        scores[LaneId::Sse] = Score {
            bytes_down: 12_000,
            ..lane(400, 3.0, 30.0)
        };
        let total = ROWS.iter().find(|row| row.key == "bytes-total").unwrap();
        assert_eq!(total.best(&scores), vec![LaneId::Ws]);
        // Per message, every lane is ranked: letters cost least per event here.
        let per_message = ROWS
            .iter()
            .find(|row| row.key == "bytes-per-message")
            .unwrap();
        assert_eq!(per_message.best(&scores), vec![LaneId::Poll]);
    }

    /// The video call's bytes are estimated from constants: shown with ≈ and never starred against
    /// lanes whose bytes were counted.
    #[test]
    fn estimated_bytes_are_marked_and_not_ranked() {
        let mut scores = scores();
        scores[LaneId::WebTransport] = Score {
            bytes_up: 10,
            bytes_down: 10,
            bytes_estimated: true,
            ..lane(100, 2.0, 100.0)
        };
        let total = ROWS.iter().find(|row| row.key == "bytes-total").unwrap();
        let per_message = ROWS
            .iter()
            .find(|row| row.key == "bytes-per-message")
            .unwrap();
        assert!(!total.best(&scores).contains(&LaneId::WebTransport));
        assert_eq!(per_message.best(&scores), vec![LaneId::Ws]);
        assert_eq!((total.shown)(&scores[LaneId::WebTransport]), "≈ 20 B");
        assert_eq!(
            (per_message.shown)(&scores[LaneId::WebTransport]),
            "≈ 100 B"
        );
        // Counted bytes read as they are; the delay rows still rank the video call.
        assert_eq!((per_message.shown)(&scores[LaneId::Ws]), "330 B");
        let p50 = ROWS.iter().find(|row| row.key == "delay-p50").unwrap();
        assert_eq!(p50.best(&scores), vec![LaneId::WebTransport]);
    }

    #[test]
    fn the_best_of_a_row_is_marked_only_where_lanes_differ() {
        let scores = scores();
        let row = |key: &str| ROWS.iter().find(|row| row.key == key).unwrap();
        assert_eq!(row("delay-p50").best(&scores), vec![LaneId::Ws]);
        assert_eq!(row("requests").best(&scores), vec![LaneId::Sse, LaneId::Ws]);
        // All three delivered 100: no star.
        assert!(row("delivered").best(&scores).is_empty());
        // Lanes that never ran take no part.
        assert!(!scores[LaneId::WebTransport].took_part());
    }
}
