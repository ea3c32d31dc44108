//! The Switchboard server: one live event stream — real host load, a simulated ticker and chat — published
//! six ways at once, so a browser can receive it by letters (short polling), held letters (long
//! polling), an endless letter (HTTP streaming), radio (Server-Sent Events), phone call (WebSocket) and
//! video call (WebTransport over QUIC) side by side.
//!
//! Layout:
//! - [`hub`] — the publisher: seq and timestamp assignment, the bounded history, fan-out, resumes and gap
//!   notices. Every event is serialized once and its bytes shared by every lane and subscriber.
//! - [`lanes`] — one module per lane (`poll`, `longpoll`, `stream`, `sse`, `ws`, `webtransport`): thin
//!   handlers over the hub; `webtransport` runs its own QUIC endpoint on UDP.
//! - [`api`] — health, chat posts, `/api/stats` and `/metrics`.
//! - [`metering`] — per-lane counters, with bytes counted on the real TCP stream ([`listener`]; headers and framing
//!   included).
//! - [`sources`] — the host-load sampler and the ticker.
//! - [`backplane`] — with `--redis`, the stream and its history are shared by several instances through
//!   Redis, and the hub mirrors the shared stream.
//! - [`faults`] — the failure lab: faults injected on purpose through `/api/faults`; [`admin`] — who
//!   may inject them (and set network conditions and traffic).
//! - [`network`] — emulated network conditions per lane: round trips, jitter, bandwidth and loss.
//! - [`proxy`] — with `--upstream`, a reverse proxy in front of the person's own app: forwarded,
//!   recorded, classified into channels and exposed to the lab (`/api/app`).
//! - [`page`] — `nosniff` on every response and the page's Content-Security-Policy.
//! - [`traffic`] — the traffic pattern the sources follow (quiet, steady, bursty, firehose).
//! - [`limits`] — connections per lane and per client, chat rate, allowed WebSocket origins.
//! - [`takeover`] — the radio and the endless letter served off the connection, without hyper's
//!   buffers, when they open a new one.
//! - [`woken`] — a future polled only after it woke (a stream's rare endings, at every wake-up).
//! - [`config`] — the command-line flags; [`error`] — the HTTP error type.
//!
//! [`app`] builds the router (tests can drive it without a socket); [`run`] serves it on a listener until
//! a shutdown future resolves, then answers held requests, closes streams and waits for every task.
//! The wire format of every lane is in `docs/PROTOCOL.md`.

pub mod admin;
pub mod api;
pub mod backplane;
pub mod config;
pub mod error;
pub mod faults;
pub mod hub;
pub mod lanes;
pub mod limits;
pub mod listener;
pub mod metering;
pub mod network;
pub mod page;
pub mod proxy;
pub mod scenario;
pub mod sources;
pub mod takeover;
pub mod traffic;
pub mod woken;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::FutureExt;
use futures_util::future::Either;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

use axum::http::{HeaderName, HeaderValue};
use backplane::{Backplane, Stamp};
pub use config::Config;
use error::AppError;
use faults::Faults;
use hub::Hub;
use hyper::body::Incoming;
use limits::Limits;
use listener::{Deadlines, MeteredListener};
use metering::{ConnInfo, Meters, RequestHead, lane_of_path};
use network::Network;
use switchboard_shared::{EventBody, LaneId, Shape};
use tower::{Layer, ServiceExt};

/// Everything the handlers share; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub hub: Arc<Hub>,
    /// Where the phone calls' events are written without waking each call ([`lanes::ws::Exchange`]).
    pub exchange: Arc<lanes::ws::Exchange>,
    /// The shared stream of several instances, when started with `--redis`.
    pub backplane: Option<Arc<Backplane>>,
    pub meters: Arc<Meters>,
    pub faults: Arc<Faults>,
    /// The emulated network path of each lane.
    pub network: Arc<Network>,
    /// How often the server's own sources speak.
    pub traffic: Arc<traffic::TrafficControl>,
    pub limits: Arc<Limits>,
    pub config: Arc<Config>,
    /// Cancelled once on shutdown: held long polls answer, streams and calls end, sources stop.
    pub shutdown: CancellationToken,
    /// Every task the server starts (sources, WebSocket calls), so shutdown can wait for all of them.
    pub tasks: TaskTracker,
    pub instance: Arc<str>,
    pub started: Instant,
    /// The WebTransport endpoint, once [`run`] has started it.
    pub webtransport: Arc<std::sync::OnceLock<lanes::webtransport::Dialing>>,
    /// The proxy in front of the person's app, when started with `--upstream`.
    pub app: Option<Arc<proxy::AppProxy>>,
}

impl AppState {
    pub fn new(config: Config) -> AppState {
        let history = usize::try_from(config.history).unwrap_or(usize::MAX);
        let instance = config.instance_name();
        let backplane = config.redis.as_deref().map(|url| {
            // The flag's parser already refused anything that is not a Redis URL.
            Arc::new(Backplane::new(url, &instance, history).expect("a checked Redis URL"))
        });
        AppState {
            hub: Arc::new(Hub::new(history)),
            exchange: Arc::default(),
            backplane,
            meters: Arc::new(Meters::default()),
            faults: Arc::new(Faults::new(config.fault_auth())),
            network: Arc::new(Network::new(
                config.fault_auth(),
                config
                    .network
                    .as_deref()
                    .and_then(switchboard_shared::network::preset),
            )),
            traffic: Arc::new(traffic::TrafficControl::new(
                config.fault_auth(),
                config.traffic,
            )),
            limits: Arc::new(Limits::new(&config)),
            instance: instance.into(),
            config: Arc::new(config),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            started: Instant::now(),
            webtransport: Arc::default(),
            app: None,
        }
    }

    /// Publishes one event to every lane — of every instance, with a backplane. Refused, with the
    /// reason, when the shared stream cannot take it.
    pub async fn publish(&self, body: EventBody) -> Result<Stamp, AppError> {
        match &self.backplane {
            None => {
                let published = self.hub.publish(body);
                Ok(Stamp {
                    seq: published.seq,
                    ts_ms: published.ts_ms,
                })
            }
            // Boxed: the Redis round trip's future is ~2.7 KB, and every open phone call and video call
            // holds a chat publish's future in its own state for its whole life; boxed, an idle call
            // is that much smaller, and the rare chat message pays one allocation.
            Some(backplane) => Box::pin(backplane.publish(&body))
                .await
                .map_err(|err| AppError::Unavailable(err.to_string())),
        }
    }

    /// The greeting that opens every stream (SSE `hello`, WebSocket `hello`).
    pub fn hello(
        &self,
        resumed_after: Option<switchboard_shared::Seq>,
        request_head: Option<RequestHead>,
    ) -> switchboard_shared::ws::Hello {
        switchboard_shared::ws::Hello {
            epoch: self.hub.epoch(),
            head: self.hub.head(),
            oldest: self.hub.oldest(),
            resumed_after,
            heartbeat_ms: self.config.heartbeat_ms,
            instance: self.instance.to_string(),
            server_ms: hub::now_ms(),
            request_bytes: request_head.map(|head| head.bytes),
            connection_request: request_head.map(|head| head.on_connection),
        }
    }
}

/// The router: the server contract of `docs/PROTOCOL.md`, plus the built frontend at `/` when
/// configured.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/healthz", get(api::healthz))
        .merge(lanes::routes())
        .route(
            "/api/messages",
            post(api::post_message).layer(DefaultBodyLimit::max(api::MAX_POST_BYTES)),
        )
        .route(
            "/api/faults",
            get(faults::list)
                .post(faults::inject)
                .layer(DefaultBodyLimit::max(api::MAX_POST_BYTES)),
        )
        .route(
            "/api/network",
            get(network::get)
                .post(network::post)
                .layer(DefaultBodyLimit::max(api::MAX_POST_BYTES)),
        )
        .route(
            "/api/traffic",
            get(traffic::get)
                .post(traffic::post)
                .layer(DefaultBodyLimit::max(api::MAX_POST_BYTES)),
        )
        .route("/api/app", get(proxy::api::get))
        .route("/api/app/har", get(proxy::api::har))
        .route("/api/app/reset", post(proxy::api::reset))
        .route(
            "/api/app/scenario",
            post(proxy::api::scenario).layer(DefaultBodyLimit::max(api::MAX_POST_BYTES)),
        )
        .route(
            "/api/app/faults",
            post(proxy::api::faults).layer(DefaultBodyLimit::max(api::MAX_POST_BYTES)),
        )
        .route(
            "/api/app/network",
            post(proxy::api::network).layer(DefaultBodyLimit::max(api::MAX_POST_BYTES)),
        )
        .route("/api/stats", get(api::stats))
        .route("/metrics", get(api::metrics));
    let router = match &state.config.static_dir {
        // The build writes Brotli and gzip copies beside each file; a browser that takes them gets them.
        Some(dir) => api.fallback_service(
            ServeDir::new(dir)
                .precompressed_br()
                .precompressed_gzip()
                .fallback(get(api::not_found)),
        ),
        None => api.route("/", get(api::index)).fallback(api::not_found),
    };
    router
        .layer(middleware::from_fn_with_state(
            state.clone(),
            faults::middleware,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), host_guard))
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        // Outside the deadline: time on the emulated path is the network's, not the server's.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            network::middleware,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), account))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            page::middleware,
        ))
        .layer(middleware::from_fn(trace))
        .with_state(state)
}

/// Traces every request but the streams': the trace layer stamps each body chunk with the clock, and a
/// stream's chunks are its events (at 10,000 streams, a hundred thousand a second). A stream's opening is
/// still counted and its errors logged by [`account`] and [`error::AppError`].
async fn trace(request: Request, next: Next) -> Response {
    let stream =
        lane_of_path(request.uri().path()).is_some_and(|lane| lane.shape() == Shape::Stream);
    if stream {
        // Once per stream, not per chunk: `RUST_LOG=debug` still shows every request.
        let (method, path) = (request.method().clone(), request.uri().path().to_owned());
        let response = next.run(request).await;
        tracing::debug!(%method, path, status = response.status().as_u16(), "stream opened");
        return response;
    }
    match TraceLayer::new_for_http()
        .layer(next)
        .oneshot(request)
        .await
    {
        Ok(response) => response.map(axum::body::Body::new),
        Err(never) => match never {},
    }
}

/// The client a trusted proxy forwarded the request for: the last address of `X-Forwarded-For`, the
/// one the proxy itself added (any before it came from the client and prove nothing).
fn forwarded_client(headers: &axum::http::HeaderMap) -> Option<std::net::IpAddr> {
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .next_back()?;
    forwarded.rsplit(',').next()?.trim().parse().ok()
}

/// Counts every request against its lane and tells the connection's byte meter which lane it serves.
async fn account(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let lane = lane_of_path(request.uri().path());
    let counters = match lane {
        Some(lane) => state.meters.lane(lane).clone(),
        None => state.meters.other().clone(),
    };
    counters.requests.fetch_add(1, Relaxed);
    let conn = request
        .extensions()
        .get::<ConnectInfo<ConnInfo>>()
        .map(|ConnectInfo(conn)| conn.clone());
    let mut head = None;
    if let Some(conn) = &conn {
        let begun = conn.meter.begin(lane);
        head = Some(begun);
        let mut conn = conn.clone();
        if state.config.trust_proxy
            && let Some(client) = forwarded_client(request.headers())
        {
            conn.client = client;
        }
        request.extensions_mut().insert(conn);
        request.extensions_mut().insert(begun);
    }
    let mut response = next.run(request).await;
    if let Some(head) = head {
        // Browsers add request headers that pages cannot see, and hide whether a request opened a new
        // connection; these let the page count its letters' real size and their handshakes.
        let headers = response.headers_mut();
        headers.insert(
            HeaderName::from_static(switchboard_shared::REQUEST_BYTES_HEADER),
            HeaderValue::from(head.bytes),
        );
        headers.insert(
            HeaderName::from_static(switchboard_shared::CONNECTION_REQUEST_HEADER),
            HeaderValue::from(head.on_connection),
        );
    }
    if response.status().is_client_error() || response.status().is_server_error() {
        counters.errors.fetch_add(1, Relaxed);
    }
    if let Some(conn) = conn {
        // A request body read by the handler belongs to this request too.
        conn.meter.end();
    }
    response
}

/// What changes things (every `POST`), the phone call's upgrade and what tells of the proxied app (its
/// report and its HAR, which carry its cookies and credentials when they are recorded) must name a host
/// this server answers to ([`Limits::check_host`]): a page under a name rebound to this machine cannot
/// read them. Other reads are answered under any name.
async fn host_guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let guarded = request.method() == axum::http::Method::POST
        || lane_of_path(request.uri().path()) == Some(LaneId::Ws)
        || request.uri().path().starts_with("/api/app");
    if guarded {
        let host = request
            .headers()
            .get(axum::http::header::HOST)
            .and_then(|host| host.to_str().ok());
        if let Err(err) = state.limits.check_host(host) {
            return err.into_response();
        }
    }
    next.run(request).await
}

/// Every request that is not a stream gets a deadline: a held letter its wait plus the usual
/// allowance, everything else the allowance alone, so no request (or slow body) occupies the server
/// for ever.
async fn deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let allowance = Duration::from_millis(state.config.request_timeout_ms);
    let limit = match lane_of_path(request.uri().path()).map(LaneId::shape) {
        Some(Shape::Stream | Shape::Duplex) => return next.run(request).await,
        Some(Shape::HeldRequest) => allowance + Duration::from_millis(state.config.max_wait_ms),
        Some(Shape::Request) | None => allowance,
    };
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => AppError::Timeout(limit).into_response(),
    }
}

/// Serves Switchboard on `listener` until `shutdown` resolves; then answers held long polls, ends every
/// stream and call, stops the sources, and returns once every task has finished.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let proxy = match &config.upstream {
        Some(_) => Some(TcpListener::bind(config.proxy_addr).await?),
        None => None,
    };
    run_with_proxy(listener, proxy, config, shutdown).await
}

/// [`run`], with the app proxy's listener bound by the caller (so it can say where it listens, and
/// tests can bind port 0); `proxy` is used only with `--upstream`.
pub async fn run_with_proxy(
    listener: TcpListener,
    proxy_listener: Option<TcpListener>,
    mut config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The address really listened on decides who may inject faults.
    config.addr = listener.local_addr()?;
    if let Some(proxy) = &proxy_listener {
        config.proxy_addr = proxy.local_addr()?;
    }
    for unused in config.unused_flags() {
        tracing::warn!("{unused}");
    }
    if config.fault_auth() == switchboard_shared::FaultAuth::Disabled {
        tracing::warn!(
            "fault injection is off: {} is reachable from other machines and no --admin-token is set",
            config.addr
        );
    }
    let config_addr = config.addr;
    let mut state = AppState::new(config);
    if let (Some(upstream), Some(listener)) = (state.config.upstream.clone(), proxy_listener) {
        let settings = proxy::Settings {
            send_timeout: state.config.send_timeout(),
            upstream_timeout: Duration::from_millis(state.config.upstream_timeout_ms),
            tcp_per_client: state.config.tcp_per_client(),
            record_secrets: state.config.record_secrets,
            meters: state.meters.clone(),
        };
        let app = Arc::new(proxy::AppProxy::new(
            upstream,
            state.config.proxy_addr,
            settings,
            state.shutdown.clone(),
            state.tasks.clone(),
        ));
        if !state.config.proxy_addr.ip().is_loopback() {
            tracing::warn!(
                "the proxy in front of your app listens on {}, beyond loopback: anyone who can reach it can use your app through it",
                state.config.proxy_addr
            );
        }
        state.app = Some(app.clone());
        state.tasks.spawn(app.serve(listener));
    }
    let state = state;
    if let Some(backplane) = &state.backplane {
        let faults = state.faults.clone();
        state.tasks.spawn(backplane.clone().follow(
            state.hub.clone(),
            state.shutdown.clone(),
            // Redis lost the history: every open stream and held letter ends, and its client resumes in
            // the new epoch.
            move || faults.cut_all(faults::Cut::Restart),
        ));
        state.tasks.spawn(traffic::follow_changes(state.clone()));
    }
    sources::spawn(&state);
    // WebTransport is one lane among six: when its UDP port cannot be opened the others still serve,
    // and `/api/webtransport` says why the page cannot dial it.
    match lanes::webtransport::start(&state, config_addr) {
        Ok(dialing) => {
            let _ = state.webtransport.set(dialing);
        }
        Err(err) => tracing::warn!("WebTransport is off: cannot open its UDP endpoint: {err}"),
    }
    let token = state.shutdown.clone();
    let tasks = state.tasks.clone();
    let mut listener = MeteredListener::new(
        listener,
        state.meters.clone(),
        state.network.clone(),
        Deadlines {
            head: Duration::from_millis(state.config.request_timeout_ms),
            send: state.config.send_timeout(),
        },
        state.config.tcp_per_client(),
    );
    let idle = Duration::from_millis(state.config.idle_timeout_ms);
    let mut http = hyper::server::conn::http1::Builder::new();
    // hyper starts this clock whenever it waits for a request head, so it is the idle timeout between
    // requests (the listener holds a head that has begun to the shorter request timeout).
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_millis(state.config.idle_timeout_ms))
        .max_buf_size(state.config.max_head_bytes as usize);
    let meters = state.meters.clone();
    let deadline = Duration::from_millis(state.config.shutdown_timeout_ms);
    let stopping = token.clone();
    let router = app(state);
    let connections = TaskTracker::new();
    let counted = meters.clone();
    let serving = async move {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, remote) = tokio::select! {
                accepted = listener.accept() => accepted,
                () = &mut shutdown => break,
            };
            let info = ConnInfo {
                remote,
                client: remote.ip(),
                meter: stream.meter().clone(),
            };
            connections.spawn(connection(
                stream,
                info,
                idle,
                http.clone(),
                router.clone(),
                token.clone(),
                meters.clone(),
            ));
        }
        drop(listener);
        tracing::info!("shutting down: answering held requests and closing streams");
        token.cancel();
        connections.close();
        connections.wait().await;
        tasks.close();
        tasks.wait().await;
        Ok::<_, std::io::Error>(())
    };
    // The accept loop runs as a task on the runtime's workers, not on the caller's thread: there it was
    // woken across threads (a futex wake and a context switch) for every connection accepted, and the
    // connections' first allocations came from a third malloc arena beside the workers' two.
    let serving = tokio::spawn(serving);
    let abandon = serving.abort_handle();
    // A peer that stops reading (its socket's buffer full), or never finishes its request, would keep a
    // graceful shutdown waiting for ever: after the deadline what is left is abandoned.
    let served = tokio::select! {
        served = serving => served.unwrap_or_else(|err| Err(std::io::Error::other(err))),
        () = async { stopping.cancelled().await; tokio::time::sleep(deadline).await } => {
            tracing::warn!(
                "shutdown deadline of {} ms passed: abandoning {} connection(s) still open",
                deadline.as_millis(),
                counted.tcp_open()
            );
            Ok(())
        }
    };
    // Past the deadline the accept loop and what it still waits for are dropped here, as they were
    // when the loop ran in this future.
    abandon.abort();
    served
}

/// One accepted connection: a stream taken over off it, or hyper serving it.
///
/// The task holds this for the connection's whole life, so it is the look at the first request and
/// then what serves it, never both: as one `async` block it kept room for the socket and all it was
/// handed beside the stream's state (tokio's task was 1,792 bytes for every open SSE stream; 640 now).
fn connection(
    stream: listener::MeteredStream,
    info: ConnInfo,
    idle: Duration,
    http: hyper::server::conn::http1::Builder,
    router: Router,
    token: CancellationToken,
    meters: Arc<Meters>,
) -> impl Future<Output = ()> + Send {
    let cancelled = token.clone();
    // Boxed: the look at the first request lasts until it comes, the stream it may start for hours.
    Box::pin(async move {
        let mut stream = stream;
        let opening = tokio::select! {
            opening = takeover::first_request(&mut stream, idle, &info) => Some(opening),
            () = cancelled.cancelled() => None,
        };
        (stream, info, opening)
    })
    .then(move |(stream, info, opening)| match opening {
        Some(takeover::Opening::Stream(request)) => {
            Either::Left(takeover::serve(stream, *request, router))
        }
        // Boxed: hyper's connection state is large, and a task is as big as its largest state, so
        // inline it would weigh on every taken-over stream too.
        Some(takeover::Opening::Hyper) => Either::Right(Either::Left(Box::pin(serve_with_hyper(
            http, stream, info, router, token, meters,
        )))),
        Some(takeover::Opening::Idle) => {
            info.meter.reset_on_close();
            meters.cuts.idle_timeout.fetch_add(1, Relaxed);
            Either::Right(Either::Right(std::future::ready(())))
        }
        Some(takeover::Opening::Gone) | None => {
            Either::Right(Either::Right(std::future::ready(())))
        }
    })
}

/// Serves a connection with hyper until it ends, or until the shutdown has let it finish.
async fn serve_with_hyper(
    http: hyper::server::conn::http1::Builder,
    stream: listener::MeteredStream,
    info: ConnInfo,
    router: Router,
    token: CancellationToken,
    meters: Arc<Meters>,
) {
    let meter = info.meter.clone();
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(info.clone()));
        router.clone().oneshot(request)
    });
    let connection = http
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = token.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = served {
        if err.is_timeout() {
            meter.reset_on_close();
        }
        count_cut(&meters, &err);
    }
}

/// Counts a connection that hyper closed on one of its limits (the listener counts its own).
fn count_cut(meters: &Meters, err: &hyper::Error) {
    if err.is_timeout() {
        meters.cuts.idle_timeout.fetch_add(1, Relaxed);
    } else if err.is_parse_too_large() {
        meters.cuts.head_too_large.fetch_add(1, Relaxed);
    } else {
        tracing::debug!("connection ended: {err}");
    }
}

/// How many instants a heartbeat interval offers for streams to beat at (see [`heartbeat_interval`]).
const HEARTBEAT_SLOTS: u32 = 40;

/// The heartbeat timer of a stream: first tick at least one interval from now, and no bursts after a
/// stall.
///
/// Streams beat together: each tick falls on one of [`HEARTBEAT_SLOTS`] instants per interval (every
/// 50 ms at the default 2 s), shared by every stream of the process, rather than wherever in the interval
/// the stream happened to open. Beating at 5,000 scattered instants woke an idle worker thread for
/// nearly every one (the timer, then the peer's pong to the phone call's ping): ~2,000 context switches
/// a second at 5,000 calls, where Node's `ws`, pinging every client at once, makes ~50. A slot's streams
/// are woken by one pass of the timer and their pongs come back together.
pub(crate) fn heartbeat_interval(every: Duration) -> Interval {
    let now = tokio::time::Instant::now();
    let first = on_heartbeat_slot(now + every, every);
    let mut interval = tokio::time::interval_at(first, every);
    // Skip, not delay: a late tick does not move the next ones off the shared instants.
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    interval
}

/// The first instant at or after `at` that is a heartbeat slot for interval `every`: slots are counted
/// from one origin for the whole process, so streams opened at different times share them.
fn on_heartbeat_slot(at: tokio::time::Instant, every: Duration) -> tokio::time::Instant {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let origin = tokio::time::Instant::from_std(*ORIGIN.get_or_init(std::time::Instant::now));
    let slot = (every / HEARTBEAT_SLOTS).max(Duration::from_millis(1));
    // A clock paused and moved by a test may stand before the origin: no slot to round to then.
    let Some(since) = at.checked_duration_since(origin) else {
        return at;
    };
    let slots = since.as_nanos().div_ceil(slot.as_nanos());
    let rounded = u32::try_from(slots)
        .ok()
        .and_then(|slots| slot.checked_mul(slots))
        .unwrap_or(since);
    origin + rounded
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_shared::{ChatMessage, ChatVia};

    /// Every open connection is one task holding this; for a taken-over stream it is what the stream
    /// costs beside its body. As one `async` block it was ~1,700 bytes (tokio's task 1,792) when the
    /// stream's own future was 1,064: the block kept the socket and all it was handed beside it.
    #[test]
    fn a_connection_holds_what_serves_it_and_little_more() {
        fn of_seven<A, B, C, D, E, F, G, R>(_: fn(A, B, C, D, E, F, G) -> R) -> usize {
            std::mem::size_of::<R>()
        }
        fn of_three<A, B, C, R>(_: fn(A, B, C) -> R) -> usize {
            std::mem::size_of::<R>()
        }
        let size = of_seven(connection);
        let stream = of_three(takeover::serve);
        assert!(
            size <= stream + 16,
            "a connection's future is {size} bytes, a stream's {stream}"
        );
    }

    #[test]
    fn heartbeats_fall_on_shared_instants_at_least_an_interval_away() {
        let every = Duration::from_secs(2);
        let slot = every / HEARTBEAT_SLOTS;
        let start = tokio::time::Instant::now();
        let mut firsts = Vec::new();
        // Streams opened 1 ms apart over a whole interval.
        for ms in 0..2_000 {
            let opened = start + Duration::from_millis(ms);
            let first = on_heartbeat_slot(opened + every, every);
            assert!(
                first >= opened + every,
                "a first beat comes no sooner than one interval"
            );
            assert!(first < opened + every + slot, "and at most one slot later");
            firsts.push(first);
        }
        firsts.sort();
        firsts.dedup();
        // 2,000 streams beat at the interval's 40 instants (41 with the ends of the range), not at 2,000.
        assert!(
            firsts.len() <= HEARTBEAT_SLOTS as usize + 1,
            "{} instants",
            firsts.len()
        );
        for pair in firsts.windows(2) {
            assert_eq!(pair[1] - pair[0], slot);
        }
    }

    /// Every open phone call and video call holds room for a chat publish's future for its whole life
    /// (the largest thing it awaits), so that future must stay small: the Redis round trip inside it
    /// (~2.7 KB) is boxed. Unboxed, an idle call took 9.6 KB instead of 7.4 (BENCHMARKS.md).
    #[test]
    fn a_chat_publish_future_is_small_because_every_call_holds_one() {
        let state = AppState::new(Config::quiet());
        let publish = state.publish(EventBody::Chat(ChatMessage {
            author: "ada".into(),
            text: "hello".into(),
            via: ChatVia::Ws,
            client_ref: None,
        }));
        let size = std::mem::size_of_val(&publish);
        assert!(size <= 512, "AppState::publish's future is {size} bytes");
    }
}
