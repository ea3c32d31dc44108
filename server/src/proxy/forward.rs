//! Forwarding one request to the app, faithfully: every method, path, query and body, both ways,
//! streamed and never buffered whole; a WebSocket upgrade relayed frame by frame. Each browser
//! connection has its own connection to the app (opened with its first request), so what the lab does
//! to one — a drop, a half-open, an idle timeout — reaches the app as it would through a real proxy.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header};
use bytes::Bytes;
use futures_util::StreamExt;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use switchboard_shared::app::{AppFaultKind, channel_id, is_heartbeat_text};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::AppProxy;
use super::conn::{ChannelKey, Conn, CutBy};
use super::record::{Exchange, Recorder};
use super::relay::{self, Direction, Events};
use crate::hub::now_ms_f64;

/// How long the proxy waits for the app to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A letter's answer this short may be a heartbeat (an Engine.IO ping is one byte).
const HEARTBEAT_MAX: usize = 256;
/// How often a heartbeat held by `no_heartbeat` looks whether the fault is over.
const HELD_HEARTBEAT_LOOK: Duration = Duration::from_millis(100);

/// The upstream connection of one browser connection, opened with its first request.
pub type Leg = Arc<tokio::sync::Mutex<Option<SendRequest<Body>>>>;

/// Headers that belong to one hop (RFC 9110, 7.6.1), never forwarded as they are.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
];

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    let has = |name: HeaderName, word: &str| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|value| {
                value
                    .split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(word))
            })
        })
    };
    has(header::UPGRADE, "websocket") && has(header::CONNECTION, "upgrade")
}

/// Removes the hop-by-hop headers, and those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| {
            value
                .split(',')
                .map(|name| name.trim().to_ascii_lowercase())
        })
        .filter(|name| !name.is_empty())
        .collect();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        headers.remove(name);
    }
}

fn pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// A head's size on the wire: its first line, each header and the blank line.
fn head_bytes(first_line: usize, headers: &HeaderMap) -> u64 {
    let fields: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    (first_line + 2 + fields + 2) as u64
}

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
    let path = request.uri().path().to_owned();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned());
    let method = request.method().clone();
    let name = if upgrade {
        format!("ws://{host}{path}")
    } else {
        format!("{method} {path}")
    };
    let key = ChannelKey {
        id: channel_id(&name),
        name,
    };
    proxy.lab.seen(&key.id, &key.name);
    conn.set_key(key.clone());
    let first = conn.requests.fetch_add(1, Relaxed) == 0;
    if first || upgrade {
        proxy.lab.opened(&key.id);
    }
    let lab = &proxy.lab;
    if conn.is_half_open() {
        // A half-open connection answers nothing, ever.
        return std::future::pending().await;
    }
    if first && lab.active(AppFaultKind::Hiccup, &key.id).is_some() {
        // Refused: closed before a word, as a full listen queue or a restarting proxy does.
        conn.cut_by(CutBy::Fault);
        lab.refused(&key.id);
        return std::future::pending().await;
    }
    if let Some(path) = lab.network_for(&key.id) {
        // The head's way up the emulated path: half a round trip, and its bytes at the path's upload
        // rate (its body streams after it at the socket's pace).
        let head = head_bytes(
            method.as_str().len() + path_and_query.len() + 10,
            request.headers(),
        );
        let sending = if path.up_kbps > 0 {
            head as f64 * 8.0 / f64::from(path.up_kbps)
        } else {
            0.0
        };
        let way_up = path.one_way_ms(crate::network::shaped::Dice::new().unit()) + sending;
        tokio::time::sleep(Duration::from_secs_f64(way_up / 1000.0)).await;
    }
    let scheme = if upgrade { "ws" } else { "http" };
    let recorder = proxy.recording.start(Exchange {
        connection: conn.id,
        started_ms: now_ms_f64(),
        method: method.to_string(),
        url: format!("{scheme}://{host}{path_and_query}"),
        request_headers: pairs(request.headers()),
        request_head_bytes: head_bytes(
            method.as_str().len() + 1 + path_and_query.len() + 9,
            request.headers(),
        ),
        websocket: upgrade,
        ..Exchange::default()
    });
    if lab.active(AppFaultKind::HalfOpen, &key.id).is_some() {
        conn.go_half_open();
        lab.half_opened(&key.id);
        return std::future::pending().await;
    }
    if lab.active(AppFaultKind::Http503, &key.id).is_some() {
        let answer = refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            request.headers(),
            "Switchboard's lab answers this channel 503 for now (the http_503 fault).",
        );
        recorder.with(|e| {
            e.status = 503;
            e.status_text = "Service Unavailable".into();
            e.first_byte_ms = Some(now_ms_f64());
        });
        recorder.end();
        return Ok(answer);
    }

    // The request as the app receives it.
    let downstream_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
    let (parts, body) = request.into_parts();
    let mut headers = parts.headers;
    let browser_headers = headers.clone();
    strip_hop_by_hop(&mut headers);
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        // No compression is negotiated, so every frame can be read.
        headers.remove(header::SEC_WEBSOCKET_EXTENSIONS);
    }
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
    if let Ok(value) = HeaderValue::from_str(&host) {
        headers.insert("x-forwarded-host", value);
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
    let up_recorder = recorder.clone();
    let body = Body::from_stream(Body::new(body).into_data_stream().map(move |chunk| {
        if let Ok(bytes) = &chunk {
            up_recorder.body(true, bytes);
        }
        chunk
    }));
    let mut upstream_request = Request::builder()
        .method(parts.method)
        .uri(&path_and_query)
        .version(axum::http::Version::HTTP_11)
        .body(if upgrade { Body::empty() } else { body })
        .expect("parts of a request that parsed");
    *upstream_request.headers_mut() = headers;

    let sent = if upgrade {
        // A socket takes a connection of its own: after the upgrade it is the socket.
        match connect(&proxy, &conn).await {
            Ok(mut sender) => sender
                .send_request(upstream_request)
                .await
                .map_err(|err| err.to_string()),
            Err(err) => Err(err),
        }
    } else {
        let mut leg = leg.lock().await;
        let reusable = leg.as_ref().is_some_and(|sender| !sender.is_closed());
        if !reusable {
            *leg = match connect(&proxy, &conn).await {
                Ok(sender) => Some(sender),
                Err(err) => {
                    *leg = None;
                    drop(leg);
                    return Ok(bad_gateway(&proxy, &recorder, &browser_headers, &err));
                }
            };
        }
        let sender = leg.as_mut().expect("just connected");
        match sender.ready().await {
            Ok(()) => sender
                .send_request(upstream_request)
                .await
                .map_err(|err| err.to_string()),
            Err(err) => Err(err.to_string()),
        }
    };
    let mut response = match sent {
        Ok(response) => response,
        Err(err) => return Ok(bad_gateway(&proxy, &recorder, &browser_headers, &err)),
    };
    proxy.upstream_answered(None);
    let first_byte = now_ms_f64();
    let status = response.status();
    let mime = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let event_stream =
        mime.starts_with("text/event-stream") || mime.starts_with("application/x-ndjson");
    recorder.with(|e| {
        e.status = status.as_u16();
        e.status_text = status.canonical_reason().unwrap_or_default().to_owned();
        e.response_headers = pairs(response.headers());
        e.response_head_bytes = head_bytes(
            12 + status.canonical_reason().map_or(0, str::len) + 1,
            response.headers(),
        );
        e.first_byte_ms = Some(first_byte);
        e.mime = mime.clone();
        e.event_stream = event_stream;
    });
    if let Some(delay) = lab
        .active(AppFaultKind::Delay, &key.id)
        .and_then(|f| f.delay_ms)
    {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }

    if let (true, StatusCode::SWITCHING_PROTOCOLS, Some(downstream)) =
        (upgrade, status, downstream_upgrade)
    {
        let upstream = hyper::upgrade::on(&mut response);
        let (parts, _) = response.into_parts();
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers);
        headers.remove(header::SEC_WEBSOCKET_EXTENSIONS);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        conn.upgraded.store(true, Relaxed);
        let (relay_proxy, relay_conn) = (proxy.clone(), conn.clone());
        proxy.tasks.spawn(async move {
            let (Ok(downstream), Ok(upstream)) = (downstream.await, upstream.await) else {
                recorder.end();
                return;
            };
            let (down_read, down_write) = tokio::io::split(TokioIo::new(downstream));
            let (up_read, up_write) = tokio::io::split(TokioIo::new(upstream));
            let up = relay::frames(
                down_read,
                up_write,
                Direction::Up,
                relay_proxy.clone(),
                relay_conn.clone(),
                recorder.clone(),
            );
            let down = relay::frames(
                up_read,
                down_write,
                Direction::Down,
                relay_proxy.clone(),
                relay_conn.clone(),
                recorder.clone(),
            );
            tokio::select! {
                _ = async { tokio::join!(up, down) } => {}
                () = relay_conn.cut.cancelled() => {}
                () = relay_proxy.shutdown.cancelled() => {}
            }
            recorder.end();
        });
        let mut answer = Response::new(Body::empty());
        *answer.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        *answer.headers_mut() = headers;
        return Ok(answer);
    }

    let (parts, upstream_body) = response.into_parts();
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    if event_stream {
        // Nothing between the app and the browser may hold its events back.
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    let body = pump(
        proxy.clone(),
        key.id.clone(),
        upstream_body,
        recorder,
        event_stream.then(|| mime.starts_with("text/event-stream")),
    );
    let mut answer = Response::new(body);
    *answer.status_mut() = parts.status;
    *answer.headers_mut() = headers;
    Ok(answer)
}

/// Streams the app's answer to the browser: recorded as it comes (an event stream event by event), a
/// delay fault holding each chunk its time, the app's heartbeats swallowed when the lab says so.
fn pump(
    proxy: Arc<AppProxy>,
    channel: String,
    upstream: Incoming,
    recorder: Recorder,
    events: Option<bool>,
) -> Body {
    let (sender, receiver) = mpsc::channel::<(Instant, Bytes)>(64);
    let shutdown = proxy.shutdown.clone();
    let tasks = proxy.tasks.clone();
    tasks.spawn(async move {
        let mut splitter = events.map(Events::new);
        let mut chunks = Body::new(upstream).into_data_stream();
        'pump: loop {
            let chunk = tokio::select! {
                chunk = chunks.next() => chunk,
                () = shutdown.cancelled() => None,
                () = sender.closed() => None,
            };
            let Some(Ok(chunk)) = chunk else { break };
            recorder.body(false, &chunk);
            let pass = match splitter.as_mut() {
                Some(splitter) => {
                    let swallow = proxy
                        .lab
                        .active(AppFaultKind::NoHeartbeat, &channel)
                        .is_some();
                    let (pass, swallowed) = splitter.chunk(&chunk, swallow, &recorder);
                    for _ in 0..swallowed {
                        proxy.lab.swallowed(&channel);
                    }
                    pass
                }
                None => {
                    // A letter whose answer is only a heartbeat (an Engine.IO ping answering a held
                    // poll): a dead server would never answer it, so it is held until the fault ends
                    // (or the browser gives up on it) — the long-polling way to miss a heartbeat.
                    if chunk.len() <= HEARTBEAT_MAX
                        && proxy
                            .lab
                            .active(AppFaultKind::NoHeartbeat, &channel)
                            .is_some()
                        && std::str::from_utf8(&chunk).is_ok_and(is_heartbeat_text)
                    {
                        proxy.lab.swallowed(&channel);
                        // Looked at again and again, so a fault cleared early lets it go at once.
                        while proxy
                            .lab
                            .active(AppFaultKind::NoHeartbeat, &channel)
                            .is_some()
                        {
                            tokio::select! {
                                () = tokio::time::sleep(HELD_HEARTBEAT_LOOK) => {}
                                () = shutdown.cancelled() => break 'pump,
                                () = sender.closed() => break 'pump,
                            }
                        }
                    }
                    chunk
                }
            };
            if pass.is_empty() {
                continue;
            }
            let delay = proxy
                .lab
                .active(AppFaultKind::Delay, &channel)
                .and_then(|fault| fault.delay_ms)
                .unwrap_or(0);
            let due = Instant::now() + Duration::from_millis(delay);
            if sender.send((due, pass)).await.is_err() {
                break;
            }
        }
        if let Some(rest) = splitter.as_mut().map(Events::rest)
            && !rest.is_empty()
        {
            let _ = sender.send((Instant::now(), rest)).await;
        }
        recorder.end();
    });
    Body::from_stream(futures_util::stream::unfold(
        receiver,
        |mut receiver| async move {
            let (due, bytes) = receiver.recv().await?;
            tokio::time::sleep_until(due).await;
            Some((Ok::<_, Infallible>(bytes), receiver))
        },
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
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| format!("{address} failed the HTTP handshake ({err})"))?;
    let cut = conn.cut.clone();
    proxy.tasks.spawn(async move {
        tokio::select! {
            _ = connection.with_upgrades() => {}
            () = cut.cancelled() => {}
        }
    });
    Ok(sender)
}

/// A short answer of the proxy's own: a page for a browser, JSON for anything else.
fn refusal(status: StatusCode, asked: &HeaderMap, words: &str) -> Response<Body> {
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
        let code = if status == StatusCode::BAD_GATEWAY {
            "bad_gateway"
        } else {
            "unavailable"
        };
        (
            "application/json",
            serde_json::to_string(&switchboard_shared::ErrorBody::new(code, words))
                .unwrap_or_default(),
        )
    };
    let mut answer = Response::new(Body::from(body));
    *answer.status_mut() = status;
    answer
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    answer
}

fn bad_gateway(
    proxy: &AppProxy,
    recorder: &Recorder,
    asked: &HeaderMap,
    why: &str,
) -> Response<Body> {
    tracing::info!("proxy: the app did not answer: {why}");
    recorder.with(|e| {
        e.status = 502;
        e.status_text = "Bad Gateway".into();
        e.first_byte_ms = Some(now_ms_f64());
    });
    recorder.end();
    refusal(
        StatusCode::BAD_GATEWAY,
        asked,
        &format!(
            "Switchboard's proxy could not reach your app at {}: {why}.",
            proxy.upstream.url
        ),
    )
}
