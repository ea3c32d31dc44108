//! Your app through the lab: the proxy in front of real apps this project did not write (a `ws` server
//! and a plain Node HTTP app from `e2e/apps/`, on their npm packages), driven by real clients through
//! the proxy — forwarding faithfully, recording, classifying, and each fault of the lab doing what it
//! says on a real connection.

mod common;

use common::{PATIENCE, TestServer, app_report as report, rss_kib, through};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_client::node_app::NodeApp;
use switchboard_shared::app::AppReport;
use switchboard_shared::har::{ChannelKind, Har, classify};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// Every experiment's findings, newest experiment first.
fn found(report: &AppReport) -> Vec<String> {
    report
        .experiments
        .iter()
        .flat_map(|experiment| experiment.findings.iter().map(|f| f.text.clone()))
        .collect()
}

/// Waits for a finding of the experiments that `matches`, and returns it.
async fn finding(server: &TestServer, matches: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let texts = found(&report(server).await);
        if let Some(text) = texts.iter().find(|text| matches(text)) {
            return text.clone();
        }
        assert!(Instant::now() < deadline, "no such finding in {texts:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The channel whose name ends with `suffix`.
async fn channel(server: &TestServer, suffix: &str) -> switchboard_shared::app::AppChannel {
    let report = report(server).await;
    report
        .channels
        .iter()
        .find(|channel| channel.name.ends_with(suffix))
        .cloned()
        .unwrap_or_else(|| panic!("no channel {suffix} in {:#?}", report.channels))
}

/// One letter through the proxy, its answer read whole.
fn letter(
    server: &TestServer,
    proxy: &str,
    path: &str,
) -> impl Future<Output = bytes::Bytes> + use<> {
    let (http, url) = (server.http.clone(), format!("{proxy}{path}"));
    async move { http.get(url).send().await.unwrap().bytes().await.unwrap() }
}

async fn app_fault(server: &TestServer, body: serde_json::Value) -> (u16, serde_json::Value) {
    server.post_json("/api/app/faults", body).await
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket through the proxy, with the browser-like headers the app checks.
async fn dial(
    proxy: &str,
    path: &str,
) -> (
    Socket,
    tokio_tungstenite::tungstenite::http::Response<Option<Vec<u8>>>,
) {
    let ws_url = format!("{}{path}", proxy.replacen("http://", "ws://", 1));
    let mut request = ws_url.into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("origin", proxy.parse().unwrap());
    headers.insert("sec-websocket-protocol", "chat, superchat".parse().unwrap());
    headers.insert(
        "sec-websocket-extensions",
        "permessage-deflate; client_max_window_bits"
            .parse()
            .unwrap(),
    );
    tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(request))
        .await
        .expect("the upgrade in time")
        .expect("the upgrade")
}

/// The next message that is not a ping or pong (those are answered by tungstenite itself).
async fn next_message(socket: &mut Socket) -> Message {
    loop {
        let message = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("a message in time")
            .expect("the socket open")
            .expect("a frame");
        if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
            return message;
        }
    }
}

#[tokio::test]
async fn a_websocket_is_relayed_frame_by_frame_with_its_subprotocol_and_close_code() {
    let app = NodeApp::start("ws-app.cjs", &["200"]);
    let (server, proxy) = through(&app.url()).await;
    let (mut socket, response) = dial(&proxy, "/live?room=1").await;
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        "chat",
        "negotiated by the two ends"
    );
    assert!(response.headers().get("sec-websocket-extensions").is_none());

    let Message::Text(welcome) = next_message(&mut socket).await else {
        panic!("the app's welcome first");
    };
    let welcome: serde_json::Value = serde_json::from_str(&welcome).unwrap();
    assert_eq!(welcome["protocol"], "chat");
    assert_eq!(
        welcome["extensions"], "",
        "no compression negotiated: every frame readable"
    );
    assert_eq!(
        welcome["origin"],
        app.url(),
        "the proxy's own origin rewritten to the app's"
    );
    assert_eq!(welcome["host"], format!("127.0.0.1:{}", app.port));
    assert_eq!(welcome["forwarded_for"], "127.0.0.1");

    socket.send(Message::text("hello ☎")).await.unwrap();
    assert_eq!(next_message(&mut socket).await, Message::text("hello ☎"));
    let binary: Vec<u8> = (0..70_000u32).map(|n| n as u8).collect();
    socket.send(Message::binary(binary.clone())).await.unwrap();
    assert_eq!(
        next_message(&mut socket).await,
        Message::binary(binary),
        "a large frame, streamed through"
    );
    socket
        .send(Message::Ping("are you there".into()))
        .await
        .unwrap();
    assert_eq!(
        next_message(&mut socket).await,
        Message::text("ping-seen:are you there")
    );
    // The app pings every 200 ms; tungstenite answers each with a pong, which the app reports.
    assert_eq!(
        next_message(&mut socket).await,
        Message::text("pong-seen:beat")
    );

    // A few more of the app's pings, so their pace can be told.
    tokio::time::sleep(Duration::from_millis(700)).await;
    socket.send(Message::text("close:4001:bye")).await.unwrap();
    let closed = loop {
        match next_message(&mut socket).await {
            Message::Close(frame) => break frame,
            Message::Text(text) if text.starts_with("pong-seen") => continue,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        closed,
        Some(CloseFrame {
            code: 4001.into(),
            reason: "bye".into()
        })
    );

    // Recorded: the socket's frames both ways, the pings as heartbeats.
    let phone = channel(&server, "/live").await;
    assert_eq!(phone.kind, ChannelKind::Phone);
    assert!(phone.messages >= 8, "{phone:?}");
    let heartbeat = phone.heartbeat_ms.expect("the app's pings are heartbeats");
    assert!((150.0..300.0).contains(&heartbeat), "{heartbeat}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_close_frame_is_a_frame_on_the_wire_but_no_message_the_page_got() {
    let app = NodeApp::start("ws-app.cjs", &["0"]);
    let (server, proxy) = through(&app.url()).await;
    let (mut socket, _) = dial(&proxy, "/closing").await;
    next_message(&mut socket).await;
    for n in 0..3 {
        socket.send(Message::text(format!("m{n}"))).await.unwrap();
        assert_eq!(
            next_message(&mut socket).await,
            Message::text(format!("m{n}"))
        );
    }
    socket.send(Message::text("close:4001:bye")).await.unwrap();
    assert!(matches!(next_message(&mut socket).await, Message::Close(_)));
    // The app's close frame passed: a frame on the channel, as an imported HAR counts it; the page's
    // handlers got the welcome and three echoes, no more.
    let deadline = Instant::now() + PATIENCE;
    let phone = loop {
        let phone = channel(&server, "/closing").await;
        if phone.messages >= 9 || Instant::now() > deadline {
            break phone;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(phone.messages >= 9, "5 frames down, 4 up: {phone:#?}");
    assert_eq!(
        (phone.got.sent, phone.got.delivered),
        (4, 4),
        "the app's close frame counted as a message the browser got"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn three_sockets_open_at_once_beat_at_each_ones_pace_not_at_their_merged_one() {
    // The app pings each socket every 300 ms; three tabs opened 100 ms apart hear the channel's pings
    // every ~100 ms between them. The channel's heartbeat is each socket's: 300 ms.
    let app = NodeApp::start("ws-app.cjs", &["300"]);
    let (server, proxy) = through(&app.url()).await;
    let mut tabs = Vec::new();
    for _ in 0..3 {
        let (mut socket, _) = dial(&proxy, "/room").await;
        tabs.push(tokio::spawn(async move {
            // Reading answers the app's pings (tungstenite's pongs) until the tab is closed.
            let until = tokio::time::Instant::now() + Duration::from_millis(2_400);
            while let Ok(Some(Ok(_))) = tokio::time::timeout_at(until, socket.next()).await {}
            let _ = socket.close(None).await;
        }));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for tab in tabs {
        tab.await.unwrap();
    }
    let room = channel(&server, "/room").await;
    assert_eq!(room.kind, ChannelKind::Phone);
    assert_eq!(room.clients, 3, "{room:?}");
    let heartbeat = room.heartbeat_ms.expect("the app's pings are heartbeats");
    assert!(
        (250.0..=400.0).contains(&heartbeat),
        "each socket is pinged every 300 ms; the channel says {heartbeat} ms"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_event_the_app_writes_reaches_the_browser_within_50_ms() {
    let app = NodeApp::start("http-app.cjs", &[]);
    let (server, proxy) = through(&app.url()).await;
    let response = server
        .http
        .get(format!("{proxy}/events?every=100&ping=300"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut events = eventsource_stream::EventStream::new(response.bytes_stream());
    let mut delays = Vec::new();
    while delays.len() < 10 {
        let event = tokio::time::timeout(PATIENCE, events.next())
            .await
            .expect("an event in time")
            .expect("the stream open")
            .expect("an event");
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as f64;
        let data: serde_json::Value = serde_json::from_str(&event.data).unwrap();
        delays.push(now_ms - data["at"].as_f64().unwrap());
    }
    delays.sort_by(f64::total_cmp);
    assert!(delays[8] < 50.0, "events passed late: {delays:?} ms");

    let radio = channel(&server, "/events").await;
    assert_eq!((radio.kind, radio.open), (ChannelKind::Radio, 1));
    assert!(radio.messages >= 10, "{radio:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_100_mb_answer_passes_with_the_proxys_memory_flat_and_bodies_pass_both_ways() {
    let app = NodeApp::start("http-app.cjs", &[]);
    let (server, proxy) = through(&app.url()).await;
    let before = rss_kib();
    let mut body = server
        .http
        .get(format!("{proxy}/big?mb=100"))
        .send()
        .await
        .unwrap()
        .bytes_stream();
    let mut total = 0usize;
    while let Some(chunk) = body.next().await {
        total += chunk.unwrap().len();
    }
    assert_eq!(total, 100 * 1024 * 1024);
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    assert!(
        grown_mib < 32,
        "the proxy held the answer: +{grown_mib} MiB"
    );

    let sent = "x".repeat(300_000);
    let echoed = server
        .http
        .post(format!("{proxy}/echo?n=1"))
        .header("content-type", "text/plain")
        .body(sent.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.status(), 200);
    assert_eq!(echoed.text().await.unwrap(), sent);

    let headers: serde_json::Value = server
        .http
        .get(format!("{proxy}/headers"))
        .header("connection", "keep-alive, x-private")
        .header("x-private", "hop")
        .header("te", "trailers")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(
        headers["x-forwarded-host"],
        proxy.trim_start_matches("http://")
    );
    assert!(
        headers.get("x-private").is_none(),
        "named by Connection: hop-by-hop"
    );
    assert!(headers.get("te").is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_app_gets_a_502_that_names_its_address() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let (server, proxy) = through(&format!("http://{address}")).await;
    let answer = server
        .http
        .get(format!("{proxy}/anything"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 502);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&address.to_string()),
        "{body}"
    );
    let page = server
        .http
        .get(format!("{proxy}/"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 502);
    assert!(page.text().await.unwrap().contains(&address.to_string()));
    let report = report(&server).await;
    assert_eq!(report.upstream_up, Some(false));
    assert!(
        report.findings[0].text.contains(&address.to_string()),
        "{:?}",
        report.findings
    );
    server.shutdown().await;
}

#[tokio::test]
async fn letters_that_come_back_unchanged_are_counted_empty_and_said_so() {
    let app = NodeApp::start("http-app.cjs", &[]);
    let (server, proxy) = through(&app.url()).await;
    for _ in 0..12 {
        let answer = server
            .http
            .get(format!("{proxy}/status"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        answer.bytes().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let letters = channel(&server, "/status").await;
    assert_eq!((letters.kind, letters.requests), (ChannelKind::Letters, 12));
    // The body changes at the 11th answer: 12 answers, two of them news (the first and the 11th).
    assert_eq!(letters.empty_answers, 10);
    let report = report(&server).await;
    let finding = report
        .findings
        .iter()
        .find(|finding| finding.channel.as_deref() == Some(letters.id.as_str()))
        .expect("a finding on the letters");
    assert!(
        finding
            .text
            .starts_with("Your letters (/status) brought nothing new 83 % of the time (10 of 12: identical to the answer before 10)"),
        "{}",
        finding.text
    );

    // The HAR download opens with the same channels.
    let har: Har = server
        .http
        .get(server.url("/api/app/har"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let imported = classify(&har);
    let found = imported
        .channels
        .iter()
        .find(|c| c.name == "GET /status")
        .unwrap();
    assert_eq!(
        (found.kind, found.requests, found.empty),
        (ChannelKind::Letters, 12, 10)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn open_counts_letters_awaiting_an_answer_not_kept_alive_connections_between_them() {
    let app = NodeApp::start("http-app.cjs", &[]);
    let (server, proxy) = through(&app.url()).await;
    let ask = |path: &str| letter(&server, &proxy, path);
    // Letters the app holds (a long poll's shape; three make the loop), then one more: open while it
    // waits.
    for _ in 0..3 {
        ask("/wait?ms=200").await;
    }
    let held = tokio::spawn(ask("/wait?ms=1500"));
    let deadline = Instant::now() + Duration::from_millis(1200);
    loop {
        let report = report(&server).await;
        let open = report
            .channels
            .iter()
            .find(|c| c.path == "/wait")
            .map(|c| c.open);
        if open == Some(1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the held letter was not counted open while it waited: {:#?}",
            report.channels
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    held.await.unwrap();
    // Answered, its connection stays open for the next letter (the client's pool keeps it alive):
    // nothing is open on the channel until the next letter is asked.
    let answered = channel(&server, "/wait").await;
    assert_eq!(
        (answered.requests, answered.open),
        (4, 0),
        "a kept-alive connection between letters counted as open"
    );
    for _ in 0..4 {
        ask("/status").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let letters = channel(&server, "/status").await;
    assert_eq!((letters.requests, letters.open), (4, 0));
    server.shutdown().await;
}

#[tokio::test]
async fn letters_waiting_on_a_channel_not_listed_yet_are_told_while_they_wait() {
    let app = NodeApp::start("http-app.cjs", &[]);
    let (server, proxy) = through(&app.url()).await;
    // Two tabs' first long polls, held 7 s by the app: no channel until three letters have ended.
    let asked = Instant::now();
    let held = [
        tokio::spawn(letter(&server, &proxy, "/wait?ms=7000")),
        tokio::spawn(letter(&server, &proxy, "/wait?ms=7000")),
    ];
    let waiting = |report: &switchboard_shared::app::AppReport| {
        report
            .findings
            .iter()
            .find(|finding| finding.text.starts_with("Waiting: GET /wait"))
            .cloned()
    };
    let finding = loop {
        let report = report(&server).await;
        assert!(
            report.channels.iter().all(|c| c.path != "/wait"),
            "a channel of one letter: {:#?}",
            report.channels
        );
        if let Some(finding) = waiting(&report) {
            break finding;
        }
        assert!(
            asked.elapsed() < Duration::from_millis(6_500),
            "no finding on the letters in flight after {:?}: {:#?}",
            asked.elapsed(),
            report.findings
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Told only once they have waited the threshold, and as long as they have waited.
    assert!(
        asked.elapsed() >= Duration::from_millis(switchboard_server::proxy::report::WAITING_MS),
        "told after {:?}",
        asked.elapsed()
    );
    let silent: f64 = finding
        .text
        .split_once("has 2 requests in flight, silent for ")
        .and_then(|(_, rest)| rest.split_once(" s so far"))
        .and_then(|(seconds, _)| seconds.parse().ok())
        .unwrap_or_else(|| panic!("{}", finding.text));
    assert!(
        (5.0..=asked.elapsed().as_secs_f64() + 0.05).contains(&silent),
        "silent for {silent} s, asked {:?} ago",
        asked.elapsed()
    );
    for letter in held {
        assert_eq!(&letter.await.unwrap()[..], br#"{"waited":true}"#);
    }
    // Answered: nothing waits any more.
    let report = report(&server).await;
    assert!(waiting(&report).is_none(), "{:#?}", report.findings);
    server.shutdown().await;
}

#[tokio::test]
async fn a_fault_finds_no_line_open_on_a_kept_alive_connection_idle_between_letters() {
    let app = NodeApp::start("http-app.cjs", &[]);
    let (server, proxy) = through(&app.url()).await;
    for _ in 0..3 {
        letter(&server, &proxy, "/wait?ms=200").await;
    }
    let held = channel(&server, "/wait").await;
    // The client's pool keeps the connection open, idle: a half-open now strikes no line of it.
    let (status, body) = app_fault(
        &server,
        serde_json::json!({"kind": "half_open", "duration_ms": 500, "channel": held.id}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let report = report(&server).await;
    let open_at_start = report.experiments[0]
        .figures
        .get(&held.id)
        .map_or(0, |seen| seen.open_at_start);
    assert_eq!(
        open_at_start, 0,
        "an idle kept-alive connection counted as a line open when the fault began"
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let report = crate::report(&server).await;
    let said: Vec<&str> = report.experiments[0]
        .findings
        .iter()
        .map(|f| f.text.as_str())
        .collect();
    assert!(
        !said.iter().any(|t| t.contains("noticed")),
        "nothing was open to notice: {said:#?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn half_open_passes_nothing_either_way_and_closes_nothing() {
    let app = NodeApp::start("ws-app.cjs", &[]);
    let (server, proxy) = through(&app.url()).await;
    let (mut socket, _) = dial(&proxy, "/half").await;
    next_message(&mut socket).await;
    socket.send(Message::text("before")).await.unwrap();
    assert_eq!(next_message(&mut socket).await, Message::text("before"));
    let id = channel(&server, "/half").await.id;
    let (status, body) = app_fault(
        &server,
        serde_json::json!({"kind": "half_open", "channel": id, "duration_ms": 3000}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    socket.send(Message::text("into the void")).await.unwrap();
    let silent = tokio::time::timeout(Duration::from_millis(1500), socket.next()).await;
    assert!(
        silent.is_err(),
        "something passed a half-open line: {silent:?}"
    );
    // Still open as far as the browser can tell: its writes are taken.
    socket.send(Message::text("still there?")).await.unwrap();
    drop(socket);
    finding(&server, |text| {
        text.starts_with("During the 3.0 s half-open, your phone call (/half) noticed after")
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn an_idle_timeout_cuts_a_silent_line_on_time_and_counts_it() {
    let app = NodeApp::start("ws-app.cjs", &[]);
    let (server, proxy) = through(&app.url()).await;
    let (mut socket, _) = dial(&proxy, "/quiet").await;
    next_message(&mut socket).await;
    let id = channel(&server, "/quiet").await.id;
    let (status, body) = app_fault(
        &server,
        serde_json::json!({"kind": "idle_timeout", "channel": id, "idle_ms": 2000}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let silent_since = Instant::now();
    let ended = tokio::time::timeout(PATIENCE, async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "not cut");
    let after = silent_since.elapsed();
    assert!(
        after > Duration::from_millis(1000) && after < Duration::from_millis(3000),
        "cut after {after:?}, not 2 s ± 1 s"
    );
    let quiet = channel(&server, "/quiet").await;
    assert_eq!((quiet.cut_by_idle_timeout, quiet.open), (1, 0));
    let report = report(&server).await;
    // The cut is kept with its time, for the swimlane's mark.
    let cut = report
        .cuts
        .iter()
        .find(|cut| cut.channel == id)
        .expect("the cut is listed");
    assert_eq!(cut.by, switchboard_shared::app::CutCause::IdleTimeout);
    finding(&server, |text| {
        text.contains("2.0 s idle timeout cut your phone call (/quiet) 1 time")
    })
    .await;
    // Cleared, a silent line stays up.
    let (status, _) = app_fault(&server, serde_json::json!({"kind": "clear"})).await;
    assert_eq!(status, 200);
    let (mut socket, _) = dial(&proxy, "/quiet").await;
    next_message(&mut socket).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(2600), socket.next())
            .await
            .is_err()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn drop_503_refusal_delay_and_swallowed_heartbeats_act_on_real_connections() {
    let http = NodeApp::start("http-app.cjs", &[]);
    let (server, proxy) = through(&http.url()).await;

    // drop: an open stream is cut at once.
    let response = server
        .http
        .get(format!("{proxy}/events?every=100"))
        .send()
        .await
        .unwrap();
    let mut stream = response.bytes_stream();
    stream.next().await.unwrap().unwrap();
    let (status, _) = app_fault(&server, serde_json::json!({"kind": "drop"})).await;
    assert_eq!(status, 200);
    let cut = tokio::time::timeout(PATIENCE, async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
    assert!(cut.is_ok(), "the stream was not cut");
    let events = channel(&server, "/events").await;
    assert!(events.cut_by_fault >= 1);
    assert!(
        report(&server).await.cuts.iter().any(
            |cut| cut.channel == events.id && cut.by == switchboard_shared::app::CutCause::Drop
        )
    );

    // http_503 on one channel only.
    server
        .http
        .get(format!("{proxy}/status"))
        .send()
        .await
        .unwrap();
    let status_id = switchboard_shared::app::channel_id("GET /status");
    let (code, body) = app_fault(
        &server,
        serde_json::json!({"kind": "http_503", "channel": status_id, "duration_ms": 1000}),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let fresh = reqwest::Client::new();
    assert_eq!(
        fresh
            .get(format!("{proxy}/status"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    assert_eq!(
        fresh
            .get(format!("{proxy}/headers"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        fresh
            .get(format!("{proxy}/status"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // delay: each answer waits its time.
    app_fault(
        &server,
        serde_json::json!({"kind": "delay", "delay_ms": 400, "duration_ms": 2000}),
    )
    .await;
    let asked = Instant::now();
    fresh
        .get(format!("{proxy}/status"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        asked.elapsed() >= Duration::from_millis(400),
        "{:?}",
        asked.elapsed()
    );
    app_fault(&server, serde_json::json!({"kind": "clear"})).await;

    // hiccup: new connections refused, open ones served.
    let kept = reqwest::Client::new();
    kept.get(format!("{proxy}/status"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    app_fault(
        &server,
        serde_json::json!({"kind": "hiccup", "duration_ms": 1500}),
    )
    .await;
    let refused = reqwest::Client::new()
        .get(format!("{proxy}/status"))
        .send()
        .await;
    assert!(refused.is_err(), "a new connection was served: {refused:?}");
    assert!(
        report(&server)
            .await
            .cuts
            .iter()
            .any(|cut| cut.channel == status_id
                && cut.by == switchboard_shared::app::CutCause::Hiccup),
        "the refusal is marked"
    );
    assert_eq!(
        kept.get(format!("{proxy}/status"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app_fault(&server, serde_json::json!({"kind": "clear"})).await;

    // no_heartbeat: the app's WebSocket pings and its SSE comments are swallowed, news passes.
    let ws = NodeApp::start("ws-app.cjs", &["100"]);
    let (ws_server, ws_proxy) = through(&ws.url()).await;
    let (mut socket, _) = dial(&ws_proxy, "/beats").await;
    next_message(&mut socket).await;
    assert_eq!(
        next_message(&mut socket).await,
        Message::text("pong-seen:beat")
    );
    app_fault(
        &ws_server,
        serde_json::json!({"kind": "no_heartbeat", "duration_ms": 5000}),
    )
    .await;
    // What was in flight passes; then no ping (so no pong) for the fault's length.
    tokio::time::sleep(Duration::from_millis(300)).await;
    while tokio::time::timeout(Duration::from_millis(50), socket.next())
        .await
        .is_ok()
    {}
    socket.send(Message::text("news")).await.unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(800), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Ping(_))) => return "a ping passed",
                Some(Ok(Message::Text(text))) if text.as_str() == "news" => {}
                Some(Ok(Message::Text(text))) if text.starts_with("pong-seen") => {
                    return "a pong was seen";
                }
                None | Some(Err(_)) => return "closed",
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "{quiet:?}");
    let sse = server
        .http
        .get(format!("{proxy}/events?every=300&ping=50"))
        .send()
        .await
        .unwrap();
    app_fault(
        &server,
        serde_json::json!({"kind": "no_heartbeat", "duration_ms": 3000}),
    )
    .await;
    let mut body = sse.bytes_stream();
    let mut seen = String::new();
    let until = Instant::now() + Duration::from_millis(1200);
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(until.into(), body.next()).await {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let after_retry = seen
        .split_once("retry: 1000\n\n")
        .map_or(seen.as_str(), |(_, rest)| rest);
    assert!(after_retry.contains("event: tick"), "{seen}");
    // Comments written before the fault reached the proxy may pass; none after the first tick.
    let after_tick = after_retry.split_once("event: tick").unwrap().1;
    assert!(!after_tick.contains(": ping"), "{seen}");
    ws_server.shutdown().await;
    server.shutdown().await;
}

/// Socket.IO on long polling: its ping is the answer to a held poll. Under `no_heartbeat` that answer is
/// held until the fault ends, as a dead server would never send it; without the fault it comes on time.
#[tokio::test]
async fn no_heartbeat_holds_a_socketio_ping_that_answers_a_held_poll() {
    let app = NodeApp::start("socketio-app.cjs", &["400"]);
    let (server, proxy) = through(&app.url()).await;
    let http = reqwest::Client::new();
    let base = format!("{proxy}/socket.io/?EIO=4&transport=polling");
    let open = http.get(&base).send().await.unwrap().text().await.unwrap();
    let handshake: serde_json::Value =
        serde_json::from_str(open.strip_prefix('0').expect("an Engine.IO open packet")).unwrap();
    let sid = handshake["sid"].as_str().unwrap().to_owned();
    let poll = format!("{base}&sid={sid}");
    let pong = || async {
        let answer = http.post(&poll).body("3").send().await.unwrap();
        assert_eq!(answer.text().await.unwrap(), "ok");
    };

    // Without the fault: the ping answers the held poll at its interval.
    let asked = Instant::now();
    assert_eq!(
        http.get(&poll).send().await.unwrap().text().await.unwrap(),
        "2"
    );
    let on_time = asked.elapsed();
    assert!(on_time < Duration::from_millis(1_200), "{on_time:?}");
    pong().await;
    // Its open was a handshake, not a letter: a second poll makes the loop of held letters.
    assert_eq!(
        http.get(&poll).send().await.unwrap().text().await.unwrap(),
        "2"
    );
    pong().await;

    let id = switchboard_shared::app::channel_id("GET /socket.io/");
    let (status, body) = app_fault(
        &server,
        serde_json::json!({"kind": "no_heartbeat", "channel": id, "duration_ms": 2000}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let asked = Instant::now();
    assert_eq!(
        http.get(&poll).send().await.unwrap().text().await.unwrap(),
        "2"
    );
    let held = asked.elapsed();
    assert!(
        held >= Duration::from_millis(1_800),
        "the ping passed after {held:?} while heartbeats were swallowed"
    );
    let channel_got = channel(&server, "/socket.io/").await.got;
    assert_eq!(
        channel_got.swallowed, 0,
        "held, not swallowed: it went later"
    );

    // Cleared early, a held ping goes at once.
    pong().await;
    app_fault(
        &server,
        serde_json::json!({"kind": "no_heartbeat", "channel": id, "duration_ms": 60000}),
    )
    .await;
    let asked = Instant::now();
    let poll_answer = tokio::spawn({
        let (http, poll) = (http.clone(), poll.clone());
        async move { http.get(&poll).send().await.unwrap().text().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    app_fault(&server, serde_json::json!({"kind": "clear"})).await;
    assert_eq!(poll_answer.await.unwrap(), "2");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_app_endpoints_refuse_bad_requests_naming_the_field() {
    let plain = TestServer::start().await;
    // The page learns from /api/stats that there is no app to ask about, and does not ask.
    assert!(!plain.stats().await.app_proxy);
    let (status, body) = plain.get_json("/api/app").await;
    assert_eq!(status, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--upstream"),
        "{body}"
    );
    plain.shutdown().await;

    let app = NodeApp::start("http-app.cjs", &[]);
    let (server, _) = through(&app.url()).await;
    for (path, body, code, field) in [
        (
            "/api/app/faults",
            serde_json::json!({"kind": "melt"}),
            400,
            "kind",
        ),
        (
            "/api/app/faults",
            serde_json::json!({"kind": "half_open"}),
            400,
            "duration_ms",
        ),
        (
            "/api/app/faults",
            serde_json::json!({"kind": "drop", "channel": 7}),
            400,
            "channel",
        ),
        (
            "/api/app/faults",
            serde_json::json!({"kind": "drop", "channel": "0badc0de"}),
            404,
            "channel",
        ),
        (
            "/api/app/network",
            serde_json::json!({"preset": "5g"}),
            400,
            "5g",
        ),
        (
            "/api/app/network",
            serde_json::json!({"rtt_ms": -3}),
            400,
            "rtt_ms",
        ),
        (
            "/api/app/network",
            serde_json::json!({"lane": "ws", "preset": "3g"}),
            400,
            "lane",
        ),
    ] {
        let (status, answer) = server.post_json(path, body.clone()).await;
        assert_eq!(status, code, "{body} → {answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(field),
            "{body} → {answer}"
        );
    }
    let (status, networks) = server
        .post_json("/api/app/network", serde_json::json!({"preset": "3g"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(networks[0]["channel"], "all");
    assert_eq!(networks[0]["condition"]["rtt_ms"], 300);
    // Back on this machine's network: the 3g span ends, and is kept for the swimlanes' tint.
    let (status, _) = server
        .post_json(
            "/api/app/network",
            serde_json::json!({"preset": "loopback"}),
        )
        .await;
    assert_eq!(status, 200);
    let history = report(&server).await.network_history;
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(
        (history[0].channel.as_str(), history[0].name.as_str()),
        ("all", "3g")
    );
    assert!(
        history[0]
            .ended_ms
            .is_some_and(|end| end >= history[0].started_ms)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn on_3g_the_apps_answers_take_the_round_trip() {
    let app = NodeApp::start("http-app.cjs", &[]);
    let (server, proxy) = through(&app.url()).await;
    let (status, _) = server
        .post_json("/api/app/network", serde_json::json!({"rtt_ms": 400}))
        .await;
    assert_eq!(status, 200);
    let asked = Instant::now();
    let answer = reqwest::Client::new()
        .get(format!("{proxy}/status"))
        .send()
        .await
        .unwrap();
    answer.bytes().await.unwrap();
    // The head's way up and the answer's way down, half a round trip each.
    assert!(
        asked.elapsed() >= Duration::from_millis(380),
        "{:?}",
        asked.elapsed()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn switchboard_itself_works_as_the_app() {
    let app = TestServer::start().await;
    let (server, proxy) = through(&format!("http://{}", app.addr)).await;
    let seqs = app.publish(3).await;
    let front = TestServer::front(proxy.trim_start_matches("http://").parse().unwrap());
    let batch = front.batch("/api/poll?after=0").await;
    assert_eq!(batch.events.iter().map(|e| e.seq).collect::<Vec<_>>(), seqs);
    let mut ws = front.ws("/ws?after=0").await;
    ws.next_message().await; // the hello
    let first = ws.next_event().await;
    assert_eq!(first.seq, seqs[0]);
    let phone = channel(&server, "/ws").await;
    assert_eq!(phone.kind, ChannelKind::Phone);
    server.shutdown().await;
    app.shutdown().await;
}

#[tokio::test]
async fn the_report_counts_as_traffic_flows_and_the_har_sorts_as_the_report_does() {
    let http = NodeApp::start("http-app.cjs", &[]);
    let (server, proxy) = through(&http.url()).await;
    // A loop longer than the recording keeps: the report's figures are kept as the traffic flows,
    // not read back from the recording.
    let total = switchboard_server::proxy::record::MAX_EXCHANGES + 100;
    for n in 0..total {
        let answer = server
            .http
            .get(format!("{proxy}/status?n={n}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        answer.bytes().await.unwrap();
    }
    let status = channel(&server, "/status").await;
    // Asked again the moment each answer came: by the rules, a long poll under a firehose.
    assert_eq!(status.kind, ChannelKind::Held);
    assert_eq!(status.requests, total as u64);
    // Its answers change every tenth time: nine in ten are the same as the one before.
    let repeated = status.empty_answers as f64 / status.requests as f64;
    assert!((0.85..=0.95).contains(&repeated), "{repeated}");
    let report = report(&server).await;
    assert!(report.dropped >= 100, "the recording kept its bound");
    assert!(
        server.stats().await.app_proxy,
        "/api/stats tells the page to ask"
    );

    // The page's swimlanes, from the last seconds of the HAR, sort as the table does.
    let (_, har) = server.get_json("/api/app/har?last_s=5").await;
    let har: Har = serde_json::from_value(har).unwrap();
    assert!(har.log.entries.iter().all(|entry| entry.channel.is_some()));
    let imported = classify(&har);
    for channel in &imported.channels {
        let row = report
            .channels
            .iter()
            .find(|row| row.name == channel.name)
            .unwrap_or_else(|| panic!("{} is no row of the table", channel.name));
        assert_eq!(row.kind, channel.kind, "{}", channel.name);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn compressed_answers_pass_as_they_came_and_are_recorded_as_the_app_wrote_them() {
    let http = NodeApp::start("http-app.cjs", &[]);
    let (server, proxy) = through(&http.url()).await;
    for encoding in ["gzip", "br", "deflate"] {
        for _ in 0..4 {
            let answer = server
                .http
                .get(format!("{proxy}/packed?enc={encoding}"))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.headers()["content-encoding"], encoding);
            let bytes = answer.bytes().await.unwrap();
            assert!(
                !bytes.starts_with(b"{"),
                "the browser gets the compressed bytes"
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
    let (_, har) = server.get_json("/api/app/har").await;
    let har: Har = serde_json::from_value(har).unwrap();
    let texts: Vec<String> = har
        .log
        .entries
        .iter()
        .filter(|entry| entry.request.url.contains("/packed"))
        .map(|entry| entry.response.content.text.clone().unwrap_or_default())
        .collect();
    assert_eq!(texts.len(), 12);
    for text in &texts {
        assert!(
            text.starts_with("{\"version\":"),
            "recorded as the app wrote it: {text:?}"
        );
    }
    // Read as the app wrote them, the answers are the same as the one before until the tenth.
    let packed = channel(&server, "/packed").await;
    assert_eq!(packed.kind, ChannelKind::Letters);
    assert_eq!((packed.requests, packed.empty_answers), (12, 12));
    server.shutdown().await;
}

#[tokio::test]
async fn a_half_open_holds_new_connections_until_it_ends_and_leaves_the_old_dead_until_released() {
    let app = NodeApp::start("ws-app.cjs", &[]);
    let (server, proxy) = through(&app.url()).await;
    let (mut old, _) = dial(&proxy, "/line").await;
    next_message(&mut old).await;
    let id = channel(&server, "/line").await.id;
    let (status, body) = app_fault(
        &server,
        serde_json::json!({"kind": "half_open", "channel": id, "duration_ms": 1500}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // A connection opened during it is not completed until the path comes back, then works.
    let started = Instant::now();
    let (mut new, _) = dial(&proxy, "/line").await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1300) && waited < Duration::from_secs(4),
        "the new connection was answered after {waited:?}, not when the fault ended"
    );
    next_message(&mut new).await;
    new.send(Message::text("after")).await.unwrap();
    assert_eq!(next_message(&mut new).await, Message::text("after"));
    // The one open when it struck stays dead after it, as a connection a NAT forgot.
    old.send(Message::text("still there?")).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(800), old.next())
            .await
            .is_err(),
        "something passed a dead connection"
    );
    let row = channel(&server, "/line").await;
    assert_eq!((row.open, row.dead), (2, 1));
    // One tab whose line died and that redialed: one client, one reconnect (counting the dead line as
    // a client, the report said two clients and no reconnect).
    assert_eq!((row.clients, row.reconnects), (1, 1), "{row:#?}");
    // Across a start over the dead line is still no client: both lines are counted afresh, the dead
    // one as a connection only.
    let (status, body) = server
        .post_json("/api/app/reset", serde_json::json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    new.send(Message::text("after the start over"))
        .await
        .unwrap();
    next_message(&mut new).await;
    old.send(Message::text("anyone?")).await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    let row = loop {
        let row = channel(&server, "/line").await;
        if row.requests >= 2 {
            break row;
        }
        assert!(
            Instant::now() < deadline,
            "the dead line is counted again: {row:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (row.clients, row.reconnects, row.dead),
        (1, 1, 1),
        "{row:#?}"
    );
    // Released, it is closed: the browser hears it is gone.
    let (status, body) = app_fault(
        &server,
        serde_json::json!({"kind": "release", "channel": id}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let ended = tokio::time::timeout(PATIENCE, async {
        loop {
            match old.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the dead connection was not released");
    let row = channel(&server, "/line").await;
    assert_eq!((row.open, row.dead), (1, 0));
    // Its end does not count the live one out: a second tab now is a second client.
    let (mut second, _) = dial(&proxy, "/line").await;
    next_message(&mut second).await;
    let row = channel(&server, "/line").await;
    assert_eq!(
        (row.open, row.clients, row.reconnects),
        (2, 2, 1),
        "{row:#?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn what_the_browser_got_is_counted_apart_from_what_the_app_sent() {
    let http = NodeApp::start("http-app.cjs", &[]);
    let (server, proxy) = through(&http.url()).await;
    let response = server
        .http
        .get(format!("{proxy}/events?every=100"))
        .send()
        .await
        .unwrap();
    // The browser's own count of the events it got.
    let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader = {
        let received = received.clone();
        tokio::spawn(async move {
            let mut body = response.bytes_stream();
            let mut text = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                text.push_str(&String::from_utf8_lossy(&chunk));
                received.store(
                    text.matches("event: tick").count() as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let radio = channel(&server, "/events").await;
    let got_before = received.load(std::sync::atomic::Ordering::Relaxed);
    assert!(got_before >= 8, "{got_before}");
    assert!(
        radio.got.delivered.abs_diff(got_before + 1) <= 2,
        "delivered {} where the browser counted {got_before} ticks (and the retry line)",
        radio.got.delivered
    );

    // Half-open: the app goes on sending, the browser gets nothing, and the lab says so.
    let (status, body) = app_fault(
        &server,
        serde_json::json!({"kind": "half_open", "channel": radio.id, "duration_ms": 8000}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(5_600)).await;
    let during = channel(&server, "/events").await;
    let got_during = received.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        got_during <= got_before + 1,
        "the browser got {got_during} after {got_before}"
    );
    assert!(
        during.got.withheld >= 40 && during.got.sent >= during.got.delivered + 40,
        "{:?}",
        during.got
    );
    assert!(
        during.got.delivered <= radio.got.delivered + 2,
        "counted as delivered what a half-open held: {:?}",
        during.got
    );
    let report = report(&server).await;
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.text.contains("your app sent")
                && f.text.contains(
                    "on your radio (/events); the browser got none of them (a half-open holds them)"
                )),
        "{:#?}",
        report.findings
    );
    reader.abort();
    server.shutdown().await;
}

#[tokio::test]
async fn a_refused_attempt_is_no_redial_and_the_redial_is_the_connection_that_got_through() {
    let http = NodeApp::start("http-app.cjs", &[]);
    let (server, proxy) = through(&http.url()).await;
    let open = |url: String| async move {
        // A client of its own: each attempt is a new connection, as a page's redial is.
        reqwest::Client::new().get(url).send().await
    };
    let stream = open(format!("{proxy}/events?every=200")).await.unwrap();
    let mut events = stream.bytes_stream();
    events.next().await.unwrap().unwrap();
    let id = channel(&server, "/events").await.id;
    let (status, _) = app_fault(
        &server,
        serde_json::json!({"kind": "hiccup", "channel": id, "duration_ms": 1500}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = app_fault(&server, serde_json::json!({"kind": "drop", "channel": id})).await;
    assert_eq!(status, 200);
    let dropped_at = Instant::now();
    // Tried at once: refused, which is an attempt and not a redial.
    assert!(open(format!("{proxy}/events?every=200")).await.is_err());
    finding(&server, |text| {
        text.starts_with("After the drop (1 connection cut), your radio (/events) tried 1 time, none got through yet: 1 refused")
    })
    .await;
    // Once the refusals end, the connection that gets through is the redial.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let again = open(format!("{proxy}/events?every=200")).await.unwrap();
    assert_eq!(again.status(), 200);
    let waited = dropped_at.elapsed();
    let redial = finding(&server, |text| {
        text.starts_with("After the drop (1 connection cut), your radio (/events) redialed in")
    })
    .await;
    assert!(
        redial.ends_with(" s (tried 2 times: 1 refused)."),
        "{redial}"
    );
    let seconds: f64 = redial
        .trim_start_matches("After the drop (1 connection cut), your radio (/events) redialed in ")
        .split(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{redial}"));
    assert!(
        seconds >= 1.5 && seconds <= waited.as_secs_f64() + 0.1,
        "redialed in {seconds} s, where the connection that got through came {waited:?} after the drop"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn one_endpoint_is_one_channel_whatever_ids_its_urls_carry_and_a_second_tab_is_a_second_client()
 {
    let app = NodeApp::start("ws-app.cjs", &["0"]);
    let (server, proxy) = through(&app.url()).await;
    // A room's socket: its first path holds no id by its look; a fault is aimed at its channel.
    let (mut first, _) = dial(&proxy, "/rooms/general/socket").await;
    next_message(&mut first).await;
    let general = channel(&server, "/rooms/general/socket").await;
    let (status, body) = app_fault(
        &server,
        serde_json::json!({"kind": "delay", "channel": general.id, "delay_ms": 300, "duration_ms": 60_000}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // A second room's path teaches the template; the first connection's channel is renamed to it,
    // with the fault aimed at it.
    let (mut second, _) = dial(&proxy, "/rooms/random/socket").await;
    next_message(&mut second).await;
    let rooms = channel(&server, "/rooms/{id}/socket").await;
    assert_eq!(rooms.kind, ChannelKind::Phone);
    assert_eq!((rooms.open, rooms.clients, rooms.reconnects), (2, 2, 0));
    let report = report(&server).await;
    assert_eq!(
        report
            .channels
            .iter()
            .filter(|c| c.name.contains("/rooms/"))
            .count(),
        1,
        "{:#?}",
        report.channels
    );
    assert_eq!(report.faults[0].channel, rooms.id, "the fault went with it");
    let sent = Instant::now();
    first.send(Message::text("still delayed")).await.unwrap();
    assert_eq!(
        next_message(&mut first).await,
        Message::text("still delayed")
    );
    assert!(
        sent.elapsed() >= Duration::from_millis(550),
        "the first connection is still under the fault aimed at its channel"
    );
    // One client's reconnect is a reconnect.
    first.close(None).await.unwrap();
    drop(first);
    let deadline = Instant::now() + PATIENCE;
    while channel(&server, "/rooms/{id}/socket").await.open > 1 {
        assert!(Instant::now() < deadline, "the first connection ends");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (mut third, _) = dial(&proxy, "/rooms/lobby/socket").await;
    next_message(&mut third).await;
    let rooms = channel(&server, "/rooms/{id}/socket").await;
    assert_eq!((rooms.open, rooms.clients, rooms.reconnects), (2, 2, 1));

    // SockJS's session URLs: one channel at once, whatever the session id looks like.
    for session in ["abcdefgh", "x1y2z3w4"] {
        let (mut socket, _) = dial(&proxy, &format!("/sockjs/123/{session}/websocket")).await;
        next_message(&mut socket).await;
    }
    let sockjs = channel(&server, "/sockjs/{server}/{session}/websocket").await;
    assert_eq!(sockjs.requests, 2);
    // The HAR reads the same endpoints.
    let (_, har) = server.get_json("/api/app/har").await;
    let imported = classify(&Har::parse(&har.to_string()).unwrap());
    let names: Vec<&str> = imported.channels.iter().map(|c| c.name.as_str()).collect();
    assert!(
        names.iter().any(|n| n.ends_with("/rooms/{id}/socket"))
            && names
                .iter()
                .any(|n| n.ends_with("/sockjs/{server}/{session}/websocket"))
            && names.len() == 2,
        "{names:?}"
    );
}

#[tokio::test]
async fn an_answer_that_keeps_coming_is_an_endless_letter_whatever_its_type_and_a_download_is_not()
{
    let app = NodeApp::start("http-app.cjs", &[]);
    let (server, proxy) = through(&app.url()).await;
    // Plain text, chunked, a line every 300 ms: no type says it is a stream; its pace does.
    let answer = server
        .http
        .get(format!("{proxy}/ticker"))
        .send()
        .await
        .unwrap();
    let mut body = answer.bytes_stream();
    let mut lines = 0;
    while lines < 8 {
        let piece = tokio::time::timeout(PATIENCE, body.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        lines += piece.iter().filter(|b| **b == b'\n').count();
    }
    let ticker = channel(&server, "GET /ticker").await;
    assert_eq!(ticker.kind, ChannelKind::Radio, "{ticker:#?}");
    assert!(ticker.messages >= 4, "{ticker:#?}");
    assert_eq!(ticker.got.delivered, ticker.got.sent, "{:#?}", ticker.got);
    drop(body);
    // A download comes in full pieces, as fast as it is read: three of them are letters, not a line.
    for _ in 0..3 {
        let bytes = server
            .http
            .get(format!("{proxy}/big?mb=2"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(bytes.len(), 2 * 1024 * 1024);
    }
    let report = report(&server).await;
    assert!(
        report
            .channels
            .iter()
            .all(|c| !(c.name.contains("/big") && c.kind == ChannelKind::Radio)),
        "{:#?}",
        report.channels
    );
    server.shutdown().await;
}

/// One WebSocket frame from the app (unmasked), as its bytes.
fn app_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut frame = vec![0x80 | opcode, payload.len() as u8];
    frame.extend_from_slice(payload);
    frame
}

/// Frames that arrive in one read are passed on as the bytes they came in, and a heartbeat the lab
/// swallows from between them takes only itself: the browser gets every other frame whole and in order.
#[tokio::test]
async fn a_heartbeat_swallowed_from_between_frames_of_one_read_leaves_the_rest_whole() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_url = format!("http://{}", listener.local_addr().unwrap());
    let (go, when) = tokio::sync::oneshot::channel::<()>();
    let app = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut socket = tokio_tungstenite::accept_async(tcp).await.unwrap();
        when.await.unwrap();
        // Data with pings between, in one write: the proxy reads them at once.
        let mut batch = Vec::new();
        for n in 0..40 {
            batch.extend(app_frame(1, format!("data {n}").as_bytes()));
            if n % 3 == 0 {
                batch.extend(app_frame(9, b"beat"));
            }
        }
        tokio::io::AsyncWriteExt::write_all(socket.get_mut(), &batch)
            .await
            .unwrap();
        // Open until the browser has read it all.
        while socket.next().await.is_some_and(|read| read.is_ok()) {}
    });
    let (server, proxy) = through(&app_url).await;
    let mut request = format!("{}/raw", proxy.replacen("http://", "ws://", 1))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", proxy.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let (status, body) = app_fault(
        &server,
        serde_json::json!({"kind": "no_heartbeat", "duration_ms": 20_000}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    go.send(()).unwrap();
    let mut got = Vec::new();
    while got.len() < 40 {
        match tokio::time::timeout(PATIENCE, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => got.push(text.to_string()),
            Ok(Some(Ok(Message::Ping(_)))) => panic!("a ping passed after {got:?}"),
            other => panic!("{other:?} after {got:?}"),
        }
    }
    let sent: Vec<String> = (0..40).map(|n| format!("data {n}")).collect();
    assert_eq!(got, sent);
    // And nothing after them: every ping was swallowed.
    let more = tokio::time::timeout(Duration::from_millis(300), socket.next()).await;
    assert!(more.is_err(), "{more:?}");
    socket.close(None).await.unwrap();
    let _ = tokio::time::timeout(PATIENCE, app).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_socket_open_across_a_start_over_is_counted_afresh_and_a_rename_keeps_its_count() {
    let app = NodeApp::start("ws-app.cjs", &["0"]);
    let (server, proxy) = through(&app.url()).await;
    let (mut socket, _) = dial(&proxy, "/rooms/general/socket").await;
    next_message(&mut socket).await;
    for n in 0..5 {
        socket
            .send(Message::text(format!("before {n}")))
            .await
            .unwrap();
        next_message(&mut socket).await;
    }
    let before = channel(&server, "/rooms/general/socket").await;
    // The welcome and five echoes down, five up.
    assert_eq!(before.messages, 11, "{before:#?}");
    let (status, body) = server
        .post_json("/api/app/reset", serde_json::json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    // The socket is untouched; its next message is counted on a channel started over, not on the
    // tally the start over threw away.
    socket.send(Message::text("after")).await.unwrap();
    assert_eq!(next_message(&mut socket).await, Message::text("after"));
    let after = channel(&server, "/rooms/general/socket").await;
    assert_eq!(after.messages, 2, "{after:#?}");
    assert_eq!(after.got.delivered, 1, "{:#?}", after.got);
    // A second room teaches the template: the open socket's tally goes with its channel, and what it
    // says next is counted there.
    let (mut second, _) = dial(&proxy, "/rooms/random/socket").await;
    next_message(&mut second).await;
    socket.send(Message::text("renamed")).await.unwrap();
    next_message(&mut socket).await;
    let rooms = channel(&server, "/rooms/{id}/socket").await;
    // Its two, the second's welcome, and its two since.
    assert_eq!(rooms.messages, 5, "{rooms:#?}");
    assert_eq!(rooms.got.delivered, 3, "{:#?}", rooms.got);
    server.shutdown().await;
}
