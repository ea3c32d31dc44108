//! Endless letter: `GET /api/stream?after=SEQ` answers one chunked `application/x-ndjson` response that
//! never ends: one JSON line per message — the same messages the phone call sends (`hello`, `event`,
//! `heartbeat`, `gap`), one per line. The page reads it with `fetch` and a `ReadableStream`, so unlike
//! the radio there is no automatic redial and no `Last-Event-ID`: the client resumes with `?after=`.
//! What to send and when is the [`PushStream`]'s; this module is the framing ([`Ndjson`]) and the body.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use switchboard_shared::ws::{Heartbeat, Hello};
use switchboard_shared::{Gap, LaneId, Seq, ServerMessage};

use super::ApiQuery;
use super::push::{Encoding, PushStream, json, response_body};
use crate::AppState;
use crate::error::AppError;
use crate::hub::Published;
use crate::metering::{ConnInfo, RequestHead};

/// The endless letter's framing: newline-delimited JSON of [`ServerMessage`]s.
#[derive(Debug)]
pub struct Ndjson;

impl Encoding for Ndjson {
    const LANE: LaneId = LaneId::HttpStream;
    type Frame = Bytes;

    fn hello(_state: &AppState, hello: &Hello) -> Bytes {
        line(&ServerMessage::Hello(hello.clone()))
    }

    /// `{"type":"event",` followed by the event's own fields and a newline, made from the event's JSON
    /// without serializing it again (serde_json writes no newline inside it).
    fn event(event: &Published) -> Bytes {
        let mut frame = BytesMut::with_capacity(event.json.len() + 16);
        frame.extend_from_slice(br#"{"type":"event","#);
        frame.extend_from_slice(&event.json[1..]);
        frame.extend_from_slice(b"\n");
        frame.freeze()
    }

    fn gap(gap: Gap) -> Bytes {
        line(&ServerMessage::Gap(gap))
    }

    fn heartbeat(beat: &Heartbeat) -> Bytes {
        line(&ServerMessage::Heartbeat(beat.clone()))
    }
}

fn line(message: &ServerMessage) -> Bytes {
    let mut text = json(message);
    text.push('\n');
    Bytes::from(text)
}

#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    /// Resume after this seq; without it the stream starts from now.
    pub after: Option<Seq>,
}

pub async fn stream(
    State(state): State<AppState>,
    conn: Option<Extension<ConnInfo>>,
    request_head: Option<Extension<RequestHead>>,
    ApiQuery(query): ApiQuery<StreamQuery>,
) -> Result<Response, AppError> {
    let permit = state
        .limits
        .admit(LaneId::HttpStream, conn.map(|Extension(conn)| conn.client))?;
    let stream = PushStream::<Ndjson>::open(&state, query.after);
    let hello = stream.hello(
        &state,
        query.after,
        request_head.map(|Extension(head)| head),
    );
    let body = response_body(hello, stream, permit);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson"),
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
