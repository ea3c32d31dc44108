//! The hub: one publisher, a bounded history, and fan-out to every subscriber of every lane.
//!
//! Publishing assigns the seq and timestamp, serializes the event *once* to JSON (a poll batch's element
//! as it is; each streaming lane frames it once, on first use, and the event keeps that frame for every
//! other connection of the lane), keeps it in a bounded history and wakes subscribers. Subscribers never hold the publisher up: the live channel is a bounded broadcast,
//! and a subscriber that falls behind it catches up from the history — or, when the history no longer
//! holds what it missed, gets a [`Gap`] saying exactly which seqs are gone.

use bytes::Bytes;
use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{
    AtomicU64, AtomicUsize, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};
use switchboard_shared::{Event, EventBody, Gap, LaneId, PerLane, Seq};
use tokio::sync::{broadcast, watch};

/// How many events a subscriber takes from the history at a time while catching up, which bounds the
/// memory one slow subscriber can hold.
const CATCH_UP_CHUNK: usize = 256;

/// How many events the live channel buffers before a slow subscriber is told it lagged (it then
/// catches up from the history, so this bounds memory, not correctness).
const LIVE_CAPACITY: usize = 1024;

/// How many live channels the subscribers are spread over. A channel's subscribers register for the
/// next event under one lock, which the publisher holds while it wakes them: with thousands of
/// subscribers in one channel the two worker threads queued for that lock at every event, and slept on
/// it (a fifth of the server's context switches at 5,000 calls). Spread over eight, two threads rarely
/// want the same one at once.
const LIVE_CHANNELS: usize = 8;

/// One published event, serialized once and shared by every lane and subscriber.
#[derive(Debug)]
pub struct Published {
    pub seq: Seq,
    pub ts_ms: u64,
    /// The event as JSON: an element of a poll batch, and what every lane's framing is built from.
    pub json: Bytes,
    /// Each streaming lane's frame of the event, built by the first connection that sends it (one
    /// connection per live channel: each has its copy of the event).
    frames: FrameCache,
}

impl Published {
    /// The same event with none of its frames built yet.
    fn copy(&self) -> Published {
        Published {
            seq: self.seq,
            ts_ms: self.ts_ms,
            json: self.json.clone(),
            frames: FrameCache::default(),
        }
    }

    /// The event framed for `lane` by `build`: built once, then shared (a clone of a reference-counted
    /// buffer) by every connection of the lane.
    pub fn framed<F: Clone + Send + Sync + 'static>(
        &self,
        lane: LaneId,
        build: impl FnOnce(&Published) -> F,
    ) -> F {
        self.frames.0[lane]
            .get_or_init(|| Box::new(build(self)))
            .downcast_ref::<F>()
            .expect("a lane frames its events one way")
            .clone()
    }
}

/// One slot per lane: the hub need not know how any lane frames an event.
#[derive(Default)]
struct FrameCache(PerLane<OnceLock<Box<dyn Any + Send + Sync>>>);

impl fmt::Debug for FrameCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let built: Vec<LaneId> = self
            .0
            .iter()
            .filter(|(_, slot)| slot.get().is_some())
            .map(|(lane, _)| lane)
            .collect();
        f.debug_tuple("FrameCache").field(&built).finish()
    }
}

/// What the history holds after a given seq.
#[derive(Debug, Default)]
pub struct Replay {
    /// Seqs after the asked-for one that the history no longer holds.
    pub gap: Option<Gap>,
    /// Held events after the asked-for seq (and after the gap), oldest first, at most the limit asked.
    pub events: Vec<Arc<Published>>,
    /// The newest seq published when the replay was taken.
    pub head: Seq,
    /// True when the limit cut the replay short: more events are held after the last one returned.
    pub truncated: bool,
}

/// The event stream of one server.
#[derive(Debug)]
pub struct Hub {
    history: Mutex<History>,
    /// Every event goes to each; a subscriber listens to one ([`LIVE_CHANNELS`]).
    live: Box<[broadcast::Sender<Arc<Published>>]>,
    /// Which live channel the next subscriber listens to.
    next_channel: AtomicUsize,
    head: watch::Sender<Seq>,
    /// The seq of the newest event sent on `live`, stored after the send: a subscriber that has
    /// delivered it knows the channel has nothing new without locking it (see [`Subscription::ready`]).
    sent: AtomicU64,
    /// When this history began (Unix ms): a new epoch means the history was lost and started over.
    epoch: AtomicU64,
}

#[derive(Debug)]
struct History {
    next_seq: Seq,
    /// The newest timestamp given out, so timestamps never run backwards when the wall clock does.
    last_ts_ms: u64,
    events: VecDeque<Arc<Published>>,
    capacity: usize,
}

impl Hub {
    /// A hub that keeps the last `capacity` events (at least one).
    pub fn new(capacity: usize) -> Hub {
        let capacity = capacity.max(1);
        Hub {
            history: Mutex::new(History {
                next_seq: 1,
                last_ts_ms: 0,
                events: VecDeque::with_capacity(capacity.min(16_384)),
                capacity,
            }),
            live: (0..LIVE_CHANNELS)
                .map(|_| broadcast::channel(LIVE_CAPACITY).0)
                .collect(),
            next_channel: AtomicUsize::new(0),
            head: watch::Sender::new(0),
            sent: AtomicU64::new(0),
            epoch: AtomicU64::new(now_ms()),
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Relaxed)
    }

    /// Forgets the history and starts a new epoch, as a restart of the server would; returns the new
    /// epoch. The seq counter goes on (as a shared counter would survive a restart of one instance), so
    /// a client resuming after an old seq is told exactly which seqs it lost by a gap notice.
    pub fn restart(&self) -> u64 {
        let mut history = self.lock();
        history.events.clear();
        let epoch = now_ms().max(self.epoch() + 1);
        self.epoch.store(epoch, Relaxed);
        epoch
    }

    /// Starts a new, empty history for `epoch` with the seqs starting over (a shared stream that lost its
    /// data, or an instance joining one). Open subscriptions must be ended by the caller: their
    /// positions belong to the old history.
    pub fn reset(&self, epoch: u64) {
        let mut history = self.lock();
        history.events.clear();
        history.next_seq = 1;
        self.epoch.store(epoch, Relaxed);
        self.head.send_replace(0);
    }

    /// Takes an event numbered elsewhere (the shared stream of several instances): serializes it once,
    /// keeps it and fans it out, as [`Hub::publish`] does for events numbered here. An event already
    /// held is ignored; one that skips seqs (this instance could not read them before the stream let
    /// them go) starts the history afresh at it, so resumes into the hole get an exact gap notice.
    pub fn accept(&self, event: Event) -> Option<Arc<Published>> {
        let mut history = self.lock();
        if event.seq < history.next_seq {
            return None;
        }
        if event.seq > history.next_seq {
            history.events.clear();
        }
        let seq = event.seq;
        history.next_seq = seq + 1;
        history.last_ts_ms = history.last_ts_ms.max(event.ts_ms);
        Some(self.keep(&mut history, serialize(event)))
    }

    pub fn capacity(&self) -> usize {
        self.lock().capacity
    }

    /// Publishes one event to every lane.
    pub fn publish(&self, body: EventBody) -> Arc<Published> {
        // Seq assignment, history append and the live send happen under one short lock (no await, only
        // a small serialization), so every subscriber sees seqs in order.
        let mut history = self.lock();
        let seq = history.next_seq;
        let ts_ms = now_ms().max(history.last_ts_ms);
        history.next_seq += 1;
        history.last_ts_ms = ts_ms;
        self.keep(&mut history, serialize(Event { seq, ts_ms, body }))
    }

    /// Appends to the history and wakes every subscriber, under the caller's lock.
    fn keep(&self, history: &mut History, published: Published) -> Arc<Published> {
        let published = Arc::new(published);
        if history.events.len() == history.capacity {
            history.events.pop_front();
        }
        history.events.push_back(published.clone());
        // Each channel gets a copy of its own (the JSON shared, the frames built per copy): every
        // delivery counts a reference to the event and to its frame up and down, and with one copy for
        // all, the two worker threads did so on the same two cache lines at every delivery.
        for (channel, live) in self.live.iter().enumerate() {
            if live.receiver_count() == 0 {
                continue;
            }
            let copy = match channel {
                0 => published.clone(),
                _ => Arc::new(published.copy()),
            };
            // An error only means its last subscriber just left.
            let _ = live.send(copy);
        }
        self.sent.store(published.seq, Release);
        self.head.send_replace(published.seq);
        published
    }

    /// The newest seq published (0 before the first).
    pub fn head(&self) -> Seq {
        *self.head.borrow()
    }

    /// The oldest seq still held.
    pub fn oldest(&self) -> Option<Seq> {
        self.lock().events.front().map(|event| event.seq)
    }

    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Up to `limit` held events with `seq > after`, with a gap notice for the ones no longer held.
    pub fn since(&self, after: Seq, limit: usize) -> Replay {
        self.lock().since(after, limit)
    }

    /// Watches the head seq: a cheap way to wait for "anything after N" without a subscription.
    pub fn watch_head(&self) -> watch::Receiver<Seq> {
        self.head.subscribe()
    }

    /// A receiver of one live channel (the next, in turn): every event sent from now on, as it is sent,
    /// with no history and no order kept for it (the phone call's exchange keeps its own).
    pub fn live(&self) -> broadcast::Receiver<Arc<Published>> {
        let channel = self.next_channel.fetch_add(1, Relaxed) % self.live.len();
        self.live[channel].subscribe()
    }

    /// Subscribes to everything after `after`, or to what is published from now on when `after` is
    /// `None`.
    pub fn subscribe(self: &Arc<Self>, after: Option<Seq>) -> Subscription {
        // Subscribing and reading the head under the history lock means no event can fall between them.
        let history = self.lock();
        let channel = self.next_channel.fetch_add(1, Relaxed) % self.live.len();
        let live = self.live[channel].subscribe();
        let head = history.next_seq - 1;
        drop(history);
        let mut subscription = Subscription {
            hub: self.clone(),
            live: Some(live),
            channel,
            last: head,
            pending: VecDeque::new(),
            pending_gap: None,
            more_held: false,
        };
        if let Some(after) = after {
            subscription.resume(after);
        }
        subscription
    }

    fn lock(&self) -> MutexGuard<'_, History> {
        // A panic while holding this lock cannot leave the history half-written (every write is a
        // single push or pop), so a poisoned lock is still safe to use.
        self.history
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl History {
    fn since(&self, after: Seq, limit: usize) -> Replay {
        let head = self.next_seq - 1;
        if after >= head {
            // Nothing after it yet — also for a resume point beyond the head (a client of another
            // history, or a made-up `after=18446744073709551615`): no gap, nothing replayed, and no
            // arithmetic on `after` that could wrap.
            return Replay {
                gap: None,
                events: Vec::new(),
                head,
                truncated: false,
            };
        }
        let Some(oldest) = self.events.front().map(|event| event.seq) else {
            // Nothing held: anything between `after` and the head is gone.
            let gap = (after < head).then(|| Gap {
                first: after + 1,
                last: head,
            });
            return Replay {
                gap,
                events: Vec::new(),
                head,
                truncated: false,
            };
        };
        let gap = (after + 1 < oldest).then(|| Gap {
            first: after + 1,
            last: oldest - 1,
        });
        // Seqs are contiguous in the history, so the first wanted event is found by arithmetic.
        let start =
            usize::try_from(after.saturating_add(1).saturating_sub(oldest)).unwrap_or(usize::MAX);
        let available = self.events.len().saturating_sub(start);
        let events: Vec<_> = self
            .events
            .iter()
            .skip(start)
            .take(limit)
            .cloned()
            .collect();
        Replay {
            gap,
            truncated: available > events.len(),
            events,
            head,
        }
    }
}

/// One subscriber's view of the stream: every event after its position, in order, exactly once, with a
/// gap notice for anything the history could no longer give it.
#[derive(Debug)]
pub struct Subscription {
    hub: Arc<Hub>,
    /// `None` while parked ([`Subscription::park`]).
    live: Option<broadcast::Receiver<Arc<Published>>>,
    /// Which live channel it listens to.
    channel: usize,
    /// The last seq delivered (or declared lost): the subscriber's resume point.
    last: Seq,
    /// Events taken from the history and not yet delivered.
    pending: VecDeque<Arc<Published>>,
    /// A gap notice to deliver before `pending`.
    pending_gap: Option<Gap>,
    /// The last catch-up was cut short by its chunk size.
    more_held: bool,
}

/// What a subscription delivers.
#[derive(Debug, Clone)]
pub enum Delivery {
    Event(Arc<Published>),
    /// These seqs are gone; the subscription continues after them.
    Gap(Gap),
}

impl Subscription {
    /// The last seq delivered or declared lost.
    pub fn last(&self) -> Seq {
        self.last
    }

    /// Whether everything published has been delivered: nothing held, nothing sent after `last`.
    pub fn caught_up(&self) -> bool {
        self.pending_gap.is_none()
            && self.pending.is_empty()
            && !self.more_held
            && self.hub.sent.load(Acquire) <= self.last
    }

    /// Moves the subscription to deliver everything after `after` (a client's resume request).
    pub fn resume(&mut self, after: Seq) {
        self.last = after;
        self.pending.clear();
        self.pending_gap = None;
        self.catch_up();
    }

    /// The next delivery; `None` only if the hub is gone. Cancel-safe: nothing is lost if the future is
    /// dropped before it completes.
    pub async fn next(&mut self) -> Option<Delivery> {
        loop {
            if let Some(delivery) = self.take_held() {
                return Some(delivery);
            }
            let Some(live) = &mut self.live else {
                // Parked: back on the channel, and what was missed meanwhile from the history.
                self.catch_up();
                continue;
            };
            match live.recv().await {
                Ok(event) => {
                    if let Some(delivery) = self.take_live(event) {
                        return Some(delivery);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up(),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next delivery if one is ready now, without waiting: lets a connection that wakes up behind
    /// write everything it has pending in one flush instead of one write per event.
    pub fn ready(&mut self) -> Option<Delivery> {
        loop {
            if let Some(delivery) = self.take_held() {
                return Some(delivery);
            }
            // Asked after every delivery, and nearly always with nothing new: an empty channel is
            // found out under its two locks, shared by every subscriber of the server (two worker
            // threads contending for them at every event), where one load of `sent` says it too.
            // Whatever it misses (an event just sent, a lag) the next `next()` brings.
            if self.hub.sent.load(Acquire) <= self.last {
                return None;
            }
            let Some(live) = &mut self.live else {
                return None;
            };
            match live.try_recv() {
                Ok(event) => {
                    if let Some(delivery) = self.take_live(event) {
                        return Some(delivery);
                    }
                }
                Err(broadcast::error::TryRecvError::Lagged(_)) => self.catch_up(),
                Err(
                    broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed,
                ) => return None,
            }
        }
    }

    /// What the subscription already holds: a gap notice, then events taken from the history.
    fn take_held(&mut self) -> Option<Delivery> {
        loop {
            if let Some(gap) = self.pending_gap.take() {
                return Some(Delivery::Gap(gap));
            }
            if let Some(event) = self.pending.pop_front() {
                if event.seq > self.last {
                    self.last = event.seq;
                    return Some(Delivery::Event(event));
                }
                continue;
            }
            if !self.more_held {
                return None;
            }
            self.catch_up();
        }
    }

    /// An event from the live channel: delivered if it is the next one, skipped if already delivered.
    fn take_live(&mut self, event: Arc<Published>) -> Option<Delivery> {
        if event.seq <= self.last {
            return None;
        }
        if event.seq == self.last + 1 {
            self.last = event.seq;
            return Some(Delivery::Event(event));
        }
        // The subscription is behind (a resume point from before the head): the history has what the
        // channel did not bring.
        self.catch_up();
        None
    }

    /// Stops listening to the live channel until the next [`Subscription::resume`] (or `next`): while
    /// something else delivers its events (the phone call's exchange), a receiver nobody reads would
    /// keep the channel's last thousand events alive, ~0.8 KB a call at 5,000 calls.
    pub fn park(&mut self) {
        self.live = None;
    }

    fn catch_up(&mut self) {
        let replay = if self.live.is_some() {
            self.hub.since(self.last, CATCH_UP_CHUNK)
        } else {
            // Back on the channel and reading the history under one lock, so no event falls between.
            let history = self.hub.lock();
            self.live = Some(self.hub.live[self.channel].subscribe());
            history.since(self.last, CATCH_UP_CHUNK)
        };
        if let Some(gap) = replay.gap {
            self.last = gap.last;
            self.pending_gap = Some(gap);
        }
        self.more_held = replay.truncated;
        self.pending.extend(replay.events);
    }
}

/// The server's clock in Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// The server's clock in fractional Unix milliseconds, for clock-offset measurement.
pub fn now_ms_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64() * 1000.0)
}

fn serialize(event: Event) -> Published {
    // Serializing a plain data type into a Vec cannot fail.
    let json = serde_json::to_vec(&event).expect("events serialize");
    Published {
        seq: event.seq,
        ts_ms: event.ts_ms,
        json: Bytes::from(json),
        frames: FrameCache::default(),
    }
}

#[cfg(test)]
mod tests;
