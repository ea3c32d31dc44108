//! The lab, applied to the app: faults and emulated networks on the app's channels, and the experiments
//! they are — each with its window, in which what the proxy sees on its channels is told to it
//! ([`Happening`]) and judged by the shared definitions
//! ([`switchboard_shared::app::experiment::Observation`]).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use switchboard_shared::app::experiment::{
    Experiment, ExperimentKind, ExperimentState, Happening, OtherKind, Settings, WINDOW_AFTER_MS,
    state_of,
};
use switchboard_shared::app::{
    AppCut, AppFault, AppFaultKind, AppFaultRequest, AppFaultSpan, AppNetwork, AppNetworkSpan,
    CutCause, Finding, Reached, route,
};
use switchboard_shared::network::Condition;
use tokio::time::Instant;

use super::conn::Conn;
use super::stage::Pipeline;
use crate::hub::now_ms_f64;

/// Experiments kept, with their findings.
const EXPERIMENTS: usize = 32;
/// The most channels one experiment keeps figures for.
const CHANNELS_PER_EXPERIMENT: usize = 256;
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

#[derive(Debug, Default)]
struct State {
    faults: Vec<Active>,
    /// `None` is every channel.
    networks: HashMap<Option<String>, Arc<Condition>>,
    /// The experiments, oldest first.
    experiments: VecDeque<Kept>,
    next_id: u64,
    /// Per channel: cut by a fault, cut by an idle timeout.
    cuts: HashMap<String, (u64, u64)>,
    /// The latest cuts, oldest first.
    cut_log: VecDeque<AppCut>,
    /// The networks set, oldest first; the open ones still on.
    network_log: VecDeque<AppNetworkSpan>,
    /// Every channel id seen, with its name (bounded: an app with endless distinct paths stops adding).
    seen: HashMap<String, String>,
    /// Requests the lab cut in flight, newest last: (channel, hash of method and URL, when).
    cut_asking: VecDeque<(String, u64, f64)>,
    /// Channels renamed to their route template, old id to new: what a connection that began under
    /// the old name tells is told of the new one. Kept across Start over, as the templates are.
    renamed: HashMap<String, String>,
}

/// How many cut requests are remembered, and how soon after its cut a request sent again is the
/// browser's resend (Chromium resends at once, on a new connection).
const CUT_ASKING_KEPT: usize = 256;
const RESEND_WITHIN_MS: f64 = 2_000.0;

/// The most distinct channels remembered as seen.
const SEEN: usize = 10_000;

/// The faults and networks on the app's channels.
#[derive(Debug, Default)]
pub struct Lab {
    state: Mutex<State>,
    // Read on every byte and message: a plain flag spares the lock while nothing is set.
    any_fault: AtomicBool,
    any_network: AtomicBool,
    /// Whether any experiment's window is open: what happens is told to it only then.
    observing: AtomicBool,
}

/// An experiment as the lab keeps it.
#[derive(Debug, Clone)]
struct Kept {
    experiment: Experiment,
    /// The channel it aims at; `None` for every channel.
    aims: Option<String>,
    /// Its window was closed early (a later experiment on its channels), at this time.
    closed_ms: Option<f64>,
    frozen: bool,
    /// A scenario step's verdicts on it, in words.
    verdicts: Vec<Finding>,
}

impl Kept {
    fn covers(&self, channel: &str) -> bool {
        self.aims.as_deref().is_none_or(|id| id == channel)
    }

    fn overlaps(&self, aims: Option<&str>) -> bool {
        match (self.aims.as_deref(), aims) {
            (Some(mine), Some(theirs)) => mine == theirs,
            _ => true,
        }
    }

    /// When its window closes: early if closed so, else a fixed time after its fault ends (or will
    /// end); unknown while a fault without a set end lasts.
    fn closes_ms(&self) -> Option<f64> {
        let e = &self.experiment;
        let natural = match e.ended_ms {
            Some(end) => Some(end + WINDOW_AFTER_MS),
            None => e
                .settings
                .duration_ms
                .map(|ms| e.started_ms + ms as f64 + WINDOW_AFTER_MS),
        };
        match (self.closed_ms, natural) {
            (Some(closed), Some(natural)) => Some(closed.min(natural)),
            (closed, natural) => closed.or(natural),
        }
    }

    fn state(&self, now: f64) -> ExperimentState {
        state_of(self.ended_ms(now), self.closes_ms(), now)
    }

    /// When its fault ended, as of `now`: a fault whose time is up has ended, whether or not the tick
    /// (every 100 ms) marked it yet.
    fn ended_ms(&self, now: f64) -> Option<f64> {
        let e = &self.experiment;
        e.ended_ms.or_else(|| {
            e.settings
                .duration_ms
                .map(|ms| e.started_ms + ms as f64)
                .filter(|end| *end <= now)
        })
    }

    fn see(&mut self, channel: &str, what: Happening, now: f64) {
        let e = &self.experiment;
        if !e.figures.contains_key(channel) && e.figures.len() >= CHANNELS_PER_EXPERIMENT {
            return;
        }
        // A message the browser got between a fault's end and the tick that marks it is a recovery.
        let ended_ms = self.ended_ms(now);
        let e = &mut self.experiment;
        e.figures
            .entry(channel.to_owned())
            .or_default()
            .see(now, what, e.started_ms, ended_ms);
    }
}

impl State {
    /// The channel `id` is known by now.
    fn current<'a>(&'a self, id: &'a str) -> &'a str {
        self.renamed.get(id).map_or(id, String::as_str)
    }

    /// Something reached the browser on `channel` at `now`: for every socket an open experiment watches
    /// of which it is a fallback transport, the tab may be back there before its socket is (or have
    /// been there all along, if the socket was not lost yet).
    fn fell_back(&mut self, channel: &str, now: f64, session: u64) {
        let Some(name) = self.seen.get(channel) else {
            return;
        };
        if name.starts_with("ws://") || name.starts_with("wss://") {
            // A socket's messages (the most frequent deliveries) are nobody's fallback.
            return;
        }
        for kept in &mut self.experiments {
            if kept.experiment.started_ms > now || kept.state(now) == ExperimentState::Done {
                continue;
            }
            for (socket, seen) in &mut kept.experiment.figures {
                if socket != channel
                    && seen.awaits_fallback()
                    && self
                        .seen
                        .get(socket)
                        .is_some_and(|socket| route::fallback_of(socket, name))
                {
                    seen.fell_back(name, now, session);
                }
            }
        }
    }

    /// Counts a cut on `channel` and keeps it for the swimlanes.
    fn cut(&mut self, channel: &str, by: CutCause) {
        let channel = &self.current(channel).to_owned();
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

    /// A hiccup refused a new connection of `channel` (its exchange `exchange`).
    pub fn refused(&self, channel: &str, exchange: u64) {
        self.lock().cut(channel, CutCause::Hiccup);
        self.happen(channel, Happening::Refused { exchange });
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
        let state = self.lock();
        let channel = state.current(channel);
        state
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
            .get(&Some(state.current(channel).to_owned()))
            .or_else(|| state.networks.get(&None))
            .cloned()
    }

    /// Sets (or with `None`, clears) the network of a channel or of all of them. Setting it on every
    /// channel replaces each channel's own.
    pub fn set_network(
        &self,
        channel: Option<String>,
        condition: Option<Condition>,
        open: &[Arc<Conn>],
    ) {
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
        // A network set is an experiment; the ones it replaces end.
        let now_ms = now_ms_f64();
        for kept in state.experiments.iter_mut().filter(|kept| {
            kept.experiment.kind == ExperimentKind::Other(OtherKind::Network)
                && kept.experiment.ended_ms.is_none()
                && (channel.is_none() || kept.aims == channel)
        }) {
            kept.experiment.ended_ms = Some(now_ms);
        }
        if let Some(condition) = condition.as_ref().filter(|c| !c.is_perfect()) {
            let settings = Settings {
                network: Some(condition.describe()),
                ..Settings::default()
            };
            self.begin(
                &mut state,
                ExperimentKind::Other(OtherKind::Network),
                settings,
                channel.clone(),
                open,
            );
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
        let mut state = self.lock();
        if request.kind == AppFaultKind::Clear {
            let ended = now_ms_f64();
            state.faults.retain(|fault| match &request.channel {
                None => false,
                Some(id) => fault.channel.as_ref() != Some(id),
            });
            for kept in state.experiments.iter_mut().filter(|kept| {
                kept.experiment.ended_ms.is_none()
                    && matches!(kept.experiment.kind, ExperimentKind::Fault(_))
                    && (request.channel.is_none() || kept.aims == request.channel)
            }) {
                kept.experiment.ended_ms = Some(ended);
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
        // Releasing dead connections is no experiment: it ends what a half-open left behind.
        if request.kind != AppFaultKind::Release {
            let settings = Settings {
                duration_ms: request.duration_ms,
                delay_ms: request.delay_ms,
                idle_ms: request.idle_ms,
                ..Settings::default()
            };
            let id = self.begin(
                &mut state,
                ExperimentKind::Fault(request.kind),
                settings,
                request.channel.clone(),
                &hit,
            );
            if !request.kind.lasts()
                && let Some(kept) = state.experiments.back_mut()
                && kept.experiment.id == id
            {
                kept.experiment.ended_ms = Some(kept.experiment.started_ms);
            }
        }
        drop(state);
        pipeline.inject(self, request, &hit);
    }

    /// Ends the faults whose time is up.
    pub fn tick(&self) {
        if self.observing.load(Relaxed) {
            let now = now_ms_f64();
            let state = self.lock();
            let open = state
                .experiments
                .iter()
                .any(|kept| kept.state(now) != ExperimentState::Done);
            self.observing.store(open, Relaxed);
        }
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
            let now_ms = now_ms_f64();
            for fault in expired {
                // It ended when its time was up, not at this tick (up to 100 ms later): what it held
                // was let go then, and "reached the browser again N ms after the fault ended" is
                // measured from then (from the tick, a recovery before it read as 124 ms late).
                let ended = fault.until.map_or(now_ms, |until| {
                    now_ms - now.saturating_duration_since(until).as_secs_f64() * 1000.0
                });
                if let Some(kept) = state.experiments.iter_mut().rev().find(|kept| {
                    kept.experiment.kind == ExperimentKind::Fault(fault.kind)
                        && kept.aims == fault.channel
                        && kept.experiment.ended_ms.is_none()
                }) {
                    // Its start and its length, on the one clock its start was read on: an end read
                    // across the wall clock and the monotonic one moves with any step of the wall
                    // clock while the fault lasts (a virtual machine's clock is stepped now and then).
                    let e = &mut kept.experiment;
                    e.ended_ms = Some(
                        e.settings
                            .duration_ms
                            .map_or(ended, |ms| e.started_ms + ms as f64),
                    );
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
    /// told to the experiment observing it.
    pub fn count_cut(&self, channel: &str, by: CutCause) {
        self.lock().cut(channel, by);
        self.happen(channel, Happening::Cut);
    }

    /// The lab cut `conn` of `channel`: counted, and the request it carried remembered, so the
    /// browser sending it again is not taken for the app's redial.
    pub fn cut_conn(&self, conn: &Conn, channel: &str, by: CutCause) {
        let asking = conn.asking.load(Relaxed);
        if asking != 0 {
            let mut state = self.lock();
            if state.cut_asking.len() == CUT_ASKING_KEPT {
                state.cut_asking.pop_front();
            }
            state
                .cut_asking
                .push_back((channel.to_owned(), asking, now_ms_f64()));
        }
        self.count_cut(channel, by);
    }

    /// Whether a request (`asking`: the hash of its method and URL) of `channel` is one the lab cut in
    /// flight a moment ago, sent again: then it is the browser's resend, told once.
    pub fn resent(&self, channel: &str, asking: u64) -> bool {
        let mut state = self.lock();
        let now = now_ms_f64();
        let channel = state.current(channel).to_owned();
        let found = state.cut_asking.iter().position(|(cut, hash, at)| {
            *hash == asking && *cut == channel && now - at <= RESEND_WITHIN_MS
        });
        found.is_some_and(|at| state.cut_asking.remove(at).is_some())
    }

    /// Remembers a channel a request went to, so faults may name it.
    pub fn seen(&self, id: &str, name: &str) {
        let mut state = self.lock();
        let id = &state.current(id).to_owned();
        if state.seen.len() < SEEN && !state.seen.contains_key(id) {
            state.seen.insert(id.to_owned(), name.to_owned());
        }
    }

    /// Whether a request ever went to the channel `id`.
    pub fn has_seen(&self, id: &str) -> bool {
        let state = self.lock();
        state.seen.contains_key(state.current(id))
    }

    /// The browser closed, reset or gave up on connection `conn` (its own doing, not the lab's).
    pub fn left(&self, conn: &Conn) {
        conn.browser_left.store(true, Relaxed);
        conn.line_given_up();
        // A connection the lab cut was not given up on: it was taken away.
        if !self.observing.load(Relaxed) || conn.was_cut_by().is_some() {
            return;
        }
        if let Some(key) = conn.key() {
            self.happen(
                &key.id,
                Happening::BrowserLeft {
                    conn: conn.id,
                    busy: conn.busy(),
                    // One the app closed in a way the browser could hear may only be answered.
                    after_app: conn.app_hung_up.load(Relaxed) && !conn.is_half_open(),
                },
            );
        }
    }

    /// Whether an experiment's window is open (one atomic load).
    pub fn observing(&self) -> bool {
        self.observing.load(Relaxed)
    }

    /// The browser sent a request on a connection a half-open left dead.
    pub fn asked_dead(&self, conn: &Conn) {
        if let Some(key) = conn.key() {
            self.happen(&key.id, Happening::AskedDead);
        }
    }

    /// The app closed a socket (its close frame, or its end of the connection).
    pub fn app_left(&self, conn: &Conn) {
        conn.line_given_up();
        if !self.observing.load(Relaxed) || conn.was_cut_by().is_some() {
            return;
        }
        if let Some(key) = conn.key() {
            self.happen(&key.id, Happening::AppLeft { conn: conn.id });
        }
    }

    /// Tells what happened on `channel` to the experiment whose window it falls in, if any: the newest
    /// open one aimed at it (a later one on the same channels closes an earlier one's window, so there
    /// is at most one).
    pub fn happen(&self, channel: &str, what: Happening) {
        self.happen_in(channel, what, 0);
    }

    /// [`Lab::happen`] to an exchange of the session `session` (the hash of its id, 0 for none: see
    /// [`route::session_of`]): what tells a client starting over on a socket's fallback transport from
    /// one that was there all along.
    pub fn happen_in(&self, channel: &str, what: Happening, session: u64) {
        if self.observing.load(Relaxed) {
            self.happen_at(channel, what, now_ms_f64(), session);
        }
    }

    /// [`Lab::happen_in`] at `now` (Unix ms).
    fn happen_at(&self, channel: &str, what: Happening, now: f64, session: u64) {
        let mut state = self.lock();
        let channel = &state.current(channel).to_owned();
        let delivered = matches!(
            what,
            Happening::Whole { .. }
                | Happening::Reached {
                    reached: Reached::Delivered,
                    messages: 1..,
                    ..
                }
        );
        if let Some(kept) = state.experiments.iter_mut().rev().find(|kept| {
            kept.covers(channel)
                && kept.experiment.started_ms <= now
                && kept.state(now) != ExperimentState::Done
        }) {
            kept.see(channel, what, now);
        }
        if delivered {
            state.fell_back(channel, now, session);
        }
    }

    /// Starts an experiment aimed at `aims` (`None`: every channel), closing the window of any earlier
    /// one on the same channels; the connections open now (`open`) are what it meets first.
    fn begin(
        &self,
        state: &mut State,
        kind: ExperimentKind,
        settings: Settings,
        aims: Option<String>,
        open: &[Arc<Conn>],
    ) -> u64 {
        let now = now_ms_f64();
        state.next_id += 1;
        let id = state.next_id;
        for kept in state.experiments.iter_mut().filter(|kept| {
            kept.overlaps(aims.as_deref()) && kept.state(now) != ExperimentState::Done
        }) {
            kept.closed_ms = Some(now);
            kept.experiment.superseded_by = Some(id);
        }
        if state.experiments.len() == EXPERIMENTS {
            state.experiments.pop_front();
        }
        let mut kept = Kept {
            experiment: Experiment {
                id,
                kind,
                settings,
                channels: vec![aims.clone().unwrap_or_else(|| "all".into())],
                started_ms: now,
                ended_ms: None,
                window_closes_ms: None,
                title: String::new(),
                state: ExperimentState::Running,
                superseded_by: None,
                findings: Vec::new(),
                figures: Default::default(),
            },
            aims,
            closed_ms: None,
            frozen: false,
            verdicts: Vec::new(),
        };
        // The lines open now: not a kept-alive connection idle between letters (nothing on it to
        // notice), nor one both ends already gave up on (its closing handshake waits out a timeout,
        // up to a minute, and its end then read as noticing this fault).
        for conn in open {
            if let Some(key) = conn.key()
                && kept.covers(&key.id)
                && !conn.cut.is_cancelled()
                && conn.carrying()
                && !conn.abandoned()
            {
                kept.see(&key.id, Happening::WasOpen { conn: conn.id }, now);
            }
        }
        state.experiments.push_back(kept);
        self.observing.store(true, Relaxed);
        id
    }

    /// The app stopped answering the proxy: observed as an experiment on every channel.
    pub fn upstream_down(&self, why: &str, open: &[Arc<Conn>]) {
        let mut state = self.lock();
        let settings = Settings {
            why: Some(why.to_owned()),
            ..Settings::default()
        };
        self.begin(
            &mut state,
            ExperimentKind::Other(OtherKind::UpstreamDown),
            settings,
            None,
            open,
        );
    }

    /// The app answers again.
    pub fn upstream_back(&self) {
        let now = now_ms_f64();
        let mut state = self.lock();
        for kept in state.experiments.iter_mut().filter(|kept| {
            kept.experiment.kind == ExperimentKind::Other(OtherKind::UpstreamDown)
                && kept.experiment.ended_ms.is_none()
        }) {
            kept.experiment.ended_ms = Some(now);
        }
    }

    /// The experiments, newest first, each with its state as of now (findings as last frozen: the
    /// report writes them).
    pub fn experiments(&self) -> Vec<(Experiment, bool)> {
        self.experiments_at(now_ms_f64())
    }

    fn experiments_at(&self, now: f64) -> Vec<(Experiment, bool)> {
        self.lock()
            .experiments
            .iter()
            .rev()
            .map(|kept| {
                let mut experiment = kept.experiment.clone();
                experiment.ended_ms = kept.ended_ms(now);
                experiment.state = kept.state(now);
                experiment.window_closes_ms = kept.closes_ms();
                (experiment, kept.frozen)
            })
            .collect()
    }

    /// How long each channel's latest messages took to reach the browser before the newest experiment
    /// began, kept on it when it slows messages (a delay, a network) to compare with.
    pub fn note_before(&self, delivery: &HashMap<String, (f64, usize)>) {
        let mut state = self.lock();
        let Some(kept) = state.experiments.back_mut() else {
            return;
        };
        let slows = matches!(
            kept.experiment.kind,
            ExperimentKind::Fault(AppFaultKind::Delay) | ExperimentKind::Other(OtherKind::Network)
        );
        if !slows {
            return;
        }
        for (channel, median) in delivery {
            if kept.covers(channel)
                && (kept.experiment.figures.contains_key(channel)
                    || kept.experiment.figures.len() < CHANNELS_PER_EXPERIMENT)
            {
                kept.experiment
                    .figures
                    .entry(channel.clone())
                    .or_default()
                    .took_before = Some(*median);
            }
        }
    }

    /// A scenario's verdicts on experiment `id`, shown after its findings.
    pub fn add_verdicts(&self, id: u64, verdicts: Vec<Finding>) {
        let mut state = self.lock();
        if let Some(kept) = state.experiments.iter_mut().find(|k| k.experiment.id == id) {
            kept.verdicts.extend(verdicts);
        }
    }

    /// The verdicts a scenario gave experiment `id`.
    pub fn verdicts(&self, id: u64) -> Vec<Finding> {
        self.lock()
            .experiments
            .iter()
            .find(|k| k.experiment.id == id)
            .map(|k| k.verdicts.clone())
            .unwrap_or_default()
    }

    /// Keeps a done experiment's findings for good.
    pub fn freeze(&self, id: u64, findings: Vec<Finding>) {
        let mut state = self.lock();
        if let Some(kept) = state
            .experiments
            .iter_mut()
            .find(|kept| kept.experiment.id == id && !kept.frozen)
        {
            kept.experiment.findings = findings;
            kept.frozen = true;
        }
    }

    /// The faults of the session, oldest first, for the swimlanes' shading.
    pub fn history(&self) -> Vec<AppFaultSpan> {
        self.lock()
            .experiments
            .iter()
            .filter_map(|kept| match kept.experiment.kind {
                ExperimentKind::Fault(kind) => Some(AppFaultSpan {
                    kind,
                    channel: kept.aims.clone().unwrap_or_else(|| "all".into()),
                    started_ms: kept.experiment.started_ms,
                    ended_ms: kept.experiment.ended_ms,
                }),
                ExperimentKind::Other(_) => None,
            })
            .collect()
    }

    /// Starts over: every fault and network ends, and the experiments, cuts and channels seen are
    /// forgotten.
    pub fn reset(&self) {
        let mut state = self.lock();
        *state = State {
            renamed: std::mem::take(&mut state.renamed),
            ..State::default()
        };
        self.any_fault.store(false, Relaxed);
        self.any_network.store(false, Relaxed);
        self.observing.store(false, Relaxed);
    }

    /// The channel `old` is now `new`, called `name` (a route template was learned): what was aimed at
    /// it, counted for it or observed on it goes with it.
    pub fn rename(&self, old: &str, new: &str, name: &str) {
        let mut state = self.lock();
        let state = &mut *state;
        let rename = |id: &mut String| {
            if id == old {
                *id = new.to_owned();
            }
        };
        for renamed in state.renamed.values_mut() {
            rename(renamed);
        }
        if state.renamed.len() < SEEN {
            state.renamed.insert(old.to_owned(), new.to_owned());
        }
        if state.seen.remove(old).is_some() {
            state.seen.insert(new.to_owned(), name.to_owned());
        }
        for fault in &mut state.faults {
            if let Some(channel) = &mut fault.channel {
                rename(channel);
            }
        }
        if let Some(network) = state.networks.remove(&Some(old.to_owned())) {
            state.networks.insert(Some(new.to_owned()), network);
        }
        for span in &mut state.network_log {
            rename(&mut span.channel);
        }
        if let Some(counts) = state.cuts.remove(old) {
            let into = state.cuts.entry(new.to_owned()).or_default();
            into.0 += counts.0;
            into.1 += counts.1;
        }
        for cut in &mut state.cut_log {
            rename(&mut cut.channel);
        }
        for kept in &mut state.experiments {
            if let Some(aims) = &mut kept.aims {
                rename(aims);
            }
            kept.experiment.channels.iter_mut().for_each(rename);
            if let Some(figures) = kept.experiment.figures.remove(old) {
                kept.experiment.figures.insert(new.to_owned(), figures);
            }
        }
    }

    /// Per channel: connections cut by a fault, and by an idle timeout.
    pub fn cuts(&self, channel: &str) -> (u64, u64) {
        self.lock().cuts.get(channel).copied().unwrap_or_default()
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

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_shared::app::Reached;

    fn fault(
        kind: AppFaultKind,
        channel: Option<&str>,
        duration_ms: Option<u64>,
    ) -> AppFaultRequest {
        AppFaultRequest {
            kind,
            channel: channel.map(str::to_owned),
            duration_ms,
            delay_ms: None,
            idle_ms: None,
        }
    }

    /// The experiment `id` as of `now`.
    fn at(lab: &Lab, id: u64, now: f64) -> Experiment {
        lab.experiments_at(now)
            .into_iter()
            .map(|(e, _)| e)
            .find(|e| e.id == id)
            .unwrap()
    }

    fn delivered() -> Happening {
        Happening::Reached {
            exchange: 1,
            reached: Reached::Delivered,
            messages: 1,
        }
    }

    #[test]
    fn what_happens_after_a_window_closes_belongs_to_no_experiment() {
        let lab = Lab::default();
        let pipeline = super::super::stages::standard();
        lab.inject(&fault(AppFaultKind::Drop, None, None), &[], &pipeline);
        let started = at(&lab, 1, now_ms_f64()).started_ms;
        let closes = started + WINDOW_AFTER_MS;
        assert_eq!(at(&lab, 1, started).window_closes_ms, Some(closes));
        lab.happen_at("c1", delivered(), closes - 1.0, 0);
        lab.happen_at("c1", delivered(), closes + 1.0, 0);
        let done = at(&lab, 1, closes + 1.0);
        assert_eq!(done.state, ExperimentState::Done);
        assert_eq!(
            done.figures["c1"].got.delivered, 1,
            "the edge: only what came before it"
        );
    }

    #[test]
    fn a_later_experiment_on_the_same_channel_takes_what_follows_and_never_an_older_one() {
        let lab = Lab::default();
        let pipeline = super::super::stages::standard();
        lab.inject(
            &fault(AppFaultKind::HalfOpen, Some("c1"), Some(10_000)),
            &[],
            &pipeline,
        );
        // On another channel: no bearing on the first.
        lab.inject(&fault(AppFaultKind::Drop, Some("c2"), None), &[], &pipeline);
        let now = now_ms_f64();
        assert_eq!(at(&lab, 1, now).state, ExperimentState::Running);
        lab.happen_at("c1", delivered(), now, 0);
        // On every channel: it closes the first's window, and takes what happens next.
        lab.inject(&fault(AppFaultKind::Drop, None, None), &[], &pipeline);
        let later = now_ms_f64() + 1.0;
        lab.happen_at("c1", delivered(), later, 0);
        lab.happen_at("c2", delivered(), later, 0);
        let first = at(&lab, 1, later);
        assert_eq!(
            (first.state, first.superseded_by),
            (ExperimentState::Done, Some(3))
        );
        assert_eq!(first.figures["c1"].got.delivered, 1);
        assert!(!at(&lab, 2, later).figures.contains_key("c2"));
        assert_eq!(at(&lab, 3, later).figures["c1"].got.delivered, 1);
        assert_eq!(at(&lab, 3, later).figures["c2"].got.delivered, 1);
        // Newest first.
        let ids: Vec<u64> = lab
            .experiments_at(later)
            .iter()
            .map(|(e, _)| e.id)
            .collect();
        assert_eq!(ids, [3, 2, 1]);
    }

    #[test]
    fn frozen_findings_stay_as_they_were_written() {
        let lab = Lab::default();
        let pipeline = super::super::stages::standard();
        lab.inject(&fault(AppFaultKind::Drop, None, None), &[], &pipeline);
        let finding = Finding {
            channel: Some("c1".into()),
            text: "written when the window closed".into(),
            at_ms: None,
        };
        lab.freeze(1, vec![finding.clone()]);
        lab.freeze(1, Vec::new());
        let (experiment, frozen) = lab.experiments_at(now_ms_f64()).remove(0);
        assert!(frozen);
        assert_eq!(experiment.findings, [finding]);
    }

    #[test]
    fn start_over_forgets_every_experiment_and_fault() {
        let lab = Lab::default();
        let pipeline = super::super::stages::standard();
        lab.inject(
            &fault(AppFaultKind::HalfOpen, None, Some(60_000)),
            &[],
            &pipeline,
        );
        lab.reset();
        assert!(lab.experiments().is_empty() && lab.faults().is_empty());
        assert!(!lab.any_fault());
    }
}
