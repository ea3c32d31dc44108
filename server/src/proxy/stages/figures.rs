//! The live figures: each exchange told to its channel's tally ([`crate::proxy::figures`]) as it goes —
//! a letter when it ends, a line when it opens, each message as it passes — so the report reads
//! running figures, never the recording.

use axum::http::{StatusCode, header, request, response};
use std::sync::Arc;
use std::time::Duration;
use switchboard_shared::app::heartbeat::{Dialect, payload_hash, signature};
use switchboard_shared::app::route::aside;
use switchboard_shared::app::{AppFaultKind, AppFaultRequest, Reached};
use switchboard_shared::har::classify::tally::{Letter, Line};

use crate::hub::now_ms_f64;
use crate::proxy::conn::Conn;
use crate::proxy::headers::{head_bytes, is_event_stream};
use crate::proxy::lab::Lab;
use crate::proxy::stage::{Direction, End, Fate, Flow, Form, Message, Stage, Verdict};

/// How much of a letter's answer is kept to tell a repeated one.
const BODY_KEPT: usize = 4 * 1024;

/// An answer that keeps coming is an endless letter, whatever its type: pieces of at most this size
/// (a download comes in full buffers)…
const PIECE_MAX: u64 = 16 * 1024;
/// …after a pause of at least this long each…
const PAUSE_MS: f64 = 200.0;
/// …twice or more, for at least this long since its answer began.
const KEEPS_COMING_MS: f64 = 1_000.0;

#[derive(Debug)]
pub struct Figures;

thread_local! {
    /// The latest message text this thread read as a heartbeat or not, its dialect, and the answer.
    static LATEST: std::cell::RefCell<(String, Dialect, bool)> =
        const { std::cell::RefCell::new((String::new(), Dialect { engine_io: false, sockjs: false }, false)) };
}

/// Whether a message's text is a heartbeat by its signature. An app's broadcast reaches its sockets one
/// after another with one text: read once, the others compare it with the latest (reading a JSON
/// text's quotes for a heartbeat's words was 1.3 % of the proxy's samples under the bench's load).
pub fn shaped(text: &str, dialect: Dialect) -> bool {
    LATEST.with(|latest| {
        let mut latest = latest.borrow_mut();
        if latest.1 != dialect || latest.0 != text {
            latest.2 = signature(text, dialect).is_some();
            latest.0.clear();
            latest.0.push_str(text);
            latest.1 = dialect;
        }
        latest.2
    })
}

/// What the stage keeps of one exchange until it ends.
#[derive(Debug, Clone, Default)]
struct Exchange {
    start_ms: f64,
    first_byte_ms: Option<f64>,
    status: u16,
    up: u64,
    down: u64,
    line: Option<Line>,
    /// Read as a line only once its body showed it keeps coming (an endless letter of any type).
    became_line: bool,
    /// Its pieces so far: after a pause, and when the last came.
    paused: u32,
    last_piece_ms: Option<f64>,
    mime: String,
    body: Vec<u8>,
}

/// A piece of a plain answer: once the answer shows it keeps coming — small pieces after pauses, for
/// a second or more — it is an endless letter (a stream of any type: SockJS-like or an app's own
/// chunked text), counted from then on as a line with each piece a message.
fn keeps_coming(flow: &Flow, message: &Message<'_>) {
    let at = message.at_ms;
    let mut opened = None;
    let counting = flow.with(|exchange: &mut Exchange| {
        if exchange.became_line {
            return true;
        }
        if exchange.line.is_some() {
            return false;
        }
        let paused = exchange
            .last_piece_ms
            .is_some_and(|last| at - last >= PAUSE_MS);
        exchange.last_piece_ms = Some(at);
        if message.size > PIECE_MAX {
            exchange.paused = 0;
            return false;
        }
        exchange.paused += u32::from(paused);
        let began = exchange.first_byte_ms.unwrap_or(exchange.start_ms);
        if exchange.paused >= 2 && at - began >= KEEPS_COMING_MS {
            let line = Line::Stream { sse: false };
            exchange.line = Some(line);
            exchange.became_line = true;
            // This piece is counted as a message below, not twice.
            opened = Some((
                line,
                began,
                exchange.up,
                exchange.down.saturating_sub(message.size),
            ));
            return true;
        }
        false
    });
    if !counting {
        return;
    }
    let payload = payload_hash(message.text, message.size as usize);
    let shaped = shaped(message.text, flow.dialect);
    // One look at the tally: the line it became (the first time), then this piece.
    flow.proxy.figures.with(flow, |tally| {
        if let Some((line, began, up, down)) = opened {
            tally.line_opened(line, began, up, down);
        }
        tally.message(flow.id, at, false, message.size as usize, shaped, payload);
        // A piece is handed to the browser's socket as it passes (the forwarding counts messages
        // of the streams it knows by their type; this one it learned late).
        tally.reached(Reached::Delivered, 1, at);
    });
    if let Some((line, ..)) = opened {
        flow.proxy.figures.opened(flow, line);
    }
}

impl Stage for Figures {
    fn on_request(&self, flow: &Flow, head: &request::Parts) -> Verdict {
        let target = head.uri.path_and_query().map_or(1, |pq| pq.as_str().len());
        flow.put(Exchange {
            start_ms: now_ms_f64(),
            up: head_bytes(flow.method.as_str().len() + 1 + target + 9, &head.headers),
            ..Exchange::default()
        });
        Verdict::Pass
    }

    fn on_body(&self, flow: &Flow, direction: Direction, chunk: &[u8]) {
        flow.with(|exchange: &mut Exchange| match direction {
            Direction::Up => exchange.up += chunk.len() as u64,
            Direction::Down => {
                exchange.down += chunk.len() as u64;
                if exchange.line.is_none() && exchange.body.len() < BODY_KEPT {
                    let room = (BODY_KEPT - exchange.body.len()).min(chunk.len());
                    exchange.body.extend_from_slice(&chunk[..room]);
                }
            }
        });
    }

    fn on_response(&self, flow: &Flow, head: &response::Parts, _by_proxy: bool) -> Duration {
        let at = now_ms_f64();
        let mime = head
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let reason = head.status.canonical_reason().unwrap_or_default();
        let line = if flow.websocket && head.status == StatusCode::SWITCHING_PROTOCOLS {
            Some(Line::Socket)
        } else if head.status.is_success() && is_event_stream(&flow.url, &mime) {
            Some(Line::Stream {
                sse: mime.starts_with("text/event-stream"),
            })
        } else {
            None
        };
        let mut opened = None;
        flow.with(|exchange: &mut Exchange| {
            exchange.first_byte_ms = Some(at);
            exchange.status = head.status.as_u16();
            exchange.down += head_bytes(12 + reason.len() + 1, &head.headers);
            exchange.line = line;
            exchange.mime.clone_from(&mime);
            if let Some(line) = line {
                opened = Some((line, exchange.up, exchange.down));
            }
        });
        if let Some((line, up, down)) = opened {
            flow.proxy.figures.with(flow, |tally| {
                tally.line_opened(line, at, up, down);
            });
            flow.proxy.figures.opened(flow, line);
        }
        Duration::ZERO
    }

    fn on_delivered(&self, flow: &Flow, direction: Direction, reached: Reached, messages: u64) {
        if direction == Direction::Down {
            let at = now_ms_f64();
            flow.proxy.figures.with(flow, |tally| {
                tally.reached(reached, messages, at);
            });
        }
    }

    fn after_message(&self, flow: &Flow, message: &Message<'_>, fate: Fate) {
        if let Form::Frame { opcode: 8, .. } = message.form {
            // A frame on the wire, not a message the page gets (the relay counts no delivery of it).
            if fate != Fate::Held {
                flow.proxy.figures.with(flow, |tally| {
                    tally.close_frame(
                        message.at_ms,
                        message.direction == Direction::Up,
                        message.size as usize,
                    );
                });
            }
            return;
        }
        let (shaped, payload) = match message.form {
            Form::Frame { opcode, whole } => {
                let text = opcode == 1 && whole;
                (
                    matches!(opcode, 9 | 10) || (text && shaped(message.text, flow.dialect)),
                    if text || matches!(opcode, 9 | 10) {
                        payload_hash(message.text, message.size as usize)
                    } else {
                        0
                    },
                )
            }
            Form::Event => (
                shaped(message.text, flow.dialect),
                payload_hash(message.text, message.size as usize),
            ),
            Form::Chunk => {
                if message.direction == Direction::Down && fate != Fate::Held {
                    keeps_coming(flow, message);
                }
                return;
            }
        };
        if fate == Fate::Held {
            return;
        }
        // What the app sent, swallowed or not: its rhythm is the app's, whatever the lab did to it.
        flow.proxy.figures.with(flow, |tally| {
            tally.message(
                flow.id,
                message.at_ms,
                message.direction == Direction::Up,
                message.size as usize,
                shaped,
                payload,
            );
            if fate == Fate::Swallowed && message.direction == Direction::Down {
                tally.reached(Reached::Swallowed, 1, message.at_ms);
            }
        });
    }

    fn on_inject(&self, _lab: &Lab, fault: &AppFaultRequest, hit: &[Arc<Conn>]) {
        // The lines a half-open hits are dead from now on (the half-open stage makes them so): their
        // tabs' next connections are reconnects.
        if fault.kind == AppFaultKind::HalfOpen {
            for conn in hit {
                conn.counted.died();
            }
        }
    }

    fn on_end(&self, flow: &Flow, _how: &End) {
        // (An answer read as an endless letter ends as a line below.)
        let mut exchange = flow.with(std::mem::take::<Exchange>);
        if let Some(mut decoded) = super::decoded(flow) {
            // What the app said, not its compressed bytes, is compared with the answer before.
            decoded.truncate(BODY_KEPT);
            exchange.body = decoded;
        }
        if exchange.start_ms == 0.0 {
            // Ended before this stage saw its request (a refused connection): nothing to tally.
            return;
        }
        let end_ms = now_ms_f64();
        if exchange.line.is_some() {
            flow.proxy.figures.line_ended(flow, end_ms);
            return;
        }
        flow.proxy.figures.with(flow, |tally| {
            // The page's files, a framework's handshake, a session's uploads: counted, no letters.
            if let Some(aside) = aside(flow.method.as_str(), &flow.url, &exchange.mime) {
                tally.aside(aside, exchange.up + exchange.down);
                return;
            }
            // Kept whole up to its limit, it may end mid-character: what is valid is compared.
            let body = match std::str::from_utf8(&exchange.body) {
                Ok(text) => Some(text),
                Err(err) => std::str::from_utf8(&exchange.body[..err.valid_up_to()]).ok(),
            };
            tally.letter(Letter {
                start_ms: exchange.start_ms,
                end_ms,
                wait_ms: exchange
                    .first_byte_ms
                    .map_or(end_ms - exchange.start_ms, |first| {
                        first - exchange.start_ms
                    }),
                status: exchange.status,
                body,
                up: exchange.up,
                down: exchange.down,
                heartbeat: exchange.status == 200
                    && body.is_some_and(|body| signature(body, flow.dialect).is_some()),
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_read_again_is_a_heartbeat_exactly_when_its_signature_says_so() {
        let engine_io = Dialect {
            engine_io: true,
            sockjs: false,
        };
        let plain = Dialect::default();
        // The same text in another dialect, and texts that change, are read again; a repeat is not.
        for (text, dialect) in [
            ("2", engine_io),
            ("2", engine_io),
            ("2", plain),
            (r#"{"type":"ping"}"#, plain),
            (r#"{"type":"ping"}"#, plain),
            (r#"{"type":"data","ping":1}"#, plain),
            ("h", plain),
            (
                "h",
                Dialect {
                    engine_io: false,
                    sockjs: true,
                },
            ),
            ("", plain),
        ] {
            assert_eq!(
                shaped(text, dialect),
                signature(text, dialect).is_some(),
                "{text:?} in {dialect:?}"
            );
        }
        assert!(shaped("2", engine_io) && !shaped("2", plain));
    }
}
