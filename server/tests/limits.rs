//! Every limit answers with a clear error and costs the other clients nothing: cross-site origins on the
//! WebSocket, connections per lane and per client, chat per second, long-poll wait, slow requests.

mod common;

use common::TestServer;
use serde_json::json;
use std::time::Duration;
use switchboard_shared::{ErrorCode, ServerMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

async fn dial_with_origin(server: &TestServer, origin: &str) -> Result<u16, (u16, String)> {
    let mut request = format!("ws://{}/ws", server.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", HeaderValue::from_str(origin).unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => Ok(response.status().as_u16()),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_ref()
                .map(|body| String::from_utf8_lossy(body).into_owned())
                .unwrap_or_default();
            Err((response.status().as_u16(), body))
        }
        Err(other) => panic!("unexpected dial failure: {other}"),
    }
}

#[tokio::test]
async fn the_websocket_refuses_cross_site_origins_unless_allowed() {
    let server = TestServer::start().await;
    let own = format!("http://{}", server.addr);
    assert_eq!(dial_with_origin(&server, &own).await, Ok(101));
    let (status, body) = dial_with_origin(&server, "https://evil.example")
        .await
        .unwrap_err();
    assert_eq!(status, 403);
    assert!(body.contains("--allow-origin"), "{body}");
    server.shutdown().await;

    let server = TestServer::start_with(|config| {
        config.allow_origin = vec!["http://127.0.0.1:8080".into()];
    })
    .await;
    assert_eq!(
        dial_with_origin(&server, "http://127.0.0.1:8080").await,
        Ok(101)
    );
    assert!(
        dial_with_origin(&server, "https://evil.example")
            .await
            .is_err()
    );
    server.shutdown().await;
}

/// DNS rebinding: a page on an attacker's name, pointed at this machine, with an `Origin` to match. What
/// changes things and the phone call are refused under a name the server does not answer to; reads
/// and a `--public-host` name are served.
#[tokio::test]
async fn a_page_under_a_foreign_host_name_may_not_post_or_call() {
    let server = TestServer::start().await;
    let evil = "rebind.evil.example";
    let post = |path: &'static str, host: &'static str, body: serde_json::Value| {
        server
            .http
            .post(server.url(path))
            .header("host", host)
            .header("origin", format!("http://{host}"))
            .json(&body)
            .send()
    };
    for (path, body) in [
        ("/api/messages", json!({"author": "a", "text": "hi"})),
        ("/api/faults", json!({"kind": "drop"})),
        ("/api/network", json!({"lane": "all", "preset": "3g"})),
    ] {
        let refused = post(path, "rebind.evil.example:3000", body).await.unwrap();
        assert_eq!(refused.status(), 403, "{path}");
        let text = refused.text().await.unwrap();
        assert!(text.contains("--public-host"), "{path}: {text}");
    }
    let mut request = format!("ws://{}/ws", server.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("host", HeaderValue::from_static("rebind.evil.example:3000"));
    request.headers_mut().insert(
        "origin",
        HeaderValue::from_static("http://rebind.evil.example:3000"),
    );
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 403)
        }
        other => panic!(
            "the call must be refused: {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
    // Reading is harmless; loopback names and addresses are this machine's.
    let read = server
        .http
        .get(server.url("/api/poll"))
        .header("host", evil)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    for host in ["localhost:3000", "127.0.0.1", "[::1]:3000", "app.localhost"] {
        let ok = post("/api/messages", host, json!({"author": "a", "text": "hi"}))
            .await
            .unwrap();
        assert_eq!(ok.status(), 200, "{host}");
    }
    server.shutdown().await;

    let server = TestServer::start_with(|config| config.public_host = vec![evil.into()]).await;
    let named = server
        .http
        .post(server.url("/api/messages"))
        .header("host", "REBIND.evil.example:8443")
        .json(&json!({"author": "a", "text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(named.status(), 200, "a --public-host name is served");
    server.shutdown().await;
}

#[tokio::test]
async fn one_client_cannot_hold_more_than_its_share_of_connections() {
    let server = TestServer::start_with(|config| config.max_connections_per_client = 2).await;
    let _first = server.sse("/api/sse", None).await;
    let _second = server.ws("/ws").await;
    let refused = server
        .http
        .get(server.url("/api/sse"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("open connections")
    );
    let refused = server
        .http
        .get(server.url("/api/longpoll?wait_ms=1000"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    // Letters that are answered at once are not connections held: they still work.
    assert_eq!(server.batch("/api/poll").await.events.len(), 0);
    drop(_first);
    common::eventually("the stream's place is given back", || async {
        server
            .http
            .get(server.url("/api/sse"))
            .send()
            .await
            .unwrap()
            .status()
            == 200
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_full_lane_says_so() {
    let server = TestServer::start_with(|config| config.max_connections_per_lane = 1).await;
    let mut first = server.ws("/ws").await;
    let refused = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("expected a 503, got {other:?}"),
    }
    // The lane that is full keeps serving the call it has.
    let published = server.publish(1).await;
    first.next_message().await; // hello
    assert_eq!(first.next_event().await.seq, published[0]);
    server.shutdown().await;
}

#[tokio::test]
async fn chat_is_limited_per_client_on_both_ways_of_sending() {
    let server = TestServer::start_with(|config| config.chat_per_second = 2).await;
    let post = || {
        server
            .http
            .post(server.url("/api/messages"))
            .json(&json!({"author": "a", "text": "hi"}))
            .send()
    };
    // A burst of twice the rate is allowed, then the client must slow down.
    for _ in 0..4 {
        assert_eq!(post().await.unwrap().status(), 200);
    }
    let refused = post().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let mut ws = server.ws("/ws").await;
    ws.next_message().await;
    ws.send_text(r#"{"type":"chat","author":"a","text":"on the phone"}"#)
        .await;
    match ws.next_non_heartbeat().await {
        ServerMessage::Error { code, message } => {
            assert_eq!(code, ErrorCode::RateLimited);
            assert!(message.contains("per second"), "{message}");
        }
        other => panic!("expected a rate-limit error, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        post().await.unwrap().status(),
        200,
        "allowed again after a pause"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_fast_typist_on_the_phone_is_slowed_down_not_hung_up_on() {
    let server = TestServer::start_with(|config| config.chat_per_second = 2).await;
    let mut ws = server.ws("/ws").await;
    ws.next_message().await;
    // Far more than the 10 refusals that hang up a peer sending garbage: each is only "too fast".
    let mut limited = 0;
    for n in 0..30 {
        ws.send_text(format!(
            r#"{{"type":"chat","author":"a","text":"quick {n}"}}"#
        ))
        .await;
        loop {
            match ws.next_non_heartbeat().await {
                ServerMessage::Error { code, .. } => {
                    assert_eq!(code, ErrorCode::RateLimited);
                    limited += 1;
                    break;
                }
                ServerMessage::ChatAccepted(_) => break,
                ServerMessage::Event(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert!(limited >= 20, "{limited} of 30 were too fast");
    // Still on the line: after a pause a message goes through.
    tokio::time::sleep(Duration::from_millis(600)).await;
    ws.send_text(r#"{"type":"chat","author":"a","text":"slower now"}"#)
        .await;
    loop {
        match ws.next_non_heartbeat().await {
            ServerMessage::ChatAccepted(_) => break,
            ServerMessage::Event(_) => {}
            other => panic!("expected the message accepted, got {other:?}"),
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_long_poll_may_not_ask_to_be_held_too_long() {
    let server = TestServer::start_with(|config| config.max_wait_ms = 1_000).await;
    let (status, body) = server.get_json("/api/longpoll?wait_ms=1001").await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 1000")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_whose_body_never_comes_times_out() {
    let server = TestServer::start_with(|config| config.request_timeout_ms = 300).await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // Promise 100 bytes, send 10, then nothing.
    tcp.write_all(
        b"POST /api/messages HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"author\":",
    )
    .await
    .unwrap();
    let mut answer = vec![0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut answer))
        .await
        .expect("answered before the client gave up")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("took longer than 300 ms"), "{answer}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_request_head_is_let_go() {
    let server = TestServer::start_with(|config| config.request_timeout_ms = 300).await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /api/poll HTTP/1.1\r\nhost: x\r\nx-slow: ")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut rest))
        .await
        .expect("the server closes the connection");
    assert!(started.elapsed() < Duration::from_secs(2));
    // A well-behaved client is unaffected.
    assert_eq!(server.get_json("/healthz").await.0, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_abandons_what_will_not_finish_by_its_deadline() {
    let server = TestServer::start_with(|config| {
        config.request_timeout_ms = 60_000;
        config.shutdown_timeout_ms = 300;
    })
    .await;
    // A request head that never ends: a graceful shutdown alone would wait for it (here for a minute).
    let mut stuck = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stuck
        .write_all(b"GET /api/poll?after=0 HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(Duration::from_secs(10), server.shutdown())
        .await
        .expect("the server stops by its shutdown deadline");
    drop(stuck);
}
