//! Radio: one `GET /api/sse` held open, the server talking one way. It uses the browser's own
//! `EventSource` (so the developer tools show the stream as an event stream) and lets the browser
//! redial with `Last-Event-ID` when the line breaks; only when the browser gives up does the lane dial
//! again itself, resuming with `?after=`.

use futures_channel::mpsc;
use futures_util::{StreamExt, stream};
use switchboard_shared::ws::{Heartbeat, Hello};
use switchboard_shared::{Backoff, Event, Gap, LaneId, sse};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{EventSource, MessageEvent};

use super::line::{Line, LineEnd, LineWatch, keep_dialling};
use super::{Reporter, WATCHDOG_CHECK_MS, now_ms, sse_chunk_bytes};
use crate::wire::{ClosedBy, SpanId, Wire};

/// The answer head of the stream as the server writes it (status line, content type, cache control,
/// chunked encoding, date, request size): `EventSource` does not show response headers to the page,
/// so this is the server's known head, measured once (docs/PROTOCOL.md).
pub const ANSWER_HEAD_BYTES: u64 = 187;
/// `retry: 1000\n` at the top of the first frame (the server's default).
const RETRY_FIELD_BYTES: usize = 12;

/// What the radio signals, in the order the browser dispatched it.
enum SseSignal {
    Named(&'static str, String),
    Event(String),
    /// The line broke; `gave_up` when the browser will not redial by itself.
    Broke {
        gave_up: bool,
    },
    /// Time for the watchdog to look at the line.
    Check,
}

/// A listener for one named event type.
type Listener = Closure<dyn FnMut(MessageEvent)>;

/// An open `EventSource` whose listeners feed one ordered channel; closing it on drop.
struct EventSourceStream {
    source: EventSource,
    listeners: Vec<(&'static str, Listener)>,
    on_error: Closure<dyn FnMut(web_sys::Event)>,
    signals: mpsc::UnboundedReceiver<SseSignal>,
}

impl EventSourceStream {
    fn open(url: &str) -> Result<EventSourceStream, String> {
        let source = EventSource::new(url).map_err(|err| format!("{err:?}"))?;
        let (tell, signals) = mpsc::unbounded();
        let mut listeners = Vec::new();
        for name in [sse::HELLO, sse::HEARTBEAT, sse::GAP, "message"] {
            let tell = tell.clone();
            let listener = Listener::new(move |event: MessageEvent| {
                let data = event.data().as_string().unwrap_or_default();
                let signal = match name {
                    "message" => SseSignal::Event(data),
                    named => SseSignal::Named(named, data),
                };
                let _ = tell.unbounded_send(signal);
            });
            source
                .add_event_listener_with_callback(name, listener.as_ref().unchecked_ref())
                .map_err(|err| format!("{err:?}"))?;
            listeners.push((name, listener));
        }
        let watched = source.clone();
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_: web_sys::Event| {
            let gave_up = watched.ready_state() == EventSource::CLOSED;
            let _ = tell.unbounded_send(SseSignal::Broke { gave_up });
        });
        source
            .add_event_listener_with_callback("error", on_error.as_ref().unchecked_ref())
            .map_err(|err| format!("{err:?}"))?;
        Ok(EventSourceStream {
            source,
            listeners,
            on_error,
            signals,
        })
    }
}

impl Drop for EventSourceStream {
    fn drop(&mut self) {
        self.source.close();
        for (name, listener) in &self.listeners {
            let _ = self
                .source
                .remove_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
        }
        let _ = self
            .source
            .remove_event_listener_with_callback("error", self.on_error.as_ref().unchecked_ref());
    }
}

/// Listens until the task is dropped (the lane is stopped), redialling when the browser gives up.
pub async fn run(reporter: Reporter) {
    debug_assert_eq!(reporter.lane, LaneId::Sse);
    let dial_to = |after| {
        let url = format!("{}?after={after}", LaneId::Sse.path());
        (url.clone(), format!("GET {url}"))
    };
    // The radio's stop has no close code: an EventSource just closes.
    keep_dialling(
        reporter,
        None,
        dial_to,
        async |line, url, backoff| match EventSourceStream::open(url) {
            Ok(mut radio) => listen(&reporter, &mut radio, line, backoff).await,
            Err(err) => {
                reporter.report(Wire::Error {
                    span: Some(line.span()),
                    message: format!("could not open the stream: {err}"),
                });
                LineEnd::Failed("the stream could not be opened".into())
            }
        },
    )
    .await;
}

/// Reports everything the radio hears until the browser gives up on it or the watchdog finds the line
/// silent (a half-open stream: the browser still thinks it is open, so its own reconnect never
/// starts); says how it ended.
async fn listen(
    reporter: &Reporter,
    radio: &mut EventSourceStream,
    line: &mut Line,
    backoff: &mut Backoff,
) -> LineEnd {
    let checks =
        gloo_timers::future::IntervalStream::new(WATCHDOG_CHECK_MS).map(|()| SseSignal::Check);
    let mut signals = stream::select(&mut radio.signals, checks);
    let mut watch = LineWatch::default();
    while let Some(signal) = signals.next().await {
        let span = line.span();
        if !matches!(signal, SseSignal::Check | SseSignal::Broke { .. }) {
            watch.heard();
        }
        match signal {
            SseSignal::Check => {
                if let Err(end) = watch.check(reporter, span) {
                    return end;
                }
            }
            SseSignal::Named(name, data) if name == sse::HELLO => {
                reporter.report(Wire::Carried {
                    span,
                    text: block(None, Some(name), &data),
                });
                let Some(hello) = parse::<Hello>(reporter, span, &data) else {
                    continue;
                };
                watch.hello(hello.heartbeat_ms, backoff);
                let frame = RETRY_FIELD_BYTES + "event: hello\ndata: \n\n".len() + data.len();
                reporter.report(Wire::Opened {
                    span,
                    bytes_up: hello.request_bytes.unwrap_or(0),
                    bytes_down: ANSWER_HEAD_BYTES + sse_chunk_bytes(frame),
                    hello,
                });
            }
            SseSignal::Named(name, data) => {
                reporter.report(Wire::Carried {
                    span,
                    text: block(None, Some(name), &data),
                });
                let bytes_down =
                    sse_chunk_bytes(format!("event: {name}\ndata: \n\n").len() + data.len());
                if name == sse::HEARTBEAT {
                    if let Some(heartbeat) = parse::<Heartbeat>(reporter, span, &data) {
                        reporter.report(Wire::Heartbeat {
                            span,
                            heartbeat,
                            bytes_down,
                        });
                    }
                } else if let Some(gap) = parse::<Gap>(reporter, span, &data) {
                    reporter.report(Wire::GapNotice {
                        span,
                        gap,
                        bytes_down,
                    });
                }
            }
            SseSignal::Event(data) => {
                let event = parse::<Event>(reporter, span, &data);
                reporter.report(Wire::Carried {
                    span,
                    text: block(event.as_ref().map(|event| event.seq), None, &data),
                });
                if let Some(event) = event {
                    let frame = format!("id: {}\ndata: \n\n", event.seq).len() + data.len();
                    reporter.report(Wire::EventReceived {
                        span,
                        event,
                        bytes_down: sse_chunk_bytes(frame),
                    });
                }
            }
            SseSignal::Broke { gave_up: true } => {
                return LineEnd::Failed("the browser gave up on the stream".into());
            }
            SseSignal::Broke { gave_up: false } => {
                // The browser redials by itself and sends Last-Event-ID; the new line is a new span,
                // watched with the dial's patience until its hello.
                line.close(
                    ClosedBy::Failure,
                    None,
                    "the stream broke; the browser redials with Last-Event-ID",
                );
                // The line was up until now: a stream that keeps breaking must not count as healthy
                // when the lane next backs off itself (the browser's own wait is its `retry:`).
                let _ = backoff.down(now_ms(), 0.0);
                watch.redialling();
                reporter.report(Wire::Reconnecting { after_ms: 1000 });
                let resume = reporter.resume_point();
                *line = Line::dial(
                    *reporter,
                    format!("GET {} (Last-Event-ID: {resume})", LaneId::Sse.path()),
                    None,
                );
            }
        }
    }
    LineEnd::Failed("the stream ended".into())
}

fn parse<T: serde::de::DeserializeOwned>(
    reporter: &Reporter,
    span: SpanId,
    data: &str,
) -> Option<T> {
    match serde_json::from_str(data) {
        Ok(value) => Some(value),
        Err(err) => {
            reporter.report(Wire::Error {
                span: Some(span),
                message: format!("unreadable frame: {err}"),
            });
            None
        }
    }
}

/// An event block as the server wrote it (`id:`, `event:`, one `data:` line per line of data), from
/// what `EventSource` hands over: it keeps the fields, not the bytes.
pub(crate) fn block(id: Option<u64>, name: Option<&str>, data: &str) -> String {
    let mut text = String::new();
    if let Some(id) = id {
        text.push_str(&format!("id: {id}\n"));
    }
    if let Some(name) = name {
        text.push_str(&format!("event: {name}\n"));
    }
    for line in data.split('\n') {
        text.push_str("data: ");
        text.push_str(line);
        text.push('\n');
    }
    text
}
