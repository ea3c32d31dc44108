//! The one event stream every lane carries.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::Seq;

/// One published event. The server assigns `seq` and `ts_ms` when it publishes; every lane carries the
/// same event with the same `seq`, so deliveries can be compared message by message.
///
/// On the wire: `{"seq":7,"ts_ms":1700000000123,"kind":"chat","data":{...}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Strictly increasing across the whole stream; the resume point of every lane.
    pub seq: Seq,
    /// The server's publish time in Unix milliseconds; delay is measured from here.
    pub ts_ms: u64,
    /// What happened; its `kind` tag names the body.
    #[serde(flatten)]
    pub body: EventBody,
}

impl Event {
    /// The body's kind tag as it appears on the wire.
    pub fn kind(&self) -> &'static str {
        self.body.kind()
    }
}

/// Read field by field rather than with serde's `flatten`, which buffers the whole event and reads it a
/// second time from the buffer: that generated a second reader for every body type, a large piece of
/// the dashboard's WebAssembly. The server writes `kind` before `data`, so the body is read straight
/// into its type; `data` before `kind` is refused with an error that says so.
impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Event, D::Error> {
        deserializer.deserialize_map(EventVisitor)
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum EventField {
    Seq,
    TsMs,
    Kind,
    Data,
    #[serde(other)]
    Other,
}

/// The `kind` tag, which knows how to read its `data`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Load,
    Ticker,
    Chat,
    Notice,
}

impl<'de> DeserializeSeed<'de> for Kind {
    type Value = EventBody;

    fn deserialize<D: Deserializer<'de>>(self, data: D) -> Result<EventBody, D::Error> {
        Ok(match self {
            Kind::Load => EventBody::Load(HostLoad::deserialize(data)?),
            Kind::Ticker => EventBody::Ticker(TickerQuotes::deserialize(data)?),
            Kind::Chat => EventBody::Chat(ChatMessage::deserialize(data)?),
            Kind::Notice => EventBody::Notice(Notice::deserialize(data)?),
        })
    }
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Event;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event: seq, ts_ms, kind and data")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        let (mut seq, mut ts_ms, mut kind, mut body) = (None, None, None::<Kind>, None);
        while let Some(field) = map.next_key::<EventField>()? {
            match field {
                EventField::Seq => seq = Some(map.next_value()?),
                EventField::TsMs => ts_ms = Some(map.next_value()?),
                EventField::Kind => kind = Some(map.next_value()?),
                EventField::Data => {
                    let kind = kind.ok_or_else(|| {
                        de::Error::custom("an event's `kind` must come before its `data`")
                    })?;
                    body = Some(map.next_value_seed(kind)?);
                }
                EventField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Event {
            seq: seq.ok_or_else(|| de::Error::missing_field("seq"))?,
            ts_ms: ts_ms.ok_or_else(|| de::Error::missing_field("ts_ms"))?,
            body: match (kind, body) {
                (Some(_), Some(body)) => body,
                (None, _) => return Err(de::Error::missing_field("kind")),
                (Some(_), None) => return Err(de::Error::missing_field("data")),
            },
        })
    }
}

/// The typed body of an event, tagged by `kind` with its fields under `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum EventBody {
    /// A sample of the server host's real load.
    Load(HostLoad),
    /// New prices from the simulated ticker.
    Ticker(TickerQuotes),
    /// A chat message typed by someone in the page.
    Chat(ChatMessage),
    /// Something the server wants every viewer to see on the timeline (a fault, a restart, a gap).
    Notice(Notice),
}

impl EventBody {
    /// The kind tag as it appears on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::Load(_) => "load",
            EventBody::Ticker(_) => "ticker",
            EventBody::Chat(_) => "chat",
            EventBody::Notice(_) => "notice",
        }
    }
}

/// Real load of the host the server runs on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostLoad {
    /// CPU use over the last sampling interval, 0–100, averaged over all cores.
    pub cpu_percent: f32,
    /// Memory in use, in bytes.
    pub mem_used_bytes: u64,
    /// Physical memory, in bytes.
    pub mem_total_bytes: u64,
    /// The 1, 5 and 15 minute load averages.
    pub load_avg: [f64; 3],
    /// Bytes received per second on all interfaces over the last interval.
    pub net_rx_per_sec: u64,
    /// Bytes sent per second on all interfaces over the last interval.
    pub net_tx_per_sec: u64,
}

/// One tick of the simulated market: the symbols that moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TickerQuotes {
    pub quotes: Vec<Quote>,
}

/// The price of one symbol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    pub symbol: String,
    /// Price in the market's currency, rounded to cents.
    pub price: f64,
    /// Change since the ticker's opening price, in percent.
    pub change_pct: f64,
}

/// A chat message as everyone receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub author: String,
    pub text: String,
    /// Which way the sender sent it: as a letter or on the phone line.
    pub via: ChatVia,
    /// An opaque tag chosen by the sender, echoed back so it can recognise its own message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ref: Option<String>,
}

/// How a chat message reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatVia {
    /// `POST /api/messages` — a letter.
    Post,
    /// A WebSocket frame — said on the phone line.
    Ws,
    /// A line on a WebTransport bidirectional stream — said on the video call.
    WebTransport,
}

/// A notice for every viewer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub level: NoticeLevel,
    /// A stable machine-readable code, e.g. `server_started`.
    pub code: String,
    /// A human sentence.
    pub text: String,
    /// The fault this notice announces, when it announces one (so the page can shade its span).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<crate::Fault>,
    /// The network condition this notice announces, when it announces a change of one (so the page can
    /// shade the time it was in effect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Box<crate::network::NetworkChange>>,
    /// The traffic pattern this notice announces, when it announces a change of it (so the page can
    /// mark the moment on its timeline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<crate::traffic::TrafficChange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoticeLevel {
    Info,
    Warning,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn samples() -> Vec<Event> {
        vec![
            Event {
                seq: 1,
                ts_ms: 1_700_000_000_000,
                body: EventBody::Load(HostLoad {
                    cpu_percent: 12.5,
                    mem_used_bytes: 3 << 30,
                    mem_total_bytes: 24 << 30,
                    load_avg: [0.5, 0.25, 0.125],
                    net_rx_per_sec: 1200,
                    net_tx_per_sec: 800,
                }),
            },
            Event {
                seq: 2,
                ts_ms: 1_700_000_000_100,
                body: EventBody::Ticker(TickerQuotes {
                    quotes: vec![Quote {
                        symbol: "ACME".into(),
                        price: 101.25,
                        change_pct: 1.25,
                    }],
                }),
            },
            Event {
                seq: 3,
                ts_ms: 1_700_000_000_200,
                body: EventBody::Chat(ChatMessage {
                    author: "ana".into(),
                    text: "hello \"world\" \u{1F4DE}".into(),
                    via: ChatVia::Ws,
                    client_ref: Some("c-1".into()),
                }),
            },
            Event {
                seq: u64::MAX,
                ts_ms: u64::MAX,
                body: EventBody::Notice(Notice {
                    level: NoticeLevel::Warning,
                    code: "server_started".into(),
                    text: "a fresh history begins".into(),
                    fault: None,
                    network: None,
                    traffic: None,
                }),
            },
        ]
    }

    #[test]
    fn every_kind_round_trips() {
        for event in samples() {
            let json = serde_json::to_string(&event).unwrap();
            let back: Event = serde_json::from_str(&json).unwrap();
            assert_eq!(back, event, "{json}");
        }
    }

    #[test]
    fn wire_shape_is_flat_with_kind_and_data() {
        let json = serde_json::to_value(&samples()[2]).unwrap();
        assert_eq!(json["seq"], 3);
        assert_eq!(json["kind"], "chat");
        assert_eq!(json["data"]["via"], "ws");
        assert_eq!(json["data"]["client_ref"], "c-1");
        assert_eq!(samples()[2].kind(), "chat");
    }

    #[test]
    fn unknown_kind_is_rejected() {
        let err =
            serde_json::from_str::<Event>(r#"{"seq":1,"ts_ms":2,"kind":"weather","data":{}}"#)
                .unwrap_err();
        assert!(
            err.to_string().contains("unknown variant `weather`"),
            "{err}"
        );
    }

    #[test]
    fn an_event_reads_in_any_order_with_kind_before_data_and_says_what_is_wrong() {
        let event: Event = serde_json::from_str(
            r#"{"kind":"chat","extra":[1,{"a":2}],"ts_ms":2,"data":{"author":"a","text":"b","via":"post"},"seq":1}"#,
        )
        .unwrap();
        assert_eq!((event.seq, event.ts_ms, event.kind()), (1, 2, "chat"));
        for (json, says) in [
            (
                r#"{"seq":1,"ts_ms":2,"data":{},"kind":"chat"}"#,
                "must come before",
            ),
            (
                r#"{"seq":1,"ts_ms":2,"kind":"chat"}"#,
                "missing field `data`",
            ),
            (r#"{"seq":1,"kind":"load","data":{}}"#, "missing field"),
            (r#"{"seq":1,"ts_ms":2}"#, "missing field `kind`"),
            (
                r#"{"seq":1,"ts_ms":2,"kind":"chat","data":{"author":"a"}}"#,
                "missing field `text`",
            ),
            (r#"{"seq":"one","ts_ms":2}"#, "invalid type"),
        ] {
            let err = serde_json::from_str::<Event>(json).unwrap_err().to_string();
            assert!(err.contains(says), "{json}: {err}");
        }
    }

    #[test]
    fn chat_without_client_ref_omits_it() {
        let msg = ChatMessage {
            author: "a".into(),
            text: "b".into(),
            via: ChatVia::Post,
            client_ref: None,
        };
        assert_eq!(
            serde_json::to_string(&msg).unwrap(),
            r#"{"author":"a","text":"b","via":"post"}"#
        );
    }
}
