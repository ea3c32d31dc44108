//! The exchange: a few tasks write each event to every waiting phone call's socket, so a delivery does
//! not wake the call's own task.
//!
//! Through its own task, a delivery to one call was a wake-up (the broadcast's waiter list, the
//! worker's run queue), a poll of the call, a look at its gates, the subscription's receive and then
//! the write: at 5,000 calls × 10 events/s, about an eighth of the server's samples went to all but the
//! write (BENCHMARKS.md). Node's `ws` loops over its sockets and writes; the exchange does that for the
//! common case and leaves everything else to the call.
//!
//! A call with nothing of its own to send (caught up, no fault armed on the lane, no emulated network,
//! nothing half-written) *joins*: its [`Line`] is listed on one of [`SHARDS`] shards, each served by one
//! task with its own receiver of the live channel. For each event the shard writes the event's frame
//! (built once) to each listed socket with one non-blocking send, if the event is the line's next one.
//! Anything else hands the line back to its call, which writes what is left of a frame the socket took
//! only part of and goes on from the line's last seq with its own subscription: a socket that takes
//! nothing now (a slow reader: the call's send deadline applies), an event that is not the line's next
//! (the shard fell behind, the stream started over), a fault or an emulated network armed on the lane.
//!
//! The call writes beside the exchange only a heartbeat, through the line ([`Line::send`]); before
//! anything else of its own (a reply, the pong tungstenite owes, the close) it takes the line back.
//! Each writer writes whole frames under the line's lock or hands the rest over, so frames never
//! interleave.

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use smallvec::SmallVec;
use std::io::IoSlice;
use std::sync::atomic::{
    AtomicBool, AtomicUsize, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use switchboard_shared::{LaneId, Seq};
use tokio::sync::Notify;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::Ws;
use crate::AppState;
use crate::faults::ConnectionFaults;
use crate::lanes::push::{Encoding, MAX_BATCH};
use crate::listener::Socket;
use crate::metering::{ConnMeter, Counters};

/// How many shards the waiting calls are spread over: enough for both worker threads to write at
/// once, few enough that a delivery costs a shard's wake-up only once per several hundred calls.
const SHARDS: usize = 16;

/// How many lines a shard writes to before it lets its worker do something else (about a millisecond).
const CHUNK: usize = 128;

/// The exchange of one server.
#[derive(Debug, Default)]
pub struct Exchange {
    shards: OnceLock<Box<[Shard]>>,
    next: AtomicUsize,
}

#[derive(Debug, Default)]
struct Shard {
    listed: Mutex<Listed>,
    /// A call on this shard ended: its line is dropped from the list even while no event comes to
    /// do it (a server whose sources are off would otherwise keep every ended call's line).
    left: Notify,
}

#[derive(Debug, Default)]
struct Listed {
    lines: Vec<Arc<Line>>,
    /// The last event this shard went through: a line that has not delivered it cannot join yet (the
    /// shard would never write it).
    at: Seq,
}

/// One call's place at the exchange.
#[derive(Debug)]
pub struct Line {
    state: Mutex<LineState>,
    /// Set when the exchange hands the line back; the call's task is woken through `waker`.
    handed: AtomicBool,
    waker: AtomicWaker,
    shard: u8,
    meter: Arc<ConnMeter>,
}

#[derive(Debug, Default)]
struct LineState {
    /// The call's socket while the line is joined; `None` once it is handed or taken back.
    socket: Option<Socket>,
    /// Whether the shard's list holds the line (it drops lines no longer joined on its next pass).
    listed: bool,
    /// The last seq written to the socket.
    last: Seq,
    /// What the socket did not take of the last frame written before the line was handed back.
    rest: Option<Bytes>,
}

/// How a frame the call sent through its line went.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    Whole,
    /// Part of it: the rest is the line's to hand back.
    Partly,
    /// None of it: the line was handed back before, or the socket took nothing.
    Not,
}

impl Exchange {
    /// A line for a call on `meter`'s connection, on the next shard in turn.
    pub fn line(&self, meter: Arc<ConnMeter>) -> Arc<Line> {
        Arc::new(Line {
            state: Mutex::default(),
            handed: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            shard: (self.next.fetch_add(1, Relaxed) % SHARDS) as u8,
            meter,
        })
    }

    /// Takes back the line of a call that ended, and has its shard drop it from its list.
    pub fn leave(&self, line: &Line) {
        line.take_back();
        if let Some(shards) = self.shards.get() {
            shards[usize::from(line.shard)].left.notify_one();
        }
    }

    /// Lists `line` to have every event after `last` written to `socket`, if its shard can: `false`
    /// when the shard is busy writing or already went past `last` (the call tries again after its next
    /// delivery).
    pub fn join(&self, state: &AppState, line: &Arc<Line>, socket: &Socket, last: Seq) -> bool {
        let shards = self.shards.get_or_init(|| start(state));
        // Never wait for a shard that is writing: the call just stays on its own path a while longer.
        let Ok(mut listed) = shards[usize::from(line.shard)].listed.try_lock() else {
            return false;
        };
        if last < listed.at {
            return false;
        }
        let mut line_state = line.lock();
        line_state.last = last;
        line_state.socket = Some(socket.clone());
        line.handed.store(false, Relaxed);
        if !line_state.listed {
            line_state.listed = true;
            listed.lines.push(line.clone());
        }
        true
    }
}

/// Starts the shards' tasks, each on a receiver of its own.
/// Whether frames may go out on the lane as they come: no timed fault armed that could hold one back,
/// no emulated network that must pace them. Otherwise a call writes its own, through the lab.
pub fn lane_open(state: &AppState, faults: &ConnectionFaults) -> bool {
    faults.is_quiet() && !state.network.is_armed(LaneId::Ws)
}

fn start(state: &AppState) -> Box<[Shard]> {
    let shards: Box<[Shard]> = (0..SHARDS).map(|_| Shard::default()).collect();
    for index in 0..SHARDS {
        let mut live = state.hub.live();
        let state = state.clone();
        let shutdown = state.shutdown.clone();
        state.tasks.clone().spawn(async move {
            let counters = state.meters.lane(LaneId::Ws).clone();
            let faults = ConnectionFaults::new(&state.faults, LaneId::Ws);
            // Started from inside the shards' initialization, which may not be over yet.
            let shard = loop {
                if let Some(shards) = state.exchange.shards.get() {
                    break &shards[index];
                }
                tokio::task::yield_now().await;
            };
            let mut batch = Vec::new();
            loop {
                let event = tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = shard.left.notified() => {
                        shard.prune();
                        continue;
                    }
                    event = live.recv() => match event {
                        Ok(event) => event,
                        // What the shard missed, its lines' next events show: each is handed back.
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return,
                    },
                };
                // A shard that fell behind writes all it has in one write per line, as a call does.
                batch.clear();
                batch.push((event.seq, event.framed(LaneId::Ws, Ws::event)));
                while batch.len() < MAX_BATCH {
                    match live.try_recv() {
                        Ok(event) => batch.push((event.seq, event.framed(LaneId::Ws, Ws::event))),
                        Err(TryRecvError::Lagged(_)) => continue,
                        Err(_) => break,
                    }
                }
                shard
                    .pass(&batch, lane_open(&state, &faults), &counters)
                    .await;
            }
        });
    }
    shards
}

impl Shard {
    /// Drops the lines no longer joined from the list.
    fn prune(&self) {
        let mut listed = self.listed.lock().unwrap_or_else(|e| e.into_inner());
        listed.lines.retain(|line| {
            let mut state = line.lock();
            state.listed = state.socket.is_some();
            state.listed
        });
    }

    /// Writes `batch` (events in the order sent, each with its frame) to every listed line, each line
    /// the events after its last in one write; lines no longer joined are dropped from the list.
    ///
    /// [`CHUNK`] lines at a time, yielding between: a pass over thousands of sockets takes milliseconds,
    /// and a worker that runs such passes back to back looks at its timers only after them — the
    /// sources' own timers fired late, and at 10,000 calls × 20 events/s the ticker fell to 18.8/s.
    async fn pass(&self, batch: &[(Seq, Bytes)], writable: bool, counters: &Counters) {
        let Some(&(newest, _)) = batch.last() else {
            return;
        };
        let mut next = 0;
        loop {
            {
                let mut listed = self.listed.lock().unwrap_or_else(|e| e.into_inner());
                let mut done = 0;
                while done < CHUNK && next < listed.lines.len() {
                    done += 1;
                    let line = &listed.lines[next];
                    let mut state = line.lock();
                    let joined = state.socket.is_some()
                        && line.deliver(&mut state, batch, writable, counters);
                    state.listed = joined;
                    drop(state);
                    if joined {
                        next += 1;
                    } else {
                        // The last line (not yet written to: lines are taken in order) takes its place.
                        listed.lines.swap_remove(next);
                    }
                }
                // Lines that joined meanwhile were added at the end and have had the batch too.
                if next >= listed.lines.len() {
                    listed.at = newest;
                    return;
                }
            }
            tokio::task::yield_now().await;
        }
    }
}

impl Line {
    fn lock(&self) -> MutexGuard<'_, LineState> {
        // Every change under this lock is a single assignment: a panic cannot leave it half-made.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the events of `batch` after the line's last, if they follow it without a hole and the
    /// lane is `writable`; `false` when the line was handed back (then everything not written whole
    /// is the call's: what is left of a frame in `rest`, the events after it from its subscription).
    fn deliver(
        &self,
        state: &mut LineState,
        batch: &[(Seq, Bytes)],
        writable: bool,
        counters: &Counters,
    ) -> bool {
        // What its call delivered before joining is skipped.
        let Some(start) = batch.iter().position(|&(seq, _)| seq > state.last) else {
            return true;
        };
        let todo = &batch[start..];
        // The events that continue the line's last seq one by one.
        let run = todo
            .iter()
            .zip(state.last + 1..)
            .take_while(|((seq, _), next)| seq == next)
            .count();
        if !writable || run == 0 {
            return self.hand_back(state);
        }
        let Some(socket) = &state.socket else {
            return false;
        };
        let result = match &todo[..run] {
            [(_, frame)] => socket.try_write(frame),
            frames => {
                let slices: SmallVec<[IoSlice<'_>; 8]> = frames
                    .iter()
                    .map(|(_, frame)| IoSlice::new(frame))
                    .collect();
                socket.try_write_vectored(&slices)
            }
        };
        // Full (a slow reader) or failed: the call's own write finds out which, and keeps the send
        // deadline.
        let Ok(mut written) = result else {
            return self.hand_back(state);
        };
        self.meter.wrote(written);
        for (seq, frame) in &todo[..run] {
            if written == 0 {
                break;
            }
            counters.messages.fetch_add(1, Relaxed);
            state.last = *seq;
            if written < frame.len() {
                state.rest = Some(frame.slice(written..));
                return self.hand_back(state);
            }
            written -= frame.len();
        }
        if run < todo.len() || state.last != todo[run - 1].0 {
            return self.hand_back(state);
        }
        true
    }

    fn hand_back(&self, state: &mut LineState) -> bool {
        state.socket = None;
        self.handed.store(true, Release);
        self.waker.wake();
        false
    }

    /// Writes a frame of the call's own (a heartbeat) beside the exchange's: whole, or the line is
    /// handed back with what is left of it.
    pub fn send(&self, frame: &Bytes) -> Sent {
        let mut state = self.lock();
        let Some(socket) = &state.socket else {
            return Sent::Not;
        };
        match socket.try_write(frame) {
            Ok(written) => {
                self.meter.wrote(written);
                if written == frame.len() {
                    return Sent::Whole;
                }
                state.rest = Some(frame.slice(written..));
                self.hand_back(&mut state);
                Sent::Partly
            }
            Err(_) => {
                self.hand_back(&mut state);
                Sent::Not
            }
        }
    }

    /// Takes the line back (whether or not it was handed back): its last seq written, and what is
    /// left of a frame written only in part, to be written first.
    pub fn take_back(&self) -> (Seq, Option<Bytes>) {
        let mut state = self.lock();
        state.socket = None;
        self.handed.store(false, Relaxed);
        (state.last, state.rest.take())
    }

    /// Ready once the exchange has handed the line back.
    pub fn poll_handed_back(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.handed.load(Acquire) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        if self.handed.load(Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::Meters;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    /// A line on a real loopback connection, joined after `last`, and the peer's end of it.
    async fn joined_line(last: Seq) -> (Arc<Line>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (ours, _) = listener.accept().await.unwrap();
        let line = Exchange::default().line(Arc::new(ConnMeter::new(Arc::new(Meters::default()))));
        {
            let mut state = line.lock();
            state.socket = Some(Socket::from(ours));
            state.last = last;
        }
        (line, peer)
    }

    /// Event `seq`'s frame: `len` bytes, each the seq (so a byte out of place shows).
    fn frame(seq: Seq, len: usize) -> (Seq, Bytes) {
        (seq, Bytes::from(vec![seq as u8; len]))
    }

    fn deliver(line: &Line, batch: &[(Seq, Bytes)], writable: bool, counters: &Counters) -> bool {
        let mut state = line.lock();
        line.deliver(&mut state, batch, writable, counters)
    }

    async fn read_exactly(peer: &mut TcpStream, len: usize) -> Vec<u8> {
        let mut got = vec![0; len];
        peer.read_exact(&mut got).await.unwrap();
        got
    }

    #[tokio::test]
    async fn a_line_gets_the_events_after_its_last_and_skips_what_its_call_sent() {
        let (line, mut peer) = joined_line(1).await;
        let counters = Counters::default();
        let batch = [frame(1, 10), frame(2, 20), frame(3, 30)];
        assert!(deliver(&line, &batch, true, &counters));
        assert_eq!(line.lock().last, 3);
        assert_eq!(counters.messages.load(Relaxed), 2);
        let mut expected = vec![2u8; 20];
        expected.extend([3u8; 30]);
        assert_eq!(read_exactly(&mut peer, 50).await, expected);
        // Nothing new for it: still joined, nothing written.
        assert!(deliver(&line, &batch[..1], true, &counters));
        assert!(!line.handed.load(Acquire));
    }

    #[tokio::test]
    async fn a_hole_or_an_armed_lane_hands_the_line_back_without_writing() {
        let counters = Counters::default();
        // Seq 2 never reached the shard (it fell behind): the call's subscription has it.
        let (line, _peer) = joined_line(1).await;
        assert!(!deliver(&line, &[frame(3, 10)], true, &counters));
        assert!(line.handed.load(Acquire));
        assert_eq!(line.take_back(), (1, None));
        // A fault or an emulated network armed: the call's own path holds or shapes the frame.
        let (line, _peer) = joined_line(1).await;
        assert!(!deliver(&line, &[frame(2, 10)], false, &counters));
        assert_eq!(line.take_back(), (1, None));
        assert_eq!(counters.messages.load(Relaxed), 0);
    }

    /// A peer that reads nothing fills its socket: the frame the socket took part of is the line's
    /// last, what is left of it comes back with the line, and what the peer reads later, followed by
    /// that rest, is every frame up to it, whole and in order.
    #[tokio::test]
    async fn a_full_socket_hands_back_what_is_left_of_the_frame_it_began() {
        let (line, mut peer) = joined_line(0).await;
        let counters = Counters::default();
        let mut seq = 0;
        while deliver(
            &line,
            &[frame(seq + 1, 1000), frame(seq + 2, 1000)],
            true,
            &counters,
        ) {
            seq += 2;
            assert!(seq < 100_000, "the socket never filled");
        }
        let (last, rest) = line.take_back();
        assert!(last >= seq && last <= seq + 2, "last {last} after {seq}");
        assert_eq!(counters.messages.load(Relaxed), last);
        let rest = rest.unwrap_or_default();
        let written = last as usize * 1000 - rest.len();
        let mut got = read_exactly(&mut peer, written).await;
        got.extend_from_slice(&rest);
        let expected: Vec<u8> = (1..=last).flat_map(|seq| vec![seq as u8; 1000]).collect();
        assert!(got == expected, "the frames arrived out of place");
        // Taken back, the line is no longer written to.
        assert!(!deliver(&line, &[frame(last + 1, 10)], true, &counters));
    }

    /// A call that ends takes its line back; its shard drops the line from its list on the call's word,
    /// not only when the next event comes (a server whose sources are off would keep them all).
    #[tokio::test]
    async fn a_prune_drops_the_lines_of_calls_that_ended() {
        let shard = Shard::default();
        let (kept, _one) = joined_line(0).await;
        let (ended, _two) = joined_line(0).await;
        for line in [&kept, &ended] {
            line.lock().listed = true;
            shard.listed.lock().unwrap().lines.push(line.clone());
        }
        ended.take_back();
        shard.prune();
        let listed = shard.listed.lock().unwrap();
        assert_eq!(listed.lines.len(), 1);
        assert!(Arc::ptr_eq(&listed.lines[0], &kept));
        assert!(!ended.lock().listed && kept.lock().listed);
        assert_eq!(
            Arc::strong_count(&ended),
            1,
            "the shard still holds the ended call's line"
        );
    }
}
