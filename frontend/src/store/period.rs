//! Periods: the stretch of time the figures describe. Figures gathered on 3g and then on a lossy line
//! mislead when mixed (the letters' worst delay would be 3g's, the verdict would say "lossy"), so a
//! change of network or traffic starts a period on its own and "Reset scoreboards" starts one by hand.
//! The period before is kept whole, so the page can put before and after side by side: that is the
//! lesson of the change.

use switchboard_shared::{LaneId, PerLane, Traffic};

use super::outage::{FaultSpan, Outage};
use super::score::LaneScore;

/// A period younger than this when the next begins taught nothing (two changes in a row, a listing
/// that arrived just after the page opened): it is not kept as "before", the older one stays.
pub const KEPT_AFTER_MS: f64 = 2_000.0;

/// What started a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodCause {
    /// The page opened.
    PageStart,
    /// A person pressed "Reset scoreboards".
    Reset,
    /// A lane's emulated network changed.
    Network,
    /// The traffic pattern changed.
    Traffic,
}

impl PeriodCause {
    /// What began the period, after "began with".
    pub fn words(self) -> &'static str {
        match self {
            PeriodCause::PageStart => "the page",
            PeriodCause::Reset => "a reset",
            PeriodCause::Network => "a network change",
            PeriodCause::Traffic => "a traffic change",
        }
    }
}

/// The period the figures describe now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Period {
    /// When it began, on the page's clock.
    pub start_ms: f64,
    pub cause: PeriodCause,
}

impl Default for Period {
    fn default() -> Period {
        Period {
            start_ms: 0.0,
            cause: PeriodCause::PageStart,
        }
    }
}

/// What the lanes ran under through a period: each lane's emulated network (none on a perfect line)
/// and the traffic pattern, once known.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Setting {
    pub networks: PerLane<Option<String>>,
    pub traffic: Option<Traffic>,
}

impl Setting {
    /// The setting in words — "on lossy under bursty traffic" — or `None` when nothing is known and no
    /// lane is emulated. Lanes on different networks read "on mixed networks"; the verdict names them.
    pub fn words(&self) -> Option<String> {
        let mut names = LaneId::ALL
            .iter()
            .map(|&lane| self.networks[lane].as_deref());
        let first = names.next().flatten();
        let network = if names.all(|name| name == first) {
            first.map(|name| format!("on {name}"))
        } else {
            Some("on mixed networks".to_owned())
        };
        let traffic = self
            .traffic
            .map(|pattern| format!("under {pattern} traffic"));
        match (network, traffic) {
            (Some(network), Some(traffic)) => Some(format!("{network} {traffic}")),
            (one, other) => one.or(other),
        }
    }
}

/// A period that ended, with every figure it ended with.
#[derive(Debug, Clone)]
pub struct Closed {
    pub period: Period,
    pub end_ms: f64,
    pub setting: Setting,
    pub scores: PerLane<LaneScore>,
    pub outages: PerLane<Outage>,
    /// The last fault that began in it.
    pub last_fault: Option<FaultSpan>,
}

impl Closed {
    pub fn duration_ms(&self) -> f64 {
        (self.end_ms - self.period.start_ms).max(0.0)
    }
}
