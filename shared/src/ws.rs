//! The phone line: WebSocket messages, named by direction. Every text frame holds one JSON object whose
//! `type` names the message.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::{ChatPost, Event, Gap, Seq};

/// What a browser says on the WebSocket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BrowserMessage {
    /// A chat message; the server answers `chat_accepted` (or `error`) and everyone receives the event.
    Chat(ChatPost),
    /// A clock probe; the server answers `pong` with both clocks at once.
    Ping(Ping),
    /// Replay everything after `after` on this connection (the server answers with the events, or a gap
    /// notice first when it no longer holds some of them).
    Resume { after: Seq },
}

impl BrowserMessage {
    /// Parses one text frame, telling a frame that is not JSON apart from JSON of an unknown `type` and
    /// from a known type with bad fields, so the browser gets an error it can act on.
    pub fn parse(text: &str) -> Result<BrowserMessage, (ErrorCode, String)> {
        match serde_json::from_str::<BrowserMessage>(text) {
            Ok(message) => Ok(message),
            Err(err) => Err(classify(text, err)),
        }
    }
}

fn classify(text: &str, err: serde_json::Error) -> (ErrorCode, String) {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return (
            ErrorCode::MalformedJson,
            format!("frame is not valid JSON: {err}"),
        );
    };
    match value.get("type").and_then(serde_json::Value::as_str) {
        None => (
            ErrorCode::Invalid,
            "message must be a JSON object with a string \"type\"".to_owned(),
        ),
        Some(kind @ ("chat" | "ping" | "resume")) => {
            (ErrorCode::Invalid, format!("bad {kind:?} message: {err}"))
        }
        Some(kind) => (
            ErrorCode::UnknownType,
            format!("unknown message type {kind:?}: expected one of chat, ping, resume"),
        ),
    }
}

/// A clock probe from the browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ping {
    /// Chosen by the browser to pair the pong with its ping.
    pub id: u64,
    /// The browser's clock when it sent the ping, Unix milliseconds (fractional allowed).
    pub client_ms: f64,
}

/// What the server says on the WebSocket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The first frame on every connection.
    Hello(Hello),
    /// One event of the stream.
    Event(Event),
    /// "Still here": sent every heartbeat interval, so a silent dead line can be told from a quiet one.
    Heartbeat(Heartbeat),
    /// The answer to a ping.
    Pong(Pong),
    /// Seqs the client should have had but the server no longer holds.
    Gap(Gap),
    /// A chat message sent on this connection was published under `seq`.
    ChatAccepted(crate::ChatAccepted),
    /// The last frame from the browser was refused; the connection stays open unless errors keep coming.
    Error { code: ErrorCode, message: String },
}

impl ServerMessage {
    /// Reads one message as the derived `Deserialize` does, with one difference in how: the `type` is
    /// read first, then the text again straight into that variant's body. The derived reader of an
    /// internally tagged enum buffers the whole message and reads it a second time from the buffer,
    /// which generates a second reader for every body type (the event's four kinds among them); in the
    /// dashboard's WebAssembly that copy was the largest single piece of serde code. Two passes over a
    /// frame of a few hundred bytes cost less than that download.
    pub fn from_json(text: &str) -> serde_json::Result<ServerMessage> {
        #[derive(Deserialize)]
        struct Tag<'a> {
            #[serde(rename = "type", borrow)]
            kind: std::borrow::Cow<'a, str>,
        }
        #[derive(Deserialize)]
        struct Refusal {
            code: ErrorCode,
            message: String,
        }
        const TYPES: &[&str] = &[
            "hello",
            "event",
            "heartbeat",
            "pong",
            "gap",
            "chat_accepted",
            "error",
        ];
        let tag: Tag<'_> = serde_json::from_str(text)?;
        Ok(match tag.kind.as_ref() {
            "hello" => ServerMessage::Hello(serde_json::from_str(text)?),
            "event" => ServerMessage::Event(serde_json::from_str(text)?),
            "heartbeat" => ServerMessage::Heartbeat(serde_json::from_str(text)?),
            "pong" => ServerMessage::Pong(serde_json::from_str(text)?),
            "gap" => ServerMessage::Gap(serde_json::from_str(text)?),
            "chat_accepted" => ServerMessage::ChatAccepted(serde_json::from_str(text)?),
            "error" => {
                let Refusal { code, message } = serde_json::from_str(text)?;
                ServerMessage::Error { code, message }
            }
            other => return Err(serde::de::Error::unknown_variant(other, TYPES)),
        })
    }
}

/// The first thing a client hears on a streaming lane (WebSocket `hello`, SSE `hello` event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// The history's epoch (see [`crate::Batch::epoch`]).
    pub epoch: u64,
    /// The newest seq published so far (0 before the first event).
    pub head: Seq,
    /// The oldest seq the server still holds, or `None` while its history is empty.
    pub oldest: Option<Seq>,
    /// The seq this connection resumes after, if it asked for a resume; events follow from there.
    pub resumed_after: Option<Seq>,
    /// How often the server sends a heartbeat, so the client can declare the line dead after a few
    /// missed ones.
    pub heartbeat_ms: u64,
    /// Which server instance this connection reached.
    pub instance: String,
    /// The server's clock, Unix milliseconds.
    pub server_ms: u64,
    /// The size of the request that opened this stream, as the server read it: a browser cannot see its
    /// own request headers, so the server tells it, and the page can count the dial's real bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_bytes: Option<u64>,
    /// Which request on its TCP connection opened this stream: `1` when the browser opened a new
    /// connection for it (and paid the handshake), more when it reused a kept-alive one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_request: Option<u64>,
}

/// A heartbeat: proof of life carrying the server's clock and head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub server_ms: u64,
    pub head: Seq,
}

/// The answer to a [`Ping`], carrying both clocks: round trip = now − `client_ms`; the server's clock
/// runs ahead of the browser's by `server_ms` − (`client_ms` + round trip / 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pong {
    pub id: u64,
    pub client_ms: f64,
    pub server_ms: f64,
}

impl Pong {
    /// Round trip and clock offset (server minus browser) in ms, given the browser's clock on receipt.
    pub fn measure(&self, received_ms: f64) -> (f64, f64) {
        let (up, down) = self.legs(received_ms);
        ((up + down).max(0.0), (up - down) / 2.0)
    }

    /// Each way as the two clocks read it: the way up plus the offset (server minus browser), and the
    /// way down minus it. Their minima over many probes give the offset without assuming any one
    /// probe's two ways took the same time (see the dashboard's clock).
    pub fn legs(&self, received_ms: f64) -> (f64, f64) {
        (
            self.server_ms - self.client_ms,
            received_ms - self.server_ms,
        )
    }
}

/// Why the server refused a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not JSON.
    MalformedJson,
    /// JSON with a `type` the server does not know.
    UnknownType,
    /// A known type with missing or wrong fields, or a chat message over its limits.
    Invalid,
    /// Larger than the server accepts for one message.
    TooLarge,
    /// A binary frame; the protocol is JSON text.
    Binary,
    /// Chat messages sent faster than the server accepts from one client.
    RateLimited,
    /// The server cannot publish right now (a `pause` fault); try again shortly.
    Unavailable,
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_value(self).ok();
        f.write_str(
            text.as_ref()
                .and_then(serde_json::Value::as_str)
                .unwrap_or("error"),
        )
    }
}

/// WebSocket close codes the server uses, and what each means.
pub mod close_code {
    /// The browser hung up, or the server ended the call normally.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// The browser broke the WebSocket protocol (an unmasked frame, reserved bits set, a bad opcode).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text frame was not valid UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// The browser kept sending frames the server had to refuse.
    pub const POLICY: u16 = 1008;
    /// A frame was larger than the server's hard limit.
    pub const TOO_BIG: u16 = 1009;
    /// The browser stopped answering protocol pings: the line is considered dead.
    pub const PEER_SILENT: u16 = 4000;
    /// The client fell so far behind that its own send queue overflowed; it should redial and resume.
    pub const TOO_SLOW: u16 = 4001;
    /// The server is restarting (the failure lab's `restart`); redial and resume after a moment.
    pub const SERVICE_RESTART: u16 = 1012;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChatAccepted;
    use crate::event::tests::samples;

    #[test]
    fn browser_messages_round_trip() {
        let messages = vec![
            BrowserMessage::Chat(ChatPost {
                author: "a".into(),
                text: "b".into(),
                client_ref: None,
            }),
            BrowserMessage::Ping(Ping {
                id: 3,
                client_ms: 1_700_000_000_000.5,
            }),
            BrowserMessage::Resume { after: 41 },
        ];
        for message in messages {
            let json = serde_json::to_string(&message).unwrap();
            assert_eq!(BrowserMessage::parse(&json).unwrap(), message, "{json}");
        }
        assert_eq!(
            serde_json::to_string(&BrowserMessage::Resume { after: 41 }).unwrap(),
            r#"{"type":"resume","after":41}"#
        );
    }

    #[test]
    fn server_messages_round_trip() {
        let mut messages = vec![
            ServerMessage::Hello(Hello {
                epoch: 1,
                head: 2,
                oldest: Some(1),
                resumed_after: None,
                heartbeat_ms: 5000,
                instance: "a".into(),
                server_ms: 3,
                request_bytes: Some(120),
                connection_request: None,
            }),
            ServerMessage::Heartbeat(Heartbeat {
                server_ms: 4,
                head: 2,
            }),
            ServerMessage::Pong(Pong {
                id: 1,
                client_ms: 2.5,
                server_ms: 3.0,
            }),
            ServerMessage::Gap(Gap { first: 1, last: 9 }),
            ServerMessage::ChatAccepted(ChatAccepted {
                seq: 5,
                ts_ms: 6,
                client_ref: Some("r".into()),
            }),
            ServerMessage::Error {
                code: ErrorCode::UnknownType,
                message: "nope".into(),
            },
        ];
        messages.extend(samples().into_iter().map(ServerMessage::Event));
        for message in messages {
            let json = serde_json::to_string(&message).unwrap();
            assert_eq!(
                serde_json::from_str::<ServerMessage>(&json).unwrap(),
                message,
                "{json}"
            );
            assert_eq!(ServerMessage::from_json(&json).unwrap(), message, "{json}");
        }
    }

    #[test]
    fn from_json_refuses_what_the_derived_reader_refuses() {
        for (json, says) in [
            (r#"{"type":"weather"}"#, "unknown variant `weather`"),
            (r#"{"head":3}"#, "missing field `type`"),
            (r#"{"type":"gap","first":1}"#, "missing field `last`"),
            (
                r#"{"type":"event","seq":1,"ts_ms":2,"kind":"rain","data":{}}"#,
                "unknown variant",
            ),
            (r#"{"type":"heartbeat","#, "EOF"),
            (r#"[1,2]"#, "invalid type"),
        ] {
            assert!(
                serde_json::from_str::<ServerMessage>(json).is_err(),
                "{json}"
            );
            let err = ServerMessage::from_json(json).unwrap_err().to_string();
            assert!(err.contains(says), "{json}: {err}");
        }
        // The type may come anywhere, as with the derived reader, and a type with an escape reads too.
        let late = r#"{"first":1,"last":2,"type":"g\u0061p"}"#;
        assert_eq!(
            ServerMessage::from_json(late).unwrap(),
            ServerMessage::Gap(Gap { first: 1, last: 2 })
        );
    }

    #[test]
    fn an_event_frame_is_the_event_with_a_type() {
        let event = samples().remove(2);
        let json = serde_json::to_value(ServerMessage::Event(event.clone())).unwrap();
        let mut plain = serde_json::to_value(&event).unwrap();
        plain["type"] = "event".into();
        assert_eq!(json, plain);
    }

    #[test]
    fn bad_frames_are_classified() {
        assert_eq!(
            BrowserMessage::parse("{not json").unwrap_err().0,
            ErrorCode::MalformedJson
        );
        assert_eq!(
            BrowserMessage::parse(r#"{"type":"dance"}"#).unwrap_err().0,
            ErrorCode::UnknownType
        );
        assert_eq!(
            BrowserMessage::parse(r#"{"type":"ping"}"#).unwrap_err().0,
            ErrorCode::Invalid
        );
        assert_eq!(
            BrowserMessage::parse(r#"[1,2]"#).unwrap_err().0,
            ErrorCode::Invalid
        );
        assert_eq!(
            BrowserMessage::parse(r#"{"type":7}"#).unwrap_err().0,
            ErrorCode::Invalid
        );
        let (code, message) = BrowserMessage::parse(r#"{"type":"dance"}"#).unwrap_err();
        assert_eq!(code.to_string(), "unknown_type");
        assert!(message.contains("dance"), "{message}");
    }

    #[test]
    fn browser_clocks_survive_the_echo_exactly() {
        // A pong must carry back the very value the browser sent, or the round trip is off by an ulp.
        for client_ms in [1_795_317_792_056.568, 1_700_000_000_000.123_4, 0.1 + 0.2] {
            let json =
                serde_json::to_string(&BrowserMessage::Ping(Ping { id: 1, client_ms })).unwrap();
            let Ok(BrowserMessage::Ping(ping)) = BrowserMessage::parse(&json) else {
                panic!("{json}")
            };
            assert_eq!(ping.client_ms.to_bits(), client_ms.to_bits(), "{json}");
        }
    }

    #[test]
    fn pong_measures_round_trip_and_offset() {
        // Browser sends at 1000, server stamps 1550 (its clock is 500 ahead), reply lands at 1100.
        let pong = Pong {
            id: 1,
            client_ms: 1000.0,
            server_ms: 1550.0,
        };
        assert_eq!(pong.measure(1100.0), (100.0, 500.0));
    }
}
