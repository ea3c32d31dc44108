//! The failure lab: faults injected on purpose (`POST /api/faults`), so a person can watch each lane
//! notice and recover.
//!
//! The lanes consult [`Faults`] at the points where a real failure would bite:
//! - `pause` — the sources and chat stop publishing (heartbeats go on);
//! - `drop` — every open stream, call and held long poll of the lane is cut ([`Faults::cuts`]);
//! - `half_open` — connections open when it begins write nothing more, heartbeats included, until it
//!   ends, and are then closed without a word; letters asked meanwhile are held unanswered;
//! - `delay` — every reply or frame waits longer (both through [`Exposure::hold`]);
//! - `error` — requests and dials of the lane are answered `503` ([`middleware`]);
//! - `restart` — everything is cut and the hub's history starts a new epoch.
//!
//! Frames are the hot path: each asks [`Exposure::hold`], which is one relaxed atomic load while no timed
//! fault is in effect on its lane, and a short read lock only while one is. No lock is held across an
//! await.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use switchboard_shared::{
    EventBody, Fault, FaultAuth, FaultKind, FaultList, FaultRequest, LaneId, Notice, NoticeLevel,
    PerLane,
};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::error::AppError;
use crate::hub::now_ms;
use crate::metering::{ConnInfo, lane_of_path};

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
            FaultKind::HalfOpen | FaultKind::Delay | FaultKind::Error => {
                // Announced first, so lanes that keep working show the notice before the fault's span.
                announce(&fault).await;
                let mut states = write(&self.lanes);
                for lane in lanes {
                    let state = &mut states[lane];
                    match request.kind {
                        FaultKind::HalfOpen => state.half_open = Some(window),
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

    /// What the lab does to a letter of `lane` asked now.
    fn letter(&self, lane: LaneId) -> Letter {
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
struct Letter {
    /// An `error` fault: answer 503; it has this long to go.
    error_for: Option<Duration>,
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

/// `GET /api/faults`: the faults in effect and who may inject more.
pub async fn list(State(state): State<AppState>) -> Json<FaultList> {
    Json(state.faults.list())
}

/// `POST /api/faults`: injects one fault.
pub async fn inject(
    State(state): State<AppState>,
    conn: Option<axum::Extension<ConnInfo>>,
    headers: HeaderMap,
    body: Result<Json<FaultRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Fault>), AppError> {
    authorize(&state, conn.map(|c| c.0), &headers)?;
    let Json(request) = body?;
    let duration_ms = request.validate().map_err(|rejection| AppError::Invalid {
        code: "invalid_fault",
        message: rejection.to_string(),
    })?;
    let fault = state.faults.inject(&state, &request, duration_ms).await;
    Ok((StatusCode::CREATED, Json(fault)))
}

pub(crate) fn authorize(
    state: &AppState,
    conn: Option<ConnInfo>,
    headers: &HeaderMap,
) -> Result<(), AppError> {
    // Faults and network conditions are changed by the same people.
    match state.faults.auth {
        FaultAuth::Disabled => Err(AppError::Forbidden(
            "fault injection is off: this server listens beyond loopback and has no --admin-token"
                .into(),
        )),
        FaultAuth::Loopback => match conn {
            Some(conn) if conn.remote.ip().is_loopback() => Ok(()),
            _ => Err(AppError::Forbidden(
                "faults may only be injected from the server's own machine".into(),
            )),
        },
        FaultAuth::Token => {
            let expected = state.config.admin_token.as_deref().unwrap_or_default();
            let presented = headers
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "))
                .map(str::trim);
            match presented {
                Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => Ok(()),
                Some(_) => Err(AppError::Forbidden("wrong admin token".into())),
                None => Err(AppError::Unauthorized(
                    "injecting faults needs Authorization: Bearer <admin token>".into(),
                )),
            }
        }
    }
}

/// Compares without returning early, so the time taken does not tell how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The faults that act on a lane's HTTP requests: `error` answers 503 before the handler runs; on the
/// letters lanes, `half_open` holds the letter unanswered and `delay` holds the answer.
pub async fn middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(lane) = lane_of_path(request.uri().path()) else {
        return next.run(request).await;
    };
    let letter = state.faults.letter(lane);
    if let Some(remaining) = letter.error_for {
        let mut response = AppError::Unavailable(format!(
            "the {lane} lane is failing on purpose (an error fault) for another {} ms",
            remaining.as_millis()
        ))
        .into_response();
        let retry_after = remaining.as_secs().max(1);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        return response;
    }
    // Streams and calls meet `half_open` and `delay` frame by frame (`Exposure::hold`), not here.
    if !lane.shape().is_request() {
        return next.run(request).await;
    }
    if let Some(until) = letter.unanswered_until {
        // A letter into a half-open line: nothing comes back until the line is torn down.
        tokio::select! {
            () = tokio::time::sleep_until(until) => {}
            () = state.shutdown.cancelled() => {}
        }
        return AppError::Unavailable("this letter was lost in a half-open connection".into())
            .into_response();
    }
    let response = next.run(request).await;
    if let Some(delay) = letter.delay {
        tokio::time::sleep(delay).await;
    }
    response
}

/// Why the lab cut connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// A network failure: the connection just ends, nothing said.
    Drop,
    /// The server restarts: a WebSocket is told so (close code 1012) before it goes.
    Restart,
}

/// A connection's view of the lab: taken when a stream or call opens.
#[derive(Debug)]
pub struct Exposure {
    faults: Arc<Faults>,
    lane: LaneId,
    opened: Instant,
    cuts: watch::Receiver<Cut>,
}

/// The connection must go: a half-open fault kept it silent to its end.
#[derive(Debug)]
pub struct Silenced;

impl Exposure {
    pub fn new(faults: &Arc<Faults>, lane: LaneId) -> Exposure {
        let mut cuts = faults.cuts(lane);
        cuts.mark_unchanged();
        Exposure {
            faults: faults.clone(),
            lane,
            opened: Instant::now(),
            cuts,
        }
    }

    /// Holds a frame made (published, or generated) at `made_ms` as the faults on the lane say: a
    /// `delay` until `made_ms` + the delay (counted from the frame's making, so a backlog does not add
    /// it once per frame); a `half_open` fault that began after this connection opened keeps it silent
    /// until the fault ends, and then the connection must be torn down without a word. Returns at
    /// once, without a lock, when no timed fault is in effect on the lane.
    pub async fn hold(&self, made_ms: u64, shutdown: &CancellationToken) -> Result<(), Silenced> {
        let Some((state, now)) = self.faults.on(self.lane) else {
            return Ok(());
        };
        if let Some(window) = state.half_open
            && window.covers(now)
            && self.opened < window.from
        {
            tokio::select! {
                () = tokio::time::sleep_until(window.until) => {}
                () = shutdown.cancelled() => {}
            }
            return Err(Silenced);
        }
        if let Some((window, delay)) = state.delay
            && window.covers(now)
        {
            let due = made_ms + delay.as_millis() as u64;
            tokio::time::sleep(Duration::from_millis(due.saturating_sub(now_ms()))).await;
        }
        Ok(())
    }

    /// True while no timed fault is armed on the lane (one atomic load): frames may then be written
    /// together, with nothing to hold any one of them back.
    pub fn is_quiet(&self) -> bool {
        self.faults.on(self.lane).is_none()
    }

    /// Resolves when a stream or call must end: the server shuts down (`None`) or the lab cuts it
    /// (how). Made once per connection and polled for its whole life, so a frame does not register and
    /// unregister two wakers on shared notifiers (the shutdown token's, the cut watch's) each time it is
    /// written: at 100,000 frames a second those locks showed in the profile.
    pub fn ending(
        &self,
        shutdown: &CancellationToken,
    ) -> impl Future<Output = Option<Cut>> + Send + 'static {
        let mut cuts = self.faults.cuts(self.lane);
        cuts.mark_unchanged();
        let shutdown = shutdown.clone().cancelled_owned();
        async move {
            tokio::select! {
                biased;
                () = shutdown => None,
                Ok(()) = cuts.changed() => Some(*cuts.borrow_and_update()),
            }
        }
    }

    /// Resolves when the lab cuts this connection, saying how.
    pub async fn cut(&mut self) -> Cut {
        if self.cuts.changed().await.is_err() {
            // The server is gone; nothing will cut this connection.
            std::future::pending::<()>().await;
        }
        *self.cuts.borrow_and_update()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_shared::FaultTarget;

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
        let ws_before = Exposure::new(faults, LaneId::Ws);
        let sse_before = Exposure::new(faults, LaneId::Sse);
        assert!(faults.on(LaneId::Ws).is_none(), "nothing armed yet");
        tokio::time::sleep(Duration::from_millis(2)).await;
        faults
            .inject(
                &state,
                &request(FaultKind::HalfOpen, FaultTarget::Lane(LaneId::Ws)),
                100,
            )
            .await;
        let ws_after = Exposure::new(faults, LaneId::Ws);
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
        let mut ws = Exposure::new(faults, LaneId::Ws);
        let mut sse = Exposure::new(faults, LaneId::Sse);
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
        let mut poll = Exposure::new(faults, LaneId::LongPoll);
        faults
            .inject(&state, &request(FaultKind::Restart, FaultTarget::ALL), 0)
            .await;
        poll.cut().await;
        assert_ne!(hub.epoch(), epoch);
        let replay = hub.since(0, 10);
        assert_eq!(replay.gap.map(|gap| (gap.first, gap.last)), Some((1, 1)));
        assert_eq!(replay.events.len(), 1);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secre"));
    }
}
