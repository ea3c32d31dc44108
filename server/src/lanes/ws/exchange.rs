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

/// The exchange of one server.
#[derive(Debug, Default)]
pub struct Exchange {
    shards: OnceLock<Box<[Shard]>>,
    next: AtomicUsize,
}

#[derive(Debug, Default)]
struct Shard {
    listed: Mutex<Listed>,
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
    shard: usize,
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
            shard: self.next.fetch_add(1, Relaxed) % SHARDS,
            meter,
        })
    }

    /// Lists `line` to have every event after `last` written to `socket`, if its shard can: `false`
    /// when the shard is busy writing or already went past `last` (the call tries again after its next
    /// delivery).
    pub fn join(&self, state: &AppState, line: &Arc<Line>, socket: &Socket, last: Seq) -> bool {
        let shards = self.shards.get_or_init(|| start(state));
        // Never wait for a shard that is writing: the call just stays on its own path a while longer.
        let Ok(mut listed) = shards[line.shard].listed.try_lock() else {
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
fn start(state: &AppState) -> Box<[Shard]> {
    let shards: Box<[Shard]> = (0..SHARDS).map(|_| Shard::default()).collect();
    for index in 0..SHARDS {
        let mut live = state.hub.live();
        let state = state.clone();
        let shutdown = state.shutdown.clone();
        state.tasks.clone().spawn(async move {
            let counters = state.meters.lane(LaneId::Ws).clone();
            let faults = ConnectionFaults::new(&state.faults, LaneId::Ws);
            let mut batch = Vec::new();
            loop {
                let event = tokio::select! {
                    () = shutdown.cancelled() => return,
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
                let Some(shards) = state.exchange.shards.get() else {
                    continue;
                };
                let writable = faults.is_quiet() && !state.network.is_armed(LaneId::Ws);
                shards[index].pass(&batch, writable, &counters);
            }
        });
    }
    shards
}

impl Shard {
    /// Writes `batch` (events in the order sent, each with its frame) to every listed line, each line
    /// the events after its last in one write; lines no longer joined are dropped from the list.
    fn pass(&self, batch: &[(Seq, Bytes)], writable: bool, counters: &Counters) {
        let Some(&(newest, _)) = batch.last() else {
            return;
        };
        let mut listed = self.listed.lock().unwrap_or_else(|e| e.into_inner());
        listed.lines.retain(|line| {
            let mut state = line.lock();
            let joined =
                state.socket.is_some() && line.deliver(&mut state, batch, writable, counters);
            state.listed = joined;
            joined
        });
        listed.at = newest;
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
