//! Endless letter: one `fetch` of `GET /api/stream?after=SEQ` whose answer never ends — a JSON line per
//! message (hello, events, heartbeats, gaps), read with the response body's `ReadableStream`. Unlike
//! the radio's `EventSource` nothing redials by itself and there is no `Last-Event-ID`: when the line
//! ends the lane dials again with `?after=` its last seq (the shared line engine does that), and like
//! any fetch it could carry headers of its own (auth), which an `EventSource` cannot.

use futures_util::{StreamExt, stream};
use js_sys::{Reflect, Uint8Array};
use switchboard_shared::{Backoff, CONNECTION_REQUEST_HEADER, LaneId};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, ReadableStreamDefaultReader};

use super::line::{
    Heard, Line, LineEnd, LineWatch, keep_dialling, next_line, parse_message, report_message,
};
use super::{Reporter, WATCHDOG_CHECK_MS, error_message, header, heads, sse_chunk_bytes};
use crate::wire::{SpanId, Wire};

/// What the reading loop waits on.
enum Wake {
    /// A piece of the body as the browser handed it over (not one per line: lines are cut here).
    Chunk(Result<Vec<u8>, String>),
    /// Time for the watchdog to look at the line.
    Check,
}

/// Reads until the task is dropped (the lane is stopped), dialling again whenever the letter ends.
pub async fn run(reporter: Reporter) {
    debug_assert_eq!(reporter.lane, LaneId::HttpStream);
    let dial_to = |after| {
        let url = format!("{}?after={after}", LaneId::HttpStream.path());
        (url.clone(), format!("GET {url} (fetch, read as a stream)"))
    };
    // A fetch has no close code: aborting it just ends the response.
    keep_dialling(reporter, None, dial_to, async |line, url, backoff| {
        read(&reporter, line, url, backoff).await
    })
    .await;
}

/// Aborts the fetch when dropped, so a stopped lane does not keep the response (and one of the
/// browser's few connections to the server) open.
struct Abort(Option<AbortController>);

impl Drop for Abort {
    fn drop(&mut self) {
        if let Some(controller) = &self.0 {
            controller.abort();
        }
    }
}

/// One letter: dial, then report every line until it ends or the watchdog finds it silent.
async fn read(reporter: &Reporter, line: &mut Line, url: &str, backoff: &mut Backoff) -> LineEnd {
    let span = line.span();
    let abort = Abort(AbortController::new().ok());
    let signal = abort.0.as_ref().map(AbortController::signal);
    let response = match gloo_net::http::Request::get(url)
        .abort_signal(signal.as_ref())
        .send()
        .await
    {
        Ok(response) => response,
        Err(err) => {
            reporter.report(Wire::Error {
                span: Some(span),
                message: format!("no answer: {err}"),
            });
            return LineEnd::Failed("the letter could not be sent".into());
        }
    };
    let (bytes_up, answer_head) = heads(&response);
    if !response.ok() {
        let body = response.text().await.unwrap_or_default();
        reporter.report(Wire::Error {
            span: Some(span),
            message: format!("HTTP {}: {}", response.status(), error_message(&body)),
        });
        return LineEnd::Failed(format!("refused with {}", response.status()));
    }
    if header(&response, CONNECTION_REQUEST_HEADER) == Some(1) {
        reporter.report(Wire::NewConnection { span });
    }
    let Some(reader) = response.body().map(|body| {
        body.get_reader()
            .unchecked_into::<ReadableStreamDefaultReader>()
    }) else {
        return LineEnd::Failed("the answer has no body to read".into());
    };
    let chunks = stream::unfold(Some(reader), |reader| async move {
        let reader = reader?;
        match next_chunk(&reader).await {
            Ok(Some(chunk)) => Some((Wake::Chunk(Ok(chunk)), Some(reader))),
            Ok(None) => None,
            Err(err) => Some((Wake::Chunk(Err(err)), None)),
        }
    });
    let checks = gloo_timers::future::IntervalStream::new(WATCHDOG_CHECK_MS).map(|()| Wake::Check);
    let mut wakes = stream::select(Box::pin(chunks), checks);
    let mut watch = LineWatch::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut answer_head = Some(answer_head);
    while let Some(wake) = wakes.next().await {
        match wake {
            Wake::Check => {
                if let Err(end) = watch.check(reporter, span) {
                    return end;
                }
            }
            Wake::Chunk(Err(err)) => {
                reporter.report(Wire::Error {
                    span: Some(span),
                    message: format!("the letter broke off: {err}"),
                });
                return LineEnd::Failed("the letter broke off".into());
            }
            Wake::Chunk(Ok(chunk)) => {
                watch.heard();
                pending.extend_from_slice(&chunk);
                while let Some(text) = next_line(&mut pending) {
                    reporter.report(Wire::Carried {
                        span,
                        text: text.clone(),
                    });
                    let head = answer_head.take();
                    if let Some(heartbeat_ms) = hear(reporter, span, &text, bytes_up, head) {
                        watch.hello(heartbeat_ms, backoff);
                    }
                }
            }
        }
    }
    drop(abort);
    LineEnd::Failed("the letter ended".into())
}

/// The next piece of the body; `None` when it ended.
pub(super) async fn next_chunk(
    reader: &ReadableStreamDefaultReader,
) -> Result<Option<Vec<u8>>, String> {
    let result = JsFuture::from(reader.read())
        .await
        .map_err(|err| format!("{err:?}"))?;
    Ok(value_of(&result).map(|value| Uint8Array::new(&value).to_vec()))
}

/// The `value` of a stream reader's result, or `None` when the stream is done.
pub(super) fn value_of(result: &JsValue) -> Option<JsValue> {
    let done = Reflect::get(result, &JsValue::from_str("done"))
        .ok()
        .and_then(|done| done.as_bool())
        .unwrap_or(true);
    if done {
        return None;
    }
    Reflect::get(result, &JsValue::from_str("value")).ok()
}

/// Reports one line; when it is the hello that opens the letter, the heartbeat interval it promises.
/// `answer_head` is the answer head's size, counted with the first line.
fn hear(
    reporter: &Reporter,
    span: SpanId,
    text: &str,
    bytes_up: u64,
    answer_head: Option<u64>,
) -> Option<u64> {
    // Each line went out as a chunk of its own (or in a chunk with others: the same bytes but for the
    // chunk's few framing bytes).
    let bytes_down = sse_chunk_bytes(text.len() + 1);
    let message = parse_message(reporter, span, text)?;
    let answer = answer_head.unwrap_or(0);
    match report_message(reporter, span, message, bytes_down, answer, bytes_up) {
        Heard::Hello { heartbeat_ms } => Some(heartbeat_ms),
        Heard::Reported => None,
        Heard::Other(other) => {
            reporter.report(Wire::Error {
                span: Some(span),
                message: format!("unexpected on this lane: {other:?}"),
            });
            None
        }
    }
}
