//! The proxy in front of an app is faithful to the last byte: a reset on either side of a socket resets
//! the other and a clean end stays clean; an app's keep-alive close never becomes a 502; framing is
//! re-derived both ways; an answer the app broke off reaches the browser broken; the blame for a failed
//! request falls where it belongs (400, 408, 502, 504); frames cut anywhere by TCP pass byte for byte;
//! the recording keeps true sizes and no secrets; and one client cannot take every connection. Apps here are raw TCP servers where the test needs a
//! byte-exact misbehaviour, and the real Node apps of `e2e/apps/` elsewhere.

mod common;

use common::{PATIENCE, TestServer, through, through_with};
use futures_util::{SinkExt, StreamExt};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_client::node_app::NodeApp;
use switchboard_shared::har::Har;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;

/// A raw app: every connection it accepts is handed to `serve`.
async fn raw_app<F, Fut>(serve: F) -> String
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let serve = Arc::new(serve);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    });
    format!("http://{address}")
}

/// Reads one request or answer head (up to its blank line) from a raw stream.
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Reads until the peer ends: `Ok(bytes)` on a clean end (FIN), `Err` on a reset.
async fn read_to_end(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut all = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut all))
        .await
        .expect("the peer ended in time")?;
    Ok(all)
}

/// The recorded exchange whose URL holds `part`, from the HAR the dashboard serves.
async fn recorded(server: &TestServer, part: &str) -> switchboard_shared::har::model::Entry {
    let (_, har) = server.get_json("/api/app/har").await;
    let har: Har = serde_json::from_value(har).unwrap();
    har.log
        .entries
        .into_iter()
        .find(|entry| entry.request.url.contains(part))
        .unwrap_or_else(|| panic!("no recorded exchange for {part}"))
}

/// Where the app's side of a socket tells how it ended.
type AppSide =
    Arc<tokio::sync::Mutex<Option<tokio::sync::oneshot::Sender<std::io::Result<Vec<u8>>>>>>;

type Browser = tokio_tungstenite::WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn dial(proxy: &str, path: &str) -> Browser {
    let url = format!("{}{path}", proxy.replacen("http://", "ws://", 1));
    tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(url))
        .await
        .expect("the upgrade in time")
        .expect("the upgrade")
        .0
}

fn raw_of(socket: Browser) -> TcpStream {
    match socket.into_inner() {
        MaybeTlsStream::Plain(stream) => stream,
        _ => unreachable!("plain ws://"),
    }
}

/// An app that takes a socket, says hello, and then waits for `go` before ending it as `end` says.
async fn socket_app(go: Arc<Notify>, reset: bool) -> String {
    raw_app(move |stream| {
        let go = go.clone();
        async move {
            let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
            socket.send(Message::text("hello")).await.unwrap();
            go.notified().await;
            let mut stream = socket.into_inner();
            if reset {
                stream.set_zero_linger().unwrap();
            } else {
                stream.shutdown().await.unwrap();
                // Its side is ended in order; the rest is the browser's to close.
                let _ = stream.read_to_end(&mut Vec::new()).await;
            }
        }
    })
    .await
}

#[tokio::test]
async fn an_app_that_resets_a_socket_has_the_browsers_reset_at_once() {
    let go = Arc::new(Notify::new());
    let app = socket_app(go.clone(), true).await;
    let (server, proxy) = through(&app).await;
    let mut socket = dial(&proxy, "/socket").await;
    assert_eq!(
        socket.next().await.unwrap().unwrap(),
        Message::text("hello")
    );
    let mut browser = raw_of(socket);
    let reset_at = Instant::now();
    go.notify_one();
    let ended = read_to_end(&mut browser).await;
    let took = reset_at.elapsed();
    let err = ended.expect_err("the browser's side must be reset, not ended in order");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    assert!(took < Duration::from_secs(1), "reset after {took:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn an_app_that_ends_a_socket_in_order_has_the_browsers_ended_in_order() {
    let go = Arc::new(Notify::new());
    let app = socket_app(go.clone(), false).await;
    let (server, proxy) = through(&app).await;
    let mut socket = dial(&proxy, "/socket").await;
    socket.next().await.unwrap().unwrap();
    let mut browser = raw_of(socket);
    go.notify_one();
    let ended = read_to_end(&mut browser).await;
    assert!(ended.is_ok(), "a FIN is passed on as a FIN: {ended:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_browser_that_resets_a_socket_has_the_apps_side_reset_and_nothing_left_open() {
    let app_side: AppSide = Arc::default();
    let (tell, heard) = tokio::sync::oneshot::channel();
    *app_side.lock().await = Some(tell);
    let app = {
        let app_side = app_side.clone();
        raw_app(move |stream| {
            let app_side = app_side.clone();
            async move {
                let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
                socket.send(Message::text("hello")).await.unwrap();
                let mut stream = socket.into_inner();
                let mut all = Vec::new();
                let ended = stream.read_to_end(&mut all).await.map(|_| all);
                if let Some(tell) = app_side.lock().await.take() {
                    let _ = tell.send(ended);
                }
            }
        })
        .await
    };
    let (server, proxy) = through(&app).await;
    let stats = |server: &TestServer| {
        let (http, url) = (server.http.clone(), server.url("/api/stats"));
        async move {
            let stats: switchboard_shared::ServerStats =
                http.get(url).send().await.unwrap().json().await.unwrap();
            stats.connections.tcp_open
        }
    };
    let before = stats(&server).await;
    let mut socket = dial(&proxy, "/socket").await;
    socket.next().await.unwrap().unwrap();
    let browser = raw_of(socket);
    assert!(
        stats(&server).await >= before + 2,
        "the proxy's two sockets count among the open files"
    );
    let reset_at = Instant::now();
    browser.set_zero_linger().unwrap();
    drop(browser);
    let ended = tokio::time::timeout(PATIENCE, heard)
        .await
        .expect("the app's side ended in time")
        .unwrap();
    let took = reset_at.elapsed();
    let err = ended.expect_err("the app's side must be reset");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    assert!(took < Duration::from_secs(1), "reset after {took:?}");
    // Both of the proxy's sockets are given back.
    let deadline = Instant::now() + PATIENCE;
    while stats(&server).await > before {
        assert!(Instant::now() < deadline, "the proxy kept its sockets open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn an_app_that_closes_each_kept_alive_connection_after_answering_costs_no_502() {
    // What an app's keep-alive timeout does: it closes a connection it thinks idle, unread, just as the
    // browser's next request arrives on it. Each connection here is closed a little after its answer
    // (0 to 3 ms, turn by turn), so some next requests arrive before the close and some just after.
    let turn = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let app = raw_app(move |mut stream| {
        let turn = turn.clone();
        async move {
            let head = read_head(&mut stream).await;
            if head.is_empty() {
                return;
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}")
                .await;
            let wait = turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 4;
            tokio::time::sleep(Duration::from_micros(wait * 700)).await;
        }
    })
    .await;
    let (server, proxy) = through(&app).await;
    let mut failed = Vec::new();
    for n in 0..1_000 {
        let answer = server
            .http
            .get(format!("{proxy}/state?n={n}"))
            .send()
            .await
            .unwrap();
        if answer.status() != 200 {
            failed.push((n, answer.status(), answer.text().await.unwrap_or_default()));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of 1,000 failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn framing_is_derived_anew_both_ways_and_the_proxy_names_itself() {
    let http = NodeApp::start("http-app.cjs", &[]);
    let (server, proxy) = through(&http.url()).await;
    // A bodyless POST stays bodyless.
    for method in [
        reqwest::Method::POST,
        reqwest::Method::DELETE,
        reqwest::Method::PUT,
    ] {
        let answer = server
            .http
            .request(method.clone(), format!("{proxy}/headers"))
            .send()
            .await
            .unwrap();
        assert!(
            answer
                .headers()
                .get_all("via")
                .iter()
                .any(|via| via.to_str().unwrap().contains("switchboard")),
            "the answer names the proxy in Via"
        );
        let seen: serde_json::Value = answer.json().await.unwrap();
        assert!(
            seen.get("transfer-encoding").is_none(),
            "{method} without a body reached the app chunked: {seen}"
        );
        assert!(
            seen["via"]
                .as_str()
                .unwrap_or_default()
                .contains("1.1 switchboard"),
            "{seen}"
        );
    }
    server.shutdown().await;

    // An app's answer with both a length and chunks is read by its chunks and never forwarded with
    // the stale length.
    let app = raw_app(|mut stream| async move {
        read_head(&mut stream).await;
        let body = "x".repeat(50);
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n32\r\n{body}\r\n0\r\n\r\n"
        );
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.read_to_end(&mut Vec::new()).await;
    })
    .await;
    let (server, proxy) = through(&app).await;
    let answer = server
        .http
        .get(format!("{proxy}/both"))
        .send()
        .await
        .unwrap();
    assert!(answer.headers().get("content-length").is_none());
    assert_eq!(answer.bytes().await.unwrap().len(), 50);
    server.shutdown().await;
}

#[tokio::test]
async fn an_answer_the_app_broke_off_reaches_the_browser_broken_with_what_came() {
    let app = raw_app(|mut stream| async move {
        read_head(&mut stream).await;
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 5000\r\n\r\n")
            .await;
        let _ = stream.write_all(&[b'y'; 1000]).await;
        // And gone, 4,000 bytes short.
    })
    .await;
    let (server, proxy) = through(&app).await;
    let answer = server
        .http
        .get(format!("{proxy}/short"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let mut body = answer.bytes_stream();
    let mut got = 0;
    let mut broke = false;
    while let Some(chunk) = tokio::time::timeout(PATIENCE, body.next()).await.unwrap() {
        match chunk {
            Ok(chunk) => got += chunk.len(),
            Err(_) => {
                broke = true;
                break;
            }
        }
    }
    assert!(
        broke,
        "the browser's answer ended cleanly after {got} bytes"
    );
    assert_eq!(got, 1000, "what the app did send reaches the browser");
    // The recording says so.
    let entry = recorded(&server, "/short").await;
    assert!(
        entry
            .response
            .error
            .as_deref()
            .is_some_and(|why| why.contains("broke off")),
        "{:?}",
        entry.response.error
    );
    server.shutdown().await;
}

/// Sends raw bytes to the proxy and reads its answer's head.
async fn raw_request(proxy: &str, bytes: &[u8]) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(proxy.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(bytes).await.unwrap();
    let head = tokio::time::timeout(PATIENCE, read_head(&mut stream))
        .await
        .expect("an answer in time");
    (stream, head)
}

#[tokio::test]
async fn blame_falls_where_it_belongs_400_408_504() {
    let http = NodeApp::start("http-app.cjs", &[]);
    let (server, proxy) =
        through_with(&http.url(), |config| config.upstream_timeout_ms = 1000).await;
    let host = proxy.trim_start_matches("http://");

    // A body whose chunk framing is garbage is the browser's own 400, never a 502 naming the app.
    let (_, head) = raw_request(
        &proxy,
        format!("POST /echo HTTP/1.1\r\nhost: {host}\r\ntransfer-encoding: chunked\r\n\r\nZZZ\r\nnope\r\n").as_bytes(),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");

    // A body that stops coming is cut after the upstream timeout: 408.
    let started = Instant::now();
    let (_, head) = raw_request(
        &proxy,
        format!("POST /echo HTTP/1.1\r\nhost: {host}\r\ncontent-length: 100\r\n\r\nonly ten b")
            .as_bytes(),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // An app that does not answer the head in time: 504, naming the app and the wait.
    let started = Instant::now();
    let answer = server
        .http
        .get(format!("{proxy}/wait?ms=4000"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 504);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let words = answer.text().await.unwrap();
    assert!(
        words.contains(&http.url()) && words.contains("1.0 s"),
        "{words}"
    );

    // A stream whose head came is not cut by that deadline, however quiet.
    let response = server
        .http
        .get(format!("{proxy}/events?every=1500"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut events = response.bytes_stream();
    let mut text = String::new();
    let started = Instant::now();
    while text.matches("event: tick").count() < 2 {
        let chunk = tokio::time::timeout(PATIENCE, events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(started.elapsed() > Duration::from_millis(2500));
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_the_browser_gave_up_on_ends_cancelled_in_the_recording() {
    let http = NodeApp::start("http-app.cjs", &[]);
    let (server, proxy) = through(&http.url()).await;
    let host = proxy.trim_start_matches("http://").to_owned();
    let (stream, _) = tokio::join!(
        async {
            let mut stream = TcpStream::connect(&host).await.unwrap();
            stream
                .write_all(format!("GET /wait?ms=3000 HTTP/1.1\r\nhost: {host}\r\n\r\n").as_bytes())
                .await
                .unwrap();
            stream
        },
        tokio::time::sleep(Duration::from_millis(10))
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(stream);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let entry = recorded(&server, "/wait").await;
    assert_eq!(entry.response.error.as_deref(), Some("cancelled"));
    assert!(
        entry.time < 1000.0,
        "its time stopped when it ended: {}",
        entry.time
    );
    server.shutdown().await;
}

#[tokio::test]
async fn secrets_are_for_the_dashboards_own_names_and_redacted_unless_asked() {
    let http = NodeApp::start("http-app.cjs", &[]);
    let (server, proxy) = through(&http.url()).await;
    let answer = server
        .http
        .get(format!("{proxy}/headers"))
        .header("cookie", "session=very-secret")
        .send()
        .await
        .unwrap();
    let seen: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(
        seen["cookie"], "session=very-secret",
        "the app gets them as sent"
    );
    // (That answer's body is the headers the app saw, and the recording keeps bodies; these secrets go
    // as headers only.)
    let answer = server
        .http
        .get(format!("{proxy}/status"))
        .header("cookie", "session=sealed-secret")
        .header("authorization", "Bearer also-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        seen["host"],
        http.url().trim_start_matches("http://"),
        "the proxy's own name becomes the app's"
    );

    // A foreign name is the app's to judge: passed on unchanged, and its Origin with it.
    let host = proxy.trim_start_matches("http://");
    let (mut stream, head) = raw_request(
        &proxy,
        b"GET /headers HTTP/1.1\r\nhost: rebind.attacker.example\r\norigin: http://rebind.attacker.example\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let body = String::from_utf8(read_to_end(&mut stream).await.unwrap()).unwrap();
    assert!(
        body.contains("\"host\":\"rebind.attacker.example\""),
        "{body}"
    );
    assert!(
        body.contains("\"origin\":\"http://rebind.attacker.example\""),
        "{body}"
    );
    let _ = host;

    // The recording keeps no secret.
    let har_text = server
        .http
        .get(server.url("/api/app/har"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!har_text.contains("sealed-secret") && !har_text.contains("also-secret"));
    assert!(har_text.contains("redacted"));

    // Under a name rebound to this machine, neither the report nor the HAR is served.
    for path in ["/api/app", "/api/app/har"] {
        let refused = server
            .http
            .get(server.url(path))
            .header("host", "rebind.attacker.example")
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 403, "{path}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn binary_frames_are_recorded_with_their_true_size() {
    let app = NodeApp::start("ws-app.cjs", &[]);
    let (server, proxy) = through(&app.url()).await;
    let mut socket = dial(&proxy, "/bin").await;
    socket.next().await.unwrap().unwrap();
    socket.send(Message::binary(vec![7u8; 3000])).await.unwrap();
    let echoed = tokio::time::timeout(PATIENCE, socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(echoed.len(), 3000);
    let (_, har) = server.get_json("/api/app/har").await;
    let har: Har = serde_json::from_value(har).unwrap();
    let messages = har
        .log
        .entries
        .iter()
        .find_map(|entry| entry.web_socket_messages.clone())
        .unwrap();
    let binary: Vec<_> = messages.iter().filter(|m| m.opcode == 2).collect();
    assert_eq!(binary.len(), 2, "{messages:?}");
    assert!(binary.iter().all(|m| m.len() == 3000), "{binary:?}");
    drop(socket);
    server.shutdown().await;
}

#[tokio::test]
async fn one_client_cannot_take_every_connection_of_the_proxy() {
    // At the default limit (four times --max-connections-per-client: 256), as a user runs it.
    switchboard_server::listener::raise_open_file_limit();
    let http = NodeApp::start("http-app.cjs", &[]);
    let (server, proxy) = through(&http.url()).await;
    let host = proxy.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..256 {
        held.push(TcpStream::connect(&host).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut refused = TcpStream::connect(&host).await.unwrap();
    let answer = String::from_utf8(read_to_end(&mut refused).await.unwrap()).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("max-tcp-per-client"), "{answer}");
    // The dashboard still answers, and the proxy again once a place is free.
    let (status, _) = server.get_json("/api/app").await;
    assert_eq!(status, 200);
    held.pop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = server
        .http
        .get(format!("{proxy}/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    server.shutdown().await;
}

#[tokio::test]
async fn a_browser_that_stops_reading_a_socket_is_cut_after_the_send_timeout_and_the_app_hears_it()
{
    // An app that sends 8 KB text frames as fast as its socket takes them, and says when it could not.
    let (ended_tx, ended_rx) = tokio::sync::oneshot::channel::<Duration>();
    let ended_tx = Arc::new(std::sync::Mutex::new(Some(ended_tx)));
    let app = raw_app(move |stream| {
        let ended_tx = ended_tx.clone();
        async move {
            let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
            socket.send(Message::text("hello")).await.unwrap();
            let frame = "x".repeat(8 * 1024);
            let started = Instant::now();
            while socket.send(Message::text(frame.clone())).await.is_ok() {}
            if let Some(tx) = ended_tx.lock().unwrap().take() {
                let _ = tx.send(started.elapsed());
            }
        }
    })
    .await;
    let (server, proxy) = through_with(&app, |config| config.send_timeout_ms = 1000).await;
    let mut socket = dial(&proxy, "/feed").await;
    assert_eq!(
        socket.next().await.unwrap().unwrap(),
        Message::text("hello")
    );
    // The browser reads nothing more: the proxy's writes fill its socket and wait.
    let browser = raw_of(socket);
    let app_ended = tokio::time::timeout(PATIENCE, ended_rx)
        .await
        .expect("the app's side ends once the browser is cut")
        .unwrap();
    assert!(
        app_ended >= Duration::from_millis(900) && app_ended < Duration::from_secs(6),
        "cut after the send timeout (1 s), not before and not much later: {app_ended:?}"
    );
    let entry = recorded(&server, "/feed").await;
    let error = entry.response.error.as_deref().unwrap_or_default();
    assert!(error.contains("took nothing for 1 s"), "{error:?}");
    drop(browser);
    server.shutdown().await;
}

/// One WebSocket frame's bytes, as a browser (`mask`) or an app (none) writes it.
fn frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut bytes = vec![0x80 | opcode];
    let masked = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        len @ 0..=125 => bytes.push(masked | len as u8),
        len @ 126..=0xffff => {
            bytes.push(masked | 126);
            bytes.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            bytes.push(masked | 127);
            bytes.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            bytes.extend_from_slice(&key);
            bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => bytes.extend_from_slice(payload),
    }
    bytes
}

/// Writes `bytes` in pieces of uneven sizes, each on its own (a pause between them), so that the other
/// end reads frames cut anywhere: in a header, in a length, in a mask, in a payload.
async fn write_in_pieces(stream: &mut TcpStream, bytes: &[u8]) {
    stream.set_nodelay(true).unwrap();
    let sizes = [1, 2, 5, 13, 700, 3, 4096, 1, 9000];
    let mut at = 0;
    for size in sizes.iter().cycle() {
        if at == bytes.len() {
            break;
        }
        let end = (at + size).min(bytes.len());
        stream.write_all(&bytes[at..end]).await.unwrap();
        stream.flush().await.unwrap();
        at = end;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Reads exactly `len` bytes, within patience.
async fn read_exactly(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    tokio::time::timeout(PATIENCE, stream.read_exact(&mut bytes))
        .await
        .expect("every byte in time")
        .expect("every byte");
    bytes
}

#[tokio::test]
async fn frames_cut_anywhere_by_tcp_pass_byte_for_byte_and_are_recorded_whole() {
    // Small frames, frames of each length form, one larger than the proxy holds whole (it streams
    // through), and two in one write: the proxy reads them in whatever pieces TCP brings.
    let frames = |mask: Option<[u8; 4]>| {
        let mut bytes = Vec::new();
        bytes.extend(frame(1, b"a", mask));
        bytes.extend(frame(1, &[b'x'; 300], mask));
        bytes.extend(frame(2, &[7u8; 5000], mask));
        bytes.extend(frame(1, &[b'y'; 20_000], mask));
        bytes.extend(frame(1, b"b", mask));
        bytes.extend(frame(1, b"c", mask));
        bytes.extend(frame(1, b"end", mask));
        bytes
    };
    let down = frames(None);
    let up = frames(Some([0x12, 0x34, 0x56, 0x78]));
    let (app_got, got) = tokio::sync::oneshot::channel::<Vec<u8>>();
    let app_got = Arc::new(tokio::sync::Mutex::new(Some(app_got)));
    let (up_len, to_send) = (up.len(), down.clone());
    let app = raw_app(move |stream| {
        let (app_got, to_send) = (app_got.clone(), to_send.clone());
        async move {
            let mut stream = tokio_tungstenite::accept_async(stream)
                .await
                .unwrap()
                .into_inner();
            // The browser's frames first (so nothing follows the upgrade's answer before the browser
            // has its socket), then the app's.
            let heard = read_exactly(&mut stream, up_len).await;
            if let Some(app_got) = app_got.lock().await.take() {
                let _ = app_got.send(heard);
            }
            write_in_pieces(&mut stream, &to_send).await;
            let _ = stream.read_to_end(&mut Vec::new()).await;
        }
    })
    .await;
    let (server, proxy) = through(&app).await;
    let mut browser = raw_of(dial(&proxy, "/pieces").await);
    write_in_pieces(&mut browser, &up).await;
    let heard = tokio::time::timeout(PATIENCE, got)
        .await
        .expect("the app heard in time")
        .unwrap();
    assert!(heard == up, "the app got other bytes than the browser sent");
    let received = read_exactly(&mut browser, down.len()).await;
    assert!(
        received == down,
        "the browser got other bytes than the app sent"
    );

    // Each frame recorded once, whole, at its true size, however it was cut.
    let sizes = [1, 300, 5000, 20_000, 1, 1, 3];
    let messages = recorded(&server, "/pieces")
        .await
        .web_socket_messages
        .expect("a socket's messages");
    for kind in ["send", "receive"] {
        let seen: Vec<_> = messages
            .iter()
            .filter(|m| m.kind == kind)
            .map(|m| (m.opcode, m.len()))
            .collect();
        let expected: Vec<_> = sizes
            .iter()
            .map(|&size| (if size == 5000 { 2 } else { 1 }, size))
            .collect();
        assert_eq!(seen, expected, "{kind}");
    }
    drop(browser);
    server.shutdown().await;
}
