//! WebTransport: HTTP/3 over QUIC. Each dial first asks `GET /api/webtransport` where the server's QUIC
//! endpoint is and the SHA-256 of its certificate (a browser takes a self-signed certificate only by its
//! hash), then opens `new WebTransport(url, {serverCertificateHashes})`. The server opens one
//! unidirectional stream and writes JSON lines on it (hello, events, heartbeats, gaps); in datagram mode
//! events come as datagrams instead, and what the path loses stays lost (the only lane where a missed
//! seq is expected: the scoreboard counts it as missed). Chat goes up on a bidirectional stream the page
//! opens, one JSON line per message, answered on the same stream.
//!
//! Where the browser has no `WebTransport`, the lane says so once and waits (nothing to dial).

use futures_channel::mpsc;
use futures_util::{StreamExt, stream};
use js_sys::{Reflect, Uint8Array};
use leptos::prelude::GetUntracked;
use switchboard_shared::{
    Backoff, BrowserMessage, LaneId, ServerMessage, WebTransportInfo, WebTransportMode,
};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    ReadableStream, ReadableStreamDefaultReader, WebTransport, WebTransportBidirectionalStream,
    WebTransportCloseInfo, WebTransportHash, WebTransportOptions, WritableStreamDefaultWriter,
};

use super::line::{
    Heard, Line, LineEnd, LineWatch, keep_dialling, next_line, parse_message, report_message,
};
use super::stream::{next_chunk, value_of};
use super::ws::answer_heard;
use super::{Reporter, WATCHDOG_CHECK_MS, error_message, heads};
use crate::wire::{SpanId, Wire};

/// What one QUIC packet adds to the bytes it carries: a short header (the connection id and packet
/// number), a STREAM or DATAGRAM frame header and the 16-byte AEAD tag — 43 bytes, measured against the
/// UDP counters (`cargo run -p switchboard-server --example wire_cost`). The acknowledgements the
/// browser's QUIC stack sends are not seen by the page and not counted here (the server counts them).
pub const QUIC_PACKET_OVERHEAD: u64 = 43;
/// The QUIC and TLS handshake and the HTTP/3 settings and CONNECT, each way, as the server's UDP
/// counters saw a headless Chromium's session open (its Initial packets are padded to 1,200 bytes; the
/// server's certificate and its path-MTU probes go down).
pub const HANDSHAKE_BYTES_UP: u64 = 1_700;
pub const HANDSHAKE_BYTES_DOWN: u64 = 6_800;

/// How long a session may take to open (QUIC and TLS handshake, CONNECT) before the dial is given up,
/// as a line with no hello is (`DIAL_PATIENCE_MS` × 2.5).
const OPEN_PATIENCE_MS: u32 = 10_000;

/// Whether this browser has `WebTransport` at all.
pub fn supported() -> bool {
    web_sys::window().is_some_and(|window| {
        Reflect::has(&window, &JsValue::from_str("WebTransport")).unwrap_or(false)
    })
}

/// What the session loop waits on.
enum Wake {
    /// A piece of the server's stream (lines are cut here).
    Chunk(Result<Option<Vec<u8>>, String>),
    /// One datagram: one message.
    Datagram(Result<Option<Vec<u8>>, String>),
    /// A piece of the talking stream's answers.
    Answer(Result<Option<Vec<u8>>, String>),
    Say(BrowserMessage),
    /// The session closed: the server's code and reason, or why it failed.
    Closed(Result<(Option<u32>, String), String>),
    Check,
}

/// Dials sessions until the task is dropped (the lane is stopped); the mode (stream or datagrams) is
/// read at each dial, and a change of it redials.
pub async fn run(reporter: Reporter) {
    debug_assert_eq!(reporter.lane, LaneId::WebTransport);
    if !supported() {
        reporter.report(Wire::Error {
            span: None,
            message: "this browser has no WebTransport: the lane cannot dial".into(),
        });
        std::future::pending::<()>().await;
    }
    let dial_to = |after| {
        let mode = reporter.settings.webtransport_mode.get_untracked();
        let query = match mode {
            WebTransportMode::Stream => format!("?after={after}"),
            WebTransportMode::Datagram => format!("?after={after}&mode=datagram"),
        };
        (
            query.clone(),
            format!(
                "CONNECT {}{query} (HTTP/3, QUIC)",
                LaneId::WebTransport.path()
            ),
        )
    };
    keep_dialling(reporter, Some(0), dial_to, async |line, query, backoff| {
        session(&reporter, line, query, backoff).await
    })
    .await;
}

/// Closes the session when dropped: a stopped lane (or a redial) leaves nothing open.
struct Session(WebTransport);

impl Drop for Session {
    fn drop(&mut self) {
        let info = WebTransportCloseInfo::new();
        info.set_close_code(0);
        info.set_reason("stopped");
        self.0.close_with_close_info(&info);
    }
}

/// One session: ask where to dial, dial, then report every message until it ends or goes silent.
async fn session(
    reporter: &Reporter,
    line: &mut Line,
    query: &str,
    backoff: &mut Backoff,
) -> LineEnd {
    let span = line.span();
    let mode = reporter.settings.webtransport_mode.get_untracked();
    let (info, info_bytes_up, info_bytes_down) = match where_to_dial(reporter, span).await {
        Ok(found) => found,
        Err(end) => return end,
    };
    let transport = match open(&info, query) {
        Ok(transport) => Session(transport),
        Err(err) => {
            reporter.report(Wire::Error {
                span: Some(span),
                message: format!("could not dial: {err}"),
            });
            return LineEnd::Failed("the session could not be opened".into());
        }
    };
    // Where UDP is blocked the handshake gets no answer at all, and the browser would wait for QUIC's
    // own idle timeout: give up as a line without its hello is given up.
    let opened = futures_util::future::select(
        JsFuture::from(transport.0.ready()),
        gloo_timers::future::TimeoutFuture::new(OPEN_PATIENCE_MS),
    )
    .await;
    let failed = match opened {
        futures_util::future::Either::Left((Ok(_), _)) => None,
        futures_util::future::Either::Left((Err(err), _)) => Some(js_text(&err)),
        futures_util::future::Either::Right(_) => Some(format!(
            "no answer in {} s (is UDP to the server blocked?)",
            OPEN_PATIENCE_MS / 1000
        )),
    };
    if let Some(why) = failed {
        reporter.report(Wire::Error {
            span: Some(span),
            message: format!("the session did not open: {why}"),
        });
        return LineEnd::Failed("the session did not open".into());
    }
    // The server's one stream: the first incoming unidirectional stream.
    let incoming = reader_of(&transport.0.incoming_unidirectional_streams());
    let lines = match JsFuture::from(incoming.read())
        .await
        .map(|result| value_of(&result))
    {
        Ok(Some(stream)) => reader_of(stream.unchecked_ref::<ReadableStream>()),
        _ => {
            reporter.report(Wire::Error {
                span: Some(span),
                message: "the server opened no stream".into(),
            });
            return LineEnd::Failed("no stream from the server".into());
        }
    };
    let datagrams = reader_of(&transport.0.datagrams().readable());
    let chunks = reads(lines).map(Wake::Chunk);
    let datagrams = reads(datagrams).map(Wake::Datagram);
    let closed = stream::once(closed(transport.0.clone())).map(Wake::Closed);
    let (say, said) = mpsc::unbounded();
    let (answers_to, answers) = mpsc::unbounded();
    let checks = gloo_timers::future::IntervalStream::new(WATCHDOG_CHECK_MS).map(|()| Wake::Check);
    let mut wakes = stream::select(
        stream::select(Box::pin(chunks), Box::pin(datagrams)),
        stream::select(
            stream::select(said.map(Wake::Say), answers.map(Wake::Answer)),
            stream::select(Box::pin(closed), checks),
        ),
    );
    let mut watch = LineWatch::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut answer_pending: Vec<u8> = Vec::new();
    let mut talking: Option<WritableStreamDefaultWriter> = None;
    let mut first = Some((
        info_bytes_up + HANDSHAKE_BYTES_UP,
        info_bytes_down + HANDSHAKE_BYTES_DOWN,
    ));
    while let Some(wake) = wakes.next().await {
        match wake {
            Wake::Check => {
                if let Err(end) = watch.check(reporter, span) {
                    return end;
                }
                if reporter.settings.webtransport_mode.get_untracked() != mode {
                    return LineEnd::Switched(format!(
                        "switching to {}",
                        reporter.settings.webtransport_mode.get_untracked().title()
                    ));
                }
            }
            Wake::Chunk(Ok(Some(chunk))) => {
                watch.heard();
                pending.extend_from_slice(&chunk);
                while let Some(text) = next_line(&mut pending) {
                    if let Some(heartbeat_ms) = hear(reporter, span, &text, first.take()) {
                        watch.hello(heartbeat_ms, backoff);
                        line.lend_phone(say.clone());
                    }
                }
            }
            Wake::Chunk(Ok(None)) => return LineEnd::Failed("the server's stream ended".into()),
            Wake::Chunk(Err(err)) => {
                reporter.report(Wire::Error {
                    span: Some(span),
                    message: format!("the stream broke off: {err}"),
                });
                return LineEnd::Failed("the stream broke off".into());
            }
            Wake::Datagram(Ok(Some(datagram))) => {
                watch.heard();
                let text = String::from_utf8_lossy(&datagram);
                hear(reporter, span, text.trim_end(), None);
            }
            // The session's end says why; the datagram reader only follows it.
            Wake::Datagram(_) => {}
            Wake::Answer(Ok(Some(chunk))) => {
                watch.heard();
                answer_pending.extend_from_slice(&chunk);
                while let Some(text) = next_line(&mut answer_pending) {
                    hear(reporter, span, &text, None);
                }
            }
            Wake::Answer(Ok(None)) => talking = None,
            Wake::Answer(Err(err)) => {
                talking = None;
                reporter.report(Wire::Error {
                    span: Some(span),
                    message: format!("the talking stream broke off: {err}"),
                });
            }
            Wake::Say(message) => {
                if talking.is_none() {
                    talking = open_talk(&transport.0, &answers_to).await;
                }
                say_on(reporter, span, talking.as_ref(), &message).await;
            }
            Wake::Closed(Ok((code, reason))) => {
                return LineEnd::HungUp {
                    code: code.and_then(|code| u16::try_from(code).ok()),
                    reason,
                };
            }
            Wake::Closed(Err(err)) => {
                reporter.report(Wire::Error {
                    span: Some(span),
                    message: format!("the session failed: {err}"),
                });
                return LineEnd::Failed("the session failed".into());
            }
        }
    }
    LineEnd::Failed("the session ended".into())
}

/// `GET /api/webtransport`, reported as the letter it is: where to dial, and that letter's bytes.
async fn where_to_dial(
    reporter: &Reporter,
    span: SpanId,
) -> Result<(WebTransportInfo, u64, u64), LineEnd> {
    let response = match gloo_net::http::Request::get(LaneId::WebTransport.path())
        .send()
        .await
    {
        Ok(response) => response,
        Err(err) => {
            reporter.report(Wire::Error {
                span: Some(span),
                message: format!("could not ask where to dial: {err}"),
            });
            return Err(LineEnd::Failed("no answer to where to dial".into()));
        }
    };
    let (bytes_up, answer_head) = heads(&response);
    let body = response.text().await.unwrap_or_default();
    if !response.ok() {
        reporter.report(Wire::Error {
            span: Some(span),
            message: format!("HTTP {}: {}", response.status(), error_message(&body)),
        });
        return Err(LineEnd::Failed(format!(
            "refused with {}",
            response.status()
        )));
    }
    match serde_json::from_str(&body) {
        Ok(info) => Ok((info, bytes_up, answer_head + body.len() as u64)),
        Err(err) => {
            reporter.report(Wire::Error {
                span: Some(span),
                message: format!("an unreadable answer to where to dial: {err}"),
            });
            Err(LineEnd::Failed("an unreadable answer".into()))
        }
    }
}

/// `new WebTransport(url, {serverCertificateHashes: [{algorithm: "sha-256", value}]})`.
fn open(info: &WebTransportInfo, query: &str) -> Result<WebTransport, String> {
    let digest = info
        .cert_digest()
        .ok_or("the certificate hash is not 64 hex digits")?;
    let hash = WebTransportHash::new();
    hash.set_algorithm("sha-256");
    hash.set_value_u8_array(&Uint8Array::from(digest.as_slice()));
    let options = WebTransportOptions::new();
    options.set_server_certificate_hashes(&[hash]);
    WebTransport::new_with_options(&format!("{}{query}", info.url), &options)
        .map_err(|err| js_text(&err))
}

fn reader_of(stream: &ReadableStream) -> ReadableStreamDefaultReader {
    stream.get_reader().unchecked_into()
}

/// Everything a byte reader yields, then its end (`Ok(None)`) or its error.
fn reads(
    reader: ReadableStreamDefaultReader,
) -> impl futures_util::Stream<Item = Result<Option<Vec<u8>>, String>> {
    stream::unfold(Some(reader), |reader| async move {
        let reader = reader?;
        match next_chunk(&reader).await {
            Ok(Some(chunk)) => Some((Ok(Some(chunk)), Some(reader))),
            Ok(None) => Some((Ok(None), None)),
            Err(err) => Some((Err(err), None)),
        }
    })
}

/// Resolves when the session closes: the close code and reason, or why it failed.
async fn closed(transport: WebTransport) -> Result<(Option<u32>, String), String> {
    match JsFuture::from(transport.closed()).await {
        Ok(info) => {
            let info: WebTransportCloseInfo = info.unchecked_into();
            Ok((info.get_close_code(), info.get_reason().unwrap_or_default()))
        }
        Err(err) => Err(js_text(&err)),
    }
}

/// Opens the talking stream; its answers are read into `answers_to` for the session loop.
async fn open_talk(
    transport: &WebTransport,
    answers_to: &mpsc::UnboundedSender<Result<Option<Vec<u8>>, String>>,
) -> Option<WritableStreamDefaultWriter> {
    let stream: WebTransportBidirectionalStream =
        JsFuture::from(transport.create_bidirectional_stream())
            .await
            .ok()?
            .unchecked_into();
    let writer = stream.writable().get_writer().ok()?;
    let answers = reads(reader_of(stream.readable().unchecked_ref()));
    let answers_to = answers_to.clone();
    wasm_bindgen_futures::spawn_local(async move {
        let mut answers = Box::pin(answers);
        while let Some(answer) = answers.next().await {
            if answers_to.unbounded_send(answer).is_err() {
                break;
            }
        }
    });
    Some(writer)
}

/// Writes one message as a JSON line on the talking stream, and reports it.
async fn say_on(
    reporter: &Reporter,
    span: SpanId,
    writer: Option<&WritableStreamDefaultWriter>,
    message: &BrowserMessage,
) {
    let Ok(text) = serde_json::to_string(message) else {
        return;
    };
    let label = match message {
        BrowserMessage::Chat(_) => "chat",
        BrowserMessage::Ping(_) => "ping",
        BrowserMessage::Resume { .. } => "resume",
    };
    let Some(writer) = writer else {
        reporter.report(Wire::Error {
            span: Some(span),
            message: format!("could not send {label}: no stream to talk on"),
        });
        return;
    };
    let line = format!("{text}\n");
    let written = JsFuture::from(writer.write_with_chunk(&Uint8Array::from(line.as_bytes()))).await;
    match written {
        Ok(_) => reporter.report(Wire::FrameSent {
            span,
            label: label.into(),
            detail: text,
            bytes_up: line.len() as u64 + QUIC_PACKET_OVERHEAD,
        }),
        Err(err) => reporter.report(Wire::Error {
            span: Some(span),
            message: format!("could not send {label}: {}", js_text(&err)),
        }),
    }
}

/// Reports one line or datagram; when it is the hello that opens the session, the heartbeat interval
/// it promises. `first` is the handshake's bytes both ways, counted with the hello.
fn hear(reporter: &Reporter, span: SpanId, text: &str, first: Option<(u64, u64)>) -> Option<u64> {
    let bytes_down = text.len() as u64 + 1 + QUIC_PACKET_OVERHEAD;
    let message = parse_message(reporter, span, text)?;
    let (up, down) = first.unwrap_or((0, 0));
    match report_message(reporter, span, message, bytes_down, down, up) {
        Heard::Hello { heartbeat_ms } => Some(heartbeat_ms),
        Heard::Reported => None,
        Heard::Other(
            other @ (ServerMessage::ChatAccepted(_)
            | ServerMessage::Error { .. }
            | ServerMessage::Pong(_)),
        ) => {
            answer_heard(reporter, span, other, bytes_down);
            None
        }
        Heard::Other(other) => {
            reporter.report(Wire::Error {
                span: Some(span),
                message: format!("unexpected on this lane: {other:?}"),
            });
            None
        }
    }
}

fn js_text(value: &JsValue) -> String {
    value
        .as_string()
        .or_else(|| {
            Reflect::get(value, &JsValue::from_str("message"))
                .ok()
                .and_then(|message| message.as_string())
        })
        .unwrap_or_else(|| format!("{value:?}"))
}
