//! The HTTP and WebSocket lanes together against one real server: same seqs everywhere, bytes on the
//! wire, metrics, and bad input that hurts nobody else (the video call has its own file).

mod common;

use common::{PATIENCE, TestServer};
use futures_util::SinkExt;
use std::collections::BTreeSet;
use switchboard_shared::{LaneId, SeqTracker, ServerMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn every_lane_delivers_the_same_seqs_for_the_same_events() {
    let server = TestServer::start().await;
    let mut radio = server.sse("/api/sse?after=0", None).await;
    let mut phone = server.ws("/ws?after=0").await;
    phone.next_message().await;
    let published: BTreeSet<u64> = server.publish(25).await.into_iter().collect();

    let mut by_lane = Vec::new();
    by_lane.push((
        LaneId::Poll,
        letters(&server, published.len(), |after| {
            format!("/api/poll?after={after}")
        })
        .await,
    ));
    by_lane.push((
        LaneId::LongPoll,
        letters(&server, published.len(), |after| {
            format!("/api/longpoll?after={after}&wait_ms=5000")
        })
        .await,
    ));
    // Radio and phone call.
    let mut got = Vec::new();
    while got.len() < published.len() {
        got.push(radio.next_event().await.1.seq);
    }
    by_lane.push((LaneId::Sse, got));
    let mut got = Vec::new();
    while got.len() < published.len() {
        got.push(phone.next_event().await.seq);
    }
    by_lane.push((LaneId::Ws, got));

    for (lane, seqs) in by_lane {
        let mut tracker = SeqTracker::resuming_after(0);
        for &seq in &seqs {
            tracker.observe(seq);
        }
        let counts = tracker.counts();
        assert_eq!(
            seqs.iter().copied().collect::<BTreeSet<_>>(),
            published,
            "{lane}"
        );
        assert_eq!(
            (counts.delivered, counts.duplicates, tracker.missing_count()),
            (25, 0, 0),
            "{lane}"
        );
    }
}

/// Asks batch after batch, each after the last seq received, until `count` events have come.
async fn letters(server: &TestServer, count: usize, path: impl Fn(u64) -> String) -> Vec<u64> {
    let (mut after, mut got) = (0, Vec::new());
    while got.len() < count {
        let batch = server.batch(&path(after)).await;
        after = batch.next_after(after);
        got.extend(batch.events.iter().map(|event| event.seq));
    }
    got
}

/// Bytes are counted on the wire: the server's count of one request and its reply equals what a raw
/// client wrote and read, HTTP heads included.
#[tokio::test]
async fn poll_bytes_are_counted_exactly_on_the_wire() {
    let server = TestServer::start().await;
    server.publish(2).await;
    let request = format!(
        "GET /api/poll?after=0 HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr
    );
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    let text = String::from_utf8(reply.clone()).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    let body = text.split("\r\n\r\n").nth(1).unwrap();
    assert!(
        reply.len() > body.len() + 50,
        "the reply head is part of the cost"
    );
    // The page cannot see its browser's request headers: the server tells it the head's size.
    let told = format!(
        "\r\n{}: {}\r\n",
        switchboard_shared::REQUEST_BYTES_HEADER,
        request.len()
    );
    assert!(text.contains(&told), "{text}");
    common::eventually("bytes counted", || async {
        let poll = server.stats().await.lanes[&LaneId::Poll];
        poll.bytes_in == request.len() as u64 && poll.bytes_out == reply.len() as u64
    })
    .await;
}

#[tokio::test]
async fn websocket_bytes_include_the_upgrade_and_the_frames() {
    let server = TestServer::start().await;
    let mut phone = server.ws("/ws").await;
    let ServerMessage::Hello(hello) = phone.next_message().await else {
        panic!("the call opens with hello")
    };
    // The dial's request head as the server read it, so the page can count it.
    assert!(
        hello.request_bytes.is_some_and(|bytes| bytes > 100),
        "{hello:?}"
    );
    let accepted = server.post_chat("count me").await;
    assert_eq!(phone.next_event().await.seq, accepted.seq);
    let ws = server.stats().await.lanes[&LaneId::Ws];
    // The upgrade request and the 101 answer alone are well over 100 bytes each way.
    assert!(ws.bytes_in > 100, "{ws:?}");
    assert!(ws.bytes_out > 100 + 2 * 60, "{ws:?}");
    assert_eq!(ws.messages, 1);
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text() {
    let server = TestServer::start().await;
    server.publish(2).await;
    let _ = server
        .http
        .get(server.url("/api/poll?after=0"))
        .send()
        .await
        .unwrap();
    let text = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
    let value = |name: &str, lane: &str| {
        scrape
            .samples
            .iter()
            .find(|sample| sample.metric == name && sample.labels.get("lane") == Some(lane))
            .map(|sample| match sample.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
                _ => f64::NAN,
            })
    };
    assert_eq!(value("switchboard_lane_requests_total", "poll"), Some(1.0));
    assert_eq!(value("switchboard_lane_messages_total", "poll"), Some(2.0));
    assert!(value("switchboard_lane_bytes_out_total", "poll").unwrap() > 100.0);
    for lane in ["poll", "longpoll", "sse", "ws", "other"] {
        assert!(
            value("switchboard_lane_connections_open", lane).is_some(),
            "{lane}"
        );
    }
    assert!(
        scrape
            .samples
            .iter()
            .any(|sample| sample.metric == "switchboard_head_seq")
    );
}

#[tokio::test]
async fn chat_posts_are_validated_with_clear_errors() {
    let server = TestServer::start().await;
    let post = |body: &'static str, content_type: &'static str| {
        let http = server.http.clone();
        let url = server.url("/api/messages");
        async move {
            let response = http
                .post(url)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, body) = post("{not json", "application/json").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_body"))
    );
    let (status, body) = post(r#"{"author":"a"}"#, "application/json").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_body"))
    );
    assert!(
        body["error"]["message"].as_str().unwrap().contains("text"),
        "names the missing field: {body}"
    );
    let (status, body) = post(r#"{"author":"a","text":"hi"}"#, "text/plain").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let (status, body) = post(r#"{"author":"  ","text":"hi"}"#, "application/json").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_chat"))
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("author")
    );
    let huge: &'static str =
        Box::leak(format!(r#"{{"author":"a","text":"{}"}}"#, "x".repeat(10_000)).into_boxed_str());
    let (status, body) = post(huge, "application/json").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("too_large"))
    );
    assert_eq!(
        server.stats().await.head,
        0,
        "nothing refused was published"
    );
}

/// A hundred malformed requests and frames, while a well-behaved client keeps receiving.
#[tokio::test]
async fn a_hundred_bad_requests_and_frames_leave_the_server_healthy() {
    let server = TestServer::start().await;
    let mut bystander = server.ws("/ws").await;
    bystander.next_message().await;

    let junk_paths = [
        "/api/poll?after=x",
        "/api/poll?after=%FF%FE",
        "/api/longpoll?wait_ms=-5",
        "/api/longpoll?after=1&wait_ms=99999999",
        "/api/sse?after=nope",
        "/ws?after=1",
        "/nowhere",
        "/api/messages",
    ];
    for i in 0..50 {
        let path = junk_paths[i % junk_paths.len()];
        let response = server.http.get(server.url(path)).send().await.unwrap();
        assert!(
            response.status().is_client_error(),
            "{path}: {}",
            response.status()
        );
    }
    // Raw garbage on a TCP connection.
    for i in 0..10 {
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let _ = stream
            .write_all(format!("\x00\x01GARBAGE {i}\r\n\r\n").as_bytes())
            .await;
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut sink)).await;
    }
    // Bad frames on several WebSocket connections.
    let frames = [
        Message::text("{"),
        Message::text("null"),
        Message::text(r#"{"type":"resume","after":"soon"}"#),
        Message::text(r#"{"type":"chat","author":"a","text":""}"#),
        Message::binary(vec![0xff; 32]),
    ];
    for _ in 0..4 {
        let mut rude = server.ws("/ws").await;
        for frame in frames.iter().cycle().take(10) {
            let _ = rude.0.socket.send(frame.clone()).await;
        }
    }

    let health = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let accepted = server.post_chat("still serving").await;
    assert_eq!(
        bystander.next_event().await.seq,
        accepted.seq,
        "the well-behaved client kept its line"
    );
}

#[tokio::test]
async fn the_root_page_says_what_the_server_is() {
    let server = TestServer::start().await;
    let response = server.http.get(server.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = response.text().await.unwrap();
    for lane in ["Letters", "Held letters", "Radio", "Phone call"] {
        assert!(page.contains(lane), "{lane}");
    }
    let (status, body) = server.get_json("/no/such/page").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

/// A client that stops reading must not hold anyone else up, nor make the server buffer without bound:
/// its stream lags, and it is resumed from the history (or told what it lost) when it reads again.
#[tokio::test]
async fn a_stalled_reader_does_not_hold_up_the_others() {
    let server = TestServer::start_with(|config| config.history = 100_000).await;
    let stalled_sse = server.sse("/api/sse", None).await;
    let mut stalled_ws = server.ws("/ws").await;
    stalled_ws.next_message().await;
    let mut attentive = server.ws("/ws").await;
    attentive.next_message().await;

    // Enough bytes to fill the stalled clients' socket buffers several times over.
    let text = "x".repeat(450);
    let total = 3000;
    let http = server.http.clone();
    let url = server.url("/api/messages");
    let publisher = tokio::spawn(async move {
        for _ in 0..total {
            let body = serde_json::json!({"author": "firehose", "text": text});
            let response = http.post(&url).json(&body).send().await.unwrap();
            assert_eq!(response.status(), 200);
        }
    });
    let mut tracker = SeqTracker::resuming_after(0);
    while tracker.counts().delivered < total {
        tracker.observe(attentive.next_event().await.seq);
    }
    publisher.await.unwrap();
    assert_eq!(
        (tracker.missing_count(), tracker.counts().duplicates),
        (0, 0)
    );

    // The stalled WebSocket client, reading again, still gets every seq in order (from the history).
    let mut tracker = SeqTracker::resuming_after(0);
    while tracker.counts().delivered < total {
        tracker.observe(stalled_ws.next_event().await.seq);
    }
    assert_eq!(
        (tracker.missing_count(), tracker.counts().duplicates),
        (0, 0)
    );
    drop(stalled_sse);
}

/// A resume point beyond the head — here the largest seq there is — has nothing after it yet, on every
/// lane: no gap notice, nothing replayed, no wrapping to seq 0; the lines stay up (heartbeats) and the
/// server serves everyone else.
#[tokio::test]
async fn a_resume_point_beyond_the_head_replays_nothing_on_every_lane() {
    let server = TestServer::start_with(|config| config.heartbeat_ms = 100).await;
    server.publish(5).await;
    let max = u64::MAX;
    for path in [
        format!("/api/poll?after={max}"),
        format!("/api/longpoll?after={max}&wait_ms=200"),
    ] {
        let batch = server.batch(&path).await;
        assert_eq!(
            (batch.head, batch.gap, batch.events.len()),
            (5, None, 0),
            "{path}"
        );
    }
    // Every line: the hello, then only heartbeats.
    let quiet = |messages: Vec<ServerMessage>, lane: &str| {
        for message in messages {
            assert!(
                matches!(message, ServerMessage::Heartbeat(_)),
                "{lane}: expected only heartbeats, got {message:?}"
            );
        }
    };
    let mut letter = server.stream(&format!("/api/stream?after={max}")).await;
    let Some(ServerMessage::Hello(hello)) = letter.next_message().await else {
        panic!("the endless letter says hello");
    };
    assert_eq!((hello.resumed_after, hello.head), (Some(max), 5));
    let mut said = Vec::new();
    for _ in 0..2 {
        said.push(letter.next_message().await.unwrap());
    }
    quiet(said, "stream");
    for (path, last_event_id) in [
        (format!("/api/sse?after={max}"), None),
        ("/api/sse".to_owned(), Some(max.to_string())),
    ] {
        let mut radio = server.sse(&path, last_event_id.as_deref()).await;
        radio.next_named("hello").await;
        for _ in 0..2 {
            let sse = radio.next().await.unwrap();
            assert_eq!(
                sse.event,
                switchboard_shared::sse::HEARTBEAT,
                "{path}: {sse:?}"
            );
        }
    }
    let mut phone = server.ws(&format!("/ws?after={max}")).await;
    phone.next_message().await;
    let mut said = Vec::new();
    for _ in 0..2 {
        said.push(phone.next_message().await);
    }
    quiet(said, "ws ?after");
    let mut phone = server.ws("/ws").await;
    phone.next_message().await;
    phone
        .send_text(format!(r#"{{"type":"resume","after":{max}}}"#))
        .await;
    let mut said = Vec::new();
    for _ in 0..2 {
        said.push(phone.next_message().await);
    }
    quiet(said, "ws resume");
    let mut video = server.webtransport(&format!("?after={max}")).await;
    video.next_message().await;
    let mut said = Vec::new();
    for _ in 0..2 {
        said.push(video.next_message().await.unwrap());
    }
    quiet(said, "webtransport");
    // Everyone else is served as before.
    let mut fresh = server.ws("/ws?after=5").await;
    fresh.next_message().await;
    let chat = server.post_chat("after the odd resumes").await;
    assert_eq!(fresh.next_event().await.seq, chat.seq);
}
