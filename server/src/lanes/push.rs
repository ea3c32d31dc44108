//! One engine for the lanes that keep a connection open and push: the radio (SSE) and the phone call
//! (WebSocket). Subscription and resume, the hello, heartbeats, the failure lab's holds, batching and
//! gap notices are written here once; each lane supplies only its [`Encoding`] and writes the frames
//! to its own sink.
//!
//! A lane's loop asks [`PushStream::wait`] what woke it (cancel-safe, so it can sit in a `select!` beside
//! the lane's other business, such as the phone call's incoming frames), then [`PushStream::frames`] for
//! the frames to write.

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::Poll;
use switchboard_shared::ws::{Heartbeat, Hello};
use switchboard_shared::{Gap, LaneId, Seq};
use tokio::time::Interval;
use tokio_util::sync::CancellationToken;

use crate::faults::{ConnectionFaults, Cut};
use crate::hub::{Delivery, Hub, Published, Subscription, now_ms};
use crate::metering::{Counters, OpenGuard, RequestHead};
use crate::woken::Gate;
use crate::{AppState, heartbeat_interval};

/// The most deliveries one wake-up writes before the lane looks at its peer and the clock again.
pub const MAX_BATCH: usize = 64;

/// One wake-up's frames. Nearly always one: it is kept in place, in the connection's own state, not in
/// a buffer of its own elsewhere on the heap, which at 5,000 calls was a cache line fetched from memory
/// at every delivery (a tenth of the time the call's own code took).
pub type Frames<F> = SmallVec<[F; 1]>;

/// How one streaming lane puts the stream into frames.
pub trait Encoding {
    /// The lane this encoding serves: its counters, its faults and its slot in each event's frame cache.
    const LANE: LaneId;
    /// One frame as the lane's sink takes it.
    type Frame: Clone + Send + Sync + 'static;

    fn hello(state: &AppState, hello: &Hello) -> Self::Frame;
    /// An event's frame, built from its JSON; the hub keeps it, so it is built once per event for every
    /// connection of the lane.
    fn event(event: &Published) -> Self::Frame;
    fn gap(gap: Gap) -> Self::Frame;
    fn heartbeat(beat: &Heartbeat) -> Self::Frame;
}

/// What woke a stream that has something to send.
#[derive(Debug)]
pub enum Woken {
    Delivery(Delivery),
    Heartbeat,
}

/// Why a stream ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The server is shutting down.
    Shutdown,
    /// The failure lab cut the connection.
    Cut(Cut),
    /// A half-open fault kept the connection silent to its end: it goes without a word.
    Silenced,
    /// The hub is gone: there is nothing more to send.
    StreamEnded,
}

/// One open stream of the event stream, framed by `E`.
pub struct PushStream<E> {
    subscription: Subscription,
    heartbeat: Interval,
    /// Shutdown or a cut (see [`ConnectionFaults::ending`]), made once for the stream's life.
    ending: Pin<Box<dyn Future<Output = Option<Cut>> + Send>>,
    /// The heartbeat's timer and the ending are polled at every wake-up but ready once in a while
    /// (every few seconds, once in a lifetime): behind one gate they are polled only when one of them
    /// woke. Polling the timer at every event was 1.2 % of the server's samples at 5,000 calls.
    rare: Gate,
    conn_faults: ConnectionFaults,
    counters: Arc<Counters>,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
    _open: OpenGuard,
    _encoding: PhantomData<fn() -> E>,
}

impl<E> std::fmt::Debug for PushStream<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushStream")
            .field("subscription", &self.subscription)
            .field("conn_faults", &self.conn_faults)
            .finish_non_exhaustive()
    }
}

impl<E: Encoding> PushStream<E> {
    /// Subscribes after `resume` (or from now) and counts the connection open until the stream is
    /// dropped.
    pub fn open(state: &AppState, resume: Option<Seq>) -> PushStream<E> {
        let counters = state.meters.lane(E::LANE).clone();
        let conn_faults = ConnectionFaults::new(&state.faults, E::LANE);
        PushStream {
            subscription: state.hub.subscribe(resume),
            heartbeat: heartbeat_interval(state.config.heartbeat()),
            ending: Box::pin(conn_faults.ending(&state.shutdown)),
            rare: Gate::default(),
            conn_faults,
            _open: counters.open(),
            counters,
            hub: state.hub.clone(),
            shutdown: state.shutdown.clone(),
            _encoding: PhantomData,
        }
    }

    /// The first frame: what the stream resumed after, where the history stands, how often heartbeats
    /// come.
    pub fn hello(
        &self,
        state: &AppState,
        resume: Option<Seq>,
        request_head: Option<RequestHead>,
    ) -> E::Frame {
        E::hello(state, &state.hello(resume, request_head))
    }

    /// Where the subscription is, to move it (a phone call's resume request).
    pub fn subscription(&mut self) -> &mut Subscription {
        &mut self.subscription
    }

    /// Whether every event published so far has been sent on this stream.
    pub fn caught_up(&self) -> bool {
        self.subscription.caught_up()
    }

    /// The last seq sent (or declared lost) on this stream.
    pub fn last(&self) -> Seq {
        self.subscription.last()
    }

    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// A gate for the lane's other rare business (the phone call's incoming frames) whose flag shares
    /// a word with the stream's own: one cache line checked per wake-up instead of two.
    pub fn gate_beside(&self) -> Gate {
        self.rare.sibling()
    }

    /// The lab's faults as this stream sees them.
    pub fn faults(&self) -> &ConnectionFaults {
        &self.conn_faults
    }

    /// Waits for something to send, or for the stream's end. Cancel-safe: a delivery is only taken
    /// when this returns it.
    pub async fn wait(&mut self) -> Result<Woken, Ending> {
        self.wait_for(true).await
    }

    /// [`PushStream::wait`], but without `events` only for a heartbeat or the end: the stream's events
    /// go out another way meanwhile (the phone call's exchange) and the subscription is not polled.
    pub async fn wait_for(&mut self, events: bool) -> Result<Woken, Ending> {
        /// What the gate let through.
        enum Rare {
            Ended(Option<Cut>),
            Beat,
        }
        loop {
            let PushStream {
                subscription,
                heartbeat,
                ending,
                rare,
                ..
            } = self;
            let rare = std::future::poll_fn(|cx| {
                rare.poll_with(cx, |cx| {
                    if let Poll::Ready(how) = ending.as_mut().poll(cx) {
                        return Poll::Ready(Rare::Ended(how));
                    }
                    heartbeat.poll_tick(cx).map(|_| Rare::Beat)
                })
            });
            tokio::select! {
                biased;
                rare = rare => match rare {
                    Rare::Ended(how) => return Err(how.map_or(Ending::Shutdown, Ending::Cut)),
                    // A `no_heartbeat` fault: the beat is skipped (the phone call's protocol ping
                    // with it), so a line without news goes quiet.
                    Rare::Beat if self.conn_faults.heartbeats_off() => {}
                    Rare::Beat => return Ok(Woken::Heartbeat),
                },
                delivery = subscription.next(), if events => return match delivery {
                    Some(delivery) => Ok(Woken::Delivery(delivery)),
                    None => Err(Ending::StreamEnded),
                },
            }
        }
    }

    /// The frames `woken` sends, in order, into `out` (cleared first). While no fault is armed on the
    /// lane (one atomic load) nothing can hold a frame back, so every delivery already waiting goes in
    /// the same write (up to [`MAX_BATCH`]): one write instead of one per event, which is where the
    /// server's time went at 100 events/s to thousands of connections. While a fault may hold frames,
    /// each goes out on its own, held as the fault says: batching them would keep every held frame
    /// back until news stopped coming.
    pub async fn frames(&mut self, woken: Woken, out: &mut Frames<E::Frame>) -> Result<(), Ending> {
        out.clear();
        let (first, made_ms) = match woken {
            Woken::Delivery(delivery) => self.frame_of(delivery),
            Woken::Heartbeat => {
                let beat = Heartbeat {
                    server_ms: now_ms(),
                    head: self.hub.head(),
                };
                (E::heartbeat(&beat), beat.server_ms)
            }
        };
        // Boxed: only a lane with a fault armed waits here, and inline its two timers would be room
        // every idle connection keeps.
        if !self.conn_faults.is_quiet()
            && Box::pin(self.conn_faults.hold(made_ms, &self.shutdown))
                .await
                .is_err()
        {
            return Err(if self.shutdown.is_cancelled() {
                Ending::Shutdown
            } else {
                Ending::Silenced
            });
        }
        out.push(first);
        while out.len() < MAX_BATCH && self.conn_faults.is_quiet() {
            let Some(delivery) = self.subscription.ready() else {
                break;
            };
            let (frame, _) = self.frame_of(delivery);
            out.push(frame);
        }
        Ok(())
    }

    /// A delivery's frame and when it was made (a `delay` fault counts from then).
    fn frame_of(&self, delivery: Delivery) -> (E::Frame, u64) {
        match delivery {
            Delivery::Event(event) => {
                self.counters.messages.fetch_add(1, Relaxed);
                (event.framed(E::LANE, E::event), event.ts_ms)
            }
            Delivery::Gap(gap) => (E::gap(gap), now_ms()),
        }
    }
}

/// The body of a lane whose stream is one HTTP response (the radio, the endless letter): the hello, then
/// each wake-up's frames as one chunk (one write, not one per event) until the stream ends. A cut or a
/// half-open fault aborts the body with an error, so the connection is torn down rather than ended
/// cleanly, as a real network failure would leave it. `keep` (the lane's permit) lives as long as it.
pub fn response_body<E: Encoding<Frame = Bytes> + 'static>(
    hello: Bytes,
    stream: PushStream<E>,
    keep: impl Send + 'static,
) -> Body {
    struct Open<E, K> {
        hello: Option<Bytes>,
        stream: PushStream<E>,
        frames: Frames<Bytes>,
        _keep: K,
    }
    let open = Open {
        hello: Some(hello),
        stream,
        frames: Frames::new(),
        _keep: keep,
    };
    Body::from_stream(futures_util::stream::unfold(
        Some(open),
        |open| async move {
            let mut open = open?;
            if let Some(hello) = open.hello.take() {
                return Some((Ok(hello), Some(open)));
            }
            let sent = match open.stream.wait().await {
                Ok(woken) => open.stream.frames(woken, &mut open.frames).await,
                Err(ending) => Err(ending),
            };
            let torn = |why: &str| io::Error::new(io::ErrorKind::ConnectionAborted, why.to_owned());
            match sent {
                Ok(()) => Some((Ok(one_chunk(&mut open.frames)), Some(open))),
                Err(Ending::Shutdown | Ending::StreamEnded) => None,
                // The error aborts the response; nothing follows it.
                Err(Ending::Cut(_)) => Some((Err(torn("cut by a fault")), None)),
                Err(Ending::Silenced) => {
                    Some((Err(torn("a half-open connection finally failed")), None))
                }
            }
        },
    ))
}

/// The frames of one wake-up as one chunk.
fn one_chunk(frames: &mut Frames<Bytes>) -> Bytes {
    if frames.len() == 1 {
        return frames.pop().expect("one frame");
    }
    let mut chunk = BytesMut::with_capacity(frames.iter().map(Bytes::len).sum());
    for frame in frames.drain(..) {
        chunk.extend_from_slice(&frame);
    }
    chunk.freeze()
}

/// A JSON text of plain data (serializing it cannot fail).
pub fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("plain data serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lanes::sse::Sse;
    use crate::lanes::ws::Ws;
    use bytes::Bytes;
    use switchboard_shared::{ChatMessage, ChatVia, Event, EventBody, ServerMessage};

    #[test]
    fn every_lane_form_says_the_same_event_and_is_built_once() {
        let hub = Hub::new(10);
        let published = hub.publish(EventBody::Chat(ChatMessage {
            author: "ada".into(),
            text: "hi \"there\"\n".into(),
            via: ChatVia::Post,
            client_ref: None,
        }));
        let event: Event = serde_json::from_slice(&published.json).unwrap();
        assert_eq!(event.seq, 1);
        let ws = published.framed(LaneId::Ws, Ws::event);
        let parsed: ServerMessage =
            serde_json::from_slice(crate::lanes::ws::text_payload(&ws)).unwrap();
        assert_eq!(parsed, ServerMessage::Event(event.clone()));
        let sse = published.framed(LaneId::Sse, Sse::event);
        let data = std::str::from_utf8(&sse)
            .unwrap()
            .strip_prefix("id: 1\ndata: ")
            .unwrap()
            .strip_suffix("\n\n")
            .unwrap();
        assert!(
            !data.contains('\n'),
            "an SSE data line must not contain a newline"
        );
        assert_eq!(serde_json::from_str::<Event>(data).unwrap(), event);
        // Every later connection gets the same buffer, not a new one.
        let again: Bytes = published.framed(LaneId::Sse, |_| unreachable!("built once"));
        assert_eq!(again.as_ptr(), sse.as_ptr());
    }
}
