//! Radio: `GET /api/sse` opens one `text/event-stream` response that carries every event from then on.
//!
//! The stream opens with `retry:` (how soon a browser should redial) and a named `hello`; each event goes
//! out as an unnamed message with `id: SEQ`, so the browser's `EventSource` resends it as `Last-Event-ID`
//! when it reconnects; heartbeats and gap notices are named events without an id. What to send and when
//! is the [`PushStream`]'s; this module is the framing ([`Sse`]) and the response body.

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::stream;
use serde::Deserialize;
use std::io;
use switchboard_shared::ws::{Heartbeat, Hello};
use switchboard_shared::{Gap, LaneId, Seq, sse};

use super::ApiQuery;
use super::push::{Encoding, Ending, PushStream, json};
use crate::AppState;
use crate::error::AppError;
use crate::hub::Published;
use crate::limits::Permit;
use crate::metering::{ConnInfo, RequestHead};

/// The radio's framing: Server-Sent Events.
#[derive(Debug)]
pub struct Sse;

impl Encoding for Sse {
    const LANE: LaneId = LaneId::Sse;
    type Frame = Bytes;

    fn hello(state: &AppState, hello: &Hello) -> Bytes {
        Bytes::from(format!(
            "retry: {}\nevent: {}\ndata: {}\n\n",
            state.config.sse_retry_ms,
            sse::HELLO,
            json(hello)
        ))
    }

    /// `id: SEQ\ndata: JSON\n\n` (the JSON has no newline, so one data line carries it).
    fn event(event: &Published) -> Bytes {
        let mut frame = BytesMut::with_capacity(event.json.len() + 32);
        frame.extend_from_slice(format!("id: {}\ndata: ", event.seq).as_bytes());
        frame.extend_from_slice(&event.json);
        frame.extend_from_slice(b"\n\n");
        frame.freeze()
    }

    fn gap(gap: Gap) -> Bytes {
        named(sse::GAP, &json(&gap))
    }

    fn heartbeat(beat: &Heartbeat) -> Bytes {
        named(sse::HEARTBEAT, &json(beat))
    }
}

fn named(event: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

#[derive(Debug, Deserialize)]
pub struct SseQuery {
    /// Resume after this seq (used when there is no `Last-Event-ID` header).
    pub after: Option<Seq>,
}

/// Everything one open stream holds; dropping it (the client went away) closes the stream's books.
struct SseBody {
    hello: Option<Bytes>,
    stream: PushStream<Sse>,
    /// The frames of the current wake-up, kept to reuse the allocation.
    frames: Vec<Bytes>,
    _permit: Permit,
}

/// Why the server tears a stream down mid-way (the failure lab); the connection is aborted, not ended
/// cleanly, as a real network failure would leave it.
fn torn(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, why.to_owned())
}

pub async fn sse(
    State(state): State<AppState>,
    conn: Option<Extension<ConnInfo>>,
    request_head: Option<Extension<RequestHead>>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<SseQuery>,
) -> Result<Response, AppError> {
    // A reconnecting EventSource keeps its original URL, so the header is the fresher resume point.
    let resume = match headers.get("last-event-id").map(HeaderValue::to_str) {
        None => query.after,
        Some(Ok("")) => query.after,
        Some(Ok(value)) => Some(value.trim().parse::<Seq>().map_err(|_| {
            AppError::BadHeader(format!(
                "Last-Event-ID must be a sequence number, got {value:?}"
            ))
        })?),
        Some(Err(_)) => {
            return Err(AppError::BadHeader(
                "Last-Event-ID is not visible ASCII".into(),
            ));
        }
    };
    let permit = state
        .limits
        .admit(LaneId::Sse, conn.map(|Extension(conn)| conn.remote.ip()))?;
    let stream = PushStream::<Sse>::open(&state, resume);
    let body_state = SseBody {
        hello: Some(stream.hello(&state, resume, request_head.map(|Extension(head)| head))),
        stream,
        frames: Vec::new(),
        _permit: permit,
    };
    let body = Body::from_stream(stream::unfold(Some(body_state), |body_state| async move {
        let mut body_state = body_state?;
        match body_state.next_frame().await? {
            Ok(frame) => Some((Ok(frame), Some(body_state))),
            // The error aborts the response; nothing follows it.
            Err(err) => Some((Err(err), None)),
        }
    }));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            // Ask reverse proxies not to buffer the stream.
            (
                header::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        body,
    )
        .into_response())
}

impl SseBody {
    /// The next bytes to send; `None` when the stream ends (shutdown), an error when the failure lab
    /// tears it down.
    async fn next_frame(&mut self) -> Option<io::Result<Bytes>> {
        if let Some(hello) = self.hello.take() {
            return Some(Ok(hello));
        }
        let woken = self.stream.wait().await;
        let sent = match woken {
            Ok(woken) => self.stream.frames(woken, &mut self.frames).await,
            Err(ending) => Err(ending),
        };
        match sent {
            Ok(()) => Some(Ok(chunk(&mut self.frames))),
            Err(Ending::Shutdown | Ending::StreamEnded) => None,
            // The failure lab: the connection is aborted, not ended cleanly, as a real network failure
            // would leave it.
            Err(Ending::Cut(_)) => Some(Err(torn("cut by a fault"))),
            Err(Ending::Silenced) => Some(Err(torn("a half-open connection finally failed"))),
        }
    }
}

/// The frames of one wake-up as one chunk: one write, not one per event.
fn chunk(frames: &mut Vec<Bytes>) -> Bytes {
    if frames.len() == 1 {
        return frames.pop().expect("one frame");
    }
    let mut chunk = BytesMut::with_capacity(frames.iter().map(Bytes::len).sum());
    for frame in frames.drain(..) {
        chunk.extend_from_slice(&frame);
    }
    chunk.freeze()
}
