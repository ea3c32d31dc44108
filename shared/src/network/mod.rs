//! Emulated network conditions: the round trips, jitter, bandwidth and loss of a real path, applied by
//! the server to one lane or all of them (`GET`/`POST /api/network`), so the difference between letters
//! and a phone call shows on a machine where every round trip is free.
//!
//! This module holds the vocabulary both sides use (a [`Condition`], the named [`PRESETS`], the request
//! and its validation, the notice a change publishes) and the pure model of one direction of one
//! connection ([`PathClock`]): when each chunk written into it comes out at the other end. The server
//! applies the model to real sockets; docs/PROTOCOL.md ("Network conditions") says what it means on each
//! lane.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::stats::group_thousands;
use crate::{FaultAuth, FaultTarget, LaneId, PerLane};

/// The largest round trip a condition may emulate.
pub const MAX_RTT_MS: u32 = 10_000;
/// The lowest bandwidth a limited condition may have (0 means unlimited).
pub const MIN_KBPS: u32 = 8;
/// The highest bandwidth a condition may name.
pub const MAX_KBPS: u32 = 1_000_000;
/// The highest loss rate, in percent: beyond it TCP connections no longer behave like connections.
pub const MAX_LOSS_PCT: f64 = 50.0;
/// The shortest retransmission timeout TCP uses (RFC 6298 allows 1 s; Linux uses 200 ms).
pub const MIN_RTO_MS: f64 = 200.0;

/// One emulated network path. Zero everywhere is a perfect line (loopback).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// The preset it came from, or `custom`.
    pub name: String,
    /// Round-trip time: a request and its answer each pay half of it.
    pub rtt_ms: u32,
    /// How far each one-way delay may stray from half the round trip, either way.
    pub jitter_ms: u32,
    /// Server → browser bandwidth per connection, kilobits per second; 0 is unlimited.
    pub down_kbps: u32,
    /// Browser → server bandwidth per connection, kilobits per second; 0 is unlimited.
    pub up_kbps: u32,
    /// The chance that a chunk written to a connection is lost and must be sent again, in percent.
    pub loss_pct: f64,
}

/// A named condition, as listed by `GET /api/network`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preset {
    pub name: String,
    pub rtt_ms: u32,
    pub jitter_ms: u32,
    pub down_kbps: u32,
    pub up_kbps: u32,
    pub loss_pct: f64,
    /// What the preset stands for, in words.
    pub label: String,
}

/// The presets, by name: (name, rtt, jitter, down, up, loss %, label).
const PRESET_TABLE: [(&str, u32, u32, u32, u32, f64, &str); 7] = [
    (
        "loopback",
        0,
        0,
        0,
        0,
        0.0,
        "This machine: no delay, no limit",
    ),
    ("lan", 2, 0, 0, 0, 0.0, "Office LAN: 2 ms round trip"),
    (
        "cable",
        20,
        0,
        50_000,
        50_000,
        0.0,
        "Cable: 20 ms, 50 Mbit/s",
    ),
    (
        "4g",
        60,
        15,
        20_000,
        20_000,
        0.0,
        "4G: 60 ± 15 ms, 20 Mbit/s",
    ),
    (
        "3g",
        300,
        50,
        1_600,
        768,
        0.0,
        "3G: 300 ± 50 ms, 1.6 Mbit/s down, 768 kbit/s up",
    ),
    (
        "satellite",
        600,
        0,
        10_000,
        10_000,
        0.0,
        "Satellite: 600 ms, 10 Mbit/s",
    ),
    (
        "lossy",
        150,
        30,
        5_000,
        5_000,
        3.0,
        "Lossy Wi-Fi: 150 ± 30 ms, 5 Mbit/s, 3 % loss",
    ),
];

/// The preset names, in order from best to worst path (`loopback` first).
pub const PRESET_NAMES: [&str; 7] = ["loopback", "lan", "cable", "4g", "3g", "satellite", "lossy"];

/// Every preset.
pub fn presets() -> Vec<Preset> {
    PRESET_TABLE
        .iter()
        .map(
            |&(name, rtt_ms, jitter_ms, down_kbps, up_kbps, loss_pct, label)| Preset {
                name: name.into(),
                rtt_ms,
                jitter_ms,
                down_kbps,
                up_kbps,
                loss_pct,
                label: label.into(),
            },
        )
        .collect()
}

/// The condition a preset stands for; `None` for `loopback` (nothing to emulate) or an unknown name
/// (see [`is_preset`]).
pub fn preset(name: &str) -> Option<Condition> {
    PRESET_TABLE
        .iter()
        .find(|row| row.0 == name)
        .map(
            |&(name, rtt_ms, jitter_ms, down_kbps, up_kbps, loss_pct, _)| Condition {
                name: name.into(),
                rtt_ms,
                jitter_ms,
                down_kbps,
                up_kbps,
                loss_pct,
            },
        )
        .filter(|condition| !condition.is_perfect())
}

pub fn is_preset(name: &str) -> bool {
    PRESET_NAMES.contains(&name)
}

/// A preset's name as a command-line flag takes it (the server's `--network`, the load generator's):
/// the name, or a sentence listing the ones there are.
pub fn preset_name(name: &str) -> Result<String, String> {
    if is_preset(name) {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "unknown network preset (want one of {})",
            PRESET_NAMES.join(", ")
        ))
    }
}

impl Condition {
    /// A line with nothing to emulate.
    pub fn is_perfect(&self) -> bool {
        self.rtt_ms == 0
            && self.jitter_ms == 0
            && self.down_kbps == 0
            && self.up_kbps == 0
            && self.loss_pct == 0.0
    }

    /// One one-way delay: half the round trip, moved by up to the jitter either way. `unit` is a
    /// uniform random number in [0, 1).
    pub fn one_way_ms(&self, unit: f64) -> f64 {
        let jitter = f64::from(self.jitter_ms) * (2.0 * unit - 1.0);
        (f64::from(self.rtt_ms) / 2.0 + jitter).max(0.0)
    }

    /// How long TCP waits before it sends a lost segment again: its retransmission timeout.
    pub fn rto_ms(&self) -> f64 {
        MIN_RTO_MS.max(f64::from(self.rtt_ms) + 4.0 * f64::from(self.jitter_ms))
    }

    /// Checks every field against its range, naming the first one that is out of it.
    pub fn validate(&self) -> Result<(), NetworkRejection> {
        let bad = |field: &'static str, why: String| Err(NetworkRejection::Field { field, why });
        if self.rtt_ms > MAX_RTT_MS {
            return bad("rtt_ms", format!("must be between 0 and {MAX_RTT_MS}"));
        }
        if self.jitter_ms > self.rtt_ms {
            return bad(
                "jitter_ms",
                format!("must not be above rtt_ms ({})", self.rtt_ms),
            );
        }
        for (field, kbps) in [("down_kbps", self.down_kbps), ("up_kbps", self.up_kbps)] {
            if kbps != 0 && !(MIN_KBPS..=MAX_KBPS).contains(&kbps) {
                return bad(
                    field,
                    format!("must be 0 (unlimited) or between {MIN_KBPS} and {MAX_KBPS}"),
                );
            }
        }
        if !(0.0..=MAX_LOSS_PCT).contains(&self.loss_pct) {
            return bad("loss_pct", format!("must be between 0 and {MAX_LOSS_PCT}"));
        }
        Ok(())
    }

    /// `3g (300 ± 50 ms, 1,600/768 kbit/s)`, for notices and the page.
    pub fn describe(&self) -> String {
        let mut parts = vec![match self.jitter_ms {
            0 => format!("{} ms", self.rtt_ms),
            jitter => format!("{} ± {jitter} ms", self.rtt_ms),
        }];
        match (self.down_kbps, self.up_kbps) {
            (0, 0) => {}
            (down, up) if down == up => {
                parts.push(format!("{} kbit/s", group_thousands(u64::from(down))))
            }
            (down, up) => parts.push(format!(
                "{} down / {} up kbit/s",
                kbps_text(down),
                kbps_text(up)
            )),
        }
        if self.loss_pct > 0.0 {
            parts.push(format!("{} % loss", self.loss_pct));
        }
        format!("{} ({})", self.name, parts.join(", "))
    }
}

fn kbps_text(kbps: u32) -> String {
    if kbps == 0 {
        "unlimited".into()
    } else {
        group_thousands(u64::from(kbps))
    }
}

/// Why a `POST /api/network` was refused; every message names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkRejection {
    NotAnObject,
    Field { field: &'static str, why: String },
    UnknownField(String),
    UnknownPreset(String),
    PresetAndFields,
}

impl fmt::Display for NetworkRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkRejection::NotAnObject => f.write_str(
                "the body must be a JSON object: {\"lane\": …, \"preset\": …} or {\"lane\": …, \"rtt_ms\": …}",
            ),
            NetworkRejection::Field { field, why } => write!(f, "{field} {why}"),
            NetworkRejection::UnknownField(field) => write!(
                f,
                "{field} is not a field of a network condition (lane, preset, rtt_ms, jitter_ms, down_kbps, up_kbps, loss_pct)"
            ),
            NetworkRejection::UnknownPreset(name) => write!(
                f,
                "preset {name:?} is unknown: expected one of {}",
                PRESET_NAMES.join(", ")
            ),
            NetworkRejection::PresetAndFields => {
                f.write_str("preset: give a preset or explicit values, not both")
            }
        }
    }
}

impl std::error::Error for NetworkRejection {}

/// A checked `POST /api/network`: which lanes, and the condition they get (`None` clears them).
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkRequest {
    pub lane: FaultTarget,
    pub condition: Option<Condition>,
}

/// `all, poll, longpoll, stream, sse, ws or webtransport`: every lane a request may name.
fn lane_words() -> String {
    let lanes: Vec<&str> = LaneId::ALL.iter().map(|lane| lane.as_str()).collect();
    let (last, rest) = lanes.split_last().expect("there are lanes");
    format!("all, {} or {last}", rest.join(", "))
}

impl NetworkRequest {
    /// Reads and checks a request body. Parsed by hand rather than by serde so that every refusal names
    /// its field and says what it takes.
    pub fn from_json(body: &serde_json::Value) -> Result<NetworkRequest, NetworkRejection> {
        let object = body.as_object().ok_or(NetworkRejection::NotAnObject)?;
        const FIELDS: [&str; 7] = [
            "lane",
            "preset",
            "rtt_ms",
            "jitter_ms",
            "down_kbps",
            "up_kbps",
            "loss_pct",
        ];
        if let Some(unknown) = object.keys().find(|key| !FIELDS.contains(&key.as_str())) {
            return Err(NetworkRejection::UnknownField(unknown.clone()));
        }
        let lane_field = |why: &str| NetworkRejection::Field {
            field: "lane",
            why: why.into(),
        };
        let lane = match object.get("lane") {
            None => return Err(lane_field(&format!("is required: {}", lane_words()))),
            Some(serde_json::Value::String(name)) if name == "all" => FaultTarget::ALL,
            Some(serde_json::Value::String(name)) => {
                FaultTarget::Lane(name.parse::<LaneId>().map_err(|_| {
                    lane_field(&format!("{name:?} is unknown: expected {}", lane_words()))
                })?)
            }
            Some(_) => {
                return Err(lane_field(&format!("must be a string: {}", lane_words())));
            }
        };
        let explicit = FIELDS[2..].iter().any(|field| object.contains_key(*field));
        let condition = match object.get("preset") {
            Some(_) if explicit => return Err(NetworkRejection::PresetAndFields),
            Some(serde_json::Value::String(name)) if is_preset(name) => preset(name),
            Some(serde_json::Value::String(name)) => {
                return Err(NetworkRejection::UnknownPreset(name.clone()));
            }
            Some(_) => {
                return Err(NetworkRejection::Field {
                    field: "preset",
                    why: "must be a string".into(),
                });
            }
            None => {
                let whole = |field: &'static str| -> Result<u32, NetworkRejection> {
                    match object.get(field) {
                        None => Ok(0),
                        Some(value) => value
                            .as_u64()
                            .and_then(|n| u32::try_from(n).ok())
                            .ok_or_else(|| NetworkRejection::Field {
                                field,
                                why: "must be a whole number of at least 0".into(),
                            }),
                    }
                };
                let loss_pct = match object.get("loss_pct") {
                    None => 0.0,
                    Some(value) => value.as_f64().ok_or_else(|| NetworkRejection::Field {
                        field: "loss_pct",
                        why: "must be a number".into(),
                    })?,
                };
                let condition = Condition {
                    name: "custom".into(),
                    rtt_ms: whole("rtt_ms")?,
                    jitter_ms: whole("jitter_ms")?,
                    down_kbps: whole("down_kbps")?,
                    up_kbps: whole("up_kbps")?,
                    loss_pct,
                };
                condition.validate()?;
                (!condition.is_perfect()).then_some(condition)
            }
        };
        Ok(NetworkRequest { lane, condition })
    }

    /// The body that asks for this request (what the page and the load generator send).
    pub fn to_json(lane: FaultTarget, condition: &Condition) -> serde_json::Value {
        if is_preset(&condition.name) && preset(&condition.name).as_ref() == Some(condition) {
            return serde_json::json!({"lane": lane.as_str(), "preset": condition.name});
        }
        serde_json::json!({
            "lane": lane.as_str(),
            "rtt_ms": condition.rtt_ms,
            "jitter_ms": condition.jitter_ms,
            "down_kbps": condition.down_kbps,
            "up_kbps": condition.up_kbps,
            "loss_pct": condition.loss_pct,
        })
    }
}

/// The condition of each lane (`null` for none), as `GET /api/network` and every answer list them: a JSON
/// object keyed by lane id (`{"poll": …, "longpoll": null, …}`), one key per lane in [`LaneId::ALL`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LaneConditions(pub PerLane<Option<Condition>>);

impl From<&PerLane<Option<Condition>>> for LaneConditions {
    fn from(lanes: &PerLane<Option<Condition>>) -> LaneConditions {
        LaneConditions(lanes.clone())
    }
}

impl LaneConditions {
    pub fn get(&self, lane: LaneId) -> Option<&Condition> {
        self.0[lane].as_ref()
    }
}

impl std::ops::Index<LaneId> for LaneConditions {
    type Output = Option<Condition>;

    fn index(&self, lane: LaneId) -> &Option<Condition> {
        &self.0[lane]
    }
}

impl std::ops::IndexMut<LaneId> for LaneConditions {
    fn index_mut(&mut self, lane: LaneId) -> &mut Option<Condition> {
        &mut self.0[lane]
    }
}

impl Serialize for LaneConditions {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(LaneId::COUNT))?;
        for (lane, condition) in self.0.iter() {
            map.serialize_entry(lane.as_str(), condition)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for LaneConditions {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A lane missing from the object has no condition.
        let by_id =
            std::collections::BTreeMap::<LaneId, Option<Condition>>::deserialize(deserializer)?;
        let mut lanes = LaneConditions::default();
        for (lane, condition) in by_id {
            lanes[lane] = condition;
        }
        Ok(lanes)
    }
}

/// `GET /api/network`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkState {
    /// Who may change conditions (the same as for faults).
    pub auth: FaultAuth,
    pub presets: Vec<Preset>,
    pub lanes: LaneConditions,
}

/// The answer to `POST /api/network`: what was set where, and every lane's condition after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkChange {
    pub lane: FaultTarget,
    /// `None`: the lanes are back on a perfect line.
    pub condition: Option<Condition>,
    /// The server's clock when it took effect, Unix milliseconds.
    pub at_ms: u64,
    pub lanes: LaneConditions,
}

impl NetworkChange {
    pub fn describe(&self) -> String {
        // The lanes as the page names them ("the held letters now run over 3g"), never their ids.
        let (lanes, plural) = match self.lane {
            FaultTarget::Lane(lane) => {
                let title = lane.title().to_ascii_lowercase();
                let plural = title.ends_with('s');
                (format!("the {title}"), plural)
            }
            FaultTarget::All(_) => ("every lane".into(), false),
        };
        let (runs, is) = if plural {
            ("run", "are")
        } else {
            ("runs", "is")
        };
        match &self.condition {
            Some(condition) => format!("{lanes} now {runs} over {}", condition.describe()),
            None => format!("{lanes} {is} back on loopback"),
        }
    }
}

/// One direction of one connection as the emulated path sees it: when each chunk written into it comes
/// out at the far end. Times are milliseconds on any monotonic clock.
///
/// Bytes leave one after another at the bandwidth (a burst queues behind itself), travel one one-way
/// delay, and come out in the order they went in, as on one TCP connection: a lost chunk is sent again
/// after the retransmission timeout, and everything behind it waits for it (head-of-line blocking).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PathClock {
    /// When the link finishes sending what it was given so far.
    link_free_ms: f64,
    /// When the last chunk comes out: no chunk may come out before it.
    last_out_ms: f64,
}

/// When one chunk comes out, and whether it was lost on the way (and sent again).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Delivery {
    pub out_ms: f64,
    pub lost: bool,
}

impl PathClock {
    /// Schedules `bytes` written at `now_ms` over `condition`, limited by `kbps` (the direction's
    /// bandwidth). `jitter_unit` and `loss_unit` are uniform random numbers in [0, 1).
    pub fn send(
        &mut self,
        now_ms: f64,
        bytes: usize,
        condition: &Condition,
        kbps: u32,
        jitter_unit: f64,
        loss_unit: f64,
    ) -> Delivery {
        let sent_ms = self.transmit(now_ms, bytes, kbps);
        let lost = loss_unit * 100.0 < condition.loss_pct;
        let mut out = sent_ms + condition.one_way_ms(jitter_unit);
        if lost {
            out += condition.rto_ms();
        }
        let out_ms = out.max(self.last_out_ms);
        self.last_out_ms = out_ms;
        Delivery { out_ms, lost }
    }

    /// Schedules a datagram (WebTransport's): it shares the link's bandwidth, but nothing resends it
    /// when it is lost — it never arrives — and it waits for nothing sent before it, so a loss holds
    /// nothing back (no head-of-line blocking). `out_ms` is when it would arrive if not lost.
    pub fn send_datagram(
        &mut self,
        now_ms: f64,
        bytes: usize,
        condition: &Condition,
        kbps: u32,
        jitter_unit: f64,
        loss_unit: f64,
    ) -> Delivery {
        let sent_ms = self.transmit(now_ms, bytes, kbps);
        Delivery {
            out_ms: sent_ms + condition.one_way_ms(jitter_unit),
            lost: loss_unit * 100.0 < condition.loss_pct,
        }
    }

    /// Puts `bytes` on the link at `kbps` after what it is still sending; when the last bit leaves.
    fn transmit(&mut self, now_ms: f64, bytes: usize, kbps: u32) -> f64 {
        let start = self.link_free_ms.max(now_ms);
        // kbit/s is bits per millisecond.
        let sending = if kbps == 0 {
            0.0
        } else {
            bytes as f64 * 8.0 / f64::from(kbps)
        };
        self.link_free_ms = start + sending;
        self.link_free_ms
    }
}

#[cfg(test)]
mod tests;
