//! Forwarding one request to the app, faithfully: every method, path, query and body, both ways,
//! streamed and never buffered whole; a WebSocket upgrade handed to [`super::relay`]. Each browser
//! connection has its own connection to the app (opened with its first request), so what the lab does
//! to one — a drop, a half-open, an idle timeout — reaches the app as it would through a real proxy.
//!
//! This module only forwards: what acts on the traffic (the recorder, each fault, the emulated network)
//! is a stage of the [`super::stage::Pipeline`], asked at each point of the request's life.
//!
//! Who is to blame is said truly: a browser whose body broke gets its own `400`, a body that stopped
//! coming a `408`, an app that never answered its head a `504`, an app that could not be reached or
//! broke off a `502` naming it. An app that closed an idle kept-alive connection just as a request was
//! sent on it does not cost a `502`: a request the app never read is sent once more on a fresh
//! connection.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::body::{Body as _, Frame, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use super::AppProxy;
use super::conn::{Conn, CutBy, ProxiedStream};
use super::headers::{is_websocket_upgrade, onward};
use super::relay::{self, Events};
use super::stage::{Direction, End, Fate, Flow, Form, Message, Verdict};
use crate::hub::now_ms_f64;
use switchboard_shared::app::Reached;

/// How long the proxy waits for the app to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The first bytes of an answer's piece the stages are shown as text.
const TEXT_READ: usize = 4 * 1024;
/// How long the browser's side gets to write out what came before an answer the app broke off.
const WRITE_GRACE: Duration = Duration::from_millis(20);
/// How often a held message looks whether it may go.
const HELD_LOOK: Duration = Duration::from_millis(100);
/// The most bytes the proxy reads from the app at once: an answer's chunks are at most this, and its
/// head too (a larger head is refused as the app's error).
pub const UPSTREAM_BUFFER: usize = 64 * 1024;
/// Chunks of an answer read from the app and not yet taken by the browser: with [`UPSTREAM_BUFFER`],
/// what a download the browser does not read holds in the proxy.
const CHUNKS_AHEAD: usize = 2;

/// The upstream connection of one browser connection, opened with its first request.
pub type Leg = Arc<tokio::sync::Mutex<Option<SendRequest<Body>>>>;

/// Serves one request of a browser connection.
pub async fn handle(
    proxy: Arc<AppProxy>,
    conn: Arc<Conn>,
    leg: Leg,
    mut request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let upgrade = is_websocket_upgrade(request.headers());
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .map_or_else(|| proxy.proxy_authority.clone(), str::to_owned);
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned());
    let key = proxy.channel_of(
        request.method().as_str(),
        &host,
        request.uri().path(),
        upgrade,
    );
    conn.set_key(key.clone());
    let first = conn.requests.fetch_add(1, Relaxed) == 0;
    let scheme = if upgrade { "ws" } else { "http" };
    let flow = Arc::new(Flow::new(
        proxy.clone(),
        conn.clone(),
        key,
        request.method().clone(),
        format!("{scheme}://{host}{path_and_query}"),
        first,
        upgrade,
    ));
    let downstream_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let (parts, body) = request.into_parts();
    match proxy.pipeline.request(&flow, &parts).await {
        Verdict::Pass | Verdict::Wait(_) | Verdict::Hold => {}
        Verdict::Answer { status, words } => {
            return Ok(own_answer(&flow, status, &parts.headers, &words));
        }
        // The flow is held until the browser or the lab ends the connection; it then ends cancelled.
        Verdict::NoAnswer => return std::future::pending().await,
    }

    // The request as the app receives it.
    let browser_headers = parts.headers.clone();
    let mut headers = parts.headers;
    onward(&mut headers);
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        // No compression is negotiated, so every frame can be read.
        headers.remove(header::SEC_WEBSOCKET_EXTENSIONS);
    }
    forwarded(&proxy, &conn, &host, &mut headers);
    let settings = &proxy.settings;
    let trouble: Trouble = Arc::default();
    // A request the app may be sent twice (RFC 9110 §9.2.2) with no body to send again.
    let again = (is_idempotent(&parts.method) && body.is_end_stream()).then(|| {
        (
            parts.method.clone(),
            path_and_query.clone(),
            headers.clone(),
        )
    });
    // The app's time to answer counts from the end of the request's body (a long upload is not the
    // app's slowness; a body that stops coming has a deadline of its own).
    let sent_whole = CancellationToken::new();
    let body = if upgrade || body.is_end_stream() {
        sent_whole.cancel();
        if upgrade {
            Body::empty()
        } else {
            Body::new(body)
        }
    } else {
        Body::new(UpBody::new(
            body,
            flow.clone(),
            trouble.clone(),
            settings.upstream_timeout,
            sent_whole.clone(),
        ))
    };
    let upstream_request = build(parts.method, &path_and_query, headers, body);
    let head_deadline = async {
        sent_whole.cancelled().await;
        tokio::time::sleep(settings.upstream_timeout).await;
    };
    let sent = tokio::select! {
        sent = send(&proxy, &flow, &leg, upstream_request, again) => Some(sent),
        () = head_deadline => None,
    };
    let mut response = match sent {
        Some(Ok(response)) => response,
        Some(Err(failure)) => {
            let taken = trouble.lock().unwrap_or_else(|e| e.into_inner()).take();
            return Ok(failed(&flow, &browser_headers, taken, failure));
        }
        None => {
            // The leg is mid-request: no later request may be sent on it.
            *leg.lock().await = None;
            let words = format!(
                "Switchboard's proxy waited {} for your app at {} to answer, and it did not.",
                switchboard_shared::format::format_ms(
                    settings.upstream_timeout.as_secs_f64() * 1000.0
                ),
                proxy.upstream.url
            );
            return Ok(own_answer(
                &flow,
                StatusCode::GATEWAY_TIMEOUT,
                &browser_headers,
                &words,
            ));
        }
    };
    proxy.upstream_answered(None);
    let status = response.status();
    let upstream_upgrade = (upgrade && status == StatusCode::SWITCHING_PROTOCOLS)
        .then(|| hyper::upgrade::on(&mut response));
    let (mut head, upstream_body) = response.into_parts();
    let wait = proxy.pipeline.response(&flow, &head, false);
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    onward(&mut head.headers);

    if let (Some(downstream), Some(upstream)) = (downstream_upgrade, upstream_upgrade) {
        head.headers.remove(header::SEC_WEBSOCKET_EXTENSIONS);
        head.headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        head.headers
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        conn.upgraded.store(true, Relaxed);
        proxy.tasks.spawn(socket(flow, downstream, upstream));
        return Ok(Response::from_parts(head, Body::empty()));
    }

    let mime = head
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let events = switchboard_shared::har::classify::event_stream(&flow.url, &mime);
    if events.is_some() {
        // Nothing between the app and the browser may hold its events back.
        head.headers
            .insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    let body = pump(flow, upstream_body, events);
    Ok(Response::from_parts(head, body))
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

fn build(method: Method, target: &str, headers: HeaderMap, body: Body) -> Request<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri(target)
        .version(axum::http::Version::HTTP_11)
        .body(body)
        .expect("parts of a request that parsed");
    *request.headers_mut() = headers;
    request
}

/// Says who the request came through for, and names the app's own host where the browser named the
/// proxy's. A foreign `Host` or `Origin` is passed on unchanged, for the app to judge: rewriting it
/// would defeat the app's own defence against DNS rebinding.
fn forwarded(proxy: &AppProxy, conn: &Conn, host: &str, headers: &mut HeaderMap) {
    let forwarded_for = match headers
        .get("x-forwarded-for")
        .and_then(|value| value.to_str().ok())
    {
        Some(earlier) => format!("{earlier}, {}", conn.peer.ip()),
        None => conn.peer.ip().to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
        headers.insert("x-forwarded-for", value);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    if let Ok(value) = HeaderValue::from_str(host) {
        headers.insert("x-forwarded-host", value);
    }
    if !proxy.is_own_authority(host) {
        return;
    }
    if let Ok(value) = HeaderValue::from_str(&proxy.upstream.authority) {
        headers.insert(header::HOST, value);
    }
    // The app's own origin check sees its own origin, not the proxy's.
    let own_origin = format!("http://{host}");
    if headers
        .get(header::ORIGIN)
        .is_some_and(|origin| origin.as_bytes() == own_origin.as_bytes())
        && let Ok(value) = HeaderValue::from_str(&proxy.upstream.origin)
    {
        headers.insert(header::ORIGIN, value);
    }
}

/// Why a request did not get the app's answer.
#[derive(Debug)]
enum Failure {
    /// Nothing answers at the app's address (or it failed the handshake), in words.
    Unreachable(String),
    /// The app took the request and broke off.
    App(String),
}

/// What went wrong with the browser's own body, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BodyTrouble {
    /// Its framing broke (a bad chunk, a connection closed mid-body), in words.
    Broken(String),
    /// It stopped coming for this long.
    Stalled(Duration),
}

type Trouble = Arc<Mutex<Option<BodyTrouble>>>;

/// Sends the request on the browser connection's leg to the app (a socket on a connection of its own),
/// once more on a fresh connection if the app closed the leg before reading it.
async fn send(
    proxy: &Arc<AppProxy>,
    flow: &Flow,
    leg: &Leg,
    request: Request<Body>,
    again: Option<(Method, String, HeaderMap)>,
) -> Result<Response<Incoming>, Failure> {
    if flow.websocket {
        // A socket takes a connection of its own: after the upgrade it is the socket.
        let mut sender = connect(proxy, &flow.conn)
            .await
            .map_err(Failure::Unreachable)?;
        return sender
            .send_request(request)
            .await
            .map_err(|err| Failure::App(err.to_string()));
    }
    let mut leg = leg.lock().await;
    let mut request = Some(request);
    let mut again = again;
    for attempt in 0..2 {
        let reusable = leg.as_ref().is_some_and(|sender| !sender.is_closed());
        if !reusable {
            *leg = Some(
                connect(proxy, &flow.conn)
                    .await
                    .map_err(Failure::Unreachable)?,
            );
        }
        let sender = leg.as_mut().expect("just connected");
        if sender.ready().await.is_err() {
            // Closed by the app between requests: nothing was sent on it.
            *leg = None;
            continue;
        }
        let Some(this) = request.take() else { break };
        match sender.try_send_request(this).await {
            Ok(response) => return Ok(response),
            Err(mut err) => {
                *leg = None;
                if attempt == 0 {
                    if let Some(unsent) = err.take_message() {
                        request = Some(unsent);
                        continue;
                    }
                    if let Some((method, target, headers)) = again.take() {
                        // Written, and the connection failed before any answer came: an app closing
                        // it as idle, unread. Safe to send again, as RFC 9110 (§9.2.2) allows for an
                        // idempotent request.
                        request = Some(build(method, &target, headers, Body::empty()));
                        continue;
                    }
                }
                return Err(Failure::App(err.into_error().to_string()));
            }
        }
    }
    Err(Failure::App(
        "the app closed the connection before reading the request, twice".into(),
    ))
}

/// Opens a connection to the app for one browser connection, cut with it.
async fn connect(proxy: &Arc<AppProxy>, conn: &Arc<Conn>) -> Result<SendRequest<Body>, String> {
    let address = &proxy.upstream.authority;
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => {
            let why = format!("nothing answers at {address} ({err})");
            proxy.upstream_answered(Some(why.clone()));
            return Err(why);
        }
        Err(_) => {
            let why = format!(
                "{address} did not accept a connection within {} s",
                CONNECT_TIMEOUT.as_secs()
            );
            proxy.upstream_answered(Some(why.clone()));
            return Err(why);
        }
    };
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(UPSTREAM_BUFFER)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|err| format!("{address} failed the HTTP handshake ({err})"))?;
    let cut = conn.cut.clone();
    let file = proxy.settings.meters.hold_file();
    proxy.tasks.spawn(async move {
        let _file = file;
        tokio::select! {
            _ = connection.with_upgrades() => {}
            () = cut.cancelled() => {}
        }
    });
    Ok(sender)
}

/// Relays an upgraded socket: both sides handed back as the streams they are, so either can be reset.
async fn socket(
    flow: Arc<Flow>,
    downstream: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
) {
    let (Ok(downstream), Ok(upstream)) = (downstream.await, upstream.await) else {
        flow.end(End::Failed("the upgrade did not complete".into()));
        return;
    };
    let (Ok(browser), Ok(app)) = (
        downstream.downcast::<TokioIo<ProxiedStream>>(),
        upstream.downcast::<TokioIo<TcpStream>>(),
    ) else {
        flow.end(End::Failed(
            "the upgraded socket was not the proxy's".into(),
        ));
        return;
    };
    relay::socket(
        flow,
        browser.io.into_inner(),
        browser.read_buf,
        app.io.into_inner(),
        app.read_buf,
    )
    .await;
}

/// The browser's body on its way to the app: told to the stages as it passes, with its length and end
/// as they came (a bodyless request stays bodyless, a sized one sized), and a deadline for each next
/// piece, so a body that stops coming does not hold the connection for ever.
struct UpBody {
    inner: Incoming,
    flow: Arc<Flow>,
    trouble: Trouble,
    patience: Duration,
    stall: Pin<Box<Sleep>>,
    /// Cancelled once the body ended (whole or broken).
    done: CancellationToken,
}

impl UpBody {
    fn new(
        inner: Incoming,
        flow: Arc<Flow>,
        trouble: Trouble,
        patience: Duration,
        done: CancellationToken,
    ) -> UpBody {
        UpBody {
            inner,
            flow,
            trouble,
            patience,
            stall: Box::pin(tokio::time::sleep(patience)),
            done,
        }
    }

    fn fail(&self, trouble: BodyTrouble) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let words = match &trouble {
            BodyTrouble::Broken(why) => why.clone(),
            BodyTrouble::Stalled(after) => format!("no more of it for {after:?}"),
        };
        *self.trouble.lock().unwrap_or_else(|e| e.into_inner()) = Some(trouble);
        self.done.cancel();
        Poll::Ready(Some(Err(words.into())))
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl hyper::body::Body for UpBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.flow
                        .proxy
                        .pipeline
                        .body(&self.flow, Direction::Up, data);
                }
                let next = Instant::now() + self.patience;
                self.stall.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => self.fail(BodyTrouble::Broken(err.to_string())),
            Poll::Ready(None) => {
                self.done.cancel();
                Poll::Ready(None)
            }
            Poll::Pending => {
                if self.stall.as_mut().poll(cx).is_ready() {
                    let patience = self.patience;
                    return self.fail(BodyTrouble::Stalled(patience));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The answer to a request that did not get the app's: the browser's fault when its body broke or
/// stalled, the app's otherwise.
fn failed(
    flow: &Flow,
    asked: &HeaderMap,
    trouble: Option<BodyTrouble>,
    failure: Failure,
) -> Response<Body> {
    let proxy = &flow.proxy;
    match (trouble, failure) {
        (Some(BodyTrouble::Broken(why)), _) => own_answer(
            flow,
            StatusCode::BAD_REQUEST,
            asked,
            &format!(
                "The request's body was malformed or cut short ({why}); your app did not get it whole."
            ),
        ),
        (Some(BodyTrouble::Stalled(after)), _) => own_answer(
            flow,
            StatusCode::REQUEST_TIMEOUT,
            asked,
            &format!(
                "The request's body stopped coming for {}; Switchboard's proxy gave up on it.",
                switchboard_shared::format::format_ms(after.as_secs_f64() * 1000.0)
            ),
        ),
        (None, Failure::Unreachable(why) | Failure::App(why)) => {
            tracing::info!("proxy: the app did not answer: {why}");
            own_answer(
                flow,
                StatusCode::BAD_GATEWAY,
                asked,
                &format!(
                    "Switchboard's proxy could not reach your app at {}: {why}.",
                    proxy.upstream.url
                ),
            )
        }
    }
}

/// An answer of the proxy's own — a page for a browser, JSON for anything else — told to the stages.
fn own_answer(flow: &Flow, status: StatusCode, asked: &HeaderMap, words: &str) -> Response<Body> {
    let html = asked
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let (kind, body) = if html {
        let escaped = words
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        (
            "text/html; charset=utf-8",
            format!(
                "<!doctype html><meta charset=utf-8><title>{} — Switchboard proxy</title>\
                 <h1>{}</h1><p>{escaped}</p>",
                status.as_u16(),
                status
            ),
        )
    } else {
        let code = match status {
            StatusCode::BAD_GATEWAY => "bad_gateway",
            StatusCode::GATEWAY_TIMEOUT => "gateway_timeout",
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::REQUEST_TIMEOUT => "request_timeout",
            _ => "unavailable",
        };
        (
            "application/json",
            serde_json::to_string(&switchboard_shared::ErrorBody::new(code, words))
                .unwrap_or_default(),
        )
    };
    let mut answer = Response::new(Body::from(body.clone()));
    *answer.status_mut() = status;
    let headers = answer.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(header::VIA, HeaderValue::from_static(super::headers::VIA));
    let (head, body_out) = answer.into_parts();
    flow.proxy.pipeline.response(flow, &head, true);
    flow.proxy
        .pipeline
        .body(flow, Direction::Down, body.as_bytes());
    flow.end(End::Complete);
    Response::from_parts(head, body_out)
}

/// Streams the app's answer to the browser, each piece put to the stages (an event stream event by
/// event, a letter's answer chunk by chunk). An answer the app broke off ends the browser's as broken
/// (never as a clean end); a browser that takes nothing for the send timeout is cut, as on every lane.
fn pump(flow: Arc<Flow>, upstream: Incoming, events: Option<bool>) -> Body {
    let (sender, receiver) = mpsc::channel::<Piece>(CHUNKS_AHEAD);
    let delivering = Delivering {
        receiver,
        flow: flow.clone(),
    };
    let proxy = flow.proxy.clone();
    proxy.tasks.spawn(async move {
        let send_timeout = flow.proxy.settings.send_timeout;
        let shutdown = flow.proxy.shutdown.clone();
        let mut splitter = events.map(Events::new);
        let mut upstream = upstream;
        // Hands one piece to the browser's side, or says why not.
        let hand = async |bytes: Bytes, delay: Duration, messages: u64| -> Result<(), End> {
            let due = Instant::now() + delay;
            let handed =
                tokio::time::timeout(send_timeout, sender.send(Ok((due, bytes, messages)))).await;
            if !matches!(handed, Ok(Ok(()))) {
                flow.proxy
                    .pipeline
                    .delivered(&flow, Direction::Down, Reached::Lost, messages);
            }
            match handed {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(End::Cancelled),
                Err(_) => {
                    flow.conn.cut_by(CutBy::Stalled);
                    Err(End::Failed(format!(
                        "the browser took nothing for {} s: cut",
                        send_timeout.as_secs_f64()
                    )))
                }
            }
        };
        let end = 'pump: loop {
            let frame = tokio::select! {
                frame = std::future::poll_fn(|cx| Pin::new(&mut upstream).poll_frame(cx)) => frame,
                () = shutdown.cancelled() => break End::Cancelled,
                () = sender.closed() => break End::Cancelled,
            };
            let chunk = match frame {
                None => break End::Complete,
                Some(Err(err)) => {
                    // Broken off by the app: the browser's answer must end broken too — after what did
                    // come. The break is told only once the browser's side has taken every piece
                    // before it and had a moment to write them out: the server drops what it has not
                    // written when its body fails.
                    let why = format!("the app's answer broke off: {err}");
                    let drained = async {
                        while sender.capacity() < sender.max_capacity() {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        tokio::time::sleep(WRITE_GRACE).await;
                    };
                    let _ = tokio::time::timeout(send_timeout, drained).await;
                    let _ = sender.send(Err(std::io::Error::other(why.clone()))).await;
                    break End::Failed(why);
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(chunk) => chunk,
                    Err(_) => continue,
                },
            };
            flow.proxy.pipeline.body(&flow, Direction::Down, &chunk);
            let pieces: Vec<(Form, Bytes)> = match splitter.as_mut() {
                Some(splitter) => {
                    splitter.push(&chunk);
                    std::iter::from_fn(|| splitter.next_event())
                        .map(|event| (Form::Event, event))
                        .collect()
                }
                None => vec![(Form::Chunk, chunk)],
            };
            for (form, piece) in pieces {
                match pass(&flow, form, &piece, &sender).await {
                    Some(delay) => {
                        let messages = u64::from(form == Form::Event);
                        if let Err(end) = hand(piece, delay, messages).await {
                            break 'pump end;
                        }
                    }
                    None if sender.is_closed() => break 'pump End::Cancelled,
                    None => {}
                }
            }
        };
        if end == End::Complete
            && let Some(rest) = splitter.as_mut().map(Events::rest)
            && !rest.is_empty()
        {
            let _ = hand(rest, Duration::ZERO, 0).await;
        }
        flow.end(end);
    });
    Body::from_stream(futures_util::stream::unfold(
        delivering,
        |mut delivering| async move {
            let (due, bytes, messages) = match delivering.receiver.recv().await? {
                Ok(piece) => piece,
                Err(err) => return Some((Err(err), delivering)),
            };
            tokio::time::sleep_until(due).await;
            // Taken by the browser's side now: written as soon as the socket takes it (the server
            // takes the next piece only then), unless a half-open swallows it.
            let reached = if delivering.flow.conn.is_half_open() {
                Reached::Withheld
            } else {
                Reached::Delivered
            };
            let flow = &delivering.flow;
            flow.proxy
                .pipeline
                .delivered(flow, Direction::Down, reached, messages);
            Some((Ok(bytes), delivering))
        },
    ))
}

/// A piece of an answer on its way to the browser's side: when it is due, its bytes, the messages it
/// holds.
type Piece = Result<(Instant, Bytes, u64), std::io::Error>;

/// The browser's side of an answer: what the pump handed it, taken as the server writes it. The
/// messages still waiting when the answer ends (the browser left, the lab cut it) were lost.
struct Delivering {
    receiver: mpsc::Receiver<Piece>,
    flow: Arc<Flow>,
}

impl Drop for Delivering {
    fn drop(&mut self) {
        let mut lost = 0;
        while let Ok(piece) = self.receiver.try_recv() {
            if let Ok((_, _, messages)) = piece {
                lost += messages;
            }
        }
        self.flow
            .proxy
            .pipeline
            .delivered(&self.flow, Direction::Down, Reached::Lost, lost);
    }
}

/// Puts one piece of an answer to the stages: `Some(delay)` when it goes on, `None` when swallowed. A
/// held piece waits, looked at again and again so a fault cleared early lets it go at once, until it may
/// go or the browser leaves.
async fn pass(
    flow: &Flow,
    form: Form,
    piece: &Bytes,
    sender: &mpsc::Sender<Piece>,
) -> Option<Duration> {
    // What the stages read of it: enough to know a heartbeat or a small message, never a whole download.
    let text = String::from_utf8_lossy(&piece[..piece.len().min(TEXT_READ)]);
    let message = Message {
        direction: Direction::Down,
        form,
        size: piece.len() as u64,
        text: &text,
        at_ms: now_ms_f64(),
    };
    let pipeline = &flow.proxy.pipeline;
    let mut decision = pipeline.decide(flow, &message);
    if decision.fate == Fate::Held {
        pipeline.heard(flow, &message, Fate::Held);
        while decision.fate == Fate::Held {
            tokio::select! {
                () = tokio::time::sleep(HELD_LOOK) => {}
                () = sender.closed() => return None,
                () = flow.proxy.shutdown.cancelled() => return None,
            }
            decision = pipeline.decide(flow, &message);
        }
    }
    pipeline.heard(flow, &message, decision.fate);
    (decision.fate == Fate::Passed).then_some(decision.delay)
}
