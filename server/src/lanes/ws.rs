//! Phone call: `GET /ws?after=SEQ` upgrades (HTTP 101) into one open two-way line.
//!
//! One task per connection runs one loop over four things: the browser's frames (chat, ping, resume),
//! the subscription's events, the heartbeat tick and shutdown. Each tick sends an app-level heartbeat
//! (browsers cannot see protocol pings) and a protocol ping (to find dead peers server-side: a peer that
//! sends nothing, not even a pong, for three intervals is hung up on). A bad frame is answered with an
//! `error` message; a peer that keeps sending bad frames is hung up on with 1008.
//!
//! The lane answers the upgrade itself and writes its text frames straight to the socket ([`wire`]);
//! tungstenite reads the browser's frames and writes the pongs and the close. While a call waits for
//! news with nothing of its own to say, the [`exchange`] writes its events without waking its task.

mod exchange;
mod wire;

pub use exchange::Exchange;
use exchange::{Line, Sent};

use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use futures_util::future::Either;
use futures_util::{FutureExt, SinkExt};
use serde::Deserialize;
use std::future::poll_fn;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::Poll;
use std::time::Duration;
use switchboard_shared::ws::{Heartbeat, Hello, Pong, close_code};
use switchboard_shared::{
    BrowserMessage, ChatAccepted, ChatMessage, ChatVia, ErrorCode, EventBody, Gap, LaneId, Seq,
    ServerMessage,
};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tungstenite::Utf8Bytes;
use tungstenite::protocol::{CloseFrame, Message, WebSocketConfig};

use super::ApiQuery;
use super::push::{Encoding, Ending, Frames, PushStream, Woken, json};
use crate::AppState;
use crate::error::AppError;
use crate::faults::Cut;
use crate::hub::Published;
use crate::limits::Permit;
use crate::metering::{ConnInfo, Counters, RequestHead};
use crate::woken::WhenReadable;
use hyper::upgrade::OnUpgrade;
#[cfg(test)]
pub(crate) use wire::text_payload;
use wire::{CallIo, Outgoing, Upgrade, text_frame, text_frame_then_ping};

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
/// How much a call reads at once (see where it is set).
const READ_BUFFER: usize = 128;
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
    upgrade: Upgrade,
) -> Result<Response, AppError> {
    // Refused before the upgrade, so the browser gets a status and a reason rather than a dead socket.
    state.limits.check_origin(&headers)?;
    let permit = state
        .limits
        .admit(LaneId::Ws, conn.as_ref().map(|Extension(conn)| conn.client))?;
    let request_head = request_head.map(|Extension(head)| head);
    let tasks = state.tasks.clone();
    let (response, on_upgrade) = upgrade.accept();
    let dialled = Box::new(Dialled {
        state,
        conn: conn.map(|Extension(conn)| conn),
        after: query.after,
        request_head,
        permit,
    });
    tasks.spawn(answer(on_upgrade, dialled));
    Ok(response)
}

/// The upgrade's task: takes the connection once the `101` went out, then is the call.
///
/// Written with combinators, not as an `async` block: the block kept room for the socket beside the
/// call future it is moved into, ~460 bytes more in every open call (see the test).
fn answer(on_upgrade: OnUpgrade, dialled: Box<Dialled>) -> impl Future<Output = ()> + Send {
    wire::socket(on_upgrade, config()).then(move |socket| match socket {
        Some(socket) => Either::Left(call(socket, dialled)),
        None => Either::Right(std::future::ready(())),
    })
}

/// How tungstenite reads a call.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        // What the browser sends is a pong (6 bytes), a ping message (under 100) or now and then a chat
        // message (up to 4 KiB, read in several reads: rare enough not to matter). tungstenite keeps
        // this much for the call's whole life and zero-fills it before every read, so small keeps the
        // idle call cheap: 512 bytes here made an idle call 4.8 KB instead of 3.95 (it also moves it
        // into a smaller allocation class).
        .read_buffer_size(READ_BUFFER)
        // tungstenite writes only control frames (the pongs it owes, the close), each flushed at once.
        .write_buffer_size(0)
        .max_message_size(Some(HARD_FRAME_LIMIT))
        .max_frame_size(Some(HARD_FRAME_LIMIT))
}

/// The phone call's framing: whole WebSocket text frames (header and payload, as they go on the wire)
/// of [`ServerMessage`]s.
#[derive(Debug)]
pub struct Ws;

impl Encoding for Ws {
    const LANE: LaneId = LaneId::Ws;
    type Frame = Bytes;

    fn hello(_state: &AppState, hello: &Hello) -> Bytes {
        message_frame(&ServerMessage::Hello(hello.clone()))
    }

    /// `{"type":"event",` followed by the event's own fields: the [`ServerMessage::Event`] form, made
    /// from the event's JSON without serializing it again.
    fn event(event: &Published) -> Bytes {
        text_frame(&[br#"{"type":"event","#, &event.json[1..]])
    }

    fn gap(gap: Gap) -> Bytes {
        message_frame(&ServerMessage::Gap(gap))
    }

    /// The heartbeat the browser sees, then a protocol ping that finds a dead peer server-side
    /// (browsers cannot see protocol pings): one buffer, one write.
    fn heartbeat(beat: &Heartbeat) -> Bytes {
        text_frame_then_ping(&[json(&ServerMessage::Heartbeat(beat.clone())).as_bytes()])
    }
}

/// How a call ends.
pub(crate) enum End {
    /// The peer hung up or its connection failed: nothing left to say.
    PeerGone,
    /// The server hangs up with this close code and reason.
    HangUp(u16, &'static str),
}

/// What a call is handed when the upgrade is answered, boxed so that the upgrade's closure (which
/// the upgrade's task holds for the call's whole life) is one pointer, not these 270 bytes.
struct Dialled {
    state: AppState,
    conn: Option<ConnInfo>,
    after: Option<Seq>,
    request_head: Option<RequestHead>,
    permit: Permit,
}

/// One phone call, from the hello to the hang-up.
///
/// Everything the call keeps is made here, before its future exists, and the future works on what it
/// captured in place: an `async fn` would hold its arguments twice for the call's whole life (once as
/// arguments, once as the locals they are moved into), ~600 bytes of every idle connection.
fn call(socket: WebSocketStream<CallIo>, dialled: Box<Dialled>) -> impl Future<Output = ()> + Send {
    let Dialled {
        state,
        conn,
        after,
        request_head,
        permit,
    } = *dialled;
    let mut stream = PushStream::<Ws>::open(&state, after);
    let mut talk = Talk::new(
        stream.counters().clone(),
        conn.as_ref().map(|conn| conn.client),
        ChatVia::Ws,
    );
    let hello = stream.hello(&state, after, request_head);
    // Of its connection the call keeps only the meter (the address is the talk's): ~60 bytes less in
    // every open call.
    let meter = conn.map(|conn| conn.meter);
    // The call's place at the exchange, when its connection is the listener's own.
    let line = match socket.get_ref() {
        CallIo::Metered(io) => Some(CallLine(
            state.exchange.line(io.meter().clone()),
            state.exchange.clone(),
        )),
        CallIo::Other(_) => None,
    };
    // Read only when the socket woke the task: most wake-ups are the stream's own events.
    let mut socket = WhenReadable::with_gate(socket, stream.gate_beside());
    async move {
        let mut last_heard = Instant::now();
        // Pings sent since the peer was last heard: the peer can only answer pings it was sent, so its
        // silence is counted in unanswered pings, not in time (a fault holding our own frames back must not
        // make the peer look dead).
        let mut unanswered_pings = 0u32;
        let mut frames = Frames::new();
        // Whether the exchange writes the call's events now (its line is joined).
        let mut joined = false;

        // The hello is sent once: boxed, so the call does not keep room for it.
        let mut outcome = Box::pin(write_frames(socket.get_mut(), &[hello])).await;
        while outcome.is_ok() {
            if !joined && let Some(line) = &line {
                joined = line.join(&state, &mut stream, socket.get_mut());
            }
            outcome = tokio::select! {
                woken = stream.wait_for(!joined) => match woken {
                    Err(ending) => Err(End::from(ending)),
                    Ok(Woken::Heartbeat)
                        if unanswered_pings >= SILENT_INTERVALS
                            && last_heard.elapsed() > state.config.heartbeat() * SILENT_INTERVALS =>
                    {
                        Err(End::HangUp(close_code::PEER_SILENT, "no frame or pong for three heartbeats"))
                    }
                    Ok(woken) => {
                        let heartbeat = matches!(woken, Woken::Heartbeat);
                        match stream.frames(woken, &mut frames).await {
                            Err(ending) => Err(End::from(ending)),
                            Ok(()) => {
                                let written = match (&line, joined) {
                                    // Joined, the call was woken only for its heartbeat (one frame).
                                    (Some(line), true) => {
                                        Box::pin(line.send(&state, &mut stream, socket.get_mut(), &frames[0], &mut joined)).await
                                    }
                                    _ => write_frames(socket.get_mut(), &frames).await,
                                };
                                frames.clear();
                                // The heartbeat's frame carries a protocol ping behind it
                                // ([`Ws::heartbeat`]): one more the peer owes a pong for.
                                if heartbeat && written.is_ok() {
                                    unanswered_pings += 1;
                                }
                                written
                            }
                        }
                    }
                },
                () = handed_back(line.as_ref(), joined) => {
                    Box::pin(take_back(line.as_ref(), &mut joined, &mut stream, socket.get_mut())).await
                }
                incoming = socket.next() => match incoming {
                    None => Err(End::PeerGone),
                    Some(Err(err)) => {
                        tracing::debug!("websocket read failed: {err}");
                        Err(read_failure(err))
                    }
                    Some(Ok(message)) => {
                        last_heard = Instant::now();
                        unanswered_pings = 0;
                        if let Some(meter) = &meter {
                            meter.flush_in();
                        }
                        stream.counters().frames_in.fetch_add(1, Relaxed);
                        // A pong asks for nothing. Anything else may be answered (tungstenite's pong
                        // too): the call takes its line back first, so it writes alone.
                        let taken = if joined && !matches!(message, Message::Pong(_)) {
                            Box::pin(take_back(line.as_ref(), &mut joined, &mut stream, socket.get_mut())).await
                        } else {
                            Ok(())
                        };
                        match (taken, talk.answer(message, &state, stream.subscription())) {
                            (Err(end), _) | (_, Answer::End(end)) => Err(end),
                            // Replies and chat are rare next to events: boxed, so the call keeps no
                            // room for them between messages.
                            (Ok(()), answer) => Box::pin(reply(socket.get_mut(), &state, answer)).await,
                        }
                    }
                },
            };
        }
        // The close goes out alone, after whatever the exchange left half-written.
        if joined {
            let _ = Box::pin(tokio::time::timeout(
                Duration::from_secs(1),
                take_back(line.as_ref(), &mut joined, &mut stream, socket.get_mut()),
            ))
            .await;
        }
        drop(line);
        if let Err(End::HangUp(code, reason)) = outcome {
            tracing::debug!(code, reason, "hanging up a websocket");
            let frame = CloseFrame {
                code: code.into(),
                reason: Utf8Bytes::from_static(reason),
            };
            let _ = Box::pin(tokio::time::timeout(
                Duration::from_secs(1),
                socket.get_mut().send(Message::Close(Some(frame))),
            ))
            .await;
        }
        // Held to the end: the call counts against its client's connections until it is over.
        drop(permit);
    }
}

/// A call's line at the exchange, taken back when the call ends however it ends (its task may be
/// dropped mid-wait): the exchange must not write to, or keep open, a socket whose call is over.
struct CallLine(Arc<Line>, Arc<Exchange>);

impl Drop for CallLine {
    fn drop(&mut self) {
        self.1.leave(&self.0);
    }
}

impl CallLine {
    /// Joins the exchange if the call has nothing of its own to send: its subscription caught up, no
    /// fault or emulated network armed on the lane, its connection not on the emulated path.
    fn join(
        &self,
        state: &AppState,
        stream: &mut PushStream<Ws>,
        socket: &WebSocketStream<CallIo>,
    ) -> bool {
        let CallIo::Metered(io) = socket.get_ref() else {
            return false;
        };
        let Some(tcp) = io.socket() else {
            return false;
        };
        let joined = exchange::lane_open(state, stream.faults())
            && stream.caught_up()
            && state.exchange.join(state, &self.0, tcp, stream.last());
        if joined {
            stream.subscription().park();
        }
        joined
    }

    /// Sends the call's own frame (a heartbeat) beside the exchange; if the line was or is now handed
    /// back, the call takes it back and writes what is left itself.
    async fn send(
        &self,
        state: &AppState,
        stream: &mut PushStream<Ws>,
        socket: &mut WebSocketStream<CallIo>,
        frame: &Bytes,
        joined: &mut bool,
    ) -> Result<(), End> {
        // With a fault or an emulated network armed since the call joined (the exchange hands it back
        // at the next event; there may be none for a while), the frame takes the call's own path.
        let sent = if exchange::lane_open(state, stream.faults()) {
            self.0.send(frame)
        } else {
            Sent::Not
        };
        if sent == Sent::Whole {
            return Ok(());
        }
        take_back(Some(self), joined, stream, socket).await?;
        match sent {
            Sent::Not => write_frames(socket, std::slice::from_ref(frame)).await,
            _ => Ok(()),
        }
    }
}

/// Resolves when the exchange hands a joined call's line back. Not an `async fn`: this sits in every
/// call's state, which an `async fn` would make several times larger.
fn handed_back(line: Option<&CallLine>, joined: bool) -> impl Future<Output = ()> + '_ {
    poll_fn(move |cx| match line {
        Some(line) if joined => line.0.poll_handed_back(cx),
        _ => Poll::Pending,
    })
}

/// Takes the call's line back from the exchange: what it left of a frame goes first, and the call's
/// subscription goes on after the last event the exchange wrote.
async fn take_back(
    line: Option<&CallLine>,
    joined: &mut bool,
    stream: &mut PushStream<Ws>,
    socket: &mut WebSocketStream<CallIo>,
) -> Result<(), End> {
    let Some(line) = line else {
        return Ok(());
    };
    *joined = false;
    let (last, rest) = line.0.take_back();
    stream.subscription().resume(last);
    match rest {
        Some(rest) => write_frames(socket, &[rest]).await,
        None => Ok(()),
    }
}

impl From<Ending> for End {
    fn from(ending: Ending) -> End {
        match ending {
            Ending::Shutdown => End::HangUp(close_code::GOING_AWAY, "server shutting down"),
            Ending::StreamEnded => End::HangUp(close_code::GOING_AWAY, "stream ended"),
            Ending::Cut(Cut::Restart) => {
                End::HangUp(close_code::SERVICE_RESTART, "server restarting")
            }
            // A dropped or half-open connection just goes: nothing is said, as on a real network.
            Ending::Cut(Cut::Drop) | Ending::Silenced => End::PeerGone,
        }
    }
}

/// Writes whole frames straight to the call's socket: one wake-up's frames in one write, so a call that
/// fell behind catches up in one syscall, not one per frame (where the time went at 5,000–10,000
/// calls). tungstenite's own writes never interleave with these: it writes only the pongs it owes
/// (flushed whole before the next direct write, in [`reply`]) and the close.
async fn write_frames(socket: &mut WebSocketStream<CallIo>, frames: &[Bytes]) -> Result<(), End> {
    let io = socket.get_mut();
    let mut outgoing = Outgoing::new(frames);
    within_deadline(poll_fn(|cx| outgoing.poll_write(io, cx))).await
}

/// Answers what the browser said: a reply, or the chat message's publication and its outcome.
async fn reply(
    socket: &mut WebSocketStream<CallIo>,
    state: &AppState,
    answer: Answer,
) -> Result<(), End> {
    // Whatever tungstenite queued while reading (the pong a ping is owed) goes first and whole: the
    // frames written straight to the socket must not land in the middle of it.
    within_deadline(socket.flush()).await?;
    let text = match answer {
        Answer::Nothing | Answer::End(_) => return Ok(()),
        Answer::Reply(text) => text,
        Answer::Publish(message) => publish_chat(state, message).await,
    };
    write_frames(socket, &[text_frame(&[text.as_bytes()])]).await
}

/// How a failed read ends the call: a frame over the hard limit with 1009, a broken protocol with
/// 1002, text that is not UTF-8 with 1007 (each as RFC 6455 section 7.4.1 says), a lost connection
/// without a word.
fn read_failure(err: tungstenite::Error) -> End {
    match err {
        tungstenite::Error::Capacity(_) => End::HangUp(close_code::TOO_BIG, "message too big"),
        tungstenite::Error::Protocol(_) => {
            End::HangUp(close_code::PROTOCOL_ERROR, "protocol error")
        }
        tungstenite::Error::Utf8(_) => {
            End::HangUp(close_code::INVALID_DATA, "text frame is not UTF-8")
        }
        _ => End::PeerGone,
    }
}

/// The per-connection state of reading what the browser says: the phone call's frames, and the lines
/// of a WebTransport session's talking stream (the same messages and the same rules).
pub(crate) struct Talk {
    counters: Arc<Counters>,
    /// When recent messages were refused, oldest first: shared by every talking stream of one
    /// WebTransport session, so opening more streams buys no more refusals.
    refusals: Refusals,
    client: Option<IpAddr>,
    via: ChatVia,
}

pub(crate) enum Answer {
    Nothing,
    Reply(Utf8Bytes),
    /// A chat message to publish, then to answer with its seq (or why it could not be).
    Publish(ChatMessage),
    End(End),
}

/// The refusals of one connection or session.
pub(crate) type Refusals = Arc<std::sync::Mutex<Vec<Instant>>>;

impl Talk {
    pub(crate) fn new(counters: Arc<Counters>, client: Option<IpAddr>, via: ChatVia) -> Talk {
        Talk::sharing(Refusals::default(), counters, client, via)
    }

    /// A talk whose refusals count with the others of `refusals` (one session's streams).
    pub(crate) fn sharing(
        refusals: Refusals,
        counters: Arc<Counters>,
        client: Option<IpAddr>,
        via: ChatVia,
    ) -> Talk {
        Talk {
            counters,
            refusals,
            client,
            via,
        }
    }

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
            // A raw frame is what a writer sends, never what a read returns.
            Message::Frame(_) => return Answer::Nothing,
        };
        self.answer_text(text.as_str(), state, Some(subscription))
    }

    /// Answers one message of text. Without a `subscription` (a WebTransport session resumes only by
    /// dialling again) a `resume` is refused.
    pub(crate) fn answer_text(
        &mut self,
        text: &str,
        state: &AppState,
        subscription: Option<&mut crate::hub::Subscription>,
    ) -> Answer {
        if text.len() > MESSAGE_LIMIT {
            return self.refuse_oversized(text.len());
        }
        match BrowserMessage::parse(text) {
            Err((code, message)) => self.refuse(code, message),
            Ok(BrowserMessage::Ping(ping)) => {
                Answer::Reply(message_text(&ServerMessage::Pong(Pong {
                    id: ping.id,
                    client_ms: ping.client_ms,
                    server_ms: crate::hub::now_ms_f64(),
                })))
            }
            Ok(BrowserMessage::Resume { after }) => match subscription {
                Some(subscription) => {
                    subscription.resume(after);
                    Answer::Nothing
                }
                None => self.refuse(
                    ErrorCode::Invalid,
                    "resume is not said on this lane: dial again with ?after=".into(),
                ),
            },
            Ok(BrowserMessage::Chat(post)) => match post.validate(self.via) {
                Err(rejection) => self.refuse(ErrorCode::Invalid, rejection.to_string()),
                Ok(_) if state.faults.paused() => {
                    Answer::Reply(message_text(&ServerMessage::Error {
                        code: ErrorCode::Unavailable,
                        message: "the server is paused (a pause fault): try again shortly".into(),
                    }))
                }
                Ok(_) if state.limits.chat(self.client).is_err() => {
                    let message = format!(
                        "too many chat messages: at most {} per second from one client",
                        state.config.chat_per_second
                    );
                    // Typing fast is not misbehaving: answered, counted as an error, but not toward
                    // the refusals that hang a line up.
                    self.decline(ErrorCode::RateLimited, message)
                }
                Ok(message) => Answer::Publish(message),
            },
        }
    }

    /// Refuses a message of `len` bytes, over [`MESSAGE_LIMIT`].
    pub(crate) fn refuse_oversized(&mut self, len: usize) -> Answer {
        let message = format!("message is {len} bytes; the limit is {MESSAGE_LIMIT}");
        self.refuse(ErrorCode::TooLarge, message)
    }

    /// Answers `code` without holding it against the peer (a chat message sent too fast).
    fn decline(&mut self, code: ErrorCode, message: String) -> Answer {
        tracing::debug!(%code, via = ?self.via, "declined a message: {message}");
        self.counters.errors.fetch_add(1, Relaxed);
        Answer::Reply(message_text(&ServerMessage::Error { code, message }))
    }

    fn refuse(&mut self, code: ErrorCode, message: String) -> Answer {
        self.counters.errors.fetch_add(1, Relaxed);
        let now = Instant::now();
        let recent = {
            let mut refusals = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
            refusals.retain(|&at| now.duration_since(at) < REFUSAL_WINDOW);
            refusals.push(now);
            refusals.len()
        };
        // One line at info per burst: a peer that sends garbage must not fill the log.
        if recent == 1 {
            tracing::info!(%code, via = ?self.via, "refused a message: {message}");
        } else {
            tracing::debug!(%code, via = ?self.via, "refused a message: {message}");
        }
        if recent > REFUSALS_ALLOWED {
            return Answer::End(End::HangUp(close_code::POLICY, "too many refused frames"));
        }
        Answer::Reply(message_text(&ServerMessage::Error { code, message }))
    }
}

/// Publishes a chat message typed into the call; the answer says its seq, or why it was not published.
pub(crate) async fn publish_chat(state: &AppState, message: ChatMessage) -> Utf8Bytes {
    let client_ref = message.client_ref.clone();
    message_text(&match state.publish(EventBody::Chat(message)).await {
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

fn message_text(message: &ServerMessage) -> Utf8Bytes {
    Utf8Bytes::from(json(message))
}

fn message_frame(message: &ServerMessage) -> Bytes {
    text_frame(&[json(message).as_bytes()])
}

/// Runs one write: a peer that does not take it within [`SEND_TIMEOUT`] is hung up on, a failed write
/// means the peer is gone. Nearly every write completes at once (the kernel takes it), so the timer is
/// only armed for one that has to wait, not once per frame.
///
/// Not an `async fn`, and the write not pinned again: either would hold the write future twice in
/// every call's state (sink futures are `Unpin`, so it is polled where it was captured).
#[allow(clippy::manual_async_fn)]
fn within_deadline<E: std::fmt::Display>(
    mut write: impl Future<Output = Result<(), E>> + Unpin,
) -> impl Future<Output = Result<(), End>> {
    async move {
        let at_once = poll_fn(|cx| match Pin::new(&mut write).poll(cx) {
            Poll::Ready(result) => Poll::Ready(Some(result)),
            Poll::Pending => Poll::Ready(None),
        })
        .await;
        let result = match at_once {
            Some(result) => result,
            // Boxed: a peer that does not take a write at once is rare, and the timer inline would
            // be room every call keeps.
            None => match Box::pin(tokio::time::timeout(SEND_TIMEOUT, &mut write)).await {
                Ok(result) => result,
                Err(_) => return Err(End::HangUp(close_code::TOO_SLOW, "peer does not read")),
            },
        };
        result.map_err(|err| {
            tracing::debug!("websocket write failed: {err}");
            End::PeerGone
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of what `f` returns, without calling it.
    fn returned_size<A, B, R>(_: fn(A, B) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// Every open phone call is one task holding this future for its whole life, so its size is most
    /// of what an idle connection costs (BENCHMARKS.md, "Memory per idle connection"). It was 2,368
    /// bytes as an `async fn` with the hello, the hold of a fault and the slow write's timer inline;
    /// 1,456 before the exchange; its line and hand-back branch add 24 now that the call keeps only
    /// its connection's meter, not its whole `ConnInfo`.
    #[test]
    fn a_call_keeps_little_state_because_every_open_call_holds_it() {
        let size = returned_size(call);
        assert!(size <= 1_536, "a call's future is {size} bytes");
    }

    /// What the upgrade's task holds: the call, or before it the upgrade being taken, never both. As
    /// an `async` block awaiting one then the other it was 1,944 bytes (the block kept room for the
    /// socket beside the call it was moved into), and the task 2,176 with tokio's header.
    #[test]
    fn an_answered_call_holds_no_more_than_the_call() {
        let call = returned_size(call);
        let answer = returned_size(answer);
        assert!(
            answer <= call + 16,
            "an answered call is {answer} bytes, the call {call}"
        );
    }
}
