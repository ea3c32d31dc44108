//! The lane clients, one module each, behind one interface: each runs as a task that reports every
//! wire event through its [`Reporter`] and resumes from its own tracker's last seq.
//!
//! - [`poll`] — letters: a GET every interval;
//! - [`longpoll`] — held letters: a GET the server holds until news or timeout, sent again at once;
//! - [`stream`] — endless letter: one `fetch` whose body is read as a stream of JSON lines;
//! - [`sse`] — radio: the browser's own `EventSource`, so the developer tools still show the stream;
//! - [`ws`] — the phone call: one WebSocket with hello, events, heartbeats, ping/pong and chat frames;
//! - [`webtransport`] — the video call: a WebTransport session, events on a QUIC stream or as datagrams,
//!   chat on a stream of its own;
//! - [`line`] — the engine the endless letter, the radio and the phone call share: dial, watchdog, who closed the line,
//!   backoff and redial.
//!
//! Byte counts are what crossed the wire, headers and framing included: request heads are told by the
//! server (browsers hide the headers they add), answer heads are rebuilt from the headers the page can
//! read, and stream framing is computed from the protocol (docs/PROTOCOL.md, "What the page counts").

pub mod line;
pub mod longpoll;
pub mod poll;
pub mod sse;
pub mod stream;
pub mod webtransport;
pub mod ws;

use futures_util::future::{Either, select};
use gloo_net::http::Response;
use leptos::prelude::*;
use switchboard_shared::{
    Backoff, Batch, CONNECTION_REQUEST_HEADER, ErrorBody, LaneId, REQUEST_BYTES_HEADER, Seq,
};

use crate::store::Store;
use crate::wire::{SpanId, Wire};

pub use line::Phone;

/// Runs `reporter`'s lane client until it is dropped (the lane is stopped): one arm per lane.
pub async fn run(reporter: Reporter) {
    match reporter.lane {
        LaneId::Poll => poll::run(reporter).await,
        LaneId::LongPoll => longpoll::run(reporter).await,
        LaneId::HttpStream => stream::run(reporter).await,
        LaneId::Sse => sse::run(reporter).await,
        LaneId::Ws => ws::run(reporter).await,
        LaneId::WebTransport => webtransport::run(reporter).await,
    }
}

/// The browser's clock, Unix milliseconds (the same epoch as the server's `ts_ms`).
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Where every lane's reports go: the page's store, marked changed so the page looks again. Reports only
/// mark it; the page refreshes a few times a second, so a burst of events costs one re-render.
#[derive(Debug, Clone, Copy)]
pub struct ReportSink {
    store: StoredValue<Store>,
    dirty: StoredValue<bool>,
}

impl ReportSink {
    /// Whether `lane`'s heartbeats are off now (see [`Store::heartbeats_off`]).
    pub fn heartbeats_off(&self, lane: LaneId) -> bool {
        self.store
            .try_with_value(|store| store.heartbeats_off(lane, now_ms()))
            .unwrap_or(false)
    }

    pub fn new(store: StoredValue<Store>) -> ReportSink {
        ReportSink {
            store,
            dirty: StoredValue::new(false),
        }
    }

    pub fn report(&self, lane: LaneId, at_ms: f64, wire: Wire) {
        self.store
            .update_value(|store| store.apply(lane, at_ms, wire));
        self.dirty.set_value(true);
    }

    /// Marks the store changed by something other than a report (a network condition, visibility).
    pub fn touch(&self) {
        self.dirty.set_value(true);
    }

    /// Whether the store changed since the last look, forgetting it.
    pub fn take_changed(&self) -> bool {
        let changed = self.dirty.get_value();
        if changed {
            self.dirty.set_value(false);
        }
        changed
    }
}

/// The settings the letters lanes read before each letter, so a change applies to the next one.
#[derive(Debug, Clone, Copy)]
pub struct LetterSettings {
    /// How often the letters lane asks.
    pub poll_interval_ms: RwSignal<u32>,
    /// How long the held-letters lane asks the server to hold each letter.
    pub wait_ms: RwSignal<u32>,
    /// How the video call takes events: on its stream, or as datagrams (a change redials).
    pub webtransport_mode: RwSignal<switchboard_shared::WebTransportMode>,
}

/// All a lane client may touch: where its reports go, its settings and its own line's outbox (used by
/// the two-way lanes) — not the page.
#[derive(Debug, Clone, Copy)]
pub struct Reporter {
    pub lane: LaneId,
    pub sink: ReportSink,
    pub settings: LetterSettings,
    pub phone: Phone,
}

impl Reporter {
    pub fn report(&self, wire: Wire) {
        self.sink.report(self.lane, now_ms(), wire);
    }

    pub fn new_span(&self) -> SpanId {
        self.sink
            .store
            .try_update_value(|store| store.new_span())
            .unwrap_or(0)
    }

    /// The seq to resume after: the last one this lane received (or the page's starting point).
    pub fn resume_point(&self) -> Seq {
        self.sink
            .store
            .try_with_value(|store| store.lane(self.lane).tracker.last())
            .flatten()
            .unwrap_or(0)
    }
}

/// Sleeps without blocking the page.
pub async fn sleep(ms: u32) {
    gloo_timers::future::TimeoutFuture::new(ms).await;
}

/// How often a line's watchdog looks at it.
pub const WATCHDOG_CHECK_MS: u32 = 250;
/// Until a hello promises a heartbeat interval, a line is watched as if it promised this one: a dial
/// with no hello for 2.5 × this (10 s) is given up.
pub const DIAL_PATIENCE_MS: u64 = 4_000;
/// How long past its expected answer a letter may go unanswered before it is given up (a half-open
/// connection never answers; without this the lane would wait for ever).
pub const LETTER_GRACE_MS: u32 = 5_000;

/// The lane's failure has been reported; waits as its backoff says before the next try, reporting it.
pub async fn back_off(reporter: &Reporter, backoff: &mut Backoff) {
    let after_ms = backoff.down(now_ms(), js_sys::Math::random());
    reporter.report(Wire::Reconnecting { after_ms });
    sleep(after_ms).await;
}

/// The page's own address as a WebSocket URL for `path` (`ws://host/ws?after=3`).
pub fn ws_url(path: &str) -> String {
    let location = web_sys::window().map(|window| window.location());
    let (protocol, host) = location
        .map(|location| {
            (
                location.protocol().unwrap_or_default(),
                location.host().unwrap_or_default(),
            )
        })
        .unwrap_or_default();
    let scheme = if protocol == "https:" { "wss" } else { "ws" };
    format!("{scheme}://{host}{path}")
}

/// The size of an HTTP/1.1 response head: status line, each header line, blank line.
pub fn response_head_bytes<'a>(
    status: u16,
    reason: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> u64 {
    // "HTTP/1.1 200 OK\r\n"
    let status_line = 9 + status.to_string().len() + 1 + reason.len() + 2;
    let header_lines: usize = headers
        .into_iter()
        .map(|(name, value)| name.len() + 2 + value.len() + 2)
        .sum();
    (status_line + header_lines + 2) as u64
}

/// A WebSocket frame's size for a payload: 2 to 10 header bytes, plus a 4-byte mask when the browser
/// sends it.
pub fn ws_frame_bytes(payload: usize, from_browser: bool) -> u64 {
    let header = match payload {
        0..=125 => 2,
        126..=65_535 => 4,
        _ => 10,
    };
    (header + if from_browser { 4 } else { 0 } + payload) as u64
}

/// An SSE frame's size on the wire inside HTTP/1.1 chunked encoding: hex length, CRLF, data, CRLF.
pub fn sse_chunk_bytes(frame: usize) -> u64 {
    let hex_digits = format!("{frame:x}").len();
    (hex_digits + 2 + frame + 2) as u64
}

/// Sends one letter (`GET url`) and reports it and its answer; a letter not answered within
/// `patience_ms` is given up (and its request aborted, so it does not hold one of the browser's few
/// connections to the server). Returns the batch, or `Err` after reporting the failure.
pub async fn send_letter(reporter: &Reporter, url: &str, patience_ms: u32) -> Result<Batch, ()> {
    let span = reporter.new_span();
    reporter.report(Wire::RequestSent {
        span,
        label: format!("GET {url}"),
    });
    let mut out = Outstanding {
        reporter,
        span,
        controller: web_sys::AbortController::new().ok(),
        settled: false,
    };
    let result = ask(reporter, span, url, patience_ms, out.controller.as_ref()).await;
    out.settled = true;
    result
}

/// A letter on its way. When the lane is stopped its task is dropped mid-letter: the request is
/// aborted and the letter reported withdrawn, or the timeline would draw it held until now.
struct Outstanding<'a> {
    reporter: &'a Reporter,
    span: SpanId,
    controller: Option<web_sys::AbortController>,
    settled: bool,
}

impl Drop for Outstanding<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        if let Some(controller) = &self.controller {
            controller.abort();
        }
        self.reporter.report(Wire::Withdrawn { span: self.span });
    }
}

/// The letter's request and its answer, reported.
async fn ask(
    reporter: &Reporter,
    span: SpanId,
    url: &str,
    patience_ms: u32,
    controller: Option<&web_sys::AbortController>,
) -> Result<Batch, ()> {
    let signal = controller.map(web_sys::AbortController::signal);
    let request = match gloo_net::http::Request::get(url)
        .abort_signal(signal.as_ref())
        .build()
    {
        Ok(request) => request,
        Err(err) => {
            return unanswered(
                reporter,
                span,
                format!("could not build the request: {err}"),
            );
        }
    };
    let sent = Box::pin(request.send());
    let patience = Box::pin(sleep(patience_ms));
    let answered = match select(sent, patience).await {
        Either::Left((answered, _)) => answered,
        Either::Right(((), _)) => {
            if let Some(controller) = controller {
                controller.abort();
            }
            let patience = crate::format::format_ms(f64::from(patience_ms));
            return unanswered(
                reporter,
                span,
                format!("no answer within {patience}: given up"),
            );
        }
    };
    let response = match answered {
        Ok(response) => response,
        Err(err) => return unanswered(reporter, span, format!("no answer: {err}")),
    };
    let (bytes_up, head) = heads(&response);
    if header(&response, CONNECTION_REQUEST_HEADER) == Some(1) {
        reporter.report(Wire::NewConnection { span });
    }
    let body = response.text().await.unwrap_or_default();
    let bytes_down = head + body.len() as u64;
    reporter.report(Wire::Carried {
        span,
        text: body.clone(),
    });
    if !response.ok() {
        reporter.report(Wire::RequestFailed {
            span,
            status: Some(response.status()),
            bytes_up,
            bytes_down,
            message: error_message(&body),
        });
        return Err(());
    }
    match serde_json::from_str::<Batch>(&body) {
        Ok(batch) => {
            reporter.report(Wire::ReplyReceived {
                span,
                bytes_up,
                bytes_down,
                batch: batch.clone(),
                cached: from_cache(&response),
            });
            Ok(batch)
        }
        Err(err) => {
            reporter.report(Wire::RequestFailed {
                span,
                status: Some(response.status()),
                bytes_up,
                bytes_down,
                message: format!("the answer is not a batch: {err}"),
            });
            Err(())
        }
    }
}

/// Reports a letter that got no answer at all (nothing crossed the wire that the page can count).
fn unanswered(reporter: &Reporter, span: SpanId, message: String) -> Result<Batch, ()> {
    reporter.report(Wire::RequestFailed {
        span,
        status: None,
        bytes_up: 0,
        bytes_down: 0,
        message,
    });
    Err(())
}

/// Whether a proxy's cache answered (nginx's `X-Cache-Status`: a hit, or a stale copy served while it
/// refreshes).
fn from_cache(response: &Response) -> bool {
    response
        .headers()
        .get("x-cache-status")
        .is_some_and(|status| matches!(status.as_str(), "HIT" | "STALE" | "UPDATING"))
}

/// A number the server told in a response header.
fn header(response: &Response, name: &str) -> Option<u64> {
    response.headers().get(name)?.parse().ok()
}

/// The request head's size as the server told it, and the answer head's size.
fn heads(response: &Response) -> (u64, u64) {
    let headers: Vec<(String, String)> = response.headers().entries().collect();
    let bytes_up = header(response, REQUEST_BYTES_HEADER).unwrap_or(0);
    let head = response_head_bytes(
        response.status(),
        &response.status_text(),
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    (bytes_up, head)
}

/// The server's own words for a refusal, or the start of whatever else answered (a proxy's page).
fn error_message(body: &str) -> String {
    ErrorBody::message_of(body).chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_head_is_counted_as_it_is_written() {
        let head =
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 42\r\n\r\n";
        assert_eq!(
            response_head_bytes(
                200,
                "OK",
                [
                    ("content-type", "application/json"),
                    ("content-length", "42")
                ]
            ),
            head.len() as u64
        );
    }

    #[test]
    fn frames_are_counted_with_their_headers() {
        assert_eq!(ws_frame_bytes(125, false), 127);
        assert_eq!(ws_frame_bytes(126, false), 130);
        assert_eq!(ws_frame_bytes(100, true), 106);
        assert_eq!(ws_frame_bytes(70_000, false), 70_010);
        // 0x92 = 146 bytes: "92\r\n" + frame + "\r\n".
        assert_eq!(sse_chunk_bytes(146), 152);
    }
}
