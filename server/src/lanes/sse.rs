//! Radio: `GET /api/sse` opens one `text/event-stream` response that carries every event from then on.
//!
//! The stream opens with `retry:` (how soon a browser should redial) and a named `hello`; each event goes
//! out as an unnamed message with `id: SEQ`, so the browser's `EventSource` resends it as `Last-Event-ID`
//! when it reconnects; heartbeats and gap notices are named events without an id. The frame of each
//! event was built once at publish time and is shared, not copied, by every stream.

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::stream;
use serde::Deserialize;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use switchboard_shared::ws::Heartbeat;
use switchboard_shared::{LaneId, Seq, sse};
use tokio::time::Interval;
use tokio_util::sync::CancellationToken;

use super::ApiQuery;
use crate::error::AppError;
use crate::faults::{ConnectionFaults, Cut};
use crate::hub::{Delivery, Subscription, now_ms};
use crate::limits::Permit;
use crate::metering::{ConnInfo, Counters, OpenGuard, RequestHead};
use crate::{AppState, heartbeat_interval};

#[derive(Debug, Deserialize)]
pub struct SseQuery {
    /// Resume after this seq (used when there is no `Last-Event-ID` header).
    pub after: Option<Seq>,
}

/// Everything one open stream holds; dropping it (the client went away) closes the stream's books.
struct Radio {
    hello: Option<Bytes>,
    subscription: Subscription,
    heartbeat: Interval,
    shutdown: CancellationToken,
    /// Shutdown or a cut (see [`ConnectionFaults::ending`]), made once for the stream's life.
    ending: Pin<Box<dyn Future<Output = Option<Cut>> + Send>>,
    counters: Arc<Counters>,
    hub: Arc<crate::hub::Hub>,
    conn_faults: ConnectionFaults,
    _open: OpenGuard,
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
    let counters = state.meters.lane(LaneId::Sse).clone();
    let subscription = state.hub.subscribe(resume);
    let hello = state.hello(resume, request_head.map(|Extension(head)| head));
    let first = format!(
        "retry: {}\nevent: {}\ndata: {}\n\n",
        state.config.sse_retry_ms,
        sse::HELLO,
        serde_json::to_string(&hello).expect("hello serializes")
    );
    let conn_faults = ConnectionFaults::new(&state.faults, LaneId::Sse);
    let radio = Radio {
        ending: Box::pin(conn_faults.ending(&state.shutdown)),
        hello: Some(Bytes::from(first)),
        subscription,
        heartbeat: heartbeat_interval(state.config.heartbeat()),
        shutdown: state.shutdown.clone(),
        _open: counters.open(),
        counters,
        hub: state.hub.clone(),
        conn_faults,
        _permit: permit,
    };
    let body = Body::from_stream(stream::unfold(Some(radio), |radio| async move {
        let mut radio = radio?;
        match radio.next_frame().await? {
            Ok(frame) => Some((Ok(frame), Some(radio))),
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

impl Radio {
    /// The next bytes to send; `None` when the stream ends (shutdown), an error when the failure lab
    /// tears it down.
    async fn next_frame(&mut self) -> Option<io::Result<Bytes>> {
        if let Some(hello) = self.hello.take() {
            return Some(Ok(hello));
        }
        let (frame, made_ms) = tokio::select! {
            biased;
            // Shutdown ends the stream; a cut tears it down.
            how = &mut self.ending => return how.map(|_cut| Err(torn("cut by a fault"))),
            delivery = self.subscription.next() => self.frame_of(delivery?),
            _ = self.heartbeat.tick() => {
                let beat = Heartbeat { server_ms: now_ms(), head: self.hub.head() };
                (named(sse::HEARTBEAT, &json(&beat)), beat.server_ms)
            }
        };
        // While no fault is armed on the lane (one atomic load), nothing holds a frame back, so a
        // stream that wakes up behind sends everything waiting as one chunk: one write instead of one
        // per event (at 100 events/s, one write per frame per stream was where the server's time went).
        if self.conn_faults.is_quiet() {
            return Some(Ok(self.with_ready(frame)));
        }
        // A fault may hold each frame on its own. Half-open: the line stays up and says nothing, then
        // is torn down without a word.
        if self
            .conn_faults
            .hold(made_ms, &self.shutdown)
            .await
            .is_err()
        {
            if self.shutdown.is_cancelled() {
                return None;
            }
            return Some(Err(torn("a half-open connection finally failed")));
        }
        Some(Ok(frame))
    }

    /// A delivery's bytes and when they were made (for a `delay` fault).
    fn frame_of(&self, delivery: Delivery) -> (Bytes, u64) {
        match delivery {
            Delivery::Event(event) => {
                self.counters.messages.fetch_add(1, Relaxed);
                (event.sse_frame.clone(), event.ts_ms)
            }
            Delivery::Gap(gap) => (named(sse::GAP, &json(&gap)), now_ms()),
        }
    }

    /// `first` followed by every delivery already waiting (up to [`MAX_BATCH`] in all).
    fn with_ready(&mut self, first: Bytes) -> Bytes {
        let Some(second) = self.subscription.ready() else {
            return first;
        };
        let mut chunk = BytesMut::with_capacity(first.len() * 4);
        chunk.extend_from_slice(&first);
        let mut next = Some(second);
        let mut taken = 1;
        while let Some(delivery) = next {
            chunk.extend_from_slice(&self.frame_of(delivery).0);
            taken += 1;
            next = if taken < MAX_BATCH {
                self.subscription.ready()
            } else {
                None
            };
        }
        chunk.freeze()
    }
}

/// The most events one chunk carries.
const MAX_BATCH: usize = 64;

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("plain data serializes")
}

fn named(event: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}
