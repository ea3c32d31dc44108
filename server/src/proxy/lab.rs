//! The lab, applied to the app: faults and emulated networks on the app's channels, and the log of what
//! each fault did (which channels it hit, when the app noticed, when it redialed), from which the
//! findings are written.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use switchboard_shared::app::{
    AppCut, AppFault, AppFaultKind, AppFaultRequest, AppNetwork, AppNetworkSpan, CutCause,
};
use switchboard_shared::network::Condition;
use tokio::time::Instant;

use super::conn::Conn;
use super::stage::Pipeline;
use crate::hub::now_ms_f64;

/// Fault records kept for the findings.
const RECORDS: usize = 32;
/// Cuts and network spans kept for the swimlanes.
const CUTS_KEPT: usize = 500;
const NETWORK_SPANS_KEPT: usize = 200;

/// A fault in effect.
#[derive(Debug, Clone)]
pub struct Active {
    pub kind: AppFaultKind,
    pub channel: Option<String>,
    pub until: Option<Instant>,
    pub delay_ms: Option<u64>,
    pub idle_ms: Option<u64>,
}

impl Active {
    pub fn hits(&self, channel: &str) -> bool {
        self.channel.as_deref().is_none_or(|id| id == channel)
    }
}

/// What one fault did, for the findings.
#[derive(Debug, Clone)]
pub struct Record {
    pub kind: AppFaultKind,
    pub channel: Option<String>,
    /// Unix ms.
    pub started_ms: f64,
    pub duration_ms: Option<u64>,
    pub idle_ms: Option<u64>,
    /// When it ended (expired or cleared), Unix ms.
    pub ended_ms: Option<f64>,
    /// The channels whose connections were open when it struck.
    pub affected: Vec<String>,
    /// Per affected channel: when the app first gave up on a hit connection (closed it).
    pub noticed: HashMap<String, f64>,
    /// Per affected channel: when the app opened a new connection after the fault struck.
    pub redialed: HashMap<String, f64>,
    /// Connections it cut (a drop, an idle timeout), per channel.
    pub cuts: HashMap<String, u64>,
    /// Heartbeats it swallowed.
    pub swallowed: u64,
}

#[derive(Debug, Default)]
struct State {
    faults: Vec<Active>,
    /// `None` is every channel.
    networks: HashMap<Option<String>, Arc<Condition>>,
    records: VecDeque<Record>,
    /// Per channel: cut by a fault, cut by an idle timeout.
    cuts: HashMap<String, (u64, u64)>,
    /// The latest cuts, oldest first.
    cut_log: VecDeque<AppCut>,
    /// The networks set, oldest first; the open ones still on.
    network_log: VecDeque<AppNetworkSpan>,
    /// Every channel id seen, with its name (bounded: an app with endless distinct paths stops adding).
    seen: HashMap<String, String>,
}

/// The most distinct channels remembered as seen.
const SEEN: usize = 10_000;

/// The faults and networks on the app's channels.
#[derive(Debug, Default)]
pub struct Lab {
    state: Mutex<State>,
    // Read on every byte and message: a plain flag spares the lock while nothing is set.
    any_fault: AtomicBool,
    any_network: AtomicBool,
}

impl State {
    /// Counts a cut on `channel` and keeps it for the swimlanes.
    fn cut(&mut self, channel: &str, by: CutCause) {
        let counts = self.cuts.entry(channel.to_owned()).or_default();
        match by {
            CutCause::IdleTimeout => counts.1 += 1,
            CutCause::Drop | CutCause::Hiccup => counts.0 += 1,
        }
        self.cut_log.push_back(AppCut {
            channel: channel.to_owned(),
            at_ms: now_ms_f64(),
            by,
        });
        if self.cut_log.len() > CUTS_KEPT {
            self.cut_log.pop_front();
        }
    }
}

impl Lab {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A hiccup refused a new connection of `channel`.
    pub fn refused(&self, channel: &str) {
        self.lock().cut(channel, CutCause::Hiccup);
    }

    /// The cuts kept, oldest first.
    pub fn cut_log(&self) -> Vec<AppCut> {
        self.lock().cut_log.iter().cloned().collect()
    }

    /// The networks of the session, oldest first.
    pub fn network_log(&self) -> Vec<AppNetworkSpan> {
        self.lock().network_log.iter().cloned().collect()
    }

    /// The fault of `kind` in effect on `channel`, if any.
    pub fn active(&self, kind: AppFaultKind, channel: &str) -> Option<Active> {
        if !self.any_fault.load(Relaxed) {
            return None;
        }
        let now = Instant::now();
        self.lock()
            .faults
            .iter()
            .find(|f| f.kind == kind && f.hits(channel) && f.until.is_none_or(|until| until > now))
            .cloned()
    }

    /// Whether any fault is in effect (one atomic load).
    pub fn any_fault(&self) -> bool {
        self.any_fault.load(Relaxed)
    }

    /// Whether any channel has an emulated network (one atomic load: asked on every read and write).
    pub fn any_network(&self) -> bool {
        self.any_network.load(Relaxed)
    }

    /// The emulated network of a channel: its own, or the one set on every channel.
    pub fn network_for(&self, channel: &str) -> Option<Arc<Condition>> {
        if !self.any_network.load(Relaxed) {
            return None;
        }
        let state = self.lock();
        state
            .networks
            .get(&Some(channel.to_owned()))
            .or_else(|| state.networks.get(&None))
            .cloned()
    }

    /// Sets (or with `None`, clears) the network of a channel or of all of them. Setting it on every
    /// channel replaces each channel's own.
    pub fn set_network(&self, channel: Option<String>, condition: Option<Condition>) {
        let mut state = self.lock();
        let now = now_ms_f64();
        // The spans this setting ends: all of them for every channel, the channel's own otherwise.
        for span in state.network_log.iter_mut().filter(|span| {
            span.ended_ms.is_none() && channel.as_ref().is_none_or(|id| &span.channel == id)
        }) {
            span.ended_ms = Some(now);
        }
        if let Some(condition) = condition.as_ref().filter(|c| !c.is_perfect()) {
            state.network_log.push_back(AppNetworkSpan {
                channel: channel.clone().unwrap_or_else(|| "all".into()),
                name: condition.name.clone(),
                started_ms: now,
                ended_ms: None,
            });
            if state.network_log.len() > NETWORK_SPANS_KEPT {
                state.network_log.pop_front();
            }
        }
        if channel.is_none() {
            state.networks.clear();
        }
        match condition {
            Some(condition) => {
                state.networks.insert(channel, Arc::new(condition));
            }
            None => {
                state.networks.remove(&channel);
            }
        }
        self.any_network.store(!state.networks.is_empty(), Relaxed);
    }

    pub fn networks(&self) -> Vec<AppNetwork> {
        let mut networks: Vec<AppNetwork> = self
            .lock()
            .networks
            .iter()
            .map(|(channel, condition)| AppNetwork {
                channel: channel.clone().unwrap_or_else(|| "all".into()),
                condition: Condition::clone(condition),
            })
            .collect();
        networks.sort_by(|a, b| a.channel.cmp(&b.channel));
        networks
    }

    /// Applies a fault to the connections open now (`open`) through the stages, and keeps it in effect
    /// for its duration.
    pub fn inject(&self, request: &AppFaultRequest, open: &[Arc<Conn>], pipeline: &Pipeline) {
        let now = Instant::now();
        let hit: Vec<Arc<Conn>> = open
            .iter()
            .filter(|conn| conn.in_channel(request.channel.as_deref()))
            .cloned()
            .collect();
        let mut affected: Vec<String> = hit.iter().filter_map(|c| c.key()).map(|k| k.id).collect();
        affected.sort();
        affected.dedup();
        let mut state = self.lock();
        if request.kind == AppFaultKind::Clear {
            let ended = now_ms_f64();
            state.faults.retain(|fault| match &request.channel {
                None => false,
                Some(id) => fault.channel.as_ref() != Some(id),
            });
            for record in state.records.iter_mut().filter(|r| r.ended_ms.is_none()) {
                if request.channel.is_none() || record.channel == request.channel {
                    record.ended_ms = Some(ended);
                }
            }
            self.any_fault.store(!state.faults.is_empty(), Relaxed);
            return;
        }
        if request.kind.lasts() {
            // A new fault of the same kind on the same channel replaces the old one.
            state
                .faults
                .retain(|f| !(f.kind == request.kind && f.channel == request.channel));
            state.faults.push(Active {
                kind: request.kind,
                channel: request.channel.clone(),
                until: request
                    .duration_ms
                    .map(|ms| now + Duration::from_millis(ms)),
                delay_ms: request.delay_ms,
                idle_ms: request.idle_ms,
            });
            self.any_fault.store(true, Relaxed);
        }
        if state.records.len() == RECORDS {
            state.records.pop_front();
        }
        state.records.push_back(Record {
            kind: request.kind,
            channel: request.channel.clone(),
            started_ms: now_ms_f64(),
            duration_ms: request.duration_ms,
            idle_ms: request.idle_ms,
            ended_ms: (!request.kind.lasts()).then(now_ms_f64),
            affected,
            noticed: HashMap::new(),
            redialed: HashMap::new(),
            cuts: HashMap::new(),
            swallowed: 0,
        });
        drop(state);
        pipeline.inject(self, request, &hit);
    }

    /// Ends the faults whose time is up.
    pub fn tick(&self) {
        if !self.any_fault.load(Relaxed) {
            return;
        }
        let now = Instant::now();
        let mut state = self.lock();
        let expired: Vec<Active> = state
            .faults
            .iter()
            .filter(|f| f.until.is_some_and(|until| until <= now))
            .cloned()
            .collect();
        if !expired.is_empty() {
            state
                .faults
                .retain(|f| f.until.is_none_or(|until| until > now));
            let ended = now_ms_f64();
            for fault in expired {
                if let Some(record) = state.records.iter_mut().rev().find(|r| {
                    r.kind == fault.kind && r.channel == fault.channel && r.ended_ms.is_none()
                }) {
                    record.ended_ms = Some(ended);
                }
            }
        }
        self.any_fault.store(!state.faults.is_empty(), Relaxed);
    }

    /// Every fault of `kind` in effect now.
    pub fn all_active(&self, kind: AppFaultKind) -> Vec<Active> {
        if !self.any_fault.load(Relaxed) {
            return Vec::new();
        }
        let now = Instant::now();
        self.lock()
            .faults
            .iter()
            .filter(|f| f.kind == kind && f.until.is_none_or(|until| until > now))
            .cloned()
            .collect()
    }

    /// The lab cut a connection of `channel`: counted for the channel, kept for the swimlanes, and
    /// counted for the latest fault of its kind that aims at the channel.
    pub fn count_cut(&self, channel: &str, by: CutCause) {
        let kind = match by {
            CutCause::Drop => AppFaultKind::Drop,
            CutCause::IdleTimeout => AppFaultKind::IdleTimeout,
            CutCause::Hiccup => AppFaultKind::Hiccup,
        };
        let mut state = self.lock();
        state.cut(channel, by);
        if let Some(record) = state
            .records
            .iter_mut()
            .rev()
            .find(|r| r.kind == kind && r.channel.as_deref().is_none_or(|id| id == channel))
        {
            *record.cuts.entry(channel.to_owned()).or_default() += 1;
            if !record.affected.iter().any(|id| id == channel) {
                record.affected.push(channel.to_owned());
            }
        }
    }

    /// A connection of `channel` opened (its first request, or a socket's upgrade): a redial, for the
    /// faults that hit the channel before.
    pub fn opened(&self, channel: &str) {
        let now = now_ms_f64();
        let mut state = self.lock();
        for record in state.records.iter_mut() {
            if record.started_ms < now
                && record.affected.iter().any(|id| id == channel)
                && !record.redialed.contains_key(channel)
            {
                record.redialed.insert(channel.to_owned(), now);
                record.noticed.entry(channel.to_owned()).or_insert(now);
            }
        }
    }

    /// Remembers a channel a request went to, so faults may name it.
    pub fn seen(&self, id: &str, name: &str) {
        let mut state = self.lock();
        if state.seen.len() < SEEN && !state.seen.contains_key(id) {
            state.seen.insert(id.to_owned(), name.to_owned());
        }
    }

    /// Whether a request ever went to the channel `id`.
    pub fn has_seen(&self, id: &str) -> bool {
        self.lock().seen.contains_key(id)
    }

    /// A new connection of `channel` is held by a half-open still in effect: the fault hit it too.
    pub fn half_open_held(&self, channel: &str) {
        let mut state = self.lock();
        if let Some(record) = state
            .records
            .iter_mut()
            .rev()
            .find(|r| r.kind == AppFaultKind::HalfOpen && r.ended_ms.is_none())
            && !record.affected.iter().any(|id| id == channel)
        {
            record.affected.push(channel.to_owned());
        }
    }

    /// The browser gave up on a half-open connection (closed it).
    pub fn half_open_noticed(&self, conn: &Conn) {
        let Some(key) = conn.key() else { return };
        let now = now_ms_f64();
        let mut state = self.lock();
        for record in state.records.iter_mut().filter(|r| {
            matches!(r.kind, AppFaultKind::HalfOpen | AppFaultKind::NoHeartbeat)
                && r.affected.contains(&key.id)
        }) {
            record.noticed.entry(key.id.clone()).or_insert(now);
        }
    }

    /// A heartbeat from the upstream was swallowed on `channel`.
    pub fn swallowed(&self, channel: &str) {
        let mut state = self.lock();
        if let Some(record) = state.records.iter_mut().rev().find(|r| {
            r.kind == AppFaultKind::NoHeartbeat && r.channel.as_deref().is_none_or(|c| c == channel)
        }) {
            record.swallowed += 1;
            if !record.affected.iter().any(|id| id == channel) {
                record.affected.push(channel.to_owned());
            }
        }
    }

    /// A connection of `channel` was closed by the browser while a heartbeat fault was on: it noticed.
    pub fn closed_by_browser(&self, channel: &str) {
        let now = now_ms_f64();
        let mut state = self.lock();
        for record in state.records.iter_mut().filter(|r| {
            r.kind == AppFaultKind::NoHeartbeat
                && r.ended_ms.is_none()
                && r.affected.iter().any(|id| id == channel)
        }) {
            record.noticed.entry(channel.to_owned()).or_insert(now);
        }
    }

    /// Per channel: connections cut by a fault, and by an idle timeout.
    pub fn cuts(&self, channel: &str) -> (u64, u64) {
        self.lock().cuts.get(channel).copied().unwrap_or_default()
    }

    pub fn records(&self) -> Vec<Record> {
        self.lock().records.iter().cloned().collect()
    }

    /// The faults in effect, as `GET /api/app` lists them.
    pub fn faults(&self) -> Vec<AppFault> {
        let now = Instant::now();
        self.lock()
            .faults
            .iter()
            .filter(|f| f.until.is_none_or(|until| until > now))
            .map(|f| AppFault {
                kind: f.kind,
                channel: f.channel.clone().unwrap_or_else(|| "all".into()),
                remaining_ms: f.until.map(|until| (until - now).as_millis() as u64),
                delay_ms: f.delay_ms,
                idle_ms: f.idle_ms,
            })
            .collect()
    }
}
