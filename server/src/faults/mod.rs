//! The failure lab: faults injected on purpose (`POST /api/faults`), so a person can watch each lane
//! notice and recover.
//!
//! The lanes consult [`Faults`] at the points where a real failure would bite:
//! - `pause` — the sources and chat stop publishing (heartbeats go on);
//! - `drop` — every open stream, call and held long poll of the lane is cut ([`Faults::cuts`]);
//! - `half_open` — connections open when it begins write nothing more, heartbeats included, until it
//!   ends, and are then closed without a word; letters asked meanwhile are held unanswered;
//! - `delay` — every reply or frame waits longer (both through [`ConnectionFaults::hold`]);
//! - `error` — requests and dials of the lane are answered `503` ([`middleware`]);
//! - `restart` — everything is cut and the hub's history starts a new epoch.
//!
//! Frames are the hot path: each asks [`ConnectionFaults::hold`], which is one relaxed atomic load while
//! no timed fault is in effect on its lane, and a short read lock only while one is. No lock is held
//! across an await.
//!
//! Layout: this module keeps the lab's state ([`Faults`]); `http` serves `/api/faults` and the
//! middleware; `connection` is one stream's, call's or held letter's view of the lab
//! ([`ConnectionFaults`]).

mod connection;
mod http;

pub use connection::{ConnectionFaults, Cut, Silenced};
pub use http::{inject, list, middleware};

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, RwLock};
use std::time::Duration;
use switchboard_shared::{
    EventBody, Fault, FaultAuth, FaultKind, FaultList, FaultRequest, LaneId, Notice, NoticeLevel,
    PerLane,
};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::AppState;
use crate::hub::now_ms;

/// A fault's time window on the server's monotonic clock.
#[derive(Debug, Clone, Copy)]
struct Window {
    from: Instant,
    until: Instant,
}

impl Window {
    fn covers(&self, now: Instant) -> bool {
        self.from <= now && now < self.until
    }
}

/// What is wrong with one lane right now.
#[derive(Debug, Clone, Copy, Default)]
struct LaneState {
    half_open: Option<Window>,
    no_heartbeat: Option<Window>,
    delay: Option<(Window, Duration)>,
    error: Option<Window>,
}

#[derive(Debug)]
pub struct Faults {
    lanes: RwLock<PerLane<LaneState>>,
    /// Per lane: until when (ms after `base`) some timed fault may be in effect on it; the frames' fast
    /// path compares against this and takes no lock when it has passed.
    armed_until: PerLane<AtomicU64>,
    base: Instant,
    pause: RwLock<Option<Window>>,
    /// Faults injected and not yet over (instant ones are never listed).
    active: Mutex<Vec<Fault>>,
    next_id: AtomicU64,
    /// One signal per lane, sent to cut every open connection of the lane.
    cuts: PerLane<watch::Sender<Cut>>,
    pub auth: FaultAuth,
}

impl Faults {
    pub fn new(auth: FaultAuth) -> Faults {
        Faults {
            lanes: RwLock::default(),
            armed_until: Default::default(),
            base: Instant::now(),
            pause: RwLock::default(),
            active: Mutex::default(),
            next_id: AtomicU64::new(1),
            cuts: PerLane::from_fn(|_| watch::Sender::new(Cut::Drop)),
            auth,
        }
    }

    /// Starts `request` (already validated, lasting `duration_ms`) on `state`'s server, publishes its
    /// notice and returns how it is listed.
    pub async fn inject(
        &self,
        state: &AppState,
        request: &FaultRequest,
        duration_ms: u64,
    ) -> Fault {
        let started_ms = now_ms();
        let fault = Fault {
            id: self.next_id.fetch_add(1, Relaxed),
            kind: request.kind,
            lane: request.lane,
            started_ms,
            until_ms: started_ms + duration_ms,
            delay_ms: request.delay_ms,
        };
        let now = Instant::now();
        let window = Window {
            from: now,
            until: now + Duration::from_millis(duration_ms),
        };
        let lanes = LaneId::ALL
            .into_iter()
            .filter(|&lane| request.lane.covers(lane));
        let notice = |fault: &Fault| {
            EventBody::Notice(Notice {
                level: NoticeLevel::Warning,
                code: format!("fault_{}", fault.kind),
                text: format!("fault injected: {}", fault.describe()),
                fault: Some(fault.clone()),
                network: None,
                traffic: None,
            })
        };
        tracing::warn!("fault injected: {}", fault.describe());
        let announce = async |fault: &Fault| {
            // The fault takes effect either way; only its notice is missing if the stream is down.
            if let Err(err) = state.publish(notice(fault)).await {
                tracing::warn!("the fault's notice was not published: {err}");
            }
        };
        match request.kind {
            // Announced before it takes effect, so every lane hears of it before the silence.
            FaultKind::Pause => {
                announce(&fault).await;
                *write(&self.pause) = Some(window);
            }
            // Cut first: announcing it would wake every held long poll, which must meet the error.
            FaultKind::Drop => {
                for lane in lanes {
                    self.cut(lane, Cut::Drop);
                }
                announce(&fault).await;
            }
            // The announcement is the first event of the new history: clients resuming read it after
            // the gap notice telling them what the restart cost.
            FaultKind::Restart => {
                self.cut_all(Cut::Restart);
                // With a backplane the history lives in Redis and survives an instance's restart.
                if state.backplane.is_none() {
                    state.hub.restart();
                }
                announce(&fault).await;
            }
            FaultKind::HalfOpen | FaultKind::Delay | FaultKind::Error | FaultKind::NoHeartbeat => {
                // Announced first, so lanes that keep working show the notice before the fault's span.
                announce(&fault).await;
                let mut states = write(&self.lanes);
                for lane in lanes {
                    let state = &mut states[lane];
                    match request.kind {
                        FaultKind::HalfOpen => state.half_open = Some(window),
                        FaultKind::NoHeartbeat => state.no_heartbeat = Some(window),
                        FaultKind::Delay => {
                            let delay = Duration::from_millis(request.delay_ms.unwrap_or(0));
                            state.delay = Some((window, delay));
                        }
                        _ => state.error = Some(window),
                    }
                    let until = (window.until - self.base).as_millis() as u64;
                    self.armed_until[lane].fetch_max(until, Relaxed);
                }
            }
        }
        if request.kind.is_timed() {
            let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
            active.retain(|listed| listed.until_ms > started_ms);
            active.push(fault.clone());
        }
        fault
    }

    /// The faults still in effect.
    pub fn list(&self) -> FaultList {
        let now = now_ms();
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        active.retain(|fault| fault.until_ms > now);
        FaultList {
            auth: self.auth,
            active: active.clone(),
        }
    }

    /// Cuts every stream, call and held letter of every lane.
    pub fn cut_all(&self, how: Cut) {
        for lane in LaneId::ALL {
            self.cut(lane, how);
        }
    }

    fn cut(&self, lane: LaneId, how: Cut) {
        // send_replace notifies every receiver even when the value is the same as before.
        self.cuts[lane].send_replace(how);
    }

    /// Resolves when the lane's connections are cut; take it when the connection opens.
    pub fn cuts(&self, lane: LaneId) -> watch::Receiver<Cut> {
        self.cuts[lane].subscribe()
    }

    /// True while a `pause` fault holds every publication back.
    pub fn paused(&self) -> bool {
        read(&self.pause).is_some_and(|window| window.covers(Instant::now()))
    }

    /// What is wrong with `lane` right now, or `None` (without taking a lock) when nothing can be.
    fn on(&self, lane: LaneId) -> Option<(LaneState, Instant)> {
        let now = Instant::now();
        let armed_until = self.armed_until[lane].load(Relaxed);
        if (now - self.base).as_millis() as u64 >= armed_until {
            return None;
        }
        Some((read(&self.lanes)[lane], now))
    }

    /// Whether the lines of `lane` must send no heartbeats now (one atomic load when no timed fault is
    /// armed on the lane).
    pub(crate) fn heartbeats_off(&self, lane: LaneId) -> bool {
        self.on(lane)
            .is_some_and(|(state, now)| state.no_heartbeat.is_some_and(|window| window.covers(now)))
    }

    /// What the lab does to a letter of `lane` asked now.
    pub(crate) fn letter(&self, lane: LaneId) -> Letter {
        let Some((state, now)) = self.on(lane) else {
            return Letter::default();
        };
        Letter {
            error_for: state.error.filter(|w| w.covers(now)).map(|w| w.until - now),
            unanswered_until: state.half_open.filter(|w| w.covers(now)).map(|w| w.until),
            delay: state.delay.filter(|(w, _)| w.covers(now)).map(|(_, d)| d),
        }
    }
}

/// The faults that act on one letter.
#[derive(Debug, Default)]
pub(crate) struct Letter {
    /// An `error` fault: answer 503; it has this long to go.
    pub(crate) error_for: Option<Duration>,
    /// A `half_open` fault: the letter goes unanswered until then.
    unanswered_until: Option<Instant>,
    /// A `delay` fault: the answer waits this long.
    delay: Option<Duration>,
}

fn read<T: Copy>(lock: &RwLock<T>) -> T {
    // The guarded values are plain data written whole, so a poisoned lock still holds a valid value.
    *lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_shared::FaultTarget;
    use tokio_util::sync::CancellationToken;

    fn request(kind: FaultKind, lane: FaultTarget) -> FaultRequest {
        FaultRequest {
            kind,
            lane,
            duration_ms: None,
            delay_ms: (kind == FaultKind::Delay).then_some(100),
        }
    }

    #[tokio::test]
    async fn a_half_open_fault_silences_only_connections_that_were_open() {
        let state = AppState::new(crate::Config::quiet());
        let (faults, hub) = (&state.faults, &state.hub);
        let shutdown = CancellationToken::new();
        let ws_before = ConnectionFaults::new(faults, LaneId::Ws);
        let sse_before = ConnectionFaults::new(faults, LaneId::Sse);
        assert!(faults.on(LaneId::Ws).is_none(), "nothing armed yet");
        tokio::time::sleep(Duration::from_millis(2)).await;
        faults
            .inject(
                &state,
                &request(FaultKind::HalfOpen, FaultTarget::Lane(LaneId::Ws)),
                100,
            )
            .await;
        let ws_after = ConnectionFaults::new(faults, LaneId::Ws);
        assert_eq!(faults.list().active.len(), 1);
        assert_eq!(hub.head(), 1, "the fault is announced");
        let started = Instant::now();
        assert!(ws_before.hold(now_ms(), &shutdown).await.is_err());
        assert!(
            started.elapsed() >= Duration::from_millis(90),
            "silent until the end"
        );
        assert!(sse_before.hold(now_ms(), &shutdown).await.is_ok());
        assert!(ws_after.hold(now_ms(), &shutdown).await.is_ok());
        assert!(faults.on(LaneId::Ws).is_none(), "disarmed once over");
    }

    #[tokio::test]
    async fn a_drop_cuts_the_lanes_it_names() {
        let state = AppState::new(crate::Config::quiet());
        let faults = &state.faults;
        let mut ws = ConnectionFaults::new(faults, LaneId::Ws);
        let mut sse = ConnectionFaults::new(faults, LaneId::Sse);
        faults
            .inject(
                &state,
                &request(FaultKind::Drop, FaultTarget::Lane(LaneId::Ws)),
                0,
            )
            .await;
        tokio::time::timeout(Duration::from_secs(1), ws.cut())
            .await
            .expect("the ws connection is cut");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), sse.cut())
                .await
                .is_err(),
            "the sse connection is not"
        );
        assert!(
            faults.list().active.is_empty(),
            "instant faults are not listed"
        );
    }

    #[tokio::test]
    async fn a_restart_cuts_everything_and_starts_a_new_epoch_with_its_notice() {
        let state = AppState::new(crate::Config::quiet());
        let (faults, hub) = (&state.faults, &state.hub);
        hub.publish(EventBody::Notice(Notice {
            level: NoticeLevel::Info,
            code: "x".into(),
            text: "before".into(),
            fault: None,
            network: None,
            traffic: None,
        }));
        let epoch = hub.epoch();
        let mut poll = ConnectionFaults::new(faults, LaneId::LongPoll);
        faults
            .inject(&state, &request(FaultKind::Restart, FaultTarget::ALL), 0)
            .await;
        poll.cut().await;
        assert_ne!(hub.epoch(), epoch);
        let replay = hub.since(0, 10);
        assert_eq!(replay.gap.map(|gap| (gap.first, gap.last)), Some((1, 1)));
        assert_eq!(replay.events.len(), 1);
    }
}
