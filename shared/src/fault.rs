//! The failure lab's vocabulary: which faults can be injected (`POST /api/faults`), on which lanes, and
//! how an active fault is described (in `GET /api/faults` and in the notice event every fault publishes).

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::LaneId;

/// The longest any timed fault may last: long enough for any demonstration, short enough that a
/// forgotten fault ends on its own.
pub const MAX_FAULT_MS: u64 = 300_000;
/// The largest delay a `delay` fault may add to each reply or frame.
pub const MAX_DELAY_MS: u64 = 30_000;
/// How long a timed fault lasts when the request does not say.
pub const DEFAULT_FAULT_MS: u64 = 5_000;

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The hiccup: nothing is published for a while (heartbeats go on: the server is alive, just quiet).
    Pause,
    /// Every open connection of the lane is cut at once (held long polls are answered with an error).
    Drop,
    /// The lane's open connections stay open but carry nothing, not even heartbeats: only a watchdog
    /// can tell. When the fault ends the server closes them, as a dead path finally times out.
    HalfOpen,
    /// Every reply or frame of the lane waits `delay_ms` longer before it is written.
    Delay,
    /// The lane's HTTP requests (and new dials) are answered `503`.
    Error,
    /// Everything is dropped and the history starts over in a new epoch, as a real restart would.
    Restart,
    /// The lane's lines send no heartbeats: with no news either, a line goes quiet, and a proxy's idle
    /// timeout hangs up on it (the page's watchdog stands aside meanwhile, as an app without heartbeats
    /// would have none).
    NoHeartbeat,
}

impl FaultKind {
    pub const ALL: [FaultKind; 7] = [
        FaultKind::Pause,
        FaultKind::Drop,
        FaultKind::HalfOpen,
        FaultKind::Delay,
        FaultKind::Error,
        FaultKind::Restart,
        FaultKind::NoHeartbeat,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            FaultKind::Pause => "pause",
            FaultKind::Drop => "drop",
            FaultKind::HalfOpen => "half_open",
            FaultKind::Delay => "delay",
            FaultKind::Error => "error",
            FaultKind::Restart => "restart",
            FaultKind::NoHeartbeat => "no_heartbeat",
        }
    }

    /// A short human label for buttons and the timeline.
    pub const fn title(self) -> &'static str {
        match self {
            FaultKind::Pause => "Hiccup",
            FaultKind::Drop => "Drop",
            FaultKind::HalfOpen => "Half-open",
            FaultKind::Delay => "Delay",
            FaultKind::Error => "503s",
            FaultKind::Restart => "Restart",
            FaultKind::NoHeartbeat => "No heartbeats",
        }
    }

    /// What the fault does, in one sentence.
    pub const fn explanation(self) -> &'static str {
        match self {
            FaultKind::Pause => "Nothing is published for a while; heartbeats go on.",
            FaultKind::Drop => "Every open connection of the lane is cut now.",
            FaultKind::HalfOpen => {
                "Connections stay open but carry nothing, not even heartbeats: only a watchdog can tell."
            }
            FaultKind::Delay => "Every reply or frame waits longer before it is written.",
            FaultKind::Error => "Requests and new dials are answered 503 Service Unavailable.",
            FaultKind::Restart => {
                "Everything is dropped and the history starts over in a new epoch."
            }
            FaultKind::NoHeartbeat => {
                "Lines send no heartbeats: with no news either, a proxy's idle timeout hangs up on a quiet line."
            }
        }
    }

    /// Whether the fault lasts a while (and so needs a duration) or happens at once.
    pub const fn is_timed(self) -> bool {
        !matches!(self, FaultKind::Drop | FaultKind::Restart)
    }

    /// Whether the fault concerns the whole stream rather than one lane.
    pub const fn is_global(self) -> bool {
        matches!(self, FaultKind::Pause | FaultKind::Restart)
    }

    /// What of `lane` the fault acts on: 503s answer letters but leave an open line alone (only a
    /// new dial would be refused); heartbeats are the lines' alone.
    pub const fn reach(self, lane: LaneId) -> Reach {
        let letters = lane.shape().is_request();
        match self {
            FaultKind::Error if !letters => Reach::NewDials,
            FaultKind::NoHeartbeat if letters => Reach::Nothing,
            _ => Reach::Whole,
        }
    }

    /// Which lanes the kind acts on, for the failure lab's words.
    pub const fn reach_words(self) -> &'static str {
        match self {
            FaultKind::Error => {
                "Acts on letters and held letters; open lines carry on untouched (only a new dial is refused)."
            }
            FaultKind::NoHeartbeat => {
                "Acts on the four lines (endless letter, radio, phone call, video call); letters have no heartbeats."
            }
            _ => "Acts on every lane it is aimed at.",
        }
    }
}

/// What of a lane a fault acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Everything the lane does.
    Whole,
    /// Only the lane's new connections: what is open carries on.
    NewDials,
    Nothing,
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which lanes a fault hits: one, or all of them. On the wire a lane's id or `"all"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum FaultTarget {
    Lane(LaneId),
    All(AllLanes),
}

/// The literal `"all"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllLanes {
    All,
}

impl FaultTarget {
    pub const ALL: FaultTarget = FaultTarget::All(AllLanes::All);

    pub fn covers(self, lane: LaneId) -> bool {
        match self {
            FaultTarget::Lane(target) => target == lane,
            FaultTarget::All(_) => true,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FaultTarget::Lane(lane) => lane.as_str(),
            FaultTarget::All(_) => "all",
        }
    }
}

/// Read as the one string it is, not as serde's `untagged` would (buffer the value, then try each
/// variant on the buffer, with code for every try in the dashboard's WebAssembly); the error names
/// what is allowed.
impl<'de> Deserialize<'de> for FaultTarget {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const TARGETS: &[&str] = &[
            "poll",
            "longpoll",
            "stream",
            "sse",
            "ws",
            "webtransport",
            "all",
        ];
        let name = String::deserialize(deserializer)?;
        if name == "all" {
            return Ok(FaultTarget::ALL);
        }
        name.parse::<LaneId>()
            .map(FaultTarget::Lane)
            .map_err(|_| serde::de::Error::unknown_variant(&name, TARGETS))
    }
}

impl Default for FaultTarget {
    fn default() -> Self {
        FaultTarget::ALL
    }
}

impl fmt::Display for FaultTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of `POST /api/faults`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    pub kind: FaultKind,
    #[serde(default)]
    pub lane: FaultTarget,
    /// How long a timed fault lasts ([`DEFAULT_FAULT_MS`] when absent); not allowed for instant ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The delay a `delay` fault adds (required there, not allowed elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

/// Why a fault request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultRejection {
    BadDuration,
    InstantWithDuration(FaultKind),
    BadDelay,
    DelayNotAllowed,
    GlobalOnOneLane(FaultKind),
}

impl fmt::Display for FaultRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultRejection::BadDuration => {
                write!(f, "duration_ms must be between 1 and {MAX_FAULT_MS}")
            }
            FaultRejection::InstantWithDuration(kind) => {
                write!(f, "{kind} happens at once: it takes no duration_ms")
            }
            FaultRejection::BadDelay => {
                write!(f, "delay needs delay_ms between 1 and {MAX_DELAY_MS}")
            }
            FaultRejection::DelayNotAllowed => f.write_str("only delay takes delay_ms"),
            FaultRejection::GlobalOnOneLane(kind) => {
                write!(f, "{kind} concerns the whole stream: use \"lane\": \"all\"")
            }
        }
    }
}

impl std::error::Error for FaultRejection {}

impl FaultRequest {
    /// Checks the request and returns how long the fault lasts (0 for instant faults).
    pub fn validate(&self) -> Result<u64, FaultRejection> {
        if self.kind.is_global() && self.lane != FaultTarget::ALL {
            return Err(FaultRejection::GlobalOnOneLane(self.kind));
        }
        match (self.kind, self.delay_ms) {
            (FaultKind::Delay, Some(1..=MAX_DELAY_MS)) => {}
            (FaultKind::Delay, _) => return Err(FaultRejection::BadDelay),
            (_, Some(_)) => return Err(FaultRejection::DelayNotAllowed),
            (_, None) => {}
        }
        if !self.kind.is_timed() {
            return match self.duration_ms {
                None | Some(0) => Ok(0),
                Some(_) => Err(FaultRejection::InstantWithDuration(self.kind)),
            };
        }
        match self.duration_ms.unwrap_or(DEFAULT_FAULT_MS) {
            duration @ 1..=MAX_FAULT_MS => Ok(duration),
            _ => Err(FaultRejection::BadDuration),
        }
    }
}

/// A fault as the server reports it: in `GET /api/faults` while active, and in its notice event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// Numbered from 1 in the order faults were injected.
    pub id: u64,
    pub kind: FaultKind,
    pub lane: FaultTarget,
    /// When it began and ends, server clock, Unix ms (equal for instant faults).
    pub started_ms: u64,
    pub until_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

impl Fault {
    pub fn duration_ms(&self) -> u64 {
        self.until_ms.saturating_sub(self.started_ms)
    }

    /// A sentence for the page and logs, in the lab's own words: "Half-open on the phone call for 5000 ms",
    /// "Hiccup on all lanes for 3000 ms".
    pub fn describe(&self) -> String {
        // The lane as the page names it, never its id.
        let lanes = match self.lane {
            FaultTarget::Lane(lane) => format!("the {}", lane.title().to_ascii_lowercase()),
            FaultTarget::All(_) => "all lanes".to_owned(),
        };
        let mut text = format!("{} on {lanes}", self.kind.title());
        if self.kind.is_timed() {
            text.push_str(&format!(" for {} ms", self.duration_ms()));
        }
        if let Some(delay) = self.delay_ms {
            text.push_str(&format!(" (+{delay} ms each)"));
        }
        text
    }
}

/// Who may inject faults on this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultAuth {
    /// Requests from the server's own machine only.
    Loopback,
    /// Anyone presenting `Authorization: Bearer TOKEN`.
    Token,
    /// Nobody: the server listens beyond loopback and no admin token is configured.
    Disabled,
}

/// `GET /api/faults`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultList {
    pub auth: FaultAuth,
    pub active: Vec<Fault>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: &str) -> Result<FaultRequest, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn requests_parse_as_the_contract_spells_them() {
        let parsed = request(r#"{"kind":"half_open","lane":"ws","duration_ms":3000}"#).unwrap();
        assert_eq!(parsed.kind, FaultKind::HalfOpen);
        assert_eq!(parsed.lane, FaultTarget::Lane(LaneId::Ws));
        assert_eq!(parsed.validate(), Ok(3000));
        let all = request(r#"{"kind":"drop","lane":"all"}"#).unwrap();
        assert_eq!((all.lane, all.validate()), (FaultTarget::ALL, Ok(0)));
        assert_eq!(
            request(r#"{"kind":"pause"}"#).unwrap().validate(),
            Ok(DEFAULT_FAULT_MS)
        );
        for kind in FaultKind::ALL {
            let text = serde_json::to_string(&kind).unwrap();
            assert_eq!(text, format!("\"{}\"", kind.as_str()));
        }
    }

    #[test]
    fn nonsense_is_refused_with_a_reason() {
        assert!(request(r#"{"kind":"melt"}"#).is_err());
        let fax = request(r#"{"kind":"drop","lane":"fax"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            fax.contains("unknown variant `fax`") && fax.contains("`all`"),
            "{fax}"
        );
        assert!(request(r#"{"kind":"drop","lane":7}"#).is_err());
        for target in LaneId::ALL
            .map(FaultTarget::Lane)
            .into_iter()
            .chain([FaultTarget::ALL])
        {
            let text = serde_json::to_string(&target).unwrap();
            assert_eq!(text, format!("\"{target}\""));
            assert_eq!(serde_json::from_str::<FaultTarget>(&text).unwrap(), target);
        }
        assert!(request(r#"{"kind":"drop","colour":"red"}"#).is_err());
        let refused = |json: &str| request(json).unwrap().validate().unwrap_err();
        assert_eq!(
            refused(r#"{"kind":"delay","duration_ms":100}"#),
            FaultRejection::BadDelay
        );
        assert_eq!(
            refused(r#"{"kind":"delay","delay_ms":0}"#),
            FaultRejection::BadDelay
        );
        assert_eq!(
            refused(r#"{"kind":"pause","delay_ms":5}"#),
            FaultRejection::DelayNotAllowed
        );
        assert_eq!(
            refused(r#"{"kind":"error","duration_ms":0}"#),
            FaultRejection::BadDuration
        );
        assert_eq!(
            refused(r#"{"kind":"error","duration_ms":999999999}"#),
            FaultRejection::BadDuration
        );
        assert_eq!(
            refused(r#"{"kind":"drop","duration_ms":10}"#),
            FaultRejection::InstantWithDuration(FaultKind::Drop)
        );
        assert_eq!(
            refused(r#"{"kind":"pause","lane":"sse"}"#),
            FaultRejection::GlobalOnOneLane(FaultKind::Pause)
        );
    }

    #[test]
    fn a_fault_describes_itself() {
        let fault = Fault {
            id: 1,
            kind: FaultKind::Delay,
            lane: FaultTarget::Lane(LaneId::Sse),
            started_ms: 1000,
            until_ms: 6000,
            delay_ms: Some(250),
        };
        assert_eq!(
            fault.describe(),
            "Delay on the radio for 5000 ms (+250 ms each)"
        );
        let round_trip: Fault =
            serde_json::from_str(&serde_json::to_string(&fault).unwrap()).unwrap();
        assert_eq!(round_trip, fault);
    }
}
