//! This session as a HAR, written from the store's own record of it ([`Recording`]), never from the
//! timeline's marks (thinned and capped for drawing): every letter as an entry with its real times,
//! sizes and the answer body as it came; each radio and endless-letter connection as a streaming entry
//! with its event blocks or lines as they came; each phone call as a WebSocket entry with its frames,
//! both ways, as sent, in `_webSocketMessages` (Chrome's field). The video call has no HAR form
//! (browsers do not record WebTransport) and is left out.
//!
//! When the record let its oldest part go (it is bounded), the file's comment says from when it is
//! whole, and no letter is written without its answer.

use std::collections::HashMap;

use switchboard_shared::{LaneId, Shape};

use super::model::{Entry, Har, WebSocketMessage, format_date_time};
use crate::store::{Carried, Outcome, Recording, Span, Store};
use crate::wire::SpanId;
use switchboard_shared::har::write;

/// The session's HAR; `origin` (`http://127.0.0.1:8000`) makes the paths absolute URLs.
pub fn session(store: &Store, origin: &str) -> Har {
    let recording = store.recording();
    let mut carried: HashMap<SpanId, Vec<&Carried>> = HashMap::new();
    for message in recording.messages() {
        carried.entry(message.span).or_default().push(message);
    }
    let now = recording
        .messages()
        .last()
        .map_or(0.0, |message| message.at_ms)
        .max(
            recording
                .exchanges()
                .map(|span| span.end_ms.unwrap_or(span.start_ms))
                .fold(0.0, f64::max),
        );
    let entries = recording
        .exchanges()
        .filter(|span| span.lane != LaneId::WebTransport)
        .map(|span| {
            entry(
                span,
                carried.get(&span.id).map_or(&[][..], Vec::as_slice),
                origin,
                now,
            )
        })
        .collect();
    write::har("Switchboard", entries, covers(recording))
}

/// What the file covers, when the record had to let its oldest part go (`None`: the whole session).
pub fn covers(recording: &Recording) -> Option<String> {
    let since = recording.whole_since_ms()?;
    let (exchanges, messages) = recording.dropped();
    Some(format!(
        "Whole from {} on: to stay bounded the page let go of {exchanges} older exchanges and {messages} older messages; lines open before then keep only what they carried since.",
        format_date_time(since)
    ))
}

/// `GET` and `/api/poll?after=3` from a span's label (`GET /api/poll?after=3 (…)`).
fn method_and_path(label: &str) -> (&str, &str) {
    let mut words = label.split_whitespace();
    let method = words.next().unwrap_or("GET");
    (method, words.next().unwrap_or("/"))
}

fn entry(span: &Span, carried: &[&Carried], origin: &str, now_ms: f64) -> Entry {
    let (method, path) = method_and_path(&span.label);
    let end = span.end_ms.unwrap_or(now_ms).max(span.start_ms);
    let two_way = span.shape == Shape::Duplex;
    let url = if two_way {
        format!("{}{path}", origin.replacen("http", "ws", 1))
    } else {
        format!("{origin}{path}")
    };
    let down = || carried.iter().filter(|message| !message.up);
    let (status, status_text) = match &span.outcome {
        Outcome::Failed(why) => (
            why.split(|c: char| !c.is_ascii_digit())
                .find(|word| word.len() == 3)
                .and_then(|code| code.parse().ok())
                .unwrap_or(0),
            why.clone(),
        ),
        // A letter still out when exported, or withdrawn when its lane stopped: no answer, and so
        // neither news nor empty.
        Outcome::Pending if span.shape.is_request() => {
            (0, "no answer yet when exported".to_owned())
        }
        Outcome::Closed { reason, .. } if span.shape.is_request() => (0, reason.clone()),
        _ if two_way => (101, "Switching Protocols".to_owned()),
        _ => (200, "OK".to_owned()),
    };
    let (mime, text) = match span.shape {
        // The answer's body as it came.
        Shape::Request | Shape::HeldRequest => (
            "application/json",
            down().map(|message| message.text.as_str()).collect(),
        ),
        Shape::Stream if span.lane == LaneId::Sse => (
            "text/event-stream",
            down()
                .map(|message| format!("{}\n", message.text))
                .collect(),
        ),
        Shape::Stream => (
            "application/x-ndjson",
            down()
                .map(|message| format!("{}\n", message.text))
                .collect(),
        ),
        Shape::Duplex => ("", String::new()),
    };
    write::entry(write::Exchange {
        started_ms: span.start_ms,
        // The page sees no finer phases: a letter's whole round trip counts as waiting, a line's as
        // receiving.
        first_byte_ms: None,
        end_ms: end,
        method: method.to_owned(),
        url,
        request_head_bytes: span.bytes_up as i64,
        request_body_bytes: 0,
        status,
        status_text,
        response_head_bytes: -1,
        mime: mime.to_owned(),
        text_bytes: Some(text.len() as i64),
        body: (!two_way).then_some(text),
        body_bytes: if two_way { 0 } else { span.bytes_down as i64 },
        transfer_bytes: span.bytes_down as i64,
        form: Some(match span.shape {
            Shape::Duplex => write::Form::Socket,
            Shape::Stream => write::Form::Stream {
                sse: span.lane == LaneId::Sse,
            },
            _ => write::Form::Request,
        }),
        // A line's frames or events with the time each came, so the import draws them one by one and
        // knows the heartbeat's pace.
        messages: if span.shape.is_request() {
            Vec::new()
        } else {
            frames(carried)
        },
        ..write::Exchange::default()
    })
}

/// A line's frames (the phone call's both ways), as sent, with their times.
fn frames(carried: &[&Carried]) -> Vec<WebSocketMessage> {
    carried
        .iter()
        .map(|message| WebSocketMessage {
            kind: if message.up { "send" } else { "receive" }.to_owned(),
            time: message.at_ms / 1000.0,
            opcode: 1,
            data: message.text.clone(),
            size: None,
            swallowed: false,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::har::{ChannelKind, classify};
    use crate::wire::Wire;
    use switchboard_shared::ws::{Heartbeat, Hello, ServerMessage};
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
        let hello = Hello {
            epoch: 1,
            head: 0,
            oldest: None,
            resumed_after: None,
            heartbeat_ms: 2000,
            instance: "a".into(),
            server_ms: at as u64,
            request_bytes: Some(300),
            connection_request: Some(1),
        };
        carried(
            store,
            lane,
            span,
            at + 2.0,
            ServerMessage::Hello(hello.clone()),
        );
        store.apply(
            lane,
            at + 2.0,
            Wire::Opened {
                span,
                hello,
                bytes_up: 300,
                bytes_down: 200,
            },
        );
        span
    }

    /// What a line's lane reports it carried: the phone call's frame, the radio's event block.
    fn carried(store: &mut Store, lane: LaneId, span: SpanId, at: f64, message: ServerMessage) {
        let text = match (lane, &message) {
            (LaneId::Sse, ServerMessage::Hello(hello)) => crate::lanes::sse::block(
                None,
                Some("hello"),
                &serde_json::to_string(hello).unwrap(),
            ),
            (LaneId::Sse, ServerMessage::Heartbeat(beat)) => crate::lanes::sse::block(
                None,
                Some("heartbeat"),
                &serde_json::to_string(beat).unwrap(),
            ),
            (LaneId::Sse, ServerMessage::Event(event)) => crate::lanes::sse::block(
                Some(event.seq),
                None,
                &serde_json::to_string(event).unwrap(),
            ),
            _ => serde_json::to_string(&message).unwrap(),
        };
        store.apply(lane, at, Wire::Carried { span, text });
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
            let batch = Batch {
                epoch: 1,
                head: 1,
                gap: None,
                events: if i == 3 { vec![event(1)] } else { vec![] },
                instance: None,
            };
            store.apply(
                LaneId::Poll,
                at + 5.0,
                Wire::Carried {
                    span,
                    text: serde_json::to_string(&batch).unwrap(),
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
                    batch,
                },
            );
        }
        let phone = line(&mut store, LaneId::Ws, "GET /ws?after=0", T0);
        let radio = line(&mut store, LaneId::Sse, "GET /api/sse?after=0", T0);
        for (i, at) in [2000.0, 4000.0, 6000.0].into_iter().enumerate() {
            for (lane, span) in [(LaneId::Ws, phone), (LaneId::Sse, radio)] {
                let heartbeat = Heartbeat {
                    server_ms: (T0 + at) as u64,
                    head: i as u64,
                };
                carried(
                    &mut store,
                    lane,
                    span,
                    T0 + at,
                    ServerMessage::Heartbeat(heartbeat.clone()),
                );
                store.apply(
                    lane,
                    T0 + at,
                    Wire::Heartbeat {
                        span,
                        heartbeat,
                        bytes_down: 30,
                    },
                );
            }
        }
        for (lane, span) in [(LaneId::Ws, phone), (LaneId::Sse, radio)] {
            carried(
                &mut store,
                lane,
                span,
                T0 + 3005.0,
                ServerMessage::Event(event(1)),
            );
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
        // The radio's hello too: the file holds what the stream carried, not what the timeline drew.
        assert_eq!((radio.frames, radio.heartbeats), (5, 3));
        // With each event's time, the radio's heartbeat has a pace again.
        assert_eq!(radio.heartbeat_ms, Some(2000.0));
        // As they came: the phone call's chat frame as the browser sent it.
        let har = session(&store, "http://127.0.0.1:8000");
        let sent: Vec<&str> = har
            .log
            .entries
            .iter()
            .flat_map(|entry| entry.web_socket_messages.iter().flatten())
            .filter(|frame| frame.kind == "send")
            .map(|frame| frame.data.as_str())
            .collect();
        assert_eq!(sent, vec!["{\"type\":\"chat\",\"text\":\"hi\"}"]);
        assert_eq!(har.log.comment, None, "the whole session was kept");
    }

    /// After more events than the timeline draws, a letter's news is still written as it came (it was
    /// written `{"events":[]}` when the export read the marks).
    #[test]
    fn letters_keep_their_news_after_the_timeline_let_their_marks_go() {
        let mut store = store();
        let phone = store
            .spans()
            .find(|span| span.lane == LaneId::Ws)
            .map(|span| span.id)
            .unwrap();
        for seq in 2..(crate::store::MARKS_HELD as u64 + 2_000) {
            let at = T0 + 7_000.0 + seq as f64;
            carried(
                &mut store,
                LaneId::Ws,
                phone,
                at,
                ServerMessage::Event(event(seq)),
            );
            store.apply(
                LaneId::Ws,
                at,
                Wire::EventReceived {
                    span: phone,
                    event: event(seq),
                    bytes_down: 180,
                },
            );
        }
        let imported = classify(&session(&store, "http://127.0.0.1:8000"));
        let letters = &imported.channels[0];
        assert_eq!((letters.requests, letters.empty), (4, 3));
        let phone = imported
            .channels
            .iter()
            .find(|channel| channel.kind == ChannelKind::Phone)
            .unwrap();
        assert_eq!(phone.frames, 6 + crate::store::MARKS_HELD as u64 + 1_998);
    }

    /// A letter withdrawn when its lane stopped is written without an answer, saying why.
    #[test]
    fn a_withdrawn_letter_is_written_without_an_answer() {
        let mut store = store();
        let span = store.new_span();
        store.apply(
            LaneId::LongPoll,
            T0 + 8_000.0,
            Wire::RequestSent {
                span,
                label: "GET /api/longpoll?after=1".into(),
            },
        );
        store.apply(LaneId::LongPoll, T0 + 9_000.0, Wire::Withdrawn { span });
        let har = session(&store, "http://127.0.0.1:8000");
        let entry = har
            .log
            .entries
            .iter()
            .find(|entry| entry.request.url.ends_with("/api/longpoll?after=1"))
            .unwrap();
        assert_eq!(
            (entry.response.status, entry.response.status_text.as_str()),
            (0, "stopped before its answer")
        );
        assert_eq!(entry.time, 1_000.0);
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
