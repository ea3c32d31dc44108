//! Heartbeats by principle, with known signatures as hints.
//!
//! A heartbeat is a small message that repeats — the same payload, or a control frame — at a steady
//! pace, whatever the data does; a message and its answer within [`PAIR_MS`] (ping → pong, either way)
//! are one beat; data whose payloads change is never a heartbeat, however regular. The pace is read by
//! [`crate::har::classify`] for a HAR and the live proxy alike.
//!
//! The signatures below ([`signature`]) name what known frameworks send, so a heartbeat is known from
//! its first beat, and so the `no_heartbeat` fault swallows exactly those. An unknown protocol's
//! heartbeat is found by its pace: a small payload repeated (see [`payload_hash`]). The table is
//! documented in docs/PROTOCOL.md ("Heartbeats") with the framework each comes from.

/// A message in the other direction this soon after a beat answers it (a pong): one beat, not two.
pub const PAIR_MS: f64 = 1_000.0;

/// A message this small may be a heartbeat learned by its pace.
pub const SMALL: usize = 64;

/// What a channel's URL says of its protocol: a signature that would be data elsewhere (Engine.IO's
/// `2`, SockJS's `h`) is a heartbeat only on a channel of its own protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dialect {
    /// Engine.IO (Socket.IO's transport): an `EIO=` query, or its default paths.
    pub engine_io: bool,
    /// SockJS: a session URL (`…/<server>/<session>/<transport>`).
    pub sockjs: bool,
}

impl Dialect {
    /// The dialect of a request's URL (or its path and query).
    pub fn of(url: &str) -> Dialect {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        Dialect {
            engine_io: query.split('&').any(|pair| pair.starts_with("EIO="))
                || path.ends_with("/socket.io/")
                || path.ends_with("/engine.io/"),
            sockjs: crate::app::route::template_of(path).contains("/{server}/{session}/"),
        }
    }
}

/// The framework whose heartbeat `text` is, if it is one by its signature: a text frame's payload, an
/// event stream's event block, or a letter's whole answer. WebSocket ping and pong control frames are
/// heartbeats by their opcode and never reach this.
pub fn signature(text: &str, dialect: Dialect) -> Option<&'static str> {
    let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\u{1e}');
    if text.is_empty() || text.len() > 256 {
        return None;
    }
    if dialect.engine_io {
        // Engine.IO's ping and pong (v3 and v4), alone or as a polling payload's only packets; its
        // upgrade probes (`2probe`, `3probe`) are a handshake, never a beat.
        fn beats<'a>(packets: impl Iterator<Item = &'a str>) -> bool {
            let mut any = false;
            let mut all = true;
            for packet in packets {
                any = true;
                all &= matches!(packet, "2" | "3");
            }
            any && all
        }
        if beats(text.split('\u{1e}')) || beats(text.split("1:").filter(|p| !p.is_empty())) {
            return Some("Engine.IO");
        }
    }
    if dialect.sockjs && text == "h" {
        return Some("SockJS");
    }
    match text {
        "{}" => return Some("Centrifugo"),
        r#"{"type":6}"# => return Some("SignalR"),
        _ => {}
    }
    if text.starts_with('[') && text.contains(r#""phoenix","heartbeat""#) {
        return Some("Phoenix");
    }
    if text.starts_with('{') {
        return json_signature(text);
    }
    sse_signature(text)
}

/// The words a heartbeat's `type`, `event`, `kind` or `op` holds.
const WORDS: [&str; 6] = ["heartbeat", "ping", "pong", "keepalive", "keep-alive", "ka"];

fn json_signature(text: &str) -> Option<&'static str> {
    // Every signature's word is a JSON string's first bytes: a quote, then `ping`, `pong`, `hear`(tbeat),
    // `keep`(alive), `ka"`, `phoe`(nix) or `push`(er:ping), in any case. A message with none of those
    // is not parsed: the proxy asks this of every message it relays, so it looks only behind quotes.
    let bytes = text.as_bytes();
    let mentions_a_beat = bytes.iter().enumerate().any(|(at, &byte)| {
        if byte != b'"' {
            return false;
        }
        let Some(run) = bytes.get(at + 1..at + 5) else {
            return false;
        };
        // (A quote stays a quote under the case bit.)
        let run = [run[0] | 0x20, run[1] | 0x20, run[2] | 0x20, run[3] | 0x20];
        &run[..3] == b"ka\""
            || matches!(
                &run,
                b"ping" | b"pong" | b"hear" | b"keep" | b"phoe" | b"push"
            )
    });
    if !mentions_a_beat {
        return None;
    }
    let serde_json::Value::Object(fields) = serde_json::from_str(text).ok()? else {
        return None;
    };
    let word = |key: &str| {
        fields
            .get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_ascii_lowercase)
    };
    if let Some(event) = word("event") {
        if event == "pusher:ping" || event == "pusher:pong" {
            return Some("Pusher");
        }
        if event == "heartbeat" && word("topic").as_deref() == Some("phoenix") {
            return Some("Phoenix");
        }
    }
    match word("type").as_deref() {
        Some("ka") => return Some("subscriptions-transport-ws"),
        Some("ping" | "pong") if fields.contains_key("message") => return Some("Action Cable"),
        Some("ping" | "pong") => return Some("graphql-ws"),
        _ => {}
    }
    ["type", "event", "kind", "op"]
        .iter()
        .any(|key| word(key).is_some_and(|w| WORDS.contains(&w.as_str())))
        .then_some("a JSON heartbeat")
}

/// A Server-Sent Events block that is a heartbeat: only comments (`: ping`), an event named `ping`,
/// `heartbeat` or `keepalive`, or data that is a JSON heartbeat (`data: {"type":"ping"}`).
fn sse_signature(block: &str) -> Option<&'static str> {
    let mut comments_only = true;
    let mut data = String::new();
    for line in block.lines() {
        if line.starts_with(':') {
            continue;
        }
        comments_only = false;
        if let Some(name) = line.strip_prefix("event:") {
            if WORDS.contains(&name.trim().to_ascii_lowercase().as_str()) {
                return Some("Server-Sent Events");
            }
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push_str(value.trim());
        } else if !line.starts_with("id:") && !line.starts_with("retry:") {
            // Not an event block (a plain chunk, a number): no signature.
            return None;
        }
    }
    if comments_only {
        return Some("Server-Sent Events");
    }
    (data.starts_with('{') && json_signature(&data).is_some()).then_some("Server-Sent Events")
}

/// A small message's payload, to tell one repeated (an unknown protocol's heartbeat) from data that
/// changes; `0` for one too large to be a heartbeat.
pub fn payload_hash(text: &str, len: usize) -> u64 {
    if len > SMALL {
        return 0;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.trim().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: Dialect = Dialect {
        engine_io: false,
        sockjs: false,
    };

    #[test]
    fn each_frameworks_heartbeat_is_known_by_its_signature() {
        let eio = Dialect::of("/socket.io/?EIO=4&transport=websocket&sid=abc");
        let sockjs = Dialect::of("/sockjs/123/xk2bqmtd/websocket");
        assert!(eio.engine_io && !eio.sockjs && sockjs.sockjs && !sockjs.engine_io);
        for (text, dialect, framework) in [
            ("2", eio, "Engine.IO"),
            ("3", eio, "Engine.IO"),
            ("1:2", eio, "Engine.IO"),
            ("2\u{1e}2", eio, "Engine.IO"),
            ("h", sockjs, "SockJS"),
            ("h\n", sockjs, "SockJS"),
            (r#"{"type":"ping"}"#, PLAIN, "graphql-ws"),
            (r#"{"type":"pong","payload":{}}"#, PLAIN, "graphql-ws"),
            (r#"{"type":"ka"}"#, PLAIN, "subscriptions-transport-ws"),
            (r#"[null,"12","phoenix","heartbeat",{}]"#, PLAIN, "Phoenix"),
            (
                r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"3"}"#,
                PLAIN,
                "Phoenix",
            ),
            ("{\"type\":6}\u{1e}", PLAIN, "SignalR"),
            (
                r#"{"type":"ping","message":1700000000}"#,
                PLAIN,
                "Action Cable",
            ),
            ("{}", PLAIN, "Centrifugo"),
            (r#"{"event":"pusher:ping","data":{}}"#, PLAIN, "Pusher"),
            (": ping", PLAIN, "Server-Sent Events"),
            ("event: heartbeat\ndata: 1", PLAIN, "Server-Sent Events"),
            ("data: {\"type\":\"ping\"}", PLAIN, "Server-Sent Events"),
            (r#"{"op":"heartbeat","d":null}"#, PLAIN, "a JSON heartbeat"),
            // The words in any case, with spaces where JSON allows them.
            (r#"{ "kind" : "KeepAlive" }"#, PLAIN, "a JSON heartbeat"),
            (r#"{"event":"Keep-Alive"}"#, PLAIN, "a JSON heartbeat"),
            (r#"{"type":"KA"}"#, PLAIN, "subscriptions-transport-ws"),
            (
                r#"{"Event":"x","op":"HEARTBEAT"}"#,
                PLAIN,
                "a JSON heartbeat",
            ),
        ] {
            assert_eq!(signature(text, dialect), Some(framework), "{text:?}");
        }
    }

    #[test]
    fn handshakes_data_and_another_protocols_beat_are_no_heartbeat() {
        let eio = Dialect::of("/socket.io/?EIO=4&transport=polling");
        for (text, dialect) in [
            ("2probe", eio),
            ("3probe", eio),
            ("40", eio),
            (r#"42["chat","ping"]"#, eio),
            ("2", PLAIN),
            ("3", PLAIN),
            ("h", PLAIN),
            ("h", eio),
            (
                &"h".repeat(2048),
                Dialect::of("/sockjs/1/abc/xhr_streaming"),
            ),
            ("o", Dialect::of("/sockjs/1/abc/xhr_streaming")),
            (r#"a["{\"n\":1}"]"#, Dialect::of("/sockjs/1/abc/websocket")),
            (
                r#"{"type":"next","id":"1","payload":{"data":{"tick":3}}}"#,
                PLAIN,
            ),
            (r#"{"text":"ping pong is fun"}"#, PLAIN),
            ("data: {\"n\":1}", PLAIN),
            ("id: 4\nevent: tick\ndata: {\"n\":4}", PLAIN),
            ("[]", PLAIN),
        ] {
            assert_eq!(signature(text, dialect), None, "{text:?}");
        }
    }

    #[test]
    fn a_repeated_small_payload_hashes_alike_and_a_large_one_not_at_all() {
        assert_eq!(payload_hash("beat", 4), payload_hash(" beat\n", 6));
        assert_ne!(payload_hash("beat", 4), payload_hash("{\"n\":1}", 7));
        assert_eq!(payload_hash(&"x".repeat(100), 100), 0);
        assert_ne!(payload_hash("", 0), 0, "an empty ping is a payload too");
    }
}
