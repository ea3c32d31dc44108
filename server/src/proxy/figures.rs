//! The app's channels' figures, kept as the traffic flows (by the [`super::stages`] figures stage):
//! one [`Tally`] per channel, read by `GET /api/app` without looking at the recording. The rules that
//! decide a channel's kind, its heartbeat and its "nothing new" answers are the HAR import's
//! ([`switchboard_shared::har::classify`]), so the live table and an imported HAR say the same.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use switchboard_shared::app::ChannelKey;
use switchboard_shared::har::classify::tally::{Line, Tally};
use switchboard_shared::har::{Channel, ChannelKind};
use switchboard_shared::stats::median;

use super::stage::Flow;

/// The most channels tallied: an app with endless distinct paths stops adding (its later ones are
/// counted among "other requests" by nobody: say so in the report).
pub const MAX_CHANNELS: usize = 10_000;
/// Past this many loops, the "other loops' wait" a loop is compared with includes its own (computing
/// it apart for each would cost the square of the loops).
const EXACT_OTHERS: usize = 100;

/// Every channel's tally, by channel id.
#[derive(Debug, Default)]
pub struct Figures {
    tallies: Mutex<Book>,
    /// Moves on whenever a tally changes its place in the book (a clear, a rename): a [`Seat`] found
    /// before then is found again.
    shape: AtomicU64,
}

/// One channel's tally, shared by the book and the seats of the flows that count on it.
type Shared = Arc<Mutex<Tally>>;

/// Where one flow's figures go: its channel's tally, found in the book once and kept while the book
/// keeps its shape. A socket tells its tally of each message twice (as it passes, as it is
/// delivered): looking the channel up by name each time read the flow's own key (a cold cache line)
/// and took the lock every flow of every channel shares.
#[derive(Debug, Default)]
pub struct Seat(Mutex<Place>);

#[derive(Debug, Default)]
struct Place {
    /// The book's shape it was found in, and the tally (none: no room for a new channel).
    found: Option<(u64, Option<Shared>)>,
    /// The line the flow opened, if it is one: a start over that threw its tally away finds it open
    /// on the new one.
    line: Option<Line>,
}

/// Where a connection's open line is counted, so that a half-open can count it dead at once — before
/// its tab redials, which is then a reconnect and not a second client — whatever tally it is counted on
/// by then (a start over moves it to a new one).
#[derive(Debug, Default)]
pub struct Counted(Mutex<Counting>);

#[derive(Debug, Default)]
struct Counting {
    /// The tally its open line is counted on; none when it carries no line.
    on: Option<Shared>,
    /// The connection went dead (a half-open: for good).
    dead: bool,
}

impl Counted {
    /// The connection went dead (a half-open), or both its ends gave up on it: its line, if it carries
    /// one now or opens one after, is counted so (no longer live), once.
    pub fn died(&self) {
        let mut counting = lock(&self.0);
        if !counting.dead {
            counting.dead = true;
            if let Some(tally) = &counting.on {
                lock(tally).line_died();
            }
        }
    }

    /// Its line was just opened on `tally` and is counted there from now on (dead at once if a
    /// half-open struck while it opened).
    fn counted_on(&self, tally: &Shared) {
        let mut counting = lock(&self.0);
        counting.on = Some(tally.clone());
        if counting.dead {
            lock(tally).line_died();
        }
    }

    /// Its line, open before `tally` began (a start over), is counted there from now on: as a client
    /// only if alive.
    fn carried_onto(&self, tally: &Shared, line: Line) {
        let mut counting = lock(&self.0);
        counting.on = Some(tally.clone());
        lock(tally).line_carried(line, crate::hub::now_ms_f64(), !counting.dead);
    }

    /// Whether it carries a line now.
    pub fn carries(&self) -> bool {
        lock(&self.0).on.is_some()
    }

    /// Its line ended: whether it had been counted dead.
    fn ended(&self) -> bool {
        let mut counting = lock(&self.0);
        counting.on = None;
        counting.dead
    }
}

#[derive(Debug, Default)]
struct Book {
    tallies: Tallies,
    /// Channels renamed to their route template: a connection that began under the old name is still
    /// counted on the new one.
    renamed: HashMap<String, ChannelKey, BuildHasherDefault<Fnv>>,
}

/// Looked up on every message: the ids are hashes already, so a plain FNV-1a over them is enough (the
/// default hasher cost more than the tally's own work).
type Tallies = HashMap<String, (ChannelKey, Shared), BuildHasherDefault<Fnv>>;

#[derive(Debug, Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Book {
    /// The tally of the channel `key` (under its new name if it was renamed), made if it is new and
    /// there is room.
    fn find(&mut self, key: &ChannelKey) -> Option<Shared> {
        let key = self.renamed.get(&key.id).unwrap_or(key);
        if let Some((_, tally)) = self.tallies.get(&key.id) {
            return Some(tally.clone());
        }
        if self.tallies.len() >= MAX_CHANNELS {
            return None;
        }
        let tally = Arc::new(Mutex::new(Tally::new(key.name.clone())));
        self.tallies
            .insert(key.id.clone(), (key.clone(), tally.clone()));
        Some(tally)
    }
}

/// A channel as the figures read it now.
#[derive(Debug, Clone)]
pub struct Read {
    pub key: ChannelKey,
    pub channel: Channel,
    pub longest_silence_ms: Option<f64>,
    /// What the browser got of what the app sent.
    pub got: switchboard_shared::app::Got,
}

impl Figures {
    fn lock(&self) -> MutexGuard<'_, Book> {
        lock(&self.tallies)
    }

    /// Changes the tally of `flow`'s channel through its seat, making the tally if it is new and there
    /// is room.
    pub fn with(&self, flow: &Flow, change: impl FnOnce(&mut Tally)) {
        let mut place = lock(&flow.seat.0);
        let shape = self.shape.load(Ordering::Acquire);
        if !matches!(&place.found, Some((found_in, _)) if *found_in == shape) {
            let mut book = self.lock();
            // Read again under the book's lock, which every change of its shape holds.
            let shape = self.shape.load(Ordering::Acquire);
            let tally = book.find(&flow.channel);
            let before = place.found.as_ref().and_then(|(_, tally)| tally.as_ref());
            if let (Some(line), Some(tally)) = (place.line, &tally)
                && before.is_none_or(|before| !Arc::ptr_eq(before, tally))
            {
                // A line open on another tally than the one found now: the book started over while
                // it stayed open (or its channel's tally was replaced), and the tally found now counts
                // it open too (the templates learned stay, and so do the lines) — dead, if it died.
                // (Each open line carries itself: every socket of the channel, not only the first to
                // speak after the start over.)
                flow.conn.counted.carried_onto(tally, line);
            }
            place.found = Some((shape, tally));
        }
        if let Some((_, Some(tally))) = &place.found {
            change(&mut lock(tally));
        }
    }

    /// `flow` is a line (a socket, a stream) from now on, opened on its tally by the change `with`
    /// just made.
    pub fn opened(&self, flow: &Flow, line: Line) {
        let mut place = lock(&flow.seat.0);
        place.line = Some(line);
        if let Some((_, Some(tally))) = &place.found {
            flow.conn.counted.counted_on(tally);
        }
    }

    /// `flow`'s line ended at `at_ms`.
    pub fn line_ended(&self, flow: &Flow, at_ms: f64) {
        let dead = flow.conn.counted.ended();
        self.with(flow, |tally| tally.line_ended(at_ms, dead));
    }

    /// The heartbeat learned by its pace on the channel `key`, if any (see `Tally::learned_beat`).
    pub fn learned_beat(&self, key: &ChannelKey) -> Option<(bool, u64)> {
        let book = self.lock();
        let id = book
            .renamed
            .get(&key.id)
            .map_or(&key.id, |renamed| &renamed.id);
        lock(&book.tallies.get(id)?.1).learned_beat()
    }

    /// The uploads of sessions, by the endpoint they went to: its key, how many, their bytes.
    pub fn uploads(&self) -> Vec<(ChannelKey, u64, u64)> {
        self.lock()
            .tallies
            .values()
            .filter_map(|(key, tally)| {
                let (n, bytes) =
                    lock(tally).asides()[switchboard_shared::app::route::Aside::Upload as usize];
                (n > 0).then(|| (key.clone(), n, bytes))
            })
            .collect()
    }

    /// Every request aside from the channels, summed by kind (`Page`, `Handshake`, `Upload`): how
    /// many, and their bytes.
    pub fn asides(&self) -> [(u64, u64); 3] {
        let mut sum = [(0, 0); 3];
        for (_, tally) in self.lock().tallies.values() {
            for (into, (n, bytes)) in sum.iter_mut().zip(lock(tally).asides()) {
                into.0 += n;
                into.1 += bytes;
            }
        }
        sum
    }

    /// The channel `old` is now `new` (a route template was learned): its tally goes with it.
    pub fn rename(&self, old: &ChannelKey, new: &ChannelKey) {
        let mut book = self.lock();
        if let Some((_, tally)) = book.tallies.remove(&old.id) {
            lock(&tally).rename(new.name.clone());
            book.tallies.insert(new.id.clone(), (new.clone(), tally));
        }
        // Earlier renames to `old` now lead to `new`.
        for renamed in book.renamed.values_mut().filter(|k| k.id == old.id) {
            *renamed = new.clone();
        }
        if book.renamed.len() < MAX_CHANNELS {
            book.renamed.insert(old.id.clone(), new.clone());
        }
        // A tally another took the new name from, or a channel that found no room, is found again.
        self.shape.fetch_add(1, Ordering::Release);
    }

    /// Per channel id: the median time its latest messages took from the app to the browser's socket
    /// (what an experiment that slows them compares with).
    pub fn delivery(&self) -> std::collections::HashMap<String, (f64, usize)> {
        self.lock()
            .tallies
            .iter()
            .filter_map(|(id, (_, tally))| Some((id.clone(), lock(tally).delivery_ms()?)))
            .collect()
    }

    /// Starts over (the route templates learned stay: a connection still open is counted on its
    /// endpoint's channel).
    pub fn clear(&self) {
        let mut book = self.lock();
        book.tallies.clear();
        // Open flows count on new tallies from their next message.
        self.shape.fetch_add(1, Ordering::Release);
    }

    /// Every channel as the rules read it now (sorted by kind, then name, as the HAR import sorts),
    /// and the requests that belong to none.
    pub fn read(&self, now_ms: f64) -> (Vec<Read>, u64) {
        let book = self.lock();
        let tallies = &book.tallies;
        let loops: Vec<(&String, Vec<f64>)> = tallies
            .iter()
            .map(|(id, (_, tally))| (id, lock(tally).waits().collect::<Vec<f64>>()))
            .filter(|(_, waits)| !waits.is_empty())
            .collect();
        let all_waits = || loops.iter().flat_map(|(_, waits)| waits.iter().copied());
        let everyone =
            (loops.len() > EXACT_OTHERS).then(|| median(&mut all_waits().collect::<Vec<_>>()));
        let mut read = Vec::new();
        let mut other = 0;
        for (id, (key, tally)) in tallies.iter() {
            let tally = lock(tally);
            other += tally.asides().iter().map(|(n, _)| n).sum::<u64>();
            let others = match everyone {
                Some(everyone) => everyone,
                None => median(
                    &mut loops
                        .iter()
                        .filter(|(other, _)| *other != id)
                        .flat_map(|(_, waits)| waits.iter().copied())
                        .collect::<Vec<f64>>(),
                ),
            };
            match tally.channel(others) {
                Some(channel) => read.push(Read {
                    key: key.clone(),
                    got: tally.got(),
                    longest_silence_ms: tally.longest_silence_ms(
                        matches!(channel.kind, ChannelKind::Radio | ChannelKind::Phone)
                            .then_some(now_ms),
                    ),
                    channel,
                }),
                None => other += tally.channel_requests(),
            }
        }
        read.sort_by(|a, b| {
            (a.channel.kind, &a.channel.name).cmp(&(b.channel.kind, &b.channel.name))
        });
        (read, other)
    }

    /// The kind of every channel that is one now, by id (for the HAR's `_kind`).
    /// Exchanges recorded before their channel was renamed carry its old id, which says the same.
    pub fn kinds(&self, now_ms: f64) -> HashMap<String, ChannelKind> {
        let mut kinds: HashMap<String, ChannelKind> = self
            .read(now_ms)
            .0
            .into_iter()
            .map(|read| (read.key.id, read.channel.kind))
            .collect();
        let renamed: Vec<(String, String)> = self
            .lock()
            .renamed
            .iter()
            .map(|(old, new)| (old.clone(), new.id.clone()))
            .collect();
        for (old, new) in renamed {
            if let Some(&kind) = kinds.get(&new) {
                kinds.insert(old, kind);
            }
        }
        kinds
    }
}
