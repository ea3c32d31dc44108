//! Radio: `GET /api/sse` opens one `text/event-stream` response that carries every event from then on.
//!
//! The stream opens with `retry:` (how soon a browser should redial) and a named `hello`; each event goes
//! out as an unnamed message with `id: SEQ`, so the browser's `EventSource` resends it as `Last-Event-ID`
//! when it reconnects; heartbeats and gap notices are named events without an id. What to send and when
//! is the [`PushStream`]'s; this module is the framing ([`Sse`]) and the response body.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use switchboard_shared::ws::{Heartbeat, Hello};
use switchboard_shared::{Gap, LaneId, Seq, sse};

use super::ApiQuery;
use super::push::{Encoding, PushStream, json, response_body};
use crate::AppState;
use crate::error::AppError;
use crate::hub::Published;
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
        .admit(LaneId::Sse, conn.map(|Extension(conn)| conn.client))?;
    let stream = PushStream::<Sse>::open(&state, resume);
    let hello = stream.hello(&state, resume, request_head.map(|Extension(head)| head));
    let body = response_body(hello, stream, permit);
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
