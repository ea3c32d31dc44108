//! Emulated network conditions, measured with real clients against a real server: round trips,
//! handshakes, bandwidth, loss and the API that sets them.

mod common;

use common::{PATIENCE, TestServer};
use serde_json::json;
use std::time::{Duration, Instant};
use switchboard_shared::network::NetworkState;
use switchboard_shared::{
    BrowserMessage, CONNECTION_REQUEST_HEADER, EventBody, ServerMessage, ws::Ping,
};

/// `POST /api/network` with `body`; the status and the JSON answer.
async fn set_network(server: &TestServer, body: serde_json::Value) -> (u16, serde_json::Value) {
    server.post_json("/api/network", body).await
}

async fn must_set(server: &TestServer, body: serde_json::Value) {
    let (status, answer) = set_network(server, body).await;
    assert_eq!(status, 200, "refused: {answer}");
}

fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// One letter on `client`: how long it took and which request on its connection it was.
async fn letter(client: &reqwest::Client, url: &str) -> (Duration, u64) {
    let started = Instant::now();
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let on_connection = response.headers()[CONNECTION_REQUEST_HEADER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    response.bytes().await.unwrap();
    (started.elapsed(), on_connection)
}

#[tokio::test]
async fn a_letter_pays_the_round_trip_and_a_new_connection_its_handshake() {
    let server = TestServer::start().await;
    must_set(&server, json!({"lane": "poll", "rtt_ms": 400})).await;
    let client = reqwest::Client::new();
    let poll = server.url("/api/poll?after=0");
    let (first, on_connection) = letter(&client, &poll).await;
    assert_eq!(on_connection, 1, "the first letter opens a connection");
    assert!(
        first >= Duration::from_millis(800),
        "handshake + round trip: {first:?}"
    );
    let (kept_alive, on_connection) = letter(&client, &poll).await;
    assert_eq!(
        on_connection, 2,
        "the second rides the kept-alive connection"
    );
    assert!(kept_alive >= Duration::from_millis(400), "{kept_alive:?}");
    assert!(
        kept_alive < Duration::from_millis(800),
        "no handshake: {kept_alive:?}"
    );

    // The other lanes are untouched.
    server.publish(1).await;
    let (held, _) = letter(
        &reqwest::Client::new(),
        &server.url("/api/longpoll?after=0&wait_ms=1000"),
    )
    .await;
    assert!(held < Duration::from_millis(200), "{held:?}");

    // Cleared, the same connection is back to loopback figures.
    must_set(&server, json!({"lane": "all", "preset": "loopback"})).await;
    let (cleared, on_connection) = letter(&client, &poll).await;
    assert_eq!(on_connection, 3);
    assert!(cleared < Duration::from_millis(200), "{cleared:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn events_on_the_radio_and_the_phone_line_arrive_one_one_way_delay_late() {
    let server = TestServer::start().await;
    must_set(&server, json!({"lane": "all", "rtt_ms": 400})).await;
    let dialled = Instant::now();
    let mut ws = server.ws("/ws").await;
    let ServerMessage::Hello(hello) = ws.next_message().await else {
        panic!("hello first");
    };
    // Handshake, the upgrade's way there and the 101's way back: two round trips.
    assert!(
        dialled.elapsed() >= Duration::from_millis(800),
        "{:?}",
        dialled.elapsed()
    );
    assert_eq!(hello.connection_request, Some(1));
    let mut sse = server.sse("/api/sse", None).await;
    sse.next_named("hello").await;

    for _ in 0..3 {
        server.publish(1).await;
        let event = ws.next_event().await;
        let delay = now_ms() - event.ts_ms as f64;
        assert!(delay >= 199.0, "phone line delay {delay} ms");
        let (_, event) = sse.next_event().await;
        let delay = now_ms() - event.ts_ms as f64;
        assert!(delay >= 199.0, "radio delay {delay} ms");
    }

    // What the browser says on the line takes its one-way delay too: a ping's answer, a round trip.
    let sent = Instant::now();
    ws.send_text(
        serde_json::to_string(&BrowserMessage::Ping(Ping {
            id: 1,
            client_ms: now_ms(),
        }))
        .unwrap(),
    )
    .await;
    loop {
        if let ServerMessage::Pong(pong) = ws.next_message().await {
            assert_eq!(pong.id, 1);
            break;
        }
    }
    assert!(
        sent.elapsed() >= Duration::from_millis(400),
        "{:?}",
        sent.elapsed()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_change_is_announced_on_every_lane() {
    let server = TestServer::start().await;
    let mut ws = server.ws("/ws").await;
    ws.next_message().await;
    must_set(&server, json!({"lane": "sse", "preset": "3g"})).await;
    let event = ws.next_event().await;
    let EventBody::Notice(notice) = event.body else {
        panic!("a notice, got {event:?}");
    };
    assert_eq!(notice.code, "network_changed");
    let change = notice.network.expect("the change rides on the notice");
    assert_eq!(change.condition.map(|c| c.name), Some("3g".into()));
    assert_eq!(
        change
            .lanes
            .get(switchboard_shared::LaneId::Sse)
            .map(|c| c.rtt_ms),
        Some(300)
    );
    assert_eq!(change.lanes.get(switchboard_shared::LaneId::Ws), None);
    let batch = server.batch("/api/poll?after=0").await;
    assert_eq!(batch.events.len(), 1, "letters read it too");
    server.shutdown().await;
}

#[tokio::test]
async fn a_large_answer_takes_its_size_over_the_bandwidth() {
    let server = TestServer::start().await;
    for n in 0..200 {
        server
            .post_chat(&format!("{n:03} {}", "a fairly long chat line ".repeat(4)))
            .await;
    }
    let client = reqwest::Client::new();
    let poll = server.url("/api/poll?after=0");
    // Open the connection first, so only the answer's bytes are timed.
    letter(&client, &poll).await;
    must_set(&server, json!({"lane": "poll", "down_kbps": 400})).await;
    let started = Instant::now();
    let body = client
        .get(&poll)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let took = started.elapsed();
    // 400 kbit/s is 50 bytes a millisecond.
    let expected = Duration::from_secs_f64(body.len() as f64 / 50.0 / 1000.0);
    assert!(
        expected >= Duration::from_millis(500),
        "a large enough answer"
    );
    assert!(
        took >= expected.mul_f64(0.95),
        "{took:?} for {} bytes",
        body.len()
    );
    assert!(took < expected * 3, "{took:?} for {} bytes", body.len());
    server.shutdown().await;
}

#[tokio::test]
async fn loss_holds_a_stream_back_but_loses_nothing() {
    let server = TestServer::start().await;
    must_set(
        &server,
        json!({"lane": "all", "rtt_ms": 20, "loss_pct": 20}),
    )
    .await;
    let mut ws = server.ws("/ws").await;
    ws.next_message().await;
    let mut sse = server.sse("/api/sse", None).await;
    sse.next_named("hello").await;
    let publisher = {
        let url = server.url("/api/messages");
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut seqs = Vec::new();
            for n in 0..100 {
                let accepted: switchboard_shared::ChatAccepted = client
                    .post(&url)
                    .json(&json!({"author": "loss", "text": format!("{n}")}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                seqs.push(accepted.seq);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            seqs
        })
    };
    let (mut ws_seqs, mut sse_seqs, mut late) = (Vec::new(), Vec::new(), 0);
    let deadline = Instant::now() + PATIENCE * 3;
    while (ws_seqs.len() < 100 || sse_seqs.len() < 100) && Instant::now() < deadline {
        if ws_seqs.len() < 100 {
            let event = ws.next_event().await;
            // One retransmission timeout (200 ms) on top of the 10 ms one-way delay.
            if now_ms() - event.ts_ms as f64 >= 200.0 {
                late += 1;
            }
            ws_seqs.push(event.seq);
        }
        while sse_seqs.len() < ws_seqs.len() {
            sse_seqs.push(sse.next_event().await.1.seq);
        }
    }
    let published = publisher.await.unwrap();
    assert_eq!(ws_seqs, published, "every seq, in order, on the phone line");
    assert_eq!(sse_seqs, published, "every seq, in order, on the radio");
    assert!(
        late >= 5,
        "some deliveries waited for a retransmission: {late} of 100"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bad_values_are_refused_naming_their_field() {
    let server = TestServer::start().await;
    for (body, field) in [
        (json!({"lane": "ws", "rtt_ms": 10_001}), "rtt_ms"),
        (
            json!({"lane": "ws", "rtt_ms": 100, "jitter_ms": 101}),
            "jitter_ms",
        ),
        (json!({"lane": "ws", "down_kbps": 4}), "down_kbps"),
        (json!({"lane": "ws", "up_kbps": 2_000_000}), "up_kbps"),
        (json!({"lane": "ws", "loss_pct": 51}), "loss_pct"),
        (json!({"lane": "ws", "loss_pct": -1}), "loss_pct"),
        (json!({"lane": "carrier-pigeon", "preset": "3g"}), "lane"),
        (json!({"lane": "ws", "preset": "5g"}), "preset"),
    ] {
        let (status, answer) = set_network(&server, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{body}: {message}");
    }
    let response = server
        .http
        .post(server.url("/api/network"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let (_, state) = server.get_json("/api/network").await;
    let state: NetworkState = serde_json::from_value(state).unwrap();
    assert_eq!(
        state.lanes,
        Default::default(),
        "nothing refused took effect"
    );
    let names: Vec<_> = state.presets.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["loopback", "lan", "cable", "4g", "3g", "satellite", "lossy"]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn conditions_need_the_same_authorization_as_faults() {
    let server = TestServer::start_with(|config| config.admin_token = Some("s3cret".into())).await;
    let (status, _) = set_network(&server, json!({"lane": "all", "preset": "3g"})).await;
    assert_eq!(status, 401);
    let response = server
        .http
        .post(server.url("/api/network"))
        .bearer_auth("s3cret")
        .json(&json!({"lane": "all", "preset": "3g"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server.shutdown().await;
}

#[tokio::test]
async fn a_preset_given_at_start_covers_every_lane() {
    let server = TestServer::start_with(|config| config.network = Some("4g".into())).await;
    let (status, state) = server.get_json("/api/network").await;
    assert_eq!(status, 200);
    for lane in ["poll", "longpoll", "sse", "ws"] {
        assert_eq!(state["lanes"][lane]["name"], "4g", "{lane}: {state}");
        assert_eq!(state["lanes"][lane]["rtt_ms"], 60);
    }
    assert_eq!(state["auth"], "loopback");
    server.shutdown().await;
}

/// A claimed `Content-Length` that never comes costs nothing on an emulated path: only bytes that came
/// are paid for, so a letter claiming an endless body is answered and let go within the request
/// deadline, and a post whose body stops is timed out by it, however slow the path.
#[tokio::test]
async fn a_claimed_body_never_holds_a_connection_on_an_emulated_network() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start_with(|config| {
        config.network = Some("3g".into());
        config.request_timeout_ms = 1_000;
    })
    .await;
    let heads: [&[u8]; 2] = [
        b"GET /api/poll?after=0 HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 9223372036854775807\r\n\r\n",
        b"POST /api/messages HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 9223372036854775807\r\n\r\n{\"author\":",
    ];
    for head in heads {
        let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(head).await.unwrap();
        let started = Instant::now();
        let mut seen = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut seen)).await;
        let answer = String::from_utf8_lossy(&seen);
        assert!(closed.is_ok(), "the connection is still held: {answer}");
        assert!(
            started.elapsed() < Duration::from_millis(2_500),
            "let go after {:?}",
            started.elapsed()
        );
        assert!(answer.starts_with("HTTP/1.1 "), "no answer: {answer:?}");
    }
    // The server still serves everyone else on the same path.
    assert_eq!(server.get_json("/healthz").await.0, 200);
    server.shutdown().await;
}
