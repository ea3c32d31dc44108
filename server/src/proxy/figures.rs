//! The app's channels' figures, kept as the traffic flows (by the [`super::stages`] figures stage):
//! one [`Tally`] per channel, read by `GET /api/app` without looking at the recording. The rules that
//! decide a channel's kind, its heartbeat and its "nothing new" answers are the HAR import's
//! ([`switchboard_shared::har::classify`]), so the live table and an imported HAR say the same.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Mutex, MutexGuard};
use switchboard_shared::app::ChannelKey;
use switchboard_shared::har::classify::tally::Tally;
use switchboard_shared::har::{Channel, ChannelKind};
use switchboard_shared::stats::median;

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
type Tallies = HashMap<String, (ChannelKey, Tally), BuildHasherDefault<Fnv>>;

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
        self.tallies.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the tally of the channel `key`, making it if it is new and there is room.
    pub fn with(&self, key: &ChannelKey, change: impl FnOnce(&mut Tally)) {
        let mut book = self.lock();
        let book = &mut *book;
        // Asked twice a message: looked up in place, the key copied only for a channel's first tally.
        let key = book.renamed.get(&key.id).unwrap_or(key);
        if let Some((_, tally)) = book.tallies.get_mut(&key.id) {
            change(tally);
        } else if book.tallies.len() < MAX_CHANNELS {
            let mut tally = Tally::new(key.name.clone());
            change(&mut tally);
            book.tallies.insert(key.id.clone(), (key.clone(), tally));
        }
    }

    /// The heartbeat learned by its pace on the channel `key`, if any (see `Tally::learned_beat`).
    pub fn learned_beat(&self, key: &ChannelKey) -> Option<(bool, u64)> {
        let book = self.lock();
        let id = book
            .renamed
            .get(&key.id)
            .map_or(&key.id, |renamed| &renamed.id);
        book.tallies.get(id)?.1.learned_beat()
    }

    /// The uploads of sessions, by the endpoint they went to: its key, how many, their bytes.
    pub fn uploads(&self) -> Vec<(ChannelKey, u64, u64)> {
        self.lock()
            .tallies
            .values()
            .filter_map(|(key, tally)| {
                let (n, bytes) =
                    tally.asides()[switchboard_shared::app::route::Aside::Upload as usize];
                (n > 0).then(|| (key.clone(), n, bytes))
            })
            .collect()
    }

    /// Every request aside from the channels, summed by kind (`Page`, `Handshake`, `Upload`): how
    /// many, and their bytes.
    pub fn asides(&self) -> [(u64, u64); 3] {
        let mut sum = [(0, 0); 3];
        for (_, tally) in self.lock().tallies.values() {
            for (into, (n, bytes)) in sum.iter_mut().zip(tally.asides()) {
                into.0 += n;
                into.1 += bytes;
            }
        }
        sum
    }

    /// The channel `old` is now `new` (a route template was learned): its tally goes with it.
    pub fn rename(&self, old: &ChannelKey, new: &ChannelKey) {
        let mut book = self.lock();
        if let Some((_, mut tally)) = book.tallies.remove(&old.id) {
            tally.rename(new.name.clone());
            book.tallies.insert(new.id.clone(), (new.clone(), tally));
        }
        // Earlier renames to `old` now lead to `new`.
        for renamed in book.renamed.values_mut().filter(|k| k.id == old.id) {
            *renamed = new.clone();
        }
        if book.renamed.len() < MAX_CHANNELS {
            book.renamed.insert(old.id.clone(), new.clone());
        }
    }

    /// Per channel id: the median time its latest messages took from the app to the browser's socket
    /// (what an experiment that slows them compares with).
    pub fn delivery(&self) -> std::collections::HashMap<String, (f64, usize)> {
        self.lock()
            .tallies
            .iter()
            .filter_map(|(id, (_, tally))| Some((id.clone(), tally.delivery_ms()?)))
            .collect()
    }

    /// Starts over (the route templates learned stay: a connection still open is counted on its
    /// endpoint's channel).
    pub fn clear(&self) {
        self.lock().tallies.clear();
    }

    /// Every channel as the rules read it now (sorted by kind, then name, as the HAR import sorts),
    /// and the requests that belong to none.
    pub fn read(&self, now_ms: f64) -> (Vec<Read>, u64) {
        let book = self.lock();
        let tallies = &book.tallies;
        let loops: Vec<(&String, Vec<f64>)> = tallies
            .iter()
            .map(|(id, (_, tally))| (id, tally.waits().collect::<Vec<f64>>()))
            .filter(|(_, waits)| !waits.is_empty())
            .collect();
        let all_waits = || loops.iter().flat_map(|(_, waits)| waits.iter().copied());
        let everyone =
            (loops.len() > EXACT_OTHERS).then(|| median(&mut all_waits().collect::<Vec<_>>()));
        let mut read = Vec::new();
        let mut other = 0;
        for (id, (key, tally)) in tallies.iter() {
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
