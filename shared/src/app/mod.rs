//! "Your app through the lab": the wire types of the server's reverse proxy in front of a person's own
//! app (`GET /api/app`, `POST /api/app/faults`, `POST /api/app/network`), and the one way both sides
//! name a channel.
//!
//! A channel is what the HAR classifier ([`crate::har::classify`]) finds: a loop of requests to one
//! method and path (letters or held letters), an event stream (radio) or a socket (phone call). Its
//! [`channel_id`] is derived from its name alone, so the proxy can tell which channel a request belongs
//! to the moment its head arrives, before any classification, and a fault aimed at a channel hits every
//! later connection of it.

use serde::{Deserialize, Serialize};
use std::fmt;

pub mod experiment;
pub mod heartbeat;
pub mod route;

/// The largest fault duration the proxy takes (an hour): longer is a mistake, not an experiment.
pub const MAX_APP_FAULT_MS: u64 = 3_600_000;

/// A channel's id, from its name (`GET /api/status`, or `ws://host/socket.io/` for a socket): eight hex
/// digits of its FNV-1a hash, stable across runs and the same in the server and the page.
pub fn channel_id(name: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:08x}", (hash >> 32) as u32 ^ hash as u32)
}

/// What a request belongs to, known the moment its head arrives: a socket by the address it dials, any
/// other request by its method and path (never its query, which changes every time).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelKey {
    pub socket: bool,
    pub method: String,
    pub path: String,
    /// `GET /api/status`, or `ws://HOST/path` for a socket (a HAR names a socket by its URL).
    pub name: String,
    /// [`channel_id`] of the name.
    pub id: String,
}

impl ChannelKey {
    pub fn new(method: &str, host: &str, path: &str, socket: bool) -> ChannelKey {
        let name = if socket {
            format!("ws://{host}{path}")
        } else {
            format!("{method} {path}")
        };
        ChannelKey {
            socket,
            method: method.to_owned(),
            path: path.to_owned(),
            id: channel_id(&name),
            name,
        }
    }

    /// What a sentence calls the channel when it is of `kind`: `phone call (/socket.io/)`.
    pub fn called(&self, kind: crate::har::ChannelKind) -> String {
        format!("{} ({})", kind.called(), self.path)
    }
}

/// What became of a message the app sent towards the browser, by the lab's definitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reached {
    /// Written to the browser's socket and taken by the kernel — not merely read from the app.
    Delivered,
    /// Held back by a half-open: the browser's socket looked open and got nothing.
    Withheld,
    /// Dropped on the way by a fault (`no_heartbeat`).
    Swallowed,
    /// Read from the app, and never written before its connection was cut.
    Lost,
}

/// What the browser got of what the app sent on a channel (towards the browser only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Got {
    /// Messages read from the app: each is, or will be, one of the four below.
    pub sent: u64,
    pub delivered: u64,
    pub withheld: u64,
    pub swallowed: u64,
    pub lost: u64,
    /// When the browser last got one (Unix ms).
    pub last_delivered_ms: Option<f64>,
    /// Messages the app sent since the browser last got one, and when the first of them was sent.
    /// (Not read by the page, which shows the server's words about them: see [`AppReport`].)
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub undelivered: u64,
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub undelivered_since_ms: Option<f64>,
}

impl Got {
    /// A message read from the app, on its way.
    pub fn sent(&mut self, at_ms: f64) {
        self.sent += 1;
        self.undelivered += 1;
        self.undelivered_since_ms.get_or_insert(at_ms);
    }

    /// What became of `messages` of them.
    pub fn reached(&mut self, reached: Reached, messages: u64, at_ms: f64) {
        match reached {
            Reached::Delivered => {
                self.delivered += messages;
                self.last_delivered_ms = Some(at_ms);
                self.undelivered = 0;
                self.undelivered_since_ms = None;
            }
            Reached::Withheld => self.withheld += messages,
            Reached::Swallowed => self.swallowed += messages,
            Reached::Lost => self.lost += messages,
        }
    }

    /// Whether the browser has got nothing for a while although the app kept sending: at least
    /// [`Got::SILENT_AFTER`] messages over at least [`Got::SILENT_FOR_MS`], as of `now_ms`.
    pub fn starved(&self, now_ms: f64) -> bool {
        self.undelivered >= Self::SILENT_AFTER
            && self
                .undelivered_since_ms
                .is_some_and(|since| now_ms - since >= Self::SILENT_FOR_MS)
    }

    pub const SILENT_AFTER: u64 = 3;
    pub const SILENT_FOR_MS: f64 = 5_000.0;
}

/// What `GET /api/app` answers.
///
/// The page reads only what it shows: fields marked to be skipped on `wasm32` are left unread there,
/// which spares the dashboard's bundle the code that would read them (its first-load budget).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppReport {
    /// Where the proxy forwards (`http://127.0.0.1:8080`).
    pub upstream: String,
    /// Where the person opens their app (`http://127.0.0.1:4000/`).
    pub proxy_url: String,
    /// Whether the upstream answered the last connection the proxy tried; `None` before the first.
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub upstream_up: Option<bool>,
    /// What went wrong with the upstream last, in words (`nothing answers at 127.0.0.1:8080`).
    pub upstream_error: Option<String>,
    pub channels: Vec<AppChannel>,
    /// What the app's shape says (heartbeat pace, unchanged answers, a browser getting nothing), apart
    /// from any experiment.
    pub findings: Vec<Finding>,
    /// Every fault and network change aimed at the app, newest first, with its own findings.
    #[serde(default)]
    pub experiments: Vec<experiment::Experiment>,
    /// Faults in effect on the app's channels now.
    pub faults: Vec<AppFault>,
    /// Emulated networks on the app's channels now.
    pub networks: Vec<AppNetwork>,
    /// The faults of the session, oldest first, for the swimlanes' shading.
    #[serde(default)]
    pub history: Vec<AppFaultSpan>,
    /// The connections the lab cut (the most recent few hundred), oldest first, for the swimlanes' marks.
    #[serde(default)]
    pub cuts: Vec<AppCut>,
    /// The emulated networks of the session, oldest first, for the swimlanes' tint.
    #[serde(default)]
    pub network_history: Vec<AppNetworkSpan>,
    /// Exchanges (requests and sockets) recorded, and dropped to keep the recording bounded.
    pub recorded: u64,
    pub dropped: u64,
    /// Requests that belong to no channel (the page, its scripts, one-off calls).
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub other_requests: u64,
}

/// One channel of the app, with its figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppChannel {
    pub id: String,
    pub kind: crate::har::ChannelKind,
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub method: String,
    pub path: String,
    /// Its name as the classifier gives it (`GET /api/status`, `ws://127.0.0.1:4000/socket.io/`).
    pub name: String,
    pub requests: u64,
    pub empty_answers: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Events (radio) or frames (phone) both ways.
    pub messages: u64,
    /// Connections of the channel open through the proxy now.
    pub open: u64,
    /// Of those, connections a half-open left dead (nothing passes; the browser has not given up).
    #[serde(default)]
    pub dead: u64,
    /// What the browser got of the messages the app sent on the channel.
    #[serde(default)]
    pub got: Got,
    /// Lines dialled again after one of the same client closed (see [`crate::har::Channel`]).
    pub reconnects: u64,
    /// The most live connections open at once (held letters: the most held at once): its clients
    /// (tabs, or the app's own test clients). A connection a half-open killed is none.
    #[serde(default)]
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub clients: u64,
    /// What the session sent up besides its channel's own requests (Engine.IO's `POST`s, SockJS's
    /// `xhr_send`): how many, and their bytes.
    #[serde(default)]
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub uploads: u64,
    #[serde(default)]
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub upload_bytes: u64,
    pub heartbeat_ms: Option<f64>,
    pub longest_silence_ms: Option<f64>,
    pub cut_by_fault: u64,
    pub cut_by_idle_timeout: u64,
    /// The classifier's verdict in words.
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub verdict: String,
}

/// A sentence about the app, naming its figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The channel it is about, or `None` for the app as a whole.
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub channel: Option<String>,
    pub text: String,
    /// When what it says happened (Unix ms), for the clock time beside it.
    #[serde(default)]
    pub at_ms: Option<f64>,
}

/// A fault in effect on the app's channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppFault {
    pub kind: AppFaultKind,
    /// `all` or a channel id.
    pub channel: String,
    /// Milliseconds left; `None` for an idle timeout that holds until cleared.
    pub remaining_ms: Option<u64>,
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub delay_ms: Option<u64>,
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub idle_ms: Option<u64>,
}

/// When a fault was in effect, and on what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppFaultSpan {
    pub kind: AppFaultKind,
    /// `all` or a channel id.
    pub channel: String,
    /// Unix ms; `ended_ms` is `None` while it lasts (a drop lasts an instant).
    pub started_ms: f64,
    pub ended_ms: Option<f64>,
}

impl AppFaultSpan {
    /// Whether it was aimed at the channel `id`.
    pub fn hits(&self, id: &str) -> bool {
        self.channel == "all" || self.channel == id
    }
}

/// A connection of the app the lab cut.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppCut {
    /// The channel id of the connection.
    pub channel: String,
    /// Unix ms.
    pub at_ms: f64,
    /// What cut it: a fault (a drop, or a hiccup refusing it) or a proxy's idle timeout.
    pub by: CutCause,
}

/// What cut a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CutCause {
    Drop,
    Hiccup,
    IdleTimeout,
}

impl CutCause {
    /// What happened, for a mark's tooltip.
    pub fn words(self) -> &'static str {
        match self {
            CutCause::Drop => "cut by a drop",
            CutCause::Hiccup => "refused by a hiccup",
            CutCause::IdleTimeout => "hung up on by the idle timeout",
        }
    }
}

/// The time an emulated network was on a channel (or on all of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppNetworkSpan {
    /// `all` or a channel id.
    pub channel: String,
    /// The condition's name (`3g`, `custom`).
    pub name: String,
    /// Unix ms; `ended_ms` is `None` while it is on.
    pub started_ms: f64,
    pub ended_ms: Option<f64>,
}

impl AppNetworkSpan {
    /// Whether it was set on the channel `id`.
    pub fn covers(&self, id: &str) -> bool {
        self.channel == "all" || self.channel == id
    }
}

/// An emulated network on the app's channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppNetwork {
    /// `all` or a channel id.
    pub channel: String,
    pub condition: crate::network::Condition,
}

/// What the lab can do to the app's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppFaultKind {
    /// Cut every open connection of the channel now.
    Drop,
    /// Forward nothing either way on the channel's connections, and close nothing: they look open.
    HalfOpen,
    /// Refuse the channel's new connections for the duration.
    Hiccup,
    /// Add `delay_ms` to each answer and message.
    Delay,
    /// Answer the channel's requests `503` for the duration.
    #[serde(rename = "http_503")]
    Http503,
    /// Cut any connection of the channel silent for `idle_ms`, as a proxy does.
    IdleTimeout,
    /// Swallow the upstream's heartbeats on the channel (WebSocket pings and recognised heartbeats).
    NoHeartbeat,
    /// End every fault on the channel.
    Clear,
    /// Cut the connections a half-open left dead, so a tab that never gives up on them recovers.
    Release,
}

impl AppFaultKind {
    pub const ALL: [AppFaultKind; 9] = [
        AppFaultKind::Drop,
        AppFaultKind::HalfOpen,
        AppFaultKind::Hiccup,
        AppFaultKind::Delay,
        AppFaultKind::Http503,
        AppFaultKind::IdleTimeout,
        AppFaultKind::NoHeartbeat,
        AppFaultKind::Clear,
        AppFaultKind::Release,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            AppFaultKind::Drop => "drop",
            AppFaultKind::HalfOpen => "half_open",
            AppFaultKind::Hiccup => "hiccup",
            AppFaultKind::Delay => "delay",
            AppFaultKind::Http503 => "http_503",
            AppFaultKind::IdleTimeout => "idle_timeout",
            AppFaultKind::NoHeartbeat => "no_heartbeat",
            AppFaultKind::Clear => "clear",
            AppFaultKind::Release => "release",
        }
    }

    /// A short label for buttons.
    pub const fn title(self) -> &'static str {
        match self {
            AppFaultKind::Drop => "Drop",
            AppFaultKind::HalfOpen => "Half-open",
            AppFaultKind::Hiccup => "Refuse new connections",
            AppFaultKind::Delay => "Delay",
            AppFaultKind::Http503 => "503s",
            AppFaultKind::IdleTimeout => "Proxy idle timeout",
            AppFaultKind::NoHeartbeat => "Swallow heartbeats",
            AppFaultKind::Clear => "Clear",
            AppFaultKind::Release => "Release dead connections",
        }
    }

    /// What it does to the app, in one sentence.
    pub const fn explanation(self) -> &'static str {
        match self {
            AppFaultKind::Drop => "Every open connection of the channel is cut now.",
            AppFaultKind::HalfOpen => {
                "Nothing passes either way and nothing is closed: the app's socket still looks open. Only a heartbeat can tell."
            }
            AppFaultKind::Hiccup => "New connections of the channel are refused for a while.",
            AppFaultKind::Delay => "Every answer and message waits longer.",
            AppFaultKind::Http503 => "The channel's requests are answered 503 for a while.",
            AppFaultKind::IdleTimeout => {
                "A connection silent for the idle time is hung up on, as a proxy does."
            }
            AppFaultKind::NoHeartbeat => {
                "The upstream's heartbeats are swallowed: does the app notice a dead line?"
            }
            AppFaultKind::Clear => "Every fault on the channel ends.",
            AppFaultKind::Release => {
                "The connections a half-open left dead are cut, so the app hears they are gone."
            }
        }
    }

    /// Whether the kind lasts for a duration (and needs `duration_ms`).
    pub const fn lasts(self) -> bool {
        !matches!(
            self,
            AppFaultKind::Drop | AppFaultKind::Clear | AppFaultKind::Release
        )
    }
}

impl fmt::Display for AppFaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fault request, checked: what `POST /api/app/faults` takes.
#[derive(Debug, Clone, PartialEq)]
pub struct AppFaultRequest {
    pub kind: AppFaultKind,
    /// `None` for every channel.
    pub channel: Option<String>,
    /// How long it lasts; `None` for a drop, a clear, or an idle timeout held until cleared.
    pub duration_ms: Option<u64>,
    pub delay_ms: Option<u64>,
    pub idle_ms: Option<u64>,
}

/// Why a fault or network request was refused, naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRejection {
    pub field: &'static str,
    pub why: String,
}

impl fmt::Display for AppRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.why)
    }
}

impl std::error::Error for AppRejection {}

fn rejected(field: &'static str, why: impl Into<String>) -> AppRejection {
    AppRejection {
        field,
        why: why.into(),
    }
}

/// Reads `"channel"`: `all` (or absent) is every channel, anything else a channel id.
pub fn channel_field(
    object: &serde_json::Map<String, serde_json::Value>,
) -> Result<Option<String>, AppRejection> {
    match object.get("channel") {
        None => Ok(None),
        Some(serde_json::Value::String(id)) if id == "all" => Ok(None),
        Some(serde_json::Value::String(id))
            if id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Ok(Some(id.to_ascii_lowercase()))
        }
        Some(serde_json::Value::String(id)) => Err(rejected(
            "channel",
            format!("{id:?} is not a channel id: expected \"all\" or an id from GET /api/app"),
        )),
        Some(_) => Err(rejected(
            "channel",
            "must be a string: \"all\" or an id from GET /api/app",
        )),
    }
}

impl AppFaultRequest {
    /// Reads and checks a request body; every refusal names its field.
    pub fn from_json(body: &serde_json::Value) -> Result<AppFaultRequest, AppRejection> {
        let object = body
            .as_object()
            .ok_or_else(|| rejected("body", "must be a JSON object"))?;
        const FIELDS: [&str; 5] = ["kind", "channel", "duration_ms", "delay_ms", "idle_ms"];
        if let Some(unknown) = object.keys().find(|key| !FIELDS.contains(&key.as_str())) {
            return Err(rejected(
                "body",
                format!("unknown field {unknown:?}: expected {}", FIELDS.join(", ")),
            ));
        }
        let kinds = AppFaultKind::ALL.map(AppFaultKind::as_str).join(", ");
        let kind = match object.get("kind") {
            None => return Err(rejected("kind", format!("is required: one of {kinds}"))),
            Some(value) => serde_json::from_value::<AppFaultKind>(value.clone())
                .map_err(|_| rejected("kind", format!("{value} is unknown: one of {kinds}")))?,
        };
        let channel = channel_field(object)?;
        let millis = |field: &'static str, min: u64| -> Result<Option<u64>, AppRejection> {
            match object.get(field) {
                None => Ok(None),
                Some(value) => match value.as_u64() {
                    Some(ms) if (min..=MAX_APP_FAULT_MS).contains(&ms) => Ok(Some(ms)),
                    _ => Err(rejected(
                        field,
                        format!(
                            "must be a whole number of milliseconds from {min} to {MAX_APP_FAULT_MS}"
                        ),
                    )),
                },
            }
        };
        let duration_ms = millis("duration_ms", 1)?;
        let delay_ms = millis("delay_ms", 1)?;
        let idle_ms = millis("idle_ms", 100)?;
        let needs = |field: &'static str, value: Option<u64>| match value {
            Some(_) => Ok(()),
            None => Err(rejected(field, format!("is required for {kind}"))),
        };
        match kind {
            AppFaultKind::Delay => {
                needs("delay_ms", delay_ms)?;
                needs("duration_ms", duration_ms)?;
            }
            AppFaultKind::IdleTimeout => needs("idle_ms", idle_ms)?,
            AppFaultKind::HalfOpen
            | AppFaultKind::Hiccup
            | AppFaultKind::Http503
            | AppFaultKind::NoHeartbeat => needs("duration_ms", duration_ms)?,
            AppFaultKind::Drop | AppFaultKind::Clear | AppFaultKind::Release => {}
        }
        Ok(AppFaultRequest {
            kind,
            channel,
            duration_ms,
            delay_ms,
            idle_ms,
        })
    }
}

/// Whether a message's text is a heartbeat by its shape, whatever its pace: an Engine.IO ping or pong
/// (`2`, `3`), a JSON message whose `type` is a heartbeat word, or a Server-Sent Events block of only
/// comments (`: ping`) or named `heartbeat`, `ping` or `keepalive`. The HAR import and the proxy's
/// `no_heartbeat` fault recognise the same ones.
pub fn is_heartbeat_text(text: &str) -> bool {
    let text = text.trim();
    const WORDS: [&str; 5] = ["heartbeat", "ping", "pong", "keepalive", "keep-alive"];
    if matches!(text, "2" | "3" | "2probe" | "3probe") {
        return true;
    }
    if text.starts_with('{') && text.len() <= 256 {
        // Every heartbeat word holds one of these four letters' runs: a message that holds none is no
        // heartbeat, and is not parsed (the proxy asks this of every message it relays).
        let bytes = text.as_bytes();
        let mentions_a_beat = (0..bytes.len().saturating_sub(3)).any(|at| {
            matches!(bytes[at] | 0x20, b'p' | b'h' | b'k') && {
                let run = [
                    bytes[at] | 0x20,
                    bytes[at + 1] | 0x20,
                    bytes[at + 2] | 0x20,
                    bytes[at + 3] | 0x20,
                ];
                matches!(&run, b"ping" | b"pong" | b"hear" | b"keep")
            }
        });
        if !mentions_a_beat {
            return false;
        }
        if let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(text) {
            return ["type", "event", "kind", "op"].iter().any(|key| {
                fields
                    .get(*key)
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(|word| WORDS.contains(&word.to_ascii_lowercase().as_str()))
            });
        }
        return false;
    }
    let mut lines = text.lines().peekable();
    if lines.peek().is_none() {
        return false;
    }
    let mut comment_only = true;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("event:")
            && WORDS.contains(&name.trim().to_ascii_lowercase().as_str())
        {
            return true;
        }
        comment_only &= line.starts_with(':');
    }
    comment_only
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivered_is_what_the_browser_got_and_the_rest_is_counted_apart() {
        let mut got = Got::default();
        got.sent(1_000.0);
        got.reached(Reached::Delivered, 1, 1_010.0);
        assert_eq!((got.undelivered, got.last_delivered_ms), (0, Some(1_010.0)));
        got.sent(2_000.0);
        got.reached(Reached::Withheld, 1, 2_010.0);
        got.sent(3_000.0);
        got.reached(Reached::Swallowed, 1, 3_010.0);
        for at in [4_000.0, 5_000.0, 6_000.0] {
            got.sent(at);
        }
        got.reached(Reached::Lost, 3, 7_000.0);
        assert_eq!(
            (
                got.sent,
                got.delivered,
                got.withheld,
                got.swallowed,
                got.lost
            ),
            (6, 1, 1, 1, 3)
        );
        // Five messages sent since the browser last got one, the first at 2,000 ms.
        assert_eq!(
            (got.undelivered, got.undelivered_since_ms),
            (5, Some(2_000.0))
        );
        assert!(!got.starved(6_999.0), "not yet five seconds");
        assert!(got.starved(7_000.0));
        got.reached(Reached::Delivered, 1, 7_500.0);
        assert!(!got.starved(20_000.0));
    }

    #[test]
    fn a_channel_id_is_stable_and_short() {
        assert_eq!(channel_id("GET /api/status"), channel_id("GET /api/status"));
        assert_ne!(
            channel_id("GET /api/status"),
            channel_id("POST /api/status")
        );
        assert_eq!(channel_id("x").len(), 8);
    }

    #[test]
    fn fault_requests_name_the_field_they_lack_or_break() {
        let parse = |v: serde_json::Value| AppFaultRequest::from_json(&v);
        let ok = parse(serde_json::json!({"kind": "half_open", "duration_ms": 5000})).unwrap();
        assert_eq!(
            (ok.kind, ok.channel, ok.duration_ms),
            (AppFaultKind::HalfOpen, None, Some(5000))
        );
        assert_eq!(
            parse(serde_json::json!({"kind": "nope"}))
                .unwrap_err()
                .field,
            "kind"
        );
        assert_eq!(
            parse(serde_json::json!({"kind": "drop", "channel": "bad"}))
                .unwrap_err()
                .field,
            "channel"
        );
        assert_eq!(
            parse(serde_json::json!({"kind": "idle_timeout"}))
                .unwrap_err()
                .field,
            "idle_ms"
        );
        assert_eq!(
            parse(serde_json::json!({"kind": "delay", "duration_ms": 10}))
                .unwrap_err()
                .field,
            "delay_ms"
        );
        assert_eq!(
            parse(serde_json::json!({"kind": "http_503", "duration_ms": -1}))
                .unwrap_err()
                .field,
            "duration_ms"
        );
        assert_eq!(
            parse(serde_json::json!({"kind": "drop", "colour": 1}))
                .unwrap_err()
                .field,
            "body"
        );
        let idle = parse(
            serde_json::json!({"kind": "idle_timeout", "idle_ms": 3000, "channel": "0A1b2c3d"}),
        )
        .unwrap();
        assert_eq!(
            (idle.idle_ms, idle.channel.as_deref()),
            (Some(3000), Some("0a1b2c3d"))
        );
    }

    #[test]
    fn heartbeats_are_known_by_their_shape() {
        for beat in [
            "2",
            "3",
            r#"{"type":"heartbeat","server_ms":1}"#,
            ": ping",
            "event: keepalive\ndata: 1",
        ] {
            assert!(is_heartbeat_text(beat), "{beat}");
        }
        for news in [
            "42[\"chat\",\"hi\"]",
            r#"{"type":"event"}"#,
            "data: 5",
            "",
            "hello",
        ] {
            assert!(!is_heartbeat_text(news), "{news}");
        }
    }
}
