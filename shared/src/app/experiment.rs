//! Experiments: every fault or network change aimed at the app, with a start, an end and a window in
//! which what happens on its channels is its doing — and the lab's definitions of what happened, in one
//! place, used by the server's findings and the page's words.
//!
//! The definitions, as [`Observation`] applies them to what the proxy sees ([`Happening`]):
//!
//! - **noticed**: the browser closed, reset or abandoned a connection of the channel that was open when
//!   the experiment began — for letters, a request it aborted. Sending the next scheduled letter on a
//!   dead connection is not noticing; neither is closing a connection that carried nothing.
//! - **attempt**: a connection (a socket, a stream, a letter) the browser began after the experiment
//!   began. Refused, answered 503 or another error, or still pending, it stays an attempt.
//! - **redialed**: an attempt that *succeeded* — a `101` followed by a message delivered to the browser,
//!   or an answer from the app (not an error) delivered whole. Timed at its answer's head.
//! - **recovered**: the first message (or whole answer) of the channel delivered to the browser after
//!   the fault ended; not recovered [`WINDOW_AFTER_MS`] after the end is a finding in itself.
//! - **delivered**: written to the browser's socket and taken by the kernel — not read from the app.
//!   Withheld (half-open), swallowed (no heartbeat) and lost with a cut are counted apart ([`Got`]).
//!
//! **Windows**: an experiment observes from its start until [`WINDOW_AFTER_MS`] after its end, or until
//! the next experiment on any of its channels starts, whichever comes first. A happening belongs to the
//! experiment whose window it falls in, never to an older one; an experiment's findings come from its
//! window alone and are frozen when it closes.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::{AppFaultKind, Finding, Got, Reached};
use crate::format::format_ms;

/// How long an experiment keeps observing after it ends: long enough for a reconnect's back-off (Socket.IO
/// waits up to 5 s, EventSource about 3 s, browsers' fetch retries a few seconds) and a heartbeat
/// timeout (25 s pings + 20 s timeout is Socket.IO's default, so a half-open is often noticed later —
/// that is then its own finding: "not noticed 30 s after it ended").
pub const WINDOW_AFTER_MS: f64 = 30_000.0;

/// The most connections remembered per channel as open when an experiment began.
const IN_FLIGHT_KEPT: usize = 1_024;
/// The most attempts remembered per channel awaiting their first delivery, and attempt times kept.
const PENDING_KEPT: usize = 64;
const ATTEMPTS_KEPT: usize = 512;
/// The most sessions remembered on a socket's fallback transport before the socket was lost (other
/// tabs, other clients); past it, no answer there is told as a way back.
const SESSIONS_KEPT: usize = 64;
/// A median, and how many values it is the median of.
pub type Median = (f64, usize);

/// The latest delivery times kept, while a fault lasts and after.
const TOOK_KEPT: usize = 256;
/// A fallback transport is said only when it brought the tab back at least this long before its socket
/// (a reconnect that opens with a poll and upgrades at once is the socket's own redial).
const FALLBACK_AHEAD_MS: f64 = 1_000.0;

/// What an experiment is: one string on the wire (`half_open`, `network`, `upstream_down`). Read
/// through a string rather than as an untagged enum, whose buffering code would cost the page's bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum ExperimentKind {
    Fault(AppFaultKind),
    Other(OtherKind),
}

/// The experiments that are not a fault the lab injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtherKind {
    /// An emulated network set on the channels.
    Network,
    /// The app itself stopped answering the proxy (nobody injected it: it is observed all the same).
    UpstreamDown,
}

impl From<ExperimentKind> for &'static str {
    fn from(kind: ExperimentKind) -> &'static str {
        match kind {
            ExperimentKind::Fault(kind) => kind.as_str(),
            ExperimentKind::Other(OtherKind::Network) => "network",
            ExperimentKind::Other(OtherKind::UpstreamDown) => "upstream_down",
        }
    }
}

impl TryFrom<String> for ExperimentKind {
    type Error = String;

    fn try_from(name: String) -> Result<ExperimentKind, String> {
        match name.as_str() {
            "network" => Ok(ExperimentKind::Other(OtherKind::Network)),
            "upstream_down" => Ok(ExperimentKind::Other(OtherKind::UpstreamDown)),
            _ => AppFaultKind::ALL
                .into_iter()
                .find(|kind| kind.as_str() == name)
                .map(ExperimentKind::Fault)
                .ok_or_else(|| format!("unknown experiment kind {name:?}")),
        }
    }
}

impl ExperimentKind {
    /// What the page takes the kind to be: it does not read it (see [`Experiment`]).
    pub fn unread() -> ExperimentKind {
        ExperimentKind::Other(OtherKind::Network)
    }

    /// What it is, with its settings, on `on` (`every channel`, `your phone call (/ws)`): a heading.
    pub fn titled(self, settings: &Settings, on: &str) -> String {
        let mut words = match (self, &settings.network, &settings.why) {
            (_, Some(network), _) => format!("Network {network} on {on}"),
            (_, _, Some(why)) => format!("Your app stopped answering ({why})"),
            _ => format!("{} on {on}", self.title()),
        };
        if let Some(ms) = settings.duration_ms {
            words.push_str(&format!(" for {}", format_ms(ms as f64)));
        }
        if let Some(ms) = settings.idle_ms {
            words.push_str(&format!(", idle {}", format_ms(ms as f64)));
        }
        if let Some(ms) = settings.delay_ms {
            words.push_str(&format!(", +{} each", format_ms(ms as f64)));
        }
        words
    }

    /// What a heading calls it.
    pub fn title(self) -> &'static str {
        match self {
            ExperimentKind::Fault(kind) => kind.title(),
            ExperimentKind::Other(OtherKind::Network) => "Network",
            ExperimentKind::Other(OtherKind::UpstreamDown) => "Your app down",
        }
    }
}

/// Where an experiment stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentState {
    #[default]
    /// Its fault is in effect.
    Running,
    /// Its fault ended; its window is still open.
    Observing,
    /// Its window closed: its findings are frozen.
    Done,
}

/// What it was set to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_ms: Option<u64>,
    /// The network's name (`3g`, `custom`) and its figures, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Why the app was down, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// One experiment, as `GET /api/app` lists them (newest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
///
/// The page reads only what it shows (its title, state, times and findings): the rest is left unread
/// there, which spares the dashboard's bundle the code that would read it.
pub struct Experiment {
    pub id: u64,
    #[cfg_attr(
        target_arch = "wasm32",
        serde(skip_deserializing, default = "ExperimentKind::unread")
    )]
    pub kind: ExperimentKind,
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub settings: Settings,
    /// What it was, in words: "Half-open on your phone call (/socket.io/) for 30.0 s".
    #[serde(default)]
    pub title: String,
    /// The channels it aims at: `["all"]` or one channel id.
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub channels: Vec<String>,
    /// Unix ms.
    pub started_ms: f64,
    /// When its fault ended; `None` while it lasts. A drop ends as it starts.
    pub ended_ms: Option<f64>,
    /// When its window closes (closed), if known: `None` while a fault without a set end lasts.
    pub window_closes_ms: Option<f64>,
    /// (The page reads it from the two times above: [`Experiment::state_at`].)
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub state: ExperimentState,
    /// The experiment that closed its window early by starting on the same channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<u64>,
    /// What it did, in words: "so far" while it runs and observes, frozen once done.
    pub findings: Vec<Finding>,
    /// Per channel id it touched: what happened there in its window.
    #[cfg_attr(target_arch = "wasm32", serde(skip))]
    pub figures: BTreeMap<String, Observation>,
}

impl Experiment {
    /// Where it stands at `now_ms`, from its end and its window's close — the one rule the lab and the
    /// page both read.
    pub fn state_at(&self, now_ms: f64) -> ExperimentState {
        state_of(self.ended_ms, self.window_closes_ms, now_ms)
    }
}

/// Where an experiment stands at `now_ms`: done once its window closed, observing once its fault ended,
/// running before.
pub fn state_of(
    ended_ms: Option<f64>,
    window_closes_ms: Option<f64>,
    now_ms: f64,
) -> ExperimentState {
    if window_closes_ms.is_some_and(|closes| closes <= now_ms) {
        ExperimentState::Done
    } else if ended_ms.is_some() {
        ExperimentState::Observing
    } else {
        ExperimentState::Running
    }
}

/// What the proxy tells an experiment about one of its channels, in the order it happens. Connections
/// are the browser's TCP connections; exchanges are requests (a socket or a stream is one exchange).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Happening {
    /// A connection of the channel was open when the experiment began.
    WasOpen { conn: u64 },
    /// The browser closed, reset or abandoned a connection; `busy` when something was in flight on it
    /// (a socket, a stream, a request awaiting its answer); `after_app` when the app had closed it
    /// first in a way the browser could hear (then the browser may only be answering).
    BrowserLeft {
        conn: u64,
        busy: bool,
        after_app: bool,
    },
    /// The browser sent a request on a connection a half-open had left dead: a kept-alive connection
    /// reused, as browsers do. Nothing will come back on it.
    AskedDead,
    /// The app closed a connection (a socket's close frame, or its end of it).
    AppLeft { conn: u64 },
    /// The browser began an exchange that opens a connection of the channel (a socket, a stream, a
    /// letter), on connection `conn`.
    Attempt { exchange: u64, conn: u64 },
    /// The browser's network stack sent again, on a new connection, a request the lab had cut in
    /// flight (Chromium does so when a kept-alive connection fails before its answer): no attempt of
    /// the app's, so never a redial — the app's own code has not answered the cut yet.
    Resent { exchange: u64 },
    /// The lab refused its connection.
    Refused { exchange: u64 },
    /// Its answer's head: from the app, or made by the proxy (`by_proxy`: a 503 of the lab, a 502 when
    /// the app cannot be reached).
    Answered {
        exchange: u64,
        status: u16,
        by_proxy: bool,
    },
    /// Messages the app sent towards the browser.
    Sent { messages: u64 },
    /// What became of messages on their way to the browser.
    Reached {
        exchange: u64,
        reached: Reached,
        messages: u64,
    },
    /// A letter's answer reached the browser whole.
    Whole { exchange: u64 },
    /// The lab cut a connection of the channel.
    Cut,
    /// A message reached the browser's socket `ms` after the proxy read it from the app: what the
    /// proxy held it for (a delay fault), not the emulated path's own time after that.
    Took { ms: f64 },
}

/// What happened on one channel in one experiment's window: its figures and the definitions' verdicts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Connections open when it began.
    pub open_at_start: u64,
    /// When the browser first noticed (Unix ms), by the definition above.
    pub noticed_ms: Option<f64>,
    /// How many of the lines open when it began the browser noticed, and when the last of them:
    /// three tabs notice one by one, and the first alone read as all of them.
    #[serde(default)]
    pub noticed_lines: u64,
    #[serde(default)]
    pub noticed_last_ms: Option<f64>,
    /// When the app first closed a connection that was open when it began (its own heartbeat timeout,
    /// say): then the browser had nothing to notice — it was told.
    #[serde(default)]
    pub app_closed_ms: Option<f64>,
    /// When the browser then closed its side: noticing on its own at the same moment, or answering —
    /// the proxy cannot tell which, so neither is called noticing.
    #[serde(default)]
    pub closed_after_app_ms: Option<f64>,
    /// Exchanges begun since it began, and of them: refused by the lab, answered 503, answered another
    /// error (a 502 when the app was down, a 4xx/5xx of the app), and those that got through.
    pub attempts: u64,
    /// Of the attempts, those made while the fault lasted.
    pub attempts_during_fault: u64,
    pub refused: u64,
    pub unavailable: u64,
    pub errors: u64,
    pub got_through: u64,
    /// The last error status an attempt got, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<(u16, f64)>,
    /// When the first attempt that succeeded got its answer (Unix ms).
    pub redialed_ms: Option<f64>,
    /// When the browser first got a message after the fault ended (Unix ms).
    pub recovered_ms: Option<f64>,
    /// A socket's: when the browser first got something over a fallback transport of its session
    /// (Engine.IO's long polling, SockJS's streaming) after it lost the line and before messages
    /// reached it on the socket again, on a session no client was on before (a client starting over),
    /// and that channel's name. The tab was back then, not when its socket was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<(String, f64)>,
    /// A fallback transport carried messages to the browser while the fault lasted and before anyone
    /// gave up on the socket: a client was on it all along (a page struck while still upgrading onto
    /// its socket, another tab, another client), not back there. When that client first got something,
    /// and over which channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_along: Option<(String, f64)>,
    /// The sessions of the clients there all along (see [`crate::app::route::session_of`]; their ids'
    /// hashes, 0 for a request that names none): what they get later is no way back. `None` once more
    /// than [`SESSIONS_KEPT`] were: then nothing there can be told apart.
    #[serde(skip)]
    sessions_all_along: Option<Vec<u64>>,
    /// What the browser got of what the app sent, in the window.
    pub got: Got,
    /// When a line opened while the fault lasted (a redial) was given up on after the fault ended, and
    /// whether the app hung up on it (else the browser gave up): what the fault did to it outlived the
    /// fault (a heartbeat swallowed in the fault still ran out its timeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_again: Option<(f64, bool)>,
    /// Connections the lab cut in the window.
    pub cuts: u64,
    /// Requests the browser sent on connections a half-open had left dead.
    #[serde(default)]
    pub asked_dead: u64,
    /// Requests the browser's network stack sent again after the lab cut them in flight.
    #[serde(default)]
    pub resent: u64,
    #[serde(skip)]
    resent_exchanges: Vec<u64>,
    /// How long messages took from the app to the browser's socket (the median, and of how many),
    /// while the fault lasted and after it ended.
    #[serde(default)]
    pub took_during: Option<Median>,
    /// The same, for the channel's latest messages before it began.
    #[serde(default)]
    pub took_before: Option<Median>,
    #[serde(default)]
    pub took_after: Option<Median>,
    #[serde(skip)]
    took_during_kept: Vec<f64>,
    #[serde(skip)]
    took_after_kept: Vec<f64>,
    /// When the first and the latest attempts came (for the pace of a loop).
    #[serde(skip)]
    attempt_times: Vec<f64>,
    #[serde(skip)]
    was_open: Vec<u64>,
    /// Connections opened while the fault lasted.
    #[serde(skip)]
    opened_during: Vec<u64>,
    /// Of those, the ones the browser noticed on (a close frame and then the end are one noticing).
    #[serde(skip)]
    noticed_on: Vec<u64>,
    /// Attempts answered with success, awaiting a delivery to count as a redial: (exchange, answered at).
    #[serde(skip)]
    answered: Vec<(u64, f64)>,
}

impl Observation {
    /// Applies the definitions to one happening at `at_ms`, for an experiment that began at
    /// `started_ms` and whose fault ended at `ended_ms` (if it has).
    pub fn see(&mut self, at_ms: f64, what: Happening, started_ms: f64, ended_ms: Option<f64>) {
        match what {
            Happening::WasOpen { conn } => {
                self.open_at_start += 1;
                if self.was_open.len() < IN_FLIGHT_KEPT {
                    self.was_open.push(conn);
                }
            }
            Happening::BrowserLeft {
                conn,
                busy,
                after_app,
            } => {
                if busy && at_ms >= started_ms && self.was_open.contains(&conn) {
                    if after_app {
                        self.closed_after_app_ms.get_or_insert(at_ms);
                    } else if !self.noticed_on.contains(&conn) {
                        self.noticed_ms.get_or_insert(at_ms);
                        self.noticed_on.push(conn);
                        self.noticed_lines += 1;
                        self.noticed_last_ms = Some(at_ms);
                    }
                } else if busy {
                    self.dropped_after_the_end(conn, at_ms, ended_ms, after_app);
                }
            }
            Happening::AppLeft { conn } => {
                if at_ms >= started_ms && self.was_open.contains(&conn) {
                    self.app_closed_ms.get_or_insert(at_ms);
                } else {
                    self.dropped_after_the_end(conn, at_ms, ended_ms, true);
                }
            }
            Happening::Resent { exchange } => {
                self.resent += 1;
                if self.resent_exchanges.len() < PENDING_KEPT {
                    self.resent_exchanges.push(exchange);
                }
            }
            Happening::Attempt { conn, .. } => {
                self.attempts += 1;
                if ended_ms.is_none_or(|end| at_ms <= end) {
                    self.attempts_during_fault += 1;
                    if !self.opened_during.contains(&conn)
                        && self.opened_during.len() < PENDING_KEPT
                    {
                        self.opened_during.push(conn);
                    }
                }
                if self.attempt_times.len() == ATTEMPTS_KEPT {
                    // The pace is read from the first attempts and the latest: the middle goes.
                    self.attempt_times.remove(ATTEMPTS_KEPT / 2);
                }
                self.attempt_times.push(at_ms);
            }
            Happening::Refused { .. } => self.refused += 1,
            Happening::Answered {
                exchange,
                status,
                by_proxy,
            } => {
                if status == 503 && by_proxy {
                    self.unavailable += 1;
                    self.last_error = Some((status, at_ms));
                } else if status >= 400 || by_proxy {
                    self.errors += 1;
                    self.last_error = Some((status, at_ms));
                } else if self.resent_exchanges.contains(&exchange) {
                    // What a resent request got is the browser's, not an answer to an attempt.
                } else {
                    self.got_through += 1;
                    if self.redialed_ms.is_none() && self.answered.len() < PENDING_KEPT {
                        self.answered.push((exchange, at_ms));
                    }
                }
            }
            Happening::Sent { messages } => {
                for _ in 0..messages {
                    self.got.sent(at_ms);
                }
            }
            Happening::Reached {
                exchange,
                reached,
                messages,
            } => {
                if messages == 0 {
                    return;
                }
                self.got.reached(reached, messages, at_ms);
                if reached == Reached::Delivered {
                    self.delivered(exchange, at_ms, ended_ms);
                }
            }
            Happening::Whole { exchange } => self.delivered(exchange, at_ms, ended_ms),
            Happening::Cut => self.cuts += 1,
            Happening::AskedDead => self.asked_dead += 1,
            Happening::Took { ms } => {
                // Counted by when the app sent it: one sent during the fault and delivered after its
                // end took the fault's time.
                let (kept, median) = if ended_ms.is_some_and(|end| at_ms - ms >= end) {
                    (&mut self.took_after_kept, &mut self.took_after)
                } else {
                    (&mut self.took_during_kept, &mut self.took_during)
                };
                if kept.len() == TOOK_KEPT {
                    kept.remove(0);
                }
                kept.push(ms);
                let mut sorted = kept.clone();
                sorted.sort_by(f64::total_cmp);
                *median = Some((sorted[sorted.len() / 2], kept.len()));
            }
        }
    }

    /// Something reached the browser at `at_ms` on `channel`, a fallback transport of this socket's
    /// session ([`crate::app::route::fallback_of`]), for the session `session` (its id's hash, 0 for a
    /// request that names none), in the experiment's window. Before the socket's line was lost (the
    /// browser or the app gave up on it, or the lab cut it), a client was there all along, and its
    /// session is remembered. After, the first for a session not remembered is the tab back there (its
    /// client starting over: a handshake, then a new session), kept until something reached the browser
    /// on the socket after the fault ended. Without sessions, another tab polling all along read as
    /// the socket's tab back at its first poll after the loss.
    pub fn fell_back(&mut self, channel: &str, at_ms: f64, session: u64) {
        if !self.awaits_fallback() {
            return;
        }
        if !self.lost_line() {
            if self.all_along.is_none() {
                self.all_along = Some((channel.to_owned(), at_ms));
                self.sessions_all_along = Some(Vec::new());
            }
            if let Some(sessions) = &mut self.sessions_all_along
                && !sessions.contains(&session)
            {
                if sessions.len() == SESSIONS_KEPT {
                    self.sessions_all_along = None;
                } else {
                    sessions.push(session);
                }
            }
            return;
        }
        let anew = !self.fallback_all_along()
            || self
                .sessions_all_along
                .as_ref()
                .is_some_and(|sessions| !sessions.contains(&session));
        if anew {
            self.fallback = Some((channel.to_owned(), at_ms));
        }
    }

    /// A line was given up on at `at_ms` (by the app, or the browser): if it was opened while the fault
    /// lasted and this is after the fault's end, it dropped again — the first such is kept.
    fn dropped_after_the_end(
        &mut self,
        conn: u64,
        at_ms: f64,
        ended_ms: Option<f64>,
        by_app: bool,
    ) {
        if self.dropped_again.is_none()
            && ended_ms.is_some_and(|end| at_ms > end)
            && self.opened_during.contains(&conn)
        {
            self.dropped_again = Some((at_ms, by_app));
        }
    }

    /// Whether a client was on a fallback transport all along (see [`Observation::all_along`]).
    pub fn fallback_all_along(&self) -> bool {
        self.all_along.is_some()
    }

    /// Whether the socket's line was lost: the browser or the app gave up on it, or the lab cut it.
    pub fn lost_line(&self) -> bool {
        self.noticed_ms.is_some() || self.app_closed_ms.is_some() || self.cuts > 0
    }

    /// When the channel's own connection was back: the first that got through, or its first message
    /// after the fault.
    pub fn own_back_ms(&self) -> Option<f64> {
        self.redialed_ms
            .into_iter()
            .chain(self.recovered_ms)
            .reduce(f64::min)
    }

    /// The fallback transport the browser was back over, and when, if that was its way back: not when
    /// the socket itself was back a moment later (Engine.IO's every reconnect opens with a poll, then
    /// upgrades: that poll is the redial's first step).
    pub fn back_over_fallback(&self) -> Option<(&str, f64)> {
        let (over, at) = self.fallback.as_ref()?;
        self.own_back_ms()
            .is_none_or(|own| own - at >= FALLBACK_AHEAD_MS)
            .then_some((over.as_str(), *at))
    }

    /// Whether a delivery on a fallback transport would be kept now (see [`Observation::fell_back`]):
    /// asked first, since most deliveries while an experiment is open are not that.
    pub fn awaits_fallback(&self) -> bool {
        self.recovered_ms.is_none() && self.fallback.is_none()
    }

    /// Something reached the browser on `exchange`: a redial if it is an attempt that got through, a
    /// recovery if the fault is over.
    fn delivered(&mut self, exchange: u64, at_ms: f64, ended_ms: Option<f64>) {
        if self.redialed_ms.is_none()
            && let Some(&(_, answered_ms)) = self.answered.iter().find(|(id, _)| *id == exchange)
        {
            self.redialed_ms = Some(answered_ms);
            self.answered.clear();
        }
        if ended_ms.is_some_and(|end| at_ms >= end) {
            self.recovered_ms.get_or_insert(at_ms);
        }
    }

    /// Attempts that neither got through nor failed: still pending, or abandoned unanswered.
    pub fn pending(&self) -> u64 {
        self.attempts
            .saturating_sub(self.refused + self.unavailable + self.errors + self.got_through)
    }

    /// The pace of the attempts made until `until` (all of them with `None`): the typical gap between
    /// the first few, and between the last few (`None` with fewer than three attempts).
    pub fn pace(&self, until: Option<f64>) -> Option<(f64, f64)> {
        let kept = self
            .attempt_times
            .iter()
            .take_while(|at| until.is_none_or(|until| **at <= until))
            .count();
        let times = &self.attempt_times[..kept];
        if times.len() < 3 {
            return None;
        }
        let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        let take = gaps.len().min(3);
        let median = |part: &[f64]| {
            let mut part = part.to_vec();
            part.sort_by(f64::total_cmp);
            part[part.len() / 2]
        };
        Some((median(&gaps[..take]), median(&gaps[gaps.len() - take..])))
    }

    /// When the latest attempt came.
    pub fn last_attempt_ms(&self) -> Option<f64> {
        self.attempt_times.last().copied()
    }
}

/// What an experiment's findings are written from: the experiment and, per channel, what a sentence
/// calls it (`phone call (/socket.io/)`) and whether it is a loop of letters (whose "messages" are
/// answers).
#[derive(Debug)]
pub struct Told<'a> {
    pub experiment: &'a Experiment,
    /// Now, or when the window closed.
    pub now_ms: f64,
}

impl Told<'_> {
    /// The findings about one channel, in the order a person reads them.
    /// `heartbeat_ms` is the channel's heartbeat as its row reads it (none when none is recognised):
    /// the words about swallowed heartbeats and idle timeouts rest on it, as the row beside them does.
    pub fn findings(
        &self,
        channel: &str,
        called: &str,
        channel_kind: crate::har::ChannelKind,
        heartbeat_ms: Option<f64>,
    ) -> Vec<Finding> {
        use crate::har::ChannelKind;
        let letters = matches!(channel_kind, ChannelKind::Letters | ChannelKind::Held);
        let experiment = self.experiment;
        let Some(seen) = experiment.figures.get(channel) else {
            return Vec::new();
        };
        let start = experiment.started_ms;
        let end = experiment.ended_ms;
        let now = self.now_ms;
        let over = experiment.state == ExperimentState::Done;
        let lasted = experiment
            .settings
            .duration_ms
            .map(|ms| format!("{} ", format_ms(ms as f64)))
            .unwrap_or_default();
        let your = format!("your {called}");
        let mut out = Vec::new();
        let mut say = |at_ms: f64, text: String| {
            out.push(Finding {
                channel: Some(channel.to_owned()),
                text,
                at_ms: Some(at_ms),
            })
        };
        let tried = attempts_words(seen);
        let kind = match experiment.kind {
            ExperimentKind::Fault(kind) => Some(kind),
            ExperimentKind::Other(_) => None,
        };
        match experiment.kind {
            // Held letters whose answers were heartbeats have a pace too: none means none was seen.
            ExperimentKind::Fault(AppFaultKind::NoHeartbeat)
                if seen.got.swallowed == 0 && heartbeat_ms.is_none() =>
            {
                say(
                    start,
                    format!(
                        "No heartbeat recognised on {your}: nothing to swallow, nothing changed for it."
                    ),
                );
            }
            ExperimentKind::Fault(AppFaultKind::HalfOpen)
            | ExperimentKind::Fault(AppFaultKind::NoHeartbeat) => {
                let what = if kind == Some(AppFaultKind::HalfOpen) {
                    format!("During the {lasted}half-open")
                } else {
                    format!(
                        "With its heartbeats swallowed ({} on this channel)",
                        seen.got.swallowed
                    )
                };
                let half_open = kind == Some(AppFaultKind::HalfOpen);
                // The app's own heartbeat timeout may find the dead line first: on a half-open the
                // browser hears nothing of it, so the app finding it is told whenever it comes (the
                // server cleaning up its side — two timeouts racing decided it by 5 ms); otherwise the
                // app's close tells the browser.
                let app_first = seen.app_closed_ms.filter(|app| {
                    half_open || seen.noticed_ms.is_none_or(|browser| *app < browser)
                });
                if seen.open_at_start > 0
                    && let Some(at) = app_first
                {
                    let then = match seen.closed_after_app_ms {
                        Some(closed) if !half_open => format!(
                            "; the browser closed its side {} later",
                            format_ms(closed - at)
                        ),
                        _ => String::new(),
                    };
                    say(
                        at,
                        format!(
                            "{what}, your app hung up on {your} after {}{}{then}.",
                            format_ms(at - start),
                            if half_open {
                                ": its own heartbeat timeout found the dead line (the browser does not hear it)"
                            } else {
                                ": its own heartbeat timeout found the line dead"
                            }
                        ),
                    );
                }
                if seen.open_at_start == 0 || (app_first.is_some() && !half_open) {
                    // Nothing of it was open, or the app told the browser: nothing for it to notice.
                } else if let Some(at) = seen.noticed_ms {
                    // With several lines open, each is noticed on its own: the first, and how many
                    // by when.
                    let lines = seen.open_at_start;
                    let text = match seen.noticed_last_ms {
                        Some(last) if lines > 1 && seen.noticed_lines >= lines => format!(
                            "{what}, {your} noticed after {} on the first of its {lines} lines open when the fault began, and on all of them by {}: each gave up on its line.",
                            format_ms(at - start),
                            format_ms(last - start)
                        ),
                        Some(last) if lines > 1 => format!(
                            "{what}, {your} noticed after {} on the first of its {lines} lines open when the fault began, and on {} of them by {}.",
                            format_ms(at - start),
                            seen.noticed_lines,
                            format_ms(last - start)
                        ),
                        _ => format!(
                            "{what}, {your} noticed after {}: it gave up on a line that was open when the fault began.",
                            format_ms(at - start)
                        ),
                    };
                    say(at, text);
                } else {
                    let since = now - start;
                    say(
                        now,
                        if over {
                            format!(
                                "{what}, {your} never noticed in {}: its line still looked open to it. Only a heartbeat with a timeout finds a dead line.",
                                format_ms(since)
                            )
                        } else {
                            format!(
                                "{what}, {your} has not noticed yet ({} so far): its line still looks open to it.",
                                format_ms(since)
                            )
                        },
                    );
                }
            }
            ExperimentKind::Fault(AppFaultKind::Drop) => {
                let resent = if seen.resent > 0 {
                    format!(
                        "; the browser itself sent {} cut request{} again at once, which is not your app's redial",
                        seen.resent,
                        plural(seen.resent)
                    )
                } else {
                    String::new()
                };
                let cut = if seen.cuts > 0 {
                    format!(
                        " ({} connection{} cut{resent})",
                        seen.cuts,
                        plural(seen.cuts)
                    )
                } else {
                    String::new()
                };
                match seen.redialed_ms {
                    Some(at) => say(
                        at,
                        format!(
                            "After the drop{cut}, {your} redialed in {}{}.",
                            format_ms(at - start),
                            tried.map(|t| format!(" ({t})")).unwrap_or_default()
                        ),
                    ),
                    None if seen.attempts > 0 => say(
                        now,
                        format!(
                            "After the drop{cut}, {your} {} in {}.",
                            tried.unwrap_or_default(),
                            format_ms(now - start)
                        ),
                    ),
                    None if seen.cuts > 0 || seen.open_at_start > 0 => say(
                        now,
                        format!(
                            "After the drop{cut}, {your} has not redialed ({} since).",
                            format_ms(now - start)
                        ),
                    ),
                    None => {}
                }
            }
            ExperimentKind::Fault(AppFaultKind::Hiccup) if seen.attempts > 0 => {
                let back = match seen.redialed_ms {
                    Some(at) => format!(
                        "; it got through {} after they began",
                        format_ms(at - start)
                    ),
                    None => String::new(),
                };
                say(
                    seen.redialed_ms.unwrap_or(now),
                    format!(
                        "While new connections were refused{}, {your} {}{back}.",
                        end.map(|e| format!(" ({})", format_ms(e - start)))
                            .unwrap_or_default(),
                        tried.unwrap_or_default()
                    ),
                );
            }
            ExperimentKind::Fault(AppFaultKind::Http503) if seen.unavailable > 0 => {
                let pace = match seen.pace(end) {
                    Some((first, last)) if last > 1.5 * first => format!(
                        "; they backed off from every {} to every {}",
                        format_ms(first),
                        format_ms(last)
                    ),
                    Some((first, _)) => {
                        format!("; they kept asking every {}", format_ms(first))
                    }
                    None => String::new(),
                };
                let during = end.unwrap_or(now) - start;
                say(
                    end.unwrap_or(now),
                    format!(
                        "{} got {} of {} answers 503 during the {}{pace}.",
                        capitalized(&your),
                        seen.unavailable,
                        seen.attempts_during_fault,
                        format_ms(during)
                    ),
                );
            }
            ExperimentKind::Fault(AppFaultKind::IdleTimeout) => {
                let idle_ms = experiment.settings.idle_ms.unwrap_or(0) as f64;
                let idle = format_ms(idle_ms);
                if seen.cuts > 0 {
                    let why = match heartbeat_ms {
                        _ if letters => ": a letter held longer than that is hung up on".to_owned(),
                        Some(every) if every > idle_ms => format!(
                            ": its heartbeat (every {}) is slower than the timeout, so a connection is cut before its next beat",
                            format_ms(every)
                        ),
                        Some(every) => format!(
                            ": its line went quiet that long in spite of its heartbeat (every {})",
                            format_ms(every)
                        ),
                        None => {
                            ": no heartbeat was seen on it to keep a quiet line open".to_owned()
                        }
                    };
                    say(
                        now,
                        format!(
                            "The proxy's {idle} idle timeout cut {your} {} time{}{why}.",
                            seen.cuts,
                            plural(seen.cuts),
                        ),
                    );
                } else if seen.open_at_start > 0 || seen.attempts > 0 {
                    let why = match heartbeat_ms {
                        Some(every) if every <= idle_ms && !letters => format!(
                            "its heartbeat every {} is under the {idle} timeout",
                            format_ms(every)
                        ),
                        _ => "it never went quiet that long".to_owned(),
                    };
                    say(
                        now,
                        format!(
                            "The proxy's {idle} idle timeout did not cut {your} in {}: {why}.",
                            format_ms(now - start)
                        ),
                    );
                }
            }
            ExperimentKind::Fault(AppFaultKind::Delay)
            | ExperimentKind::Other(OtherKind::Network)
                if !letters =>
            {
                if let Some((took, n)) = seen.took_during {
                    let what = match (experiment.kind, &experiment.settings) {
                        (
                            ExperimentKind::Other(_),
                            Settings {
                                network: Some(network),
                                ..
                            },
                        ) => {
                            format!("On {network}")
                        }
                        (
                            _,
                            Settings {
                                delay_ms: Some(ms), ..
                            },
                        ) => {
                            format!("With {} added to each message", format_ms(*ms as f64))
                        }
                        _ => "During it".to_owned(),
                    };
                    let path = if experiment.kind == ExperimentKind::Other(OtherKind::Network) {
                        " (the emulated path then adds its own way to the browser)"
                    } else {
                        ""
                    };
                    let before = seen.took_before.map_or(String::new(), |(took, _)| {
                        format!("; before it, {}", format_ms(took))
                    });
                    let then = seen.took_after.map_or(String::new(), |(took, _)| {
                        format!("; after it ended, {}", format_ms(took))
                    });
                    say(
                        now,
                        format!(
                            "{what}, the messages on {your} left the proxy for the browser {} after your app sent them (median of {n}){path}{before}{then}.",
                            format_ms(took)
                        ),
                    );
                }
            }
            ExperimentKind::Other(OtherKind::UpstreamDown) => {
                if let Some((status, at)) = seen.last_error {
                    let back = match (seen.redialed_ms, end) {
                        // The lab learns the app is back from the first connection that reaches it:
                        // often this channel's own.
                        (Some(again), Some(end)) if again >= end && again - end < 100.0 => format!(
                            "; it got through again {} after the first failure, as soon as your app answered",
                            format_ms(again - start)
                        ),
                        (Some(again), Some(end)) if again >= end => format!(
                            "; it got through again {} after your app was back",
                            format_ms(again - end)
                        ),
                        (_, Some(end)) => format!(
                            " and has not got through since your app came back ({} ago){}",
                            format_ms(now - end),
                            if seen.last_attempt_ms().is_some_and(|last| last < end) {
                                ": it stopped trying"
                            } else {
                                ""
                            }
                        ),
                        (_, None) => String::new(),
                    };
                    say(
                        at,
                        format!(
                            "{} got {} answer{} {status} while your app was down{back}.",
                            capitalized(&your),
                            seen.unavailable + seen.errors,
                            plural(seen.unavailable + seen.errors)
                        ),
                    );
                }
            }
            _ => {}
        }
        // Attempts while a half-open held them are neither redials nor failures: they waited.
        if kind == Some(AppFaultKind::HalfOpen) && seen.attempts > 0 {
            let redial = match seen.redialed_ms {
                Some(at) => format!(
                    "; the first that got through was answered {} after the fault began",
                    format_ms(at - start)
                ),
                None => String::new(),
            };
            say(
                seen.redialed_ms.unwrap_or(now),
                format!(
                    "{} opened {} new connection{} during it: each was held unanswered until the path came back{redial}.",
                    capitalized(&your),
                    seen.attempts,
                    plural(seen.attempts)
                ),
            );
        }
        // A request on a dead kept-alive connection waits for the page's own timeout, if it has one:
        // what often makes a recovery slow long after the path came back.
        if seen.asked_dead > 0 {
            say(
                now,
                format!(
                    "{} sent {} request{} on connections a half-open had left dead (a browser reuses its kept-alive connections): nothing comes back on them, and only a timeout of the page's own ends the wait.",
                    capitalized(&your),
                    seen.asked_dead,
                    plural(seen.asked_dead)
                ),
            );
        }
        // What the browser got, whenever something did not reach it.
        let got = &seen.got;
        let missed = got.withheld + got.swallowed + got.lost;
        if missed > 0 && !letters {
            let mut parts = Vec::new();
            for (n, what) in [
                (got.withheld, "withheld by the half-open"),
                (got.swallowed, "swallowed"),
                (got.lost, "lost with a cut"),
            ] {
                if n > 0 {
                    parts.push(format!("{n} {what}"));
                }
            }
            say(
                now,
                format!(
                    "Of {} message{} your app sent on {your} in this window, the browser got {}; {}.",
                    got.sent,
                    plural(got.sent),
                    got.delivered,
                    parts.join(", ")
                ),
            );
        }
        // Traffic over another transport before the socket was lost is a client there all along, told
        // only once the socket was lost (a way back is a question only then), and never as the tab
        // coming back.
        if let Some((over, at)) = &seen.all_along
            && seen.lost_line()
        {
            say(
                *at,
                format!(
                    "A client was on {over} (the same endpoint's other transport) all along: it got answers there {} after the fault began, before anyone gave up on {your} — another tab or client, or a page still upgrading onto its socket. What reaches it there is not your tab coming back.",
                    format_ms(at - start)
                ),
            );
        }
        // The tab back over another transport before its socket, on a session of its own: the recovery
        // the person saw.
        if let Some((fallback, at)) = seen.back_over_fallback() {
            let gave_up = seen
                .noticed_ms
                .into_iter()
                .chain(seen.app_closed_ms)
                .reduce(f64::min)
                .map(|lost| format!(", {} after the line was given up", format_ms(at - lost)))
                .unwrap_or_default();
            // Beside a client there all along, whose session it is not (two clients, not one told
            // twice).
            let own = if seen.fallback_all_along() {
                ", in a session of its own"
            } else {
                ""
            };
            say(
                at,
                format!(
                    "Meanwhile the browser was back over {fallback} (the same endpoint's other transport) {} after the fault began{gave_up}{own}: messages reached it there while {your} was down.",
                    format_ms(at - start)
                ),
            );
        }
        // Recovery, counted from the fault's end: the most important line of all.
        // A network or a delay slows what passes; recovery is a question only when something did not
        // pass.
        let lasting = match experiment.kind {
            ExperimentKind::Fault(AppFaultKind::Delay)
            | ExperimentKind::Other(OtherKind::Network) => missed > 0 || seen.cuts > 0,
            ExperimentKind::Fault(kind) => kind.lasts() || kind == AppFaultKind::Drop,
            ExperimentKind::Other(OtherKind::UpstreamDown) => true,
        };
        let touched = seen.open_at_start > 0
            || seen.attempts > 0
            || seen.cuts > 0
            || seen.asked_dead > 0
            || missed > 0;
        if let Some(end) = end
            && lasting
            && touched
        {
            match seen.recovered_ms {
                // A connection it redialed while the fault lasted carried messages then: the first
                // message after the end (a ping, say) is not when it came back.
                _ if seen.redialed_ms.is_some_and(|redial| redial < end) => {
                    let redial = seen.redialed_ms.unwrap_or(end);
                    say(
                        redial,
                        format!(
                            "Messages reached the browser on {your} again {} after the fault began, while it lasted: over a connection it redialed then.",
                            format_ms(redial - start)
                        ),
                    );
                }
                Some(at) => say(
                    at,
                    format!(
                        "Messages reached the browser on {your} again {} after the {}.",
                        format_ms(at - end),
                        ended_what(experiment.kind)
                    ),
                ),
                None if now - end >= 1_000.0 => say(
                    now,
                    format!(
                        "Not recovered: nothing reached the browser on {your} in the {} since the {}{}.",
                        format_ms(now - end),
                        ended_what(experiment.kind),
                        if over { "" } else { " (so far)" }
                    ),
                ),
                None => {}
            }
            // A line it redialed while the fault lasted, given up on after the end: "recovered" was
            // not the end of it.
            if let Some((at, by_app)) = seen.dropped_again
                && !letters
            {
                let who = if by_app {
                    "your app hung up on"
                } else {
                    "the browser gave up on"
                };
                let why = if experiment.kind == ExperimentKind::Fault(AppFaultKind::NoHeartbeat) {
                    ", whose heartbeats the fault swallowed: a timeout begun in the fault ran out after it"
                } else {
                    ": what the fault did to that line outlived the fault"
                };
                say(
                    at,
                    format!(
                        "Then {your} dropped again {} after the {}: {who} a line it had opened while the fault lasted{why}.",
                        format_ms(at - end),
                        ended_what(experiment.kind),
                    ),
                );
            }
        }
        out
    }
}

/// "tried 3 times, none got through yet (3 refused)" — the attempts in words, if any.
fn attempts_words(seen: &Observation) -> Option<String> {
    if seen.attempts == 0 {
        return None;
    }
    let mut how = Vec::new();
    for (n, what) in [
        (seen.refused, "refused"),
        (seen.unavailable, "answered 503"),
        (seen.errors, "answered with an error"),
        (seen.pending(), "pending or abandoned"),
    ] {
        if n > 0 {
            how.push(format!("{n} {what}"));
        }
    }
    if how.is_empty() && seen.attempts == 1 {
        // The one attempt got through: nothing to add to "redialed".
        return None;
    }
    let through = if seen.got_through == 0 {
        ", none got through yet".to_owned()
    } else {
        String::new()
    };
    Some(format!(
        "tried {} time{}{through}{}",
        seen.attempts,
        plural(seen.attempts),
        if how.is_empty() || seen.got_through > 0 && how.len() == 1 && seen.pending() > 0 {
            String::new()
        } else {
            format!(": {}", how.join(", "))
        }
    ))
}

/// What a sentence counts recovery from: "after the drop", "since the fault ended".
fn ended_what(kind: ExperimentKind) -> &'static str {
    match kind {
        ExperimentKind::Fault(AppFaultKind::Drop) => "drop",
        ExperimentKind::Other(OtherKind::UpstreamDown) => "outage ended",
        ExperimentKind::Other(OtherKind::Network) => "network was taken off",
        _ => "fault ended",
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: f64 = 1_000_000.0;

    fn observe(end: Option<f64>, seen: &[(f64, Happening)]) -> Observation {
        let mut observation = Observation::default();
        for &(at, what) in seen {
            observation.see(START + at, what, START, end.map(|e| START + e));
        }
        observation
    }

    #[test]
    fn closing_a_line_open_when_it_began_is_noticing() {
        let seen = observe(
            Some(30_000.0),
            &[
                (0.0, Happening::WasOpen { conn: 7 }),
                (
                    6_100.0,
                    Happening::BrowserLeft {
                        conn: 7,
                        busy: true,
                        after_app: false,
                    },
                ),
                (
                    9_000.0,
                    Happening::BrowserLeft {
                        conn: 7,
                        busy: true,
                        after_app: false,
                    },
                ),
            ],
        );
        assert_eq!(
            seen.noticed_ms,
            Some(START + 6_100.0),
            "the first time counts"
        );
    }

    #[test]
    fn a_scheduled_letter_or_an_idle_close_is_not_noticing() {
        let seen = observe(
            None,
            &[
                (0.0, Happening::WasOpen { conn: 1 }),
                (0.0, Happening::WasOpen { conn: 2 }),
                // The next letter on its schedule, on a fresh connection: an attempt, nothing noticed.
                (
                    1_300.0,
                    Happening::Attempt {
                        exchange: 40,
                        conn: 40,
                    },
                ),
                // An idle keep-alive connection closed with nothing in flight.
                (
                    5_000.0,
                    Happening::BrowserLeft {
                        conn: 2,
                        busy: false,
                        after_app: false,
                    },
                ),
                // A connection the fault never met.
                (
                    6_000.0,
                    Happening::BrowserLeft {
                        conn: 9,
                        busy: true,
                        after_app: false,
                    },
                ),
            ],
        );
        assert_eq!(seen.noticed_ms, None);
        assert_eq!(seen.attempts, 1);
        assert_eq!(seen.pending(), 1);
    }

    #[test]
    fn a_close_that_follows_the_apps_own_is_not_called_noticing() {
        let seen = observe(
            Some(9_000.0),
            &[
                (0.0, Happening::WasOpen { conn: 3 }),
                (7_000.0, Happening::AppLeft { conn: 3 }),
                (
                    7_001.0,
                    Happening::BrowserLeft {
                        conn: 3,
                        busy: true,
                        after_app: true,
                    },
                ),
            ],
        );
        assert_eq!(seen.noticed_ms, None);
        assert_eq!(
            (seen.app_closed_ms, seen.closed_after_app_ms),
            (Some(START + 7_000.0), Some(START + 7_001.0))
        );
    }

    #[test]
    fn a_redial_is_an_attempt_that_got_through_and_delivered() {
        let seen = observe(
            Some(0.0),
            &[
                (
                    100.0,
                    Happening::Attempt {
                        exchange: 1,
                        conn: 1,
                    },
                ),
                (100.0, Happening::Refused { exchange: 1 }),
                (
                    1_100.0,
                    Happening::Attempt {
                        exchange: 2,
                        conn: 2,
                    },
                ),
                (
                    1_100.0,
                    Happening::Answered {
                        exchange: 2,
                        status: 503,
                        by_proxy: true,
                    },
                ),
                (
                    2_100.0,
                    Happening::Attempt {
                        exchange: 3,
                        conn: 3,
                    },
                ),
                (
                    2_150.0,
                    Happening::Answered {
                        exchange: 3,
                        status: 101,
                        by_proxy: false,
                    },
                ),
            ],
        );
        assert_eq!(seen.redialed_ms, None, "a 101 with nothing delivered yet");
        assert_eq!(
            attempts_words(&seen).as_deref(),
            Some("tried 3 times: 1 refused, 1 answered 503")
        );
        let mut seen = seen;
        seen.see(
            START + 2_300.0,
            Happening::Reached {
                exchange: 3,
                reached: Reached::Delivered,
                messages: 1,
            },
            START,
            Some(START),
        );
        assert_eq!(
            seen.redialed_ms,
            Some(START + 2_150.0),
            "timed at its answer"
        );
        assert_eq!(seen.recovered_ms, Some(START + 2_300.0));
    }

    #[test]
    fn a_withheld_message_is_no_recovery_and_a_pending_attempt_no_redial() {
        let seen = observe(
            Some(30_000.0),
            &[
                (0.0, Happening::WasOpen { conn: 1 }),
                (500.0, Happening::Sent { messages: 2 }),
                (
                    500.0,
                    Happening::Reached {
                        exchange: 1,
                        reached: Reached::Withheld,
                        messages: 2,
                    },
                ),
                (
                    10_000.0,
                    Happening::Attempt {
                        exchange: 2,
                        conn: 2,
                    },
                ),
                (31_000.0, Happening::Sent { messages: 1 }),
                (
                    31_000.0,
                    Happening::Reached {
                        exchange: 1,
                        reached: Reached::Withheld,
                        messages: 1,
                    },
                ),
            ],
        );
        assert_eq!(seen.recovered_ms, None);
        assert_eq!(seen.redialed_ms, None);
        assert_eq!(
            (seen.got.sent, seen.got.delivered, seen.got.withheld),
            (3, 0, 3)
        );
    }

    #[test]
    fn a_request_the_browser_sent_again_after_its_cut_is_no_redial() {
        let answered = |exchange| Happening::Answered {
            exchange,
            status: 200,
            by_proxy: false,
        };
        // Cut in flight at the drop, resent by Chromium 50 ms later and answered at once; the app's
        // own reconnect comes half a second later.
        let seen = observe(
            Some(0.0),
            &[
                (50.0, Happening::Resent { exchange: 2 }),
                (52.0, answered(2)),
                (53.0, Happening::Whole { exchange: 2 }),
                (
                    560.0,
                    Happening::Attempt {
                        exchange: 3,
                        conn: 3,
                    },
                ),
                (562.0, answered(3)),
                (563.0, Happening::Whole { exchange: 3 }),
            ],
        );
        assert_eq!((seen.resent, seen.attempts, seen.got_through), (1, 1, 1));
        assert_eq!(seen.redialed_ms, Some(START + 562.0));
    }

    #[test]
    fn recovery_counts_only_after_the_fault_ended() {
        let delivered = |exchange| Happening::Reached {
            exchange,
            reached: Reached::Delivered,
            messages: 1,
        };
        let seen = observe(
            Some(15_000.0),
            &[(2_000.0, delivered(1)), (15_700.0, delivered(1))],
        );
        assert_eq!(seen.recovered_ms, Some(START + 15_700.0));
        // A letter's whole answer counts as much as a message.
        let seen = observe(
            Some(15_000.0),
            &[(16_000.0, Happening::Whole { exchange: 4 })],
        );
        assert_eq!(seen.recovered_ms, Some(START + 16_000.0));
    }

    #[test]
    fn the_pace_of_attempts_tells_a_back_off() {
        let mut times = vec![0.0, 1_000.0, 2_000.0, 3_000.0, 5_000.0, 9_000.0, 17_000.0];
        let attempts: Vec<(f64, Happening)> = times
            .drain(..)
            .enumerate()
            .map(|(n, at)| {
                (
                    at,
                    Happening::Attempt {
                        exchange: n as u64,
                        conn: n as u64,
                    },
                )
            })
            .collect();
        let seen = observe(None, &attempts);
        assert_eq!(seen.pace(None), Some((1_000.0, 4_000.0)));
        assert_eq!(seen.pace(Some(START + 3_500.0)), Some((1_000.0, 1_000.0)));
    }

    #[test]
    fn a_line_redialed_in_the_fault_and_given_up_on_after_its_end_dropped_again() {
        // Heartbeats swallowed for 30 s: the line open at the start was given up on at 7 s, redialed at
        // 8 s; the redialed line's first ping was swallowed too, and its timeout ran out at 33 s.
        let left = |conn, at| {
            (
                at,
                Happening::BrowserLeft {
                    conn,
                    busy: true,
                    after_app: false,
                },
            )
        };
        let mut happenings = vec![
            (0.0, Happening::WasOpen { conn: 1 }),
            left(1, 7_000.0),
            (
                8_000.0,
                Happening::Attempt {
                    exchange: 2,
                    conn: 2,
                },
            ),
            (
                8_010.0,
                Happening::Answered {
                    exchange: 2,
                    status: 101,
                    by_proxy: false,
                },
            ),
            (
                8_020.0,
                Happening::Reached {
                    exchange: 2,
                    reached: Reached::Delivered,
                    messages: 1,
                },
            ),
        ];
        // Given up on while the fault lasted: the fault's own doing, no "again".
        let during = observe(
            Some(30_000.0),
            &[&happenings[..], &[left(2, 20_000.0)]].concat(),
        );
        assert_eq!(during.dropped_again, None);
        // A line opened after the end and given up on later is no line the fault touched.
        let later = observe(
            Some(30_000.0),
            &[
                &happenings[..],
                &[
                    (
                        31_000.0,
                        Happening::Attempt {
                            exchange: 3,
                            conn: 3,
                        },
                    ),
                    left(3, 34_000.0),
                ],
            ]
            .concat(),
        );
        assert_eq!(later.dropped_again, None);
        // The app hung up on the redialed line 3 s after the end, the browser closing after it.
        happenings.push((33_000.0, Happening::AppLeft { conn: 2 }));
        happenings.push((
            33_005.0,
            Happening::BrowserLeft {
                conn: 2,
                busy: true,
                after_app: true,
            },
        ));
        let seen = observe(Some(30_000.0), &happenings);
        assert_eq!(seen.dropped_again, Some((START + 33_000.0, true)));
        let experiment = experiment(
            ExperimentKind::Fault(AppFaultKind::NoHeartbeat),
            seen,
            ExperimentState::Observing,
        );
        let texts: Vec<String> = Told {
            experiment: &experiment,
            now_ms: START + 40_000.0,
        }
        .findings(
            "c1",
            "phone call (/socket.io/)",
            crate::har::ChannelKind::Phone,
            None,
        )
        .into_iter()
        .map(|f| f.text)
        .collect();
        assert!(
            texts.iter().any(|t| t.starts_with(
                "Then your phone call (/socket.io/) dropped again 3.0 s after the "
            ) && t.ends_with(": your app hung up on a line it had opened while the fault lasted, whose heartbeats the fault swallowed: a timeout begun in the fault ran out after it.")),
            "{texts:#?}"
        );
    }

    fn experiment(kind: ExperimentKind, seen: Observation, state: ExperimentState) -> Experiment {
        Experiment {
            id: 1,
            kind,
            settings: Settings {
                duration_ms: Some(30_000),
                ..Settings::default()
            },
            title: String::new(),
            channels: vec!["all".into()],
            started_ms: START,
            ended_ms: Some(START + 30_000.0),
            window_closes_ms: Some(START + 60_000.0),
            state,
            superseded_by: None,
            findings: Vec::new(),
            figures: BTreeMap::from([("c1".to_owned(), seen)]),
        }
    }

    /// What a half-open's experiment tells of the phone call `called` (channel `c1`), `after_ms` after it
    /// began.
    /// The texts of a half-open's findings on a Socket.IO socket, `after_ms` into it, while it observes.
    fn socket_io_texts(seen: Observation, after_ms: f64) -> Vec<String> {
        half_open_findings(
            seen,
            ExperimentState::Observing,
            after_ms,
            "phone call (/socket.io/)",
        )
        .into_iter()
        .map(|f| f.text)
        .collect()
    }

    fn half_open_findings(
        seen: Observation,
        state: ExperimentState,
        after_ms: f64,
        called: &str,
    ) -> Vec<Finding> {
        let experiment = experiment(ExperimentKind::Fault(AppFaultKind::HalfOpen), seen, state);
        Told {
            experiment: &experiment,
            now_ms: START + after_ms,
        }
        .findings("c1", called, crate::har::ChannelKind::Phone, None)
    }

    #[test]
    fn a_fallback_counts_only_between_losing_the_line_and_the_sockets_recovery() {
        let left = Happening::BrowserLeft {
            conn: 1,
            busy: true,
            after_app: false,
        };
        let mut seen = observe(Some(10_000.0), &[(0.0, Happening::WasOpen { conn: 1 })]);
        seen.see(START + 7_000.0, left, START, Some(START + 10_000.0));
        seen.fell_back("GET /socket.io/", START + 7_800.0, 0);
        seen.fell_back("GET /socket.io/", START + 8_800.0, 7);
        assert_eq!(
            seen.fallback,
            Some(("GET /socket.io/".to_owned(), START + 7_800.0)),
            "the first time counts"
        );
        let texts = socket_io_texts(seen, 9_000.0);
        assert!(
            texts.contains(&"Meanwhile the browser was back over GET /socket.io/ (the same endpoint's other transport) 7.8 s after the fault began, 800 ms after the line was given up: messages reached it there while your phone call (/socket.io/) was down.".to_owned()),
            "{texts:#?}"
        );
        assert!(!texts.iter().any(|t| t.contains("all along")), "{texts:#?}");
        // Messages there before anyone gave up on the socket: the page was on that transport all
        // along (struck while upgrading onto its socket: its probe answered, its upgrade never sent),
        // and the app's closing the unused socket later is no loss it came back from.
        let mut upgrading = observe(Some(15_000.0), &[(0.0, Happening::WasOpen { conn: 1 })]);
        upgrading.fell_back("GET /socket.io/", START + 100.0, 1);
        upgrading.see(
            START + 10_000.0,
            Happening::AppLeft { conn: 1 },
            START,
            Some(START + 15_000.0),
        );
        // Its polls go on in the session it was in all along: none of them is a way back.
        upgrading.fell_back("GET /socket.io/", START + 10_100.0, 1);
        assert!(upgrading.fallback_all_along());
        assert_eq!(
            upgrading.all_along,
            Some(("GET /socket.io/".to_owned(), START + 100.0))
        );
        assert_eq!(upgrading.back_over_fallback(), None);
        let texts = socket_io_texts(upgrading, 12_000.0);
        assert!(
            texts.contains(&"A client was on GET /socket.io/ (the same endpoint's other transport) all along: it got answers there 100 ms after the fault began, before anyone gave up on your phone call (/socket.io/) — another tab or client, or a page still upgrading onto its socket. What reaches it there is not your tab coming back.".to_owned()),
            "{texts:#?}"
        );
        assert!(
            !texts.iter().any(|t| t.contains("was back over")),
            "{texts:#?}"
        );
        // Another tab polling all along, and the socket's tab starting over beside it: its handshake
        // (naming no session) after it gave up is its way back; the other tab's polls are not.
        let mut two = observe(Some(15_000.0), &[(0.0, Happening::WasOpen { conn: 1 })]);
        two.fell_back("GET /socket.io/", START + 100.0, 1);
        two.see(START + 7_000.0, left, START, Some(START + 15_000.0));
        two.fell_back("GET /socket.io/", START + 7_500.0, 1);
        assert_eq!(two.back_over_fallback(), None, "the other tab's poll");
        two.fell_back("GET /socket.io/", START + 8_200.0, 0);
        two.fell_back("GET /socket.io/", START + 8_300.0, 2);
        assert_eq!(
            two.back_over_fallback(),
            Some(("GET /socket.io/", START + 8_200.0))
        );
        let texts = socket_io_texts(two, 12_000.0);
        assert!(
            texts.iter().any(|t| t.starts_with(
                "A client was on GET /socket.io/ (the same endpoint's other transport) all along"
            )),
            "{texts:#?}"
        );
        assert!(
            texts.contains(&"Meanwhile the browser was back over GET /socket.io/ (the same endpoint's other transport) 8.2 s after the fault began, 1.2 s after the line was given up, in a session of its own: messages reached it there while your phone call (/socket.io/) was down.".to_owned()),
            "{texts:#?}"
        );
        // More clients there all along than are remembered: none can be told from a tab starting over.
        let mut crowd = observe(Some(15_000.0), &[(0.0, Happening::WasOpen { conn: 1 })]);
        for session in 1..=SESSIONS_KEPT as u64 + 1 {
            crowd.fell_back("GET /socket.io/", START + 100.0, session);
        }
        crowd.see(START + 7_000.0, left, START, Some(START + 15_000.0));
        crowd.fell_back("GET /socket.io/", START + 8_200.0, 0);
        assert!(crowd.fallback_all_along());
        assert_eq!(crowd.back_over_fallback(), None);
        // A socket never lost (a delay, or a half-open nobody noticed): no way back is a question.
        let mut kept = observe(Some(15_000.0), &[(0.0, Happening::WasOpen { conn: 1 })]);
        kept.fell_back("GET /socket.io/", START + 100.0, 1);
        assert!(kept.fallback_all_along());
        let texts = socket_io_texts(kept, 12_000.0);
        assert!(
            !texts
                .iter()
                .any(|t| t.starts_with("Meanwhile") || t.starts_with("A client was on")),
            "{texts:#?}"
        );
        // A poll that only opened the socket's own redial (8 ms before it got through) is no fallback.
        let mut handshake = observe(Some(0.0), &[(0.0, Happening::WasOpen { conn: 1 })]);
        handshake.see(START + 3.0, left, START, Some(START));
        handshake.fell_back("GET /socket.io/", START + 1_282.0, 0);
        handshake.redialed_ms = Some(START + 1_290.0);
        let texts = socket_io_texts(handshake, 5_000.0);
        assert!(
            !texts
                .iter()
                .any(|t| t.starts_with("Meanwhile") || t.starts_with("A client was on")),
            "{texts:#?}"
        );
        // Once messages reached the browser on the socket again, the other transport is no fallback.
        let mut back = observe(
            Some(10_000.0),
            &[
                (0.0, Happening::WasOpen { conn: 1 }),
                (7_000.0, left),
                (
                    10_100.0,
                    Happening::Reached {
                        exchange: 2,
                        reached: Reached::Delivered,
                        messages: 1,
                    },
                ),
            ],
        );
        back.fell_back("GET /socket.io/", START + 10_200.0, 0);
        assert_eq!(back.fallback, None);
    }

    #[test]
    fn a_redial_that_got_through_while_the_fault_lasted_is_when_it_came_back() {
        // Its heartbeats swallowed, the client gave up at 7 s and redialed at 8.45 s, on a connection
        // that carried messages at once: the first message after the fault's end is only its next ping.
        let mut seen = observe(
            Some(10_000.0),
            &[
                (0.0, Happening::WasOpen { conn: 1 }),
                (
                    8_400.0,
                    Happening::Attempt {
                        exchange: 2,
                        conn: 2,
                    },
                ),
                (
                    8_450.0,
                    Happening::Answered {
                        exchange: 2,
                        status: 101,
                        by_proxy: false,
                    },
                ),
                (
                    8_451.0,
                    Happening::Reached {
                        exchange: 2,
                        reached: Reached::Delivered,
                        messages: 1,
                    },
                ),
                (
                    10_442.0,
                    Happening::Reached {
                        exchange: 2,
                        reached: Reached::Delivered,
                        messages: 1,
                    },
                ),
            ],
        );
        assert_eq!(
            (seen.redialed_ms, seen.recovered_ms),
            (Some(START + 8_450.0), Some(START + 10_442.0))
        );
        seen.noticed_ms = Some(START + 7_000.0);
        let texts = socket_io_texts(seen, 20_000.0);
        assert!(
            texts.contains(&"Messages reached the browser on your phone call (/socket.io/) again 8.4 s after the fault began, while it lasted: over a connection it redialed then.".to_owned()),
            "{texts:#?}"
        );
        assert!(
            !texts.iter().any(|t| t.contains("after the fault ended")),
            "{texts:#?}"
        );
    }

    #[test]
    fn a_half_open_never_noticed_says_so_and_not_recovered_is_a_finding() {
        let seen = observe(Some(30_000.0), &[(0.0, Happening::WasOpen { conn: 1 })]);
        let texts: Vec<String> =
            half_open_findings(seen, ExperimentState::Done, 60_000.0, "phone call (/ws)")
                .into_iter()
                .map(|f| f.text)
                .collect();
        assert_eq!(
            texts,
            [
                "During the 30.0 s half-open, your phone call (/ws) never noticed in 1 min: its line still looked open to it. Only a heartbeat with a timeout finds a dead line.",
                "Not recovered: nothing reached the browser on your phone call (/ws) in the 30.0 s since the fault ended.",
            ]
        );
    }

    #[test]
    fn three_lines_noticed_one_by_one_are_told_first_and_last() {
        let left = |conn| Happening::BrowserLeft {
            conn,
            busy: true,
            after_app: false,
        };
        let told = |happenings: &[(f64, Happening)]| {
            half_open_findings(
                observe(Some(10_000.0), happenings),
                ExperimentState::Observing,
                20_000.0,
                "phone call (/socket.io/)",
            )[0]
            .text
            .clone()
        };
        let open = [
            (0.0, Happening::WasOpen { conn: 1 }),
            (0.0, Happening::WasOpen { conn: 2 }),
            (0.0, Happening::WasOpen { conn: 3 }),
        ];
        // The second line's close frame and then its end are one noticing.
        let all = [
            (5_360.0, left(1)),
            (5_460.0, left(2)),
            (5_470.0, left(2)),
            (6_810.0, left(3)),
        ];
        assert_eq!(
            told(&[&open[..], &all[..]].concat()),
            "During the 30.0 s half-open, your phone call (/socket.io/) noticed after 5.4 s on the first of its 3 lines open when the fault began, and on all of them by 6.8 s: each gave up on its line."
        );
        assert_eq!(
            told(&[&open[..], &all[..3]].concat()),
            "During the 30.0 s half-open, your phone call (/socket.io/) noticed after 5.4 s on the first of its 3 lines open when the fault began, and on 2 of them by 5.5 s."
        );
    }

    #[test]
    fn on_a_half_open_the_app_finding_the_dead_line_is_told_whichever_timeout_fired_first() {
        for app_at in [5_355.0, 5_365.0] {
            let seen = observe(
                Some(10_000.0),
                &[
                    (0.0, Happening::WasOpen { conn: 1 }),
                    (
                        5_360.0,
                        Happening::BrowserLeft {
                            conn: 1,
                            busy: true,
                            after_app: false,
                        },
                    ),
                    (app_at, Happening::AppLeft { conn: 1 }),
                ],
            );
            let texts: Vec<String> = half_open_findings(
                seen,
                ExperimentState::Observing,
                20_000.0,
                "phone call (/ws)",
            )
            .into_iter()
            .map(|f| f.text)
            .collect();
            assert!(
                texts.iter().any(|t| t.starts_with("During the 30.0 s half-open, your app hung up on your phone call (/ws) after 5.4 s: its own heartbeat timeout found the dead line")),
                "app at {app_at}: {texts:#?}"
            );
            assert!(
                texts
                    .iter()
                    .any(|t| t.contains("your phone call (/ws) noticed after 5.4 s")),
                "app at {app_at}: {texts:#?}"
            );
        }
    }

    #[test]
    fn a_half_open_noticed_then_recovered() {
        let seen = observe(
            Some(30_000.0),
            &[
                (0.0, Happening::WasOpen { conn: 1 }),
                (
                    7_000.0,
                    Happening::BrowserLeft {
                        conn: 1,
                        busy: true,
                        after_app: false,
                    },
                ),
                (
                    8_000.0,
                    Happening::Attempt {
                        exchange: 5,
                        conn: 5,
                    },
                ),
                (
                    30_010.0,
                    Happening::Answered {
                        exchange: 5,
                        status: 101,
                        by_proxy: false,
                    },
                ),
                (30_020.0, Happening::Sent { messages: 1 }),
                (
                    30_030.0,
                    Happening::Reached {
                        exchange: 5,
                        reached: Reached::Delivered,
                        messages: 1,
                    },
                ),
            ],
        );
        let findings = half_open_findings(
            seen,
            ExperimentState::Observing,
            31_000.0,
            "phone call (/ws)",
        );
        let texts: Vec<&str> = findings.iter().map(|f| f.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "During the 30.0 s half-open, your phone call (/ws) noticed after 7.0 s: it gave up on a line that was open when the fault began.",
                "Your phone call (/ws) opened 1 new connection during it: each was held unanswered until the path came back; the first that got through was answered 30.0 s after the fault began.",
                "Messages reached the browser on your phone call (/ws) again 30 ms after the fault ended.",
            ]
        );
        assert_eq!(findings[0].at_ms, Some(START + 7_000.0));
        assert_eq!(findings[2].at_ms, Some(START + 30_030.0));
    }

    #[test]
    fn kinds_serialize_as_one_string() {
        let kinds = [
            ExperimentKind::Fault(AppFaultKind::HalfOpen),
            ExperimentKind::Other(OtherKind::Network),
            ExperimentKind::Other(OtherKind::UpstreamDown),
        ];
        let json = serde_json::to_string(&kinds).unwrap();
        assert_eq!(json, r#"["half_open","network","upstream_down"]"#);
        assert_eq!(
            serde_json::from_str::<Vec<ExperimentKind>>(&json).unwrap(),
            kinds
        );
    }
}
