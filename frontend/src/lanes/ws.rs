//! The phone call: `GET /ws?after=SEQ` upgrades into one open two-way line. The server says hello,
//! then events and heartbeats; the browser pings to measure the round trip and the clock offset that
//! corrects every delay on the page, and can say chat messages on the line.

use futures_channel::mpsc;
use futures_util::{SinkExt, StreamExt, stream};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, WebSocketError};
use leptos::prelude::*;
use switchboard_shared::ws::{Ping, Pong};
use switchboard_shared::{Backoff, BrowserMessage, LaneId, ServerMessage};

use super::line::{Heard, Line, LineEnd, LineWatch, keep_dialling, parse_message, report_message};
use super::{Reporter, WATCHDOG_CHECK_MS, now_ms, ws_frame_bytes, ws_url};
use crate::wire::{SpanId, Wire};

/// The server's `101 Switching Protocols` head (status line, upgrade, connection, accept key, date,
/// request size). The browser does not show it to the page; measured once (docs/PROTOCOL.md).
pub const ANSWER_HEAD_BYTES: u64 = 188;
/// How often the browser probes the clock once it has read it.
const PING_EVERY_MS: u32 = 5_000;
/// The first probes after the one at the hello come this often, this many. The clock is read from the
/// fastest trip each way, and a page busy starting up makes its first trips slow: with one probe in
/// the first five seconds, a person who chose a network at once had the clock read from that one trip
/// down on loopback (24 ms off, where the browser and the server share one clock).
const FIRST_PING_EVERY_MS: u32 = 1_000;
const FIRST_PINGS: u32 = 4;

/// What the call loop waits on.
enum Wake {
    Received(Result<Message, WebSocketError>),
    Say(BrowserMessage),
    Ping,
    /// Time for the watchdog to look at the line.
    Check,
}

/// Calls, and calls again after a hang-up, until the task is dropped (the lane is stopped).
pub async fn run(reporter: Reporter) {
    debug_assert_eq!(reporter.lane, LaneId::Ws);
    let dial_to = |after| {
        let path = format!("{}?after={after}", LaneId::Ws.path());
        (path.clone(), format!("GET {path} (Upgrade: websocket)"))
    };
    // Stopping the lane hangs up with 1000, a normal close.
    keep_dialling(
        reporter,
        Some(1000),
        dial_to,
        async |line, path, backoff| match WebSocket::open(&ws_url(path)) {
            Ok(socket) => talk(&reporter, line, socket, backoff).await,
            Err(err) => {
                reporter.report(Wire::Error {
                    span: Some(line.span()),
                    message: format!("could not dial: {err}"),
                });
                LineEnd::Failed("the line failed".into())
            }
        },
    )
    .await;
}

/// Runs one call until it ends: the server hangs up, the line fails, or the watchdog finds it silent.
async fn talk(
    reporter: &Reporter,
    line: &mut Line,
    socket: WebSocket,
    backoff: &mut Backoff,
) -> LineEnd {
    let span = line.span();
    let (mut sink, incoming) = socket.split();
    let (say, said) = mpsc::unbounded();
    let pings = gloo_timers::future::IntervalStream::new(FIRST_PING_EVERY_MS).map(|()| Wake::Ping);
    let mut ticks = 0u32;
    let checks = gloo_timers::future::IntervalStream::new(WATCHDOG_CHECK_MS).map(|()| Wake::Check);
    let mut wakes = stream::select(
        incoming.map(Wake::Received),
        stream::select(said.map(Wake::Say), stream::select(pings, checks)),
    );
    let mut answered = false;
    let mut next_ping = 1;
    let mut watch = LineWatch::default();
    while let Some(wake) = wakes.next().await {
        if let Wake::Received(_) = &wake {
            watch.heard();
        }
        let outgoing = match wake {
            Wake::Check => {
                if let Err(end) = watch.check(reporter, span) {
                    return end;
                }
                None
            }
            Wake::Received(Ok(Message::Text(text))) => {
                reporter.report(Wire::Carried {
                    span,
                    text: text.clone(),
                });
                let first = !answered;
                answered = true;
                if let Some(heartbeat_ms) = hear(reporter, span, &text, first) {
                    watch.hello(heartbeat_ms, backoff);
                    line.lend_phone(say.clone());
                    // Measure the clock at once, so the first delays are already corrected.
                    Some(ping(&mut next_ping))
                } else {
                    None
                }
            }
            Wake::Received(Ok(Message::Bytes(bytes))) => {
                reporter.report(Wire::Error {
                    span: Some(span),
                    message: format!("unexpected binary frame of {} bytes", bytes.len()),
                });
                None
            }
            Wake::Received(Err(WebSocketError::ConnectionClose(close))) => {
                return LineEnd::HungUp {
                    code: Some(close.code),
                    reason: close.reason,
                };
            }
            Wake::Received(Err(err)) => {
                reporter.report(Wire::Error {
                    span: Some(span),
                    message: format!("the line failed: {err}"),
                });
                None
            }
            Wake::Say(message) => Some(message),
            Wake::Ping => {
                ticks += 1;
                let due = ticks <= FIRST_PINGS
                    || ticks.is_multiple_of(PING_EVERY_MS / FIRST_PING_EVERY_MS);
                (answered && due).then(|| ping(&mut next_ping))
            }
        };
        if let Some(message) = outgoing {
            let Ok(text) = serde_json::to_string(&message) else {
                continue;
            };
            let bytes_up = ws_frame_bytes(text.len(), true);
            let label = match &message {
                BrowserMessage::Chat(_) => "chat",
                BrowserMessage::Ping(_) => "ping",
                BrowserMessage::Resume { .. } => "resume",
            };
            match sink.send(Message::Text(text.clone())).await {
                Ok(()) => reporter.report(Wire::FrameSent {
                    span,
                    label: label.into(),
                    detail: text,
                    bytes_up,
                }),
                Err(err) => reporter.report(Wire::Error {
                    span: Some(span),
                    message: format!("could not send {label}: {err}"),
                }),
            }
        }
    }
    LineEnd::Failed("the line failed".into())
}

fn ping(next_id: &mut u64) -> BrowserMessage {
    let id = *next_id;
    *next_id += 1;
    BrowserMessage::Ping(Ping {
        id,
        client_ms: now_ms(),
    })
}

/// Reports one text frame from the server; when it is the hello that opens the call, the heartbeat
/// interval it promises.
fn hear(reporter: &Reporter, span: SpanId, text: &str, first: bool) -> Option<u64> {
    let bytes_down = ws_frame_bytes(text.len(), false);
    let message = parse_message(reporter, span, text)?;
    // The 101 answer arrives with the first frame.
    let answer = if first { ANSWER_HEAD_BYTES } else { 0 };
    match report_message(reporter, span, message, bytes_down, answer, 0) {
        Heard::Hello { heartbeat_ms } => Some(heartbeat_ms),
        Heard::Reported => None,
        Heard::Other(message) => {
            answer_heard(reporter, span, message, bytes_down);
            None
        }
    }
}

/// Reports what the server answered to something the browser said on a two-way line (a pong, a chat
/// accepted or refused), and hands a chat answer to the composer waiting for it.
pub(super) fn answer_heard(
    reporter: &Reporter,
    span: SpanId,
    message: ServerMessage,
    bytes_down: u64,
) {
    match message {
        ServerMessage::Pong(pong) => pong_received(reporter, span, &pong, bytes_down),
        ServerMessage::ChatAccepted(accepted) => {
            reporter.report(Wire::FrameReceived {
                span,
                label: "chat_accepted".into(),
                detail: format!("published as #{}", accepted.seq),
                bytes_down,
            });
            reporter.phone.reply.set(Some(Ok(accepted)));
        }
        ServerMessage::Error { code, message } => {
            let why = format!("{code}: {message}");
            reporter.report(Wire::FrameReceived {
                span,
                label: "error".into(),
                detail: why.clone(),
                bytes_down,
            });
            reporter.phone.reply.set(Some(Err(why)));
        }
        other => reporter.report(Wire::Error {
            span: Some(span),
            message: format!("unexpected on this lane: {other:?}"),
        }),
    }
}

fn pong_received(reporter: &Reporter, span: SpanId, pong: &Pong, bytes_down: u64) {
    let received = now_ms();
    let (round_trip_ms, offset_ms) = pong.measure(received);
    let (up_ms, down_ms) = pong.legs(received);
    reporter.report(Wire::ClockSync { up_ms, down_ms });
    reporter.report(Wire::FrameReceived {
        span,
        label: "pong".into(),
        detail: format!(
            "round trip {} · server clock {offset_ms:+.0} ms from the browser's",
            crate::format::format_ms(round_trip_ms)
        ),
        bytes_down,
    });
}
