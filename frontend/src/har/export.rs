//! This session as a HAR: every letter on the timeline as an entry with its real times and sizes, each
//! radio and endless-letter connection as a streaming entry with its events in the body, each phone
//! call as a WebSocket entry with its frames in `_webSocketMessages` (Chrome's field). The video call
//! has no HAR form (browsers do not record WebTransport) and is left out.
//!
//! The page keeps events, not answer bodies, so a letter's body is rebuilt from the events it brought:
//! `{"events": [...]}`, and `{"events": []}` for an empty one — which is what makes it read as empty
//! when the file is opened again.

use std::collections::HashMap;

use switchboard_shared::{LaneId, Shape};

use super::model::{
    Content, Creator, Entry, Har, Log, Request, Response, Timings, WebSocketMessage,
    format_date_time,
};
use crate::store::{Mark, MarkKind, Outcome, Span, Store};
use crate::wire::SpanId;

/// The session's HAR; `origin` (`http://127.0.0.1:8000`) makes the paths absolute URLs.
pub fn session(store: &Store, origin: &str) -> Har {
    let mut marks: HashMap<SpanId, Vec<&Mark>> = HashMap::new();
    for mark in store.marks() {
        marks.entry(mark.span).or_default().push(mark);
    }
    let now = store.marks().back().map_or(0.0, |mark| mark.at_ms).max(
        store
            .spans()
            .map(|span| span.end_ms.unwrap_or(span.start_ms))
            .fold(0.0, f64::max),
    );
    let entries = store
        .spans()
        .filter(|span| span.lane != LaneId::WebTransport)
        .map(|span| {
            entry(
                span,
                marks.get(&span.id).map_or(&[][..], Vec::as_slice),
                origin,
                now,
            )
        })
        .collect();
    Har {
        log: Log {
            version: "1.2".to_owned(),
            creator: Creator {
                name: "Switchboard".to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
            },
            pages: Vec::new(),
            entries,
            comment: None,
        },
    }
}

/// `GET` and `/api/poll?after=3` from a span's label (`GET /api/poll?after=3 (…)`).
fn method_and_path(label: &str) -> (&str, &str) {
    let mut words = label.split_whitespace();
    let method = words.next().unwrap_or("GET");
    (method, words.next().unwrap_or("/"))
}

fn entry(span: &Span, marks: &[&Mark], origin: &str, now_ms: f64) -> Entry {
    let (method, path) = method_and_path(&span.label);
    let end = span.end_ms.unwrap_or(now_ms).max(span.start_ms);
    let took = end - span.start_ms;
    let two_way = span.shape == Shape::Duplex;
    let url = if two_way {
        format!("{}{path}", origin.replacen("http", "ws", 1))
    } else {
        format!("{origin}{path}")
    };
    let payloads = || {
        marks.iter().filter_map(|mark| match &mark.what {
            MarkKind::Event { payload, .. } => Some(compact(payload)),
            _ => None,
        })
    };
    let (status, status_text) = match &span.outcome {
        Outcome::Failed(why) => (
            why.split(|c: char| !c.is_ascii_digit())
                .find(|word| word.len() == 3)
                .and_then(|code| code.parse().ok())
                .unwrap_or(0),
            why.clone(),
        ),
        // A letter still out when the lanes stopped: no answer, and so neither news nor empty.
        Outcome::Pending if span.shape.is_request() => {
            (0, "no answer yet when exported".to_owned())
        }
        _ if two_way => (101, "Switching Protocols".to_owned()),
        _ => (200, "OK".to_owned()),
    };
    let (mime, text) = match span.shape {
        Shape::Request | Shape::HeldRequest => {
            // Seqs the server declared lost ride along, as they did live: such an answer is not
            // "nothing new".
            let lost: Vec<String> = marks
                .iter()
                .filter_map(|mark| match mark.what {
                    MarkKind::Gap { first, last } => Some(format!("[{first},{last}]")),
                    _ => None,
                })
                .collect();
            let events = payloads().collect::<Vec<_>>().join(",");
            let text = if lost.is_empty() {
                format!("{{\"events\":[{events}]}}")
            } else {
                format!("{{\"events\":[{events}],\"lost\":[{}]}}", lost.join(","))
            };
            ("application/json", text)
        }
        Shape::Stream if span.lane == LaneId::Sse => ("text/event-stream", event_stream(marks)),
        Shape::Stream => (
            "application/x-ndjson",
            payloads().map(|payload| format!("{payload}\n")).collect(),
        ),
        Shape::Duplex => ("", String::new()),
    };
    let size = text.len() as i64;
    Entry {
        started_date_time: format_date_time(span.start_ms),
        time: took,
        request: Request {
            method: method.to_owned(),
            url,
            http_version: "HTTP/1.1".to_owned(),
            headers: Vec::new(),
            query_string: Vec::new(),
            cookies: Vec::new(),
            headers_size: span.bytes_up as i64,
            body_size: 0,
        },
        response: Response {
            status,
            status_text,
            http_version: "HTTP/1.1".to_owned(),
            headers: Vec::new(),
            cookies: Vec::new(),
            content: Content {
                size,
                mime_type: mime.to_owned(),
                text: (!two_way).then_some(text),
                encoding: None,
            },
            redirect_url: String::new(),
            headers_size: -1,
            body_size: if two_way { 0 } else { span.bytes_down as i64 },
            transfer_size: Some(span.bytes_down as i64),
        },
        cache: serde_json::json!({}),
        timings: Timings {
            send: 0.0,
            // A letter's whole round trip counts as waiting (the page sees no finer phases); a line's
            // wait is its dial, the rest is receiving.
            wait: if span.shape.is_request() { took } else { 0.0 },
            receive: if span.shape.is_request() { 0.0 } else { took },
            ..Timings::default()
        },
        resource_type: Some(
            match span.shape {
                Shape::Duplex => "websocket",
                Shape::Stream if span.lane == LaneId::Sse => "eventsource",
                _ => "fetch",
            }
            .to_owned(),
        ),
        web_socket_messages: two_way.then(|| frames(marks)),
        event_source_messages: None,
    }
}

/// An event on one line, as the wire carried it (the detail view keeps it pretty-printed).
fn compact(payload: &str) -> String {
    serde_json::from_str::<serde_json::Value>(payload)
        .map_or_else(|_| payload.to_owned(), |value| value.to_string())
}

/// The radio's events as the stream carried them.
fn event_stream(marks: &[&Mark]) -> String {
    marks
        .iter()
        .filter_map(|mark| match &mark.what {
            MarkKind::Event { seq, payload, .. } => {
                Some(format!("id: {seq}\ndata: {}\n\n", compact(payload)))
            }
            MarkKind::Heartbeat { head } => {
                Some(format!("event: heartbeat\ndata: {{\"head\":{head}}}\n\n"))
            }
            _ => None,
        })
        .collect()
}

/// The phone call's frames, both ways.
fn frames(marks: &[&Mark]) -> Vec<WebSocketMessage> {
    marks
        .iter()
        .filter_map(|mark| {
            let (kind, data) = match &mark.what {
                MarkKind::Event { payload, .. } => ("receive", compact(payload)),
                MarkKind::Heartbeat { head } => (
                    "receive",
                    format!("{{\"type\":\"heartbeat\",\"head\":{head}}}"),
                ),
                MarkKind::Received { detail, .. } => ("receive", detail.clone()),
                MarkKind::Sent { detail, .. } => ("send", detail.clone()),
                _ => return None,
            };
            Some(WebSocketMessage {
                kind: kind.to_owned(),
                time: mark.at_ms / 1000.0,
                opcode: 1,
                data,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::har::{ChannelKind, classify};
    use crate::wire::Wire;
    use switchboard_shared::ws::{Heartbeat, Hello};
    use switchboard_shared::{Batch, ChatMessage, ChatVia, Event, EventBody};

    const T0: f64 = 1_795_881_845_000.0;

    fn event(seq: u64) -> Event {
        Event {
            seq,
            ts_ms: T0 as u64,
            body: EventBody::Chat(ChatMessage {
                author: "ada".into(),
                text: format!("message number {seq}, long enough to look like news and not a beat"),
                via: ChatVia::Post,
                client_ref: None,
            }),
        }
    }

    fn line(store: &mut Store, lane: LaneId, label: &str, at: f64) -> SpanId {
        let span = store.new_span();
        store.apply(
            lane,
            at,
            Wire::Dialing {
                span,
                label: label.into(),
            },
        );
        store.apply(
            lane,
            at + 2.0,
            Wire::Opened {
                span,
                hello: Hello {
                    epoch: 1,
                    head: 0,
                    oldest: None,
                    resumed_after: None,
                    heartbeat_ms: 2000,
                    instance: "a".into(),
                    server_ms: at as u64,
                    request_bytes: Some(300),
                    connection_request: Some(1),
                },
                bytes_up: 300,
                bytes_down: 200,
            },
        );
        span
    }

    /// A session: four letters (three empty), a phone call with heartbeats, events and a chat frame up,
    /// a radio with events and heartbeats.
    fn store() -> Store {
        let mut store = Store::new();
        store.start_after(0);
        for i in 0..4u64 {
            let span = store.new_span();
            let at = T0 + i as f64 * 1000.0;
            store.apply(
                LaneId::Poll,
                at,
                Wire::RequestSent {
                    span,
                    label: format!("GET /api/poll?after={i}"),
                },
            );
            store.apply(
                LaneId::Poll,
                at + 5.0,
                Wire::ReplyReceived {
                    span,
                    bytes_up: 120,
                    bytes_down: 250,
                    cached: false,
                    batch: Batch {
                        epoch: 1,
                        head: 1,
                        gap: None,
                        events: if i == 3 { vec![event(1)] } else { vec![] },
                        instance: None,
                    },
                },
            );
        }
        let phone = line(&mut store, LaneId::Ws, "GET /ws?after=0", T0);
        let radio = line(&mut store, LaneId::Sse, "GET /api/sse?after=0", T0);
        for (i, at) in [2000.0, 4000.0, 6000.0].into_iter().enumerate() {
            for (lane, span) in [(LaneId::Ws, phone), (LaneId::Sse, radio)] {
                store.apply(
                    lane,
                    T0 + at,
                    Wire::Heartbeat {
                        span,
                        heartbeat: Heartbeat {
                            server_ms: (T0 + at) as u64,
                            head: i as u64,
                        },
                        bytes_down: 30,
                    },
                );
            }
        }
        for (lane, span) in [(LaneId::Ws, phone), (LaneId::Sse, radio)] {
            store.apply(
                lane,
                T0 + 3005.0,
                Wire::EventReceived {
                    span,
                    event: event(1),
                    bytes_down: 180,
                },
            );
        }
        store.apply(
            LaneId::Ws,
            T0 + 4500.0,
            Wire::FrameSent {
                span: phone,
                label: "chat".into(),
                detail: "{\"type\":\"chat\",\"text\":\"hi\"}".into(),
                bytes_up: 40,
            },
        );
        store
    }

    #[test]
    fn an_exported_session_opens_again_with_the_same_counts() {
        let store = store();
        let text = serde_json::to_string(&session(&store, "http://127.0.0.1:8000")).unwrap();
        let har = Har::parse(&text).unwrap();
        let imported = classify(&har);
        let kinds: Vec<ChannelKind> = imported
            .channels
            .iter()
            .map(|channel| channel.kind)
            .collect();
        assert_eq!(
            kinds,
            vec![ChannelKind::Letters, ChannelKind::Radio, ChannelKind::Phone]
        );
        let (letters, radio, phone) = (
            &imported.channels[0],
            &imported.channels[1],
            &imported.channels[2],
        );
        let live = store.lane(LaneId::Poll);
        assert_eq!(
            (letters.requests, letters.empty),
            (live.requests, live.empty_replies)
        );
        assert_eq!((letters.requests, letters.empty), (4, 3));
        assert_eq!(letters.bytes_up + letters.bytes_down, 4 * 370);
        assert_eq!(phone.name, "ws://127.0.0.1:8000/ws");
        // The hello, three heartbeats and one event down; one chat frame up.
        assert_eq!((phone.frames, phone.frames_up, phone.heartbeats), (6, 1, 3));
        assert_eq!(phone.heartbeat_ms, Some(2000.0));
        assert_eq!((radio.frames, radio.heartbeats), (4, 3));
    }

    /// The fields HAR 1.2 requires, with their JSON types, checked on every entry the writer makes.
    #[test]
    fn the_writer_fills_every_field_har_1_2_requires() {
        use serde_json::Value;
        let text = serde_json::to_string(&session(&store(), "http://127.0.0.1:8000")).unwrap();
        let har: Value = serde_json::from_str(&text).unwrap();
        let is = |value: &Value, path: &str, kind: &str| {
            let found = value
                .pointer(path)
                .unwrap_or_else(|| panic!("{path} is missing"));
            let ok = match kind {
                "string" => found.is_string(),
                "number" => found.is_number(),
                "array" => found.is_array(),
                "object" => found.is_object(),
                _ => unreachable!(),
            };
            assert!(ok, "{path} is not a {kind}: {found}");
        };
        is(&har, "/log/version", "string");
        is(&har, "/log/creator/name", "string");
        is(&har, "/log/creator/version", "string");
        let entries = har["log"]["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 6);
        for entry in entries {
            for (path, kind) in [
                ("/startedDateTime", "string"),
                ("/time", "number"),
                ("/request/method", "string"),
                ("/request/url", "string"),
                ("/request/httpVersion", "string"),
                ("/request/cookies", "array"),
                ("/request/headers", "array"),
                ("/request/queryString", "array"),
                ("/request/headersSize", "number"),
                ("/request/bodySize", "number"),
                ("/response/status", "number"),
                ("/response/statusText", "string"),
                ("/response/httpVersion", "string"),
                ("/response/cookies", "array"),
                ("/response/headers", "array"),
                ("/response/content/size", "number"),
                ("/response/content/mimeType", "string"),
                ("/response/redirectURL", "string"),
                ("/response/headersSize", "number"),
                ("/response/bodySize", "number"),
                ("/cache", "object"),
                ("/timings/send", "number"),
                ("/timings/wait", "number"),
                ("/timings/receive", "number"),
            ] {
                is(entry, path, kind);
            }
            let started = entry["startedDateTime"].as_str().unwrap();
            assert!(
                crate::har::model::parse_date_time(started).is_some(),
                "{started}"
            );
        }
    }
}
