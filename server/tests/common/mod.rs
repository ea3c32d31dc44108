//! A real server on `127.0.0.1:0` and the project's real clients for it (`switchboard-client`: reqwest for
//! HTTP, an SSE parser over reqwest's byte stream, tokio-tungstenite for WebSocket), with a test's
//! patience and assertions on top.

#![allow(dead_code)] // each test file uses its own part of the harness

use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;
use switchboard_client::sse::{RadioMessage, SseEvent};
use switchboard_client::ws::Ended;
use switchboard_server::Config;
use switchboard_shared::{Batch, ChatAccepted, Event, ServerMessage, ServerStats};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// How long any single wait in a test may take before the test fails (generous: CI machines are shared).
pub const PATIENCE: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// A server with both sources off, so every event in a test is one the test published.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = Config::quiet();
        config.instance = Some("test".into());
        // Tests publish bursts of chat from one address; the chat limit has its own tests.
        config.chat_per_second = 100_000;
        adjust(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(switchboard_server::run(listener, config, async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            http: reqwest::Client::new(),
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// The same clients aimed at something in front of servers (a proxy at `addr`); nothing to stop.
    pub fn front(addr: SocketAddr) -> TestServer {
        TestServer {
            addr,
            http: reqwest::Client::new(),
            stop: None,
            handle: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the server and waits until `run` has returned (every task finished).
    pub async fn shutdown(mut self) {
        let (Some(stop), Some(handle)) = (self.stop.take(), self.handle.take()) else {
            return;
        };
        let _ = stop.send(());
        tokio::time::timeout(PATIENCE, handle)
            .await
            .expect("server stops in time")
            .unwrap()
            .unwrap();
    }

    pub async fn post_chat(&self, text: &str) -> ChatAccepted {
        let response = self
            .http
            .post(self.url("/api/messages"))
            .json(&json!({ "author": "tester", "text": text }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "chat post refused: {}",
            response.text().await.unwrap()
        );
        response.json().await.unwrap()
    }

    /// Publishes `n` chat messages and returns their seqs.
    pub async fn publish(&self, n: usize) -> Vec<u64> {
        let mut seqs = Vec::with_capacity(n);
        for i in 0..n {
            seqs.push(self.post_chat(&format!("message {i}")).await.seq);
        }
        seqs
    }

    /// `POST path` with `body` as JSON; the status and the JSON answer.
    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let response = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// `POST /api/faults` with `body`; the status and the JSON answer.
    pub async fn inject(&self, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.post_json("/api/faults", body).await
    }

    /// Injects a fault that must be accepted.
    pub async fn fault(&self, body: serde_json::Value) -> switchboard_shared::Fault {
        let (status, answer) = self.inject(body).await;
        assert_eq!(status, 201, "fault refused: {answer}");
        serde_json::from_value(answer).unwrap()
    }

    pub async fn stats(&self) -> ServerStats {
        self.http
            .get(self.url("/api/stats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// GETs a poll or long-poll batch, which must be answered 200.
    pub async fn batch(&self, path: &str) -> Batch {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.unwrap()
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    pub async fn sse(&self, path: &str, last_event_id: Option<&str>) -> SseClient {
        let mut request = self.http.get(self.url(path));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        SseClient(switchboard_client::SseClient::from_response(response))
    }

    /// The endless letter at `path`, with its status and content type checked.
    pub async fn stream(&self, path: &str) -> StreamClient {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/x-ndjson");
        StreamClient(switchboard_client::StreamClient::from_response(response))
    }

    /// A WebTransport session: asks `/api/webtransport` where to dial, then dials with `query` (`""`,
    /// `"?after=3"`, `"?mode=datagram"`).
    pub async fn webtransport(&self, query: &str) -> WtClient {
        let info = switchboard_client::WtClient::info(&self.http, &self.url(""))
            .await
            .expect("WebTransport is running");
        let url = format!("{}{query}", info.url);
        let client =
            tokio::time::timeout(PATIENCE, switchboard_client::WtClient::connect(&info, &url))
                .await
                .expect("a session in time")
                .expect("a session");
        WtClient(client)
    }

    pub async fn ws(&self, path: &str) -> WsClient {
        let (client, status) =
            switchboard_client::WsClient::dial(&format!("ws://{}{path}", self.addr))
                .await
                .unwrap();
        assert_eq!(status, 101);
        WsClient(client)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The radio's client, failing the test when the stream breaks or says nothing in time.
pub struct SseClient(pub switchboard_client::SseClient);

impl SseClient {
    /// The next SSE event of any name; `None` when the stream ended.
    pub async fn next(&mut self) -> Option<SseEvent> {
        tokio::time::timeout(PATIENCE, self.0.next())
            .await
            .expect("an SSE event in time")
            .map(|item| item.expect("a well-formed SSE stream"))
    }

    /// The next event of the stream (unnamed SSE message), skipping heartbeats.
    pub async fn next_event(&mut self) -> (SseEvent, Event) {
        loop {
            let sse = self.next().await.expect("stream still open");
            match switchboard_client::sse::parse(&sse).expect("the protocol") {
                RadioMessage::Event { id, event } => {
                    assert_eq!(
                        id,
                        event.seq.to_string(),
                        "every event carries its seq as id"
                    );
                    return (sse, event);
                }
                RadioMessage::Heartbeat(_) | RadioMessage::Hello(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    pub async fn next_named(&mut self, name: &str) -> SseEvent {
        loop {
            let sse = self.next().await.expect("stream still open");
            if sse.event == name {
                return sse;
            }
        }
    }
}

/// The video call's client, failing the test when the session breaks or says nothing in time.
pub struct WtClient(pub switchboard_client::WtClient);

impl WtClient {
    /// The next message (stream or datagram); `None` when the session ended.
    pub async fn next_message(&mut self) -> Option<ServerMessage> {
        tokio::time::timeout(PATIENCE, self.0.next_message())
            .await
            .expect("a message in time")
            .map(|message| message.expect("a message of the protocol"))
    }

    /// The next event, skipping the hello and heartbeats.
    pub async fn next_event(&mut self) -> Event {
        loop {
            match self.next_message().await.expect("session still open") {
                ServerMessage::Event(event) => return event,
                ServerMessage::Hello(_) | ServerMessage::Heartbeat(_) => {}
                other => panic!("expected an event, got {other:?}"),
            }
        }
    }
}

/// The endless letter's client, failing the test when the stream breaks or says nothing in time.
pub struct StreamClient(pub switchboard_client::StreamClient);

impl StreamClient {
    /// The next message; `None` when the stream ended.
    pub async fn next_message(&mut self) -> Option<ServerMessage> {
        tokio::time::timeout(PATIENCE, self.0.next_message())
            .await
            .expect("a line in time")
            .map(|line| line.expect("a line of the protocol"))
    }

    /// The next event, skipping the hello and heartbeats.
    pub async fn next_event(&mut self) -> Event {
        loop {
            match self.next_message().await.expect("stream still open") {
                ServerMessage::Event(event) => return event,
                ServerMessage::Hello(_) | ServerMessage::Heartbeat(_) => {}
                other => panic!("expected an event, got {other:?}"),
            }
        }
    }
}

/// The phone call's client, failing the test when the call ends or says nothing in time.
pub struct WsClient(pub switchboard_client::WsClient);

impl WsClient {
    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.0.send_text(text).await.unwrap();
    }

    /// The next raw frame; `None` when the connection ended.
    pub async fn next_frame(&mut self) -> Option<Message> {
        tokio::time::timeout(PATIENCE, self.0.next_frame())
            .await
            .expect("a frame in time")
            .and_then(Result::ok)
    }

    /// The next protocol message (text frame), skipping protocol pings and pongs.
    pub async fn next_message(&mut self) -> ServerMessage {
        tokio::time::timeout(PATIENCE, self.0.next_message())
            .await
            .expect("a message in time")
            .expect("the call still up and speaking the protocol")
    }

    /// The next message that is not a heartbeat.
    pub async fn next_non_heartbeat(&mut self) -> ServerMessage {
        loop {
            let message = self.next_message().await;
            if !matches!(message, ServerMessage::Heartbeat(_)) {
                return message;
            }
        }
    }

    pub async fn next_event(&mut self) -> Event {
        match self.next_non_heartbeat().await {
            ServerMessage::Event(event) => event,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    /// Waits for the close frame and returns its code (`None` when the call ended without one).
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(PATIENCE, self.0.next_message())
                .await
                .expect("the call to end in time")
            {
                Err(Ended::Closed(code)) => return code,
                Err(Ended::Gone) => return None,
                Ok(_) | Err(Ended::Garbled(_)) => continue,
            }
        }
    }
}

/// Repeats `check` until it holds or [`PATIENCE`] runs out.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// This process's resident memory: a test's server runs in it, so growth is the server's (and the
/// test's own clients', an upper bound).
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

/// Switchboard in front of the app at `upstream`, its proxy on a free port; `adjust` changes the rest of
/// the configuration. Returns the server and the proxy's `http://HOST:PORT`.
pub async fn through_with(
    upstream: &str,
    adjust: impl FnOnce(&mut Config),
) -> (TestServer, String) {
    let upstream = switchboard_server::proxy::Upstream::parse(upstream).unwrap();
    let server = TestServer::start_with(|config| {
        config.upstream = Some(upstream);
        config.proxy_addr = "127.0.0.1:0".parse().unwrap();
        adjust(config);
    })
    .await;
    let (status, body) = server.get_json("/api/app").await;
    assert_eq!(status, 200, "{body}");
    let proxy = body["proxy_url"]
        .as_str()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    (server, proxy)
}

/// `GET /api/app`, read: the app's report as the page gets it.
pub async fn app_report(server: &TestServer) -> switchboard_shared::app::AppReport {
    let (status, body) = server.get_json("/api/app").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).unwrap()
}

/// [`through_with`] the default configuration.
pub async fn through(upstream: &str) -> (TestServer, String) {
    through_with(upstream, |_| {}).await
}
