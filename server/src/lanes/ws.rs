//! Phone call: `GET /ws?after=SEQ` upgrades (HTTP 101) into one open two-way line.
//!
//! One task per connection runs one loop over four things: the browser's frames (chat, ping, resume),
//! the subscription's events, the heartbeat tick and shutdown. Each tick sends an app-level heartbeat
//! (browsers cannot see protocol pings) and a protocol ping (to find dead peers server-side: a peer that
//! sends nothing, not even a pong, for three intervals is hung up on). A bad frame is answered with an
//! `error` message; a peer that keeps sending bad frames is hung up on with 1008.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::SinkExt;
use serde::Deserialize;
use std::future::poll_fn;
use std::net::IpAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::Poll;
use std::time::Duration;
use switchboard_shared::ws::{Heartbeat, Pong, close_code};
use switchboard_shared::{
    BrowserMessage, ChatAccepted, ChatMessage, ChatVia, ErrorCode, EventBody, LaneId, Seq,
    ServerMessage,
};
use tokio::time::Instant;

use super::ApiQuery;
use crate::error::AppError;
use crate::faults::{ConnectionFaults, Cut};
use crate::hub::{Delivery, now_ms};
use crate::limits::Permit;
use crate::metering::{ConnInfo, Counters, RequestHead};
use crate::{AppState, heartbeat_interval};

/// The largest frame the server reads at all; a bigger one ends the connection with 1009. Kept small
/// because every message of this protocol is small, and it bounds what one peer can make us buffer.
pub const HARD_FRAME_LIMIT: usize = 64 * 1024;
/// The largest message the server acts on; a bigger one (under the hard limit) gets a `too_large` error.
pub const MESSAGE_LIMIT: usize = 4 * 1024;
/// How many refused frames within [`REFUSAL_WINDOW`] end the connection.
pub const REFUSALS_ALLOWED: usize = 10;
pub const REFUSAL_WINDOW: Duration = Duration::from_secs(10);
/// How long one send may wait for a peer that does not read before it is hung up on.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How much a call buffers before it writes without waiting for the flush (see `deliver`).
const WRITE_BUFFER: usize = 16 * 1024;
/// The most deliveries one wake-up writes before the loop looks at the peer's frames and the clock again.
const MAX_BATCH: usize = 64;
/// Heartbeat intervals without any frame from the peer before it is declared dead.
const SILENT_INTERVALS: u32 = 3;

#[derive(Debug, Deserialize)]
pub struct WsQuery {
    /// Resume after this seq; without it the call starts from now.
    pub after: Option<Seq>,
}

pub async fn ws(
    State(state): State<AppState>,
    conn: Option<Extension<ConnInfo>>,
    request_head: Option<Extension<RequestHead>>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<WsQuery>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, AppError> {
    // Refused before the upgrade, so the browser gets a status and a reason rather than a dead socket.
    state.limits.check_origin(&headers)?;
    let permit = state.limits.admit(
        LaneId::Ws,
        conn.as_ref().map(|Extension(conn)| conn.remote.ip()),
    )?;
    let request_head = request_head.map(|Extension(head)| head);
    let tasks = state.tasks.clone();
    Ok(upgrade
        // Messages here are a few hundred bytes: small buffers keep an idle connection cheap.
        .read_buffer_size(4 * 1024)
        // Frames are buffered up to this much and written by one flush: a call that wakes up with
        // several events pending sends them in one write, not one syscall each.
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        .on_upgrade(move |socket| {
            tasks.track_future(call(
                socket,
                state,
                conn.map(|Extension(conn)| conn),
                query.after,
                request_head,
                permit,
            ))
        }))
}

/// How a call ends.
enum End {
    /// The peer hung up or its connection failed: nothing left to say.
    PeerGone,
    /// The server hangs up with this close code and reason.
    HangUp(u16, &'static str),
}

async fn call(
    mut socket: WebSocket,
    state: AppState,
    conn: Option<ConnInfo>,
    after: Option<Seq>,
    request_head: Option<RequestHead>,
    _permit: Permit,
) {
    let counters = state.meters.lane(LaneId::Ws).clone();
    let _open = counters.open();
    let conn_faults = ConnectionFaults::new(&state.faults, LaneId::Ws);
    let mut ending = pin!(conn_faults.ending(&state.shutdown));
    let mut subscription = state.hub.subscribe(after);
    let mut line = Line {
        counters: counters.clone(),
        refusals: Vec::new(),
        client: conn.as_ref().map(|conn| conn.remote.ip()),
    };
    let hello = ServerMessage::Hello(state.hello(after, request_head));
    let heartbeat_every = state.config.heartbeat();
    let mut heartbeat = heartbeat_interval(heartbeat_every);
    let mut last_heard = Instant::now();
    // Pings sent since the peer was last heard: the peer can only answer pings it was sent, so its
    // silence is counted in unanswered pings, not in time (a fault holding our own frames back must not
    // make the peer look dead).
    let mut unanswered_pings = 0u32;

    let mut outcome = send(&mut socket, json(&hello)).await;
    while outcome.is_ok() {
        outcome = tokio::select! {
            biased;
            how = &mut ending => Err(match how {
                None => End::HangUp(close_code::GOING_AWAY, "server shutting down"),
                Some(Cut::Drop) => End::PeerGone,
                Some(Cut::Restart) => End::HangUp(close_code::SERVICE_RESTART, "server restarting"),
            }),
            incoming = socket.recv() => match incoming {
                None => Err(End::PeerGone),
                Some(Err(err)) => {
                    tracing::debug!("websocket read failed: {err}");
                    if is_too_big(err) {
                        Err(End::HangUp(close_code::TOO_BIG, "message too big"))
                    } else {
                        Err(End::PeerGone)
                    }
                }
                Some(Ok(message)) => {
                    last_heard = Instant::now();
                    unanswered_pings = 0;
                    if let Some(conn) = &conn {
                        conn.meter.flush_in();
                    }
                    counters.frames_in.fetch_add(1, Relaxed);
                    match line.answer(message, &state, &mut subscription) {
                        Answer::Nothing => Ok(()),
                        Answer::Reply(reply) => send(&mut socket, reply).await,
                        Answer::Publish(message) => send(&mut socket, publish_chat(&state, message).await).await,
                        Answer::End(end) => Err(end),
                    }
                }
            },
            delivery = subscription.next() => match delivery {
                Some(first) => {
                    let mut outbox = Outbox { socket: &mut socket, state: &state, conn_faults: &conn_faults, counters: &counters };
                    outbox.deliver(first, &mut subscription).await
                }
                None => Err(End::HangUp(close_code::GOING_AWAY, "stream ended")),
            },
            _ = heartbeat.tick() => {
                if unanswered_pings >= SILENT_INTERVALS && last_heard.elapsed() > heartbeat_every * SILENT_INTERVALS {
                    Err(End::HangUp(close_code::PEER_SILENT, "no frame or pong for three heartbeats"))
                } else {
                    let beat = ServerMessage::Heartbeat(Heartbeat { server_ms: now_ms(), head: state.hub.head() });
                    match held_by_faults(&state, &conn_faults, now_ms()).await {
                        Ok(()) => match send(&mut socket, json(&beat)).await {
                            Ok(()) => {
                                unanswered_pings += 1;
                                send_message(&mut socket, Message::Ping(Default::default())).await
                            }
                            failed => failed,
                        },
                        gone => gone,
                    }
                }
            }
        };
    }
    if let Err(End::HangUp(code, reason)) = outcome {
        tracing::debug!(code, reason, "hanging up a websocket");
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            socket.send(Message::Close(Some(frame))),
        )
        .await;
    }
}

/// Writing the subscription's deliveries to one call.
struct Outbox<'a> {
    socket: &'a mut WebSocket,
    state: &'a AppState,
    conn_faults: &'a ConnectionFaults,
    counters: &'a Counters,
}

impl Outbox<'_> {
    /// Writes `first` and every further delivery already waiting (up to [`MAX_BATCH`]), then flushes
    /// once. A call that fell behind catches up in one write instead of one syscall per frame, which
    /// is where the time went at 5,000–10,000 calls.
    async fn deliver(
        &mut self,
        first: Delivery,
        subscription: &mut crate::hub::Subscription,
    ) -> Result<(), End> {
        let mut next = Some(first);
        let mut written = 0;
        while let Some(delivery) = next {
            let (frame, made_ms) = match delivery {
                Delivery::Event(event) => (event.ws_frame.clone(), event.ts_ms),
                Delivery::Gap(gap) => (json(&ServerMessage::Gap(gap)), now_ms()),
            };
            held_by_faults(self.state, self.conn_faults, made_ms).await?;
            within_deadline(self.socket.feed(Message::Text(frame))).await?;
            self.counters.messages.fetch_add(1, Relaxed);
            written += 1;
            // While a fault may hold frames, each goes out on its own: batching them would keep every
            // held frame in the buffer until news stopped coming (a delay would silence the line).
            next = if written < MAX_BATCH && self.conn_faults.is_quiet() {
                subscription.ready()
            } else {
                None
            };
        }
        within_deadline(self.socket.flush()).await
    }
}

/// Whether a read failed because the frame was over the hard limit: tungstenite refuses it with a
/// capacity error, which axum passes on boxed.
fn is_too_big(err: axum::Error) -> bool {
    err.into_inner()
        .downcast_ref::<tungstenite::Error>()
        .is_some_and(|err| matches!(err, tungstenite::Error::Capacity(_)))
}

/// What the failure lab does to a frame about to be written (see [`ConnectionFaults::hold`]): a connection
/// a half-open fault silenced to its end is dropped without a close frame.
async fn held_by_faults(
    state: &AppState,
    conn_faults: &ConnectionFaults,
    made_ms: u64,
) -> Result<(), End> {
    conn_faults
        .hold(made_ms, &state.shutdown)
        .await
        .map_err(|_silenced| End::PeerGone)
}

/// The per-connection state of reading the browser's frames.
struct Line {
    counters: Arc<Counters>,
    /// When recent frames were refused, oldest first.
    refusals: Vec<Instant>,
    client: Option<IpAddr>,
}

enum Answer {
    Nothing,
    Reply(Utf8Bytes),
    /// A chat message to publish, then to answer with its seq (or why it could not be).
    Publish(ChatMessage),
    End(End),
}

impl Line {
    fn answer(
        &mut self,
        message: Message,
        state: &AppState,
        subscription: &mut crate::hub::Subscription,
    ) -> Answer {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                return self.refuse(ErrorCode::Binary, "frames must be JSON text".into());
            }
            // Protocol pings are answered by the library; pongs only prove the peer is alive.
            Message::Ping(_) | Message::Pong(_) => return Answer::Nothing,
            Message::Close(_) => return Answer::End(End::PeerGone),
        };
        if text.len() > MESSAGE_LIMIT {
            let message = format!(
                "message is {} bytes; the limit is {MESSAGE_LIMIT}",
                text.len()
            );
            return self.refuse(ErrorCode::TooLarge, message);
        }
        match BrowserMessage::parse(text.as_str()) {
            Err((code, message)) => self.refuse(code, message),
            Ok(BrowserMessage::Ping(ping)) => Answer::Reply(json(&ServerMessage::Pong(Pong {
                id: ping.id,
                client_ms: ping.client_ms,
                server_ms: crate::hub::now_ms_f64(),
            }))),
            Ok(BrowserMessage::Resume { after }) => {
                subscription.resume(after);
                Answer::Nothing
            }
            Ok(BrowserMessage::Chat(post)) => match post.validate(ChatVia::Ws) {
                Err(rejection) => self.refuse(ErrorCode::Invalid, rejection.to_string()),
                Ok(_) if state.faults.paused() => Answer::Reply(json(&ServerMessage::Error {
                    code: ErrorCode::Unavailable,
                    message: "the server is paused (a pause fault): try again shortly".into(),
                })),
                Ok(_) if state.limits.chat(self.client).is_err() => {
                    let message = format!(
                        "too many chat messages: at most {} per second from one client",
                        state.config.chat_per_second
                    );
                    self.refuse(ErrorCode::RateLimited, message)
                }
                Ok(message) => Answer::Publish(message),
            },
        }
    }

    fn refuse(&mut self, code: ErrorCode, message: String) -> Answer {
        tracing::info!(%code, "refused a websocket frame: {message}");
        self.counters.errors.fetch_add(1, Relaxed);
        let now = Instant::now();
        self.refusals
            .retain(|&at| now.duration_since(at) < REFUSAL_WINDOW);
        self.refusals.push(now);
        if self.refusals.len() > REFUSALS_ALLOWED {
            return Answer::End(End::HangUp(close_code::POLICY, "too many refused frames"));
        }
        Answer::Reply(json(&ServerMessage::Error { code, message }))
    }
}

/// Publishes a chat message typed into the call; the answer says its seq, or why it was not published.
async fn publish_chat(state: &AppState, message: ChatMessage) -> Utf8Bytes {
    let client_ref = message.client_ref.clone();
    json(&match state.publish(EventBody::Chat(message)).await {
        Ok(stamp) => ServerMessage::ChatAccepted(ChatAccepted {
            seq: stamp.seq,
            ts_ms: stamp.ts_ms,
            client_ref,
        }),
        Err(err) => ServerMessage::Error {
            code: ErrorCode::Unavailable,
            message: err.to_string(),
        },
    })
}

fn json(message: &ServerMessage) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(message).expect("server messages serialize"))
}

async fn send(socket: &mut WebSocket, text: Utf8Bytes) -> Result<(), End> {
    send_message(socket, Message::Text(text)).await
}

/// Sends one frame and flushes it.
async fn send_message(socket: &mut WebSocket, message: Message) -> Result<(), End> {
    within_deadline(socket.send(message)).await
}

/// Runs one write: a peer that does not take it within [`SEND_TIMEOUT`] is hung up on, a failed write
/// means the peer is gone. Nearly every write completes at once (the kernel takes it), so the timer is
/// only armed for one that has to wait, not once per frame.
async fn within_deadline(write: impl Future<Output = Result<(), axum::Error>>) -> Result<(), End> {
    let mut write = pin!(write);
    let at_once = poll_fn(|cx| match write.as_mut().poll(cx) {
        Poll::Ready(result) => Poll::Ready(Some(result)),
        Poll::Pending => Poll::Ready(None),
    })
    .await;
    let result = match at_once {
        Some(result) => result,
        None => match tokio::time::timeout(SEND_TIMEOUT, write).await {
            Ok(result) => result,
            Err(_) => return Err(End::HangUp(close_code::TOO_SLOW, "peer does not read")),
        },
    };
    result.map_err(|err| {
        tracing::debug!("websocket write failed: {err}");
        End::PeerGone
    })
}
