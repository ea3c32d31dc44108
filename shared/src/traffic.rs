//! Traffic patterns: how often the server's own sources speak (`POST /api/traffic`, `--traffic`).
//!
//! The lesson of the lanes depends on the traffic as much as on the network: when news is rare,
//! letters mostly come back empty; when it comes in bursts, one letter carries a whole burst late while a
//! held letter or a stream brings it at once; under a firehose every lane's cost per event shows. This
//! module names the patterns and holds the pure [`Schedule`] that says when the next event of each source
//! is due, so the server's sources and the tests share one definition.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::FaultAuth;

/// How often the stream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Traffic {
    /// A ticker quote every few seconds: where letters waste the most.
    Quiet,
    /// The ticker and the host load at their configured intervals (`--ticker-ms`, `--load-ms`).
    Steady,
    /// Seconds of silence, then a burst of dozens of quotes: where letters batch and held letters shine.
    Bursty,
    /// Hundreds of quotes a second: where every lane's cost and delay per event show.
    Firehose,
}

/// The shortest and longest gap between two quotes in the quiet pattern.
pub const QUIET_GAP_MS: (u64, u64) = (2_000, 6_000);
/// The silence between two bursts.
pub const BURST_SILENCE_MS: (u64, u64) = (4_000, 10_000);
/// How many quotes one burst holds, and how far apart they come.
pub const BURST_SIZE: (u64, u64) = (20, 60);
pub const BURST_GAP_MS: u64 = 20;
/// The gap between two quotes of the firehose (200 a second).
pub const FIREHOSE_GAP_MS: u64 = 5;
/// How often host load is sampled while the stream is meant to be mostly silent (quiet and bursty).
pub const SPARSE_LOAD_MS: u64 = 10_000;

impl Traffic {
    pub const ALL: [Traffic; 4] = [
        Traffic::Quiet,
        Traffic::Steady,
        Traffic::Bursty,
        Traffic::Firehose,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Traffic::Quiet => "quiet",
            Traffic::Steady => "steady",
            Traffic::Bursty => "bursty",
            Traffic::Firehose => "firehose",
        }
    }

    pub fn from_name(name: &str) -> Option<Traffic> {
        Traffic::ALL
            .into_iter()
            .find(|pattern| pattern.as_str() == name)
    }

    /// A short human label for buttons and the timeline.
    pub const fn title(self) -> &'static str {
        match self {
            Traffic::Quiet => "Quiet",
            Traffic::Steady => "Steady",
            Traffic::Bursty => "Bursty",
            Traffic::Firehose => "Firehose",
        }
    }

    /// What the pattern is and what it shows, in one sentence.
    pub const fn explanation(self) -> &'static str {
        match self {
            Traffic::Quiet => {
                "A quote every 2–6 s: most letters come back with nothing new, a phone call just waits."
            }
            Traffic::Steady => {
                "Quotes and host load at a steady pace: every lane looks busy, the differences shrink."
            }
            Traffic::Bursty => {
                "4–10 s of silence, then dozens of quotes at once: letters carry a burst late in one \
                 reply; held letters and streams bring it as it happens."
            }
            Traffic::Firehose => {
                "200 quotes a second: every lane keeps up or falls behind, and its cost per event shows."
            }
        }
    }
}

impl fmt::Display for Traffic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of `POST /api/traffic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficRequest {
    pub pattern: Traffic,
}

/// One pattern as `GET /api/traffic` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatternInfo {
    pub name: Traffic,
    pub title: String,
    pub explanation: String,
}

/// `GET /api/traffic`: the pattern in effect, the ones there are, and who may change it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrafficState {
    pub auth: FaultAuth,
    pub pattern: Traffic,
    pub patterns: Vec<PatternInfo>,
}

impl TrafficState {
    pub fn new(auth: FaultAuth, pattern: Traffic) -> TrafficState {
        TrafficState {
            auth,
            pattern,
            patterns: Traffic::ALL
                .into_iter()
                .map(|name| PatternInfo {
                    name,
                    title: name.title().to_owned(),
                    explanation: name.explanation().to_owned(),
                })
                .collect(),
        }
    }
}

/// What a change of pattern announces (the answer to `POST /api/traffic`, and the `traffic` of the
/// `traffic_changed` notice, so the page can mark the moment on its timeline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficChange {
    pub pattern: Traffic,
    /// The pattern it replaced.
    pub previous: Traffic,
    /// When it changed, in server milliseconds since the Unix epoch.
    pub at_ms: u64,
}

impl TrafficChange {
    pub fn describe(&self) -> String {
        format!(
            "Traffic is now {} (was {}): {}",
            self.pattern.title().to_ascii_lowercase(),
            self.previous.as_str(),
            self.pattern.explanation()
        )
    }
}

/// When the sources speak next under a pattern. Pure: the randomness comes in as numbers in `[0, 1)`, so
/// the server seeds it for repeatable runs and tests can drive it.
#[derive(Debug, Clone)]
pub struct Schedule {
    pattern: Traffic,
    /// The configured intervals of the steady pattern; 0 turns a source off in every pattern.
    ticker_ms: u64,
    load_ms: u64,
    /// Quotes left in the current burst.
    burst_left: u64,
}

impl Schedule {
    pub fn new(pattern: Traffic, ticker_ms: u64, load_ms: u64) -> Schedule {
        Schedule {
            pattern,
            ticker_ms,
            load_ms,
            burst_left: 0,
        }
    }

    pub fn pattern(&self) -> Traffic {
        self.pattern
    }

    /// How long until the next quote, or `None` when the ticker is off. `unit` gives numbers in `[0, 1)`.
    pub fn next_quote_ms(&mut self, mut unit: impl FnMut() -> f64) -> Option<u64> {
        if self.ticker_ms == 0 {
            return None;
        }
        let between = |(low, high): (u64, u64), u: f64| low + ((high - low) as f64 * u) as u64;
        Some(match self.pattern {
            Traffic::Steady => self.ticker_ms,
            Traffic::Quiet => between(QUIET_GAP_MS, unit()),
            Traffic::Firehose => FIREHOSE_GAP_MS,
            Traffic::Bursty => {
                if self.burst_left > 0 {
                    self.burst_left -= 1;
                    BURST_GAP_MS
                } else {
                    // The silence, then the first quote of the next burst; the rest follow closely.
                    self.burst_left = between((BURST_SIZE.0, BURST_SIZE.1 + 1), unit()) - 1;
                    between(BURST_SILENCE_MS, unit())
                }
            }
        })
    }

    /// The interval of the host-load samples, or `None` when that source is off.
    pub fn load_ms(&self) -> Option<u64> {
        match (self.load_ms, self.pattern) {
            (0, _) => None,
            (ms, Traffic::Quiet | Traffic::Bursty) => Some(ms.max(SPARSE_LOAD_MS)),
            (ms, Traffic::Steady | Traffic::Firehose) => Some(ms),
        }
    }

    /// The longest a leading instance may stay silent under this pattern: several instances share one
    /// lease on the sources, which must outlast it or a second instance would start a second ticker.
    pub fn longest_silence_ms(&self) -> u64 {
        let quotes = match self.pattern {
            Traffic::Steady => self.ticker_ms,
            Traffic::Quiet => QUIET_GAP_MS.1,
            Traffic::Bursty => BURST_SILENCE_MS.1,
            Traffic::Firehose => FIREHOSE_GAP_MS,
        };
        quotes.max(self.load_ms().unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cheap repeatable stream of numbers in `[0, 1)`.
    fn dice() -> impl FnMut() -> f64 {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Quotes per second and the share of 1 s polls that would find nothing new, over `seconds`.
    fn rate_and_empty_polls(pattern: Traffic, seconds: u64) -> (f64, f64) {
        let mut schedule = Schedule::new(pattern, 500, 1_000);
        let mut unit = dice();
        let (mut at, mut times) = (0, Vec::new());
        while at < seconds * 1000 {
            at += schedule.next_quote_ms(&mut unit).unwrap();
            times.push(at);
        }
        let mut busy = vec![false; seconds as usize];
        for at in &times {
            if let Some(second) = busy.get_mut((at / 1000) as usize) {
                *second = true;
            }
        }
        let empty = busy.iter().filter(|busy| !**busy).count() as f64 / seconds as f64;
        (times.len() as f64 / seconds as f64, empty)
    }

    #[test]
    fn each_pattern_has_the_pace_it_promises() {
        let (rate, empty) = rate_and_empty_polls(Traffic::Quiet, 3_600);
        assert!((0.2..0.3).contains(&rate), "quiet: {rate} quotes/s");
        assert!(empty > 0.7, "quiet: only {empty} of polls empty");
        let (rate, empty) = rate_and_empty_polls(Traffic::Bursty, 3_600);
        // ~40 quotes per ~8 s (7 s of silence and the burst itself).
        assert!((3.0..7.0).contains(&rate), "bursty: {rate} quotes/s");
        assert!(empty > 0.6, "bursty: only {empty} of polls empty");
        let (rate, empty) = rate_and_empty_polls(Traffic::Steady, 600);
        assert_eq!((rate, empty), (2.0, 0.0));
        let (rate, _) = rate_and_empty_polls(Traffic::Firehose, 60);
        assert_eq!(rate, 200.0);
    }

    #[test]
    fn a_burst_comes_closely_after_its_silence() {
        let mut schedule = Schedule::new(Traffic::Bursty, 500, 1_000);
        let mut unit = dice();
        let silence = schedule.next_quote_ms(&mut unit).unwrap();
        assert!((BURST_SILENCE_MS.0..=BURST_SILENCE_MS.1).contains(&silence));
        let burst = std::iter::from_fn(|| schedule.next_quote_ms(&mut unit))
            .take_while(|gap| *gap == BURST_GAP_MS)
            .count() as u64
            + 1;
        assert!((BURST_SIZE.0..=BURST_SIZE.1).contains(&burst), "{burst}");
    }

    #[test]
    fn a_source_turned_off_stays_off_and_sparse_patterns_sample_load_rarely() {
        let mut off = Schedule::new(Traffic::Firehose, 0, 0);
        assert_eq!((off.next_quote_ms(|| 0.5), off.load_ms()), (None, None));
        assert_eq!(
            Schedule::new(Traffic::Quiet, 500, 1_000).load_ms(),
            Some(10_000)
        );
        assert_eq!(
            Schedule::new(Traffic::Steady, 500, 1_000).load_ms(),
            Some(1_000)
        );
        assert_eq!(
            Schedule::new(Traffic::Bursty, 500, 1_000).longest_silence_ms(),
            BURST_SILENCE_MS.1
        );
    }

    #[test]
    fn requests_name_a_known_pattern_and_nothing_else() {
        let parse = |text: &str| serde_json::from_str::<TrafficRequest>(text);
        assert_eq!(
            parse(r#"{"pattern":"bursty"}"#).unwrap().pattern,
            Traffic::Bursty
        );
        assert!(parse(r#"{"pattern":"loud"}"#).is_err());
        assert!(parse(r#"{"pattern":"quiet","rate":3}"#).is_err());
        assert_eq!(Traffic::from_name("firehose"), Some(Traffic::Firehose));
        assert_eq!(Traffic::from_name("Firehose"), None);
    }
}
