//! The recorder: each exchange, its heads, its bodies' first bytes and every message, with their times
//! and fates, into the bounded [`crate::proxy::record::Recording`] — what the HAR is written from and
//! the channels are classified from.

use axum::http::{header, request, response};
use std::time::Duration;

use crate::hub::now_ms_f64;
use crate::proxy::headers::{head_bytes, is_event_stream, pairs};
use crate::proxy::record::{Exchange, Heard, MESSAGE_PREFIX, ResponseHead};
use crate::proxy::stage::{Direction, End, Fate, Flow, Form, Message, Stage, Verdict};

#[derive(Debug)]
pub struct Recorder;

/// Headers whose values are the person's secrets: kept only with `--record-secrets`.
const SECRETS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// A head's headers as kept: secrets' values replaced by their size unless the person asked to keep them.
fn kept_headers(flow: &Flow, headers: &axum::http::HeaderMap) -> Vec<(String, String)> {
    let mut kept = pairs(headers);
    if !flow.proxy.settings.record_secrets {
        for (name, value) in &mut kept {
            if SECRETS.contains(&name.as_str()) {
                *value = format!(
                    "[redacted: {} bytes; --record-secrets keeps it]",
                    value.len()
                );
            }
        }
    }
    kept
}

/// The first [`MESSAGE_PREFIX`] bytes of a text, cut at a character's edge.
fn prefix(text: &str) -> &str {
    let mut end = text.len().min(MESSAGE_PREFIX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl Stage for Recorder {
    fn on_request(&self, flow: &Flow, head: &request::Parts) -> Verdict {
        let target = head.uri.path_and_query().map_or(1, |pq| pq.as_str().len());
        let track = flow.proxy.recording.start(Exchange {
            connection: flow.conn.id,
            channel: flow.channel.id.clone(),
            started_ms: now_ms_f64(),
            method: flow.method.to_string(),
            url: flow.url.clone(),
            request_headers: kept_headers(flow, &head.headers),
            request_head_bytes: head_bytes(
                flow.method.as_str().len() + 1 + target + 9,
                &head.headers,
            ),
            websocket: flow.websocket,
            ..Exchange::default()
        });
        let _ = flow.track.set(track);
        Verdict::Pass
    }

    fn on_body(&self, flow: &Flow, direction: Direction, chunk: &[u8]) {
        if let Some(track) = flow.track.get() {
            track.body(direction == Direction::Up, chunk);
        }
    }

    fn on_response(&self, flow: &Flow, head: &response::Parts, _by_proxy: bool) -> Duration {
        let Some(track) = flow.track.get() else {
            return Duration::ZERO;
        };
        let mime = head
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let reason = head.status.canonical_reason().unwrap_or_default();
        track.response_head(ResponseHead {
            status: head.status.as_u16(),
            status_text: reason.to_owned(),
            headers: kept_headers(flow, &head.headers),
            head_bytes: head_bytes(12 + reason.len() + 1, &head.headers),
            at_ms: now_ms_f64(),
            event_stream: is_event_stream(&flow.url, &mime),
            mime,
        });
        Duration::ZERO
    }

    fn after_message(&self, flow: &Flow, message: &Message<'_>, fate: Fate) {
        let opcode = match message.form {
            Form::Frame { opcode, .. } => opcode,
            Form::Event => 1,
            // A letter's chunks are its body, counted as such.
            Form::Chunk => return,
        };
        if fate == Fate::Held {
            return;
        }
        if let Some(track) = flow.track.get() {
            track.message(Heard {
                at_ms: message.at_ms,
                up: message.direction == Direction::Up,
                opcode,
                size: message.size,
                text: prefix(message.text.trim_end()),
                swallowed: fate == Fate::Swallowed,
            });
        }
    }

    fn on_end(&self, flow: &Flow, how: &End) {
        if let Some(track) = flow.track.get() {
            if let Some(decoded) = super::decoded(flow) {
                track.decoded_body(decoded);
            }
            track.end(match how {
                End::Complete => None,
                End::Failed(why) => Some(why.clone()),
                End::Cancelled => Some("cancelled".into()),
            });
        }
    }
}
