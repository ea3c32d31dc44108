//! The phone-call lane against a real server with a real WebSocket client.

mod common;

use common::TestServer;
use futures_util::SinkExt;
use serde_json::json;
use std::time::Instant;
use switchboard_shared::ws::close_code;
use switchboard_shared::{ErrorCode, EventBody, Gap, LaneId, ServerMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn a_call_opens_with_hello_then_carries_every_event() {
    let server = TestServer::start().await;
    let mut phone = server.ws("/ws").await;
    let ServerMessage::Hello(hello) = phone.next_message().await else {
        panic!("hello first")
    };
    assert_eq!(
        (hello.head, hello.heartbeat_ms, hello.instance.as_str()),
        (0, 2000, "test")
    );
    let published = server.publish(3).await;
    for seq in published {
        assert_eq!(phone.next_event().await.seq, seq);
    }
    let stats = server.stats().await.lanes[&LaneId::Ws];
    assert_eq!(
        (stats.requests, stats.connections_open, stats.messages),
        (1, 1, 3)
    );
}

#[tokio::test]
async fn ping_is_answered_with_both_clocks() {
    let server = TestServer::start().await;
    let mut phone = server.ws("/ws").await;
    phone.next_message().await; // hello
    let sent_at = switchboard_server::hub::now_ms_f64();
    phone
        .send_text(json!({"type": "ping", "id": 7, "client_ms": sent_at}).to_string())
        .await;
    let ServerMessage::Pong(pong) = phone.next_non_heartbeat().await else {
        panic!("a pong")
    };
    assert_eq!((pong.id, pong.client_ms), (7, sent_at));
    let (round_trip, offset) = pong.measure(switchboard_server::hub::now_ms_f64());
    assert!((0.0..10_000.0).contains(&round_trip), "{round_trip}");
    // Same machine, same clock: the offset is within the round trip.
    assert!(
        offset.abs() <= round_trip + 1.0,
        "offset {offset} with round trip {round_trip}"
    );
}

#[tokio::test]
async fn after_in_the_url_and_a_resume_message_both_replay_exactly_the_missed_events() {
    let server = TestServer::start().await;
    server.publish(5).await;
    let mut phone = server.ws("/ws?after=2").await;
    let ServerMessage::Hello(hello) = phone.next_message().await else {
        panic!("hello first")
    };
    assert_eq!(hello.resumed_after, Some(2));
    for expected in 3..=5 {
        assert_eq!(phone.next_event().await.seq, expected);
    }
    phone.send_text(r#"{"type":"resume","after":3}"#).await;
    for expected in 4..=5 {
        assert_eq!(phone.next_event().await.seq, expected);
    }
    let live = server.post_chat("live").await;
    assert_eq!(phone.next_event().await.seq, live.seq);
}

#[tokio::test]
async fn resuming_from_evicted_history_gets_a_gap_notice() {
    let server = TestServer::start_with(|config| config.history = 3).await;
    server.publish(8).await;
    let mut phone = server.ws("/ws?after=0").await;
    phone.next_message().await; // hello
    assert_eq!(
        phone.next_non_heartbeat().await,
        ServerMessage::Gap(Gap { first: 1, last: 5 })
    );
    for expected in 6..=8 {
        assert_eq!(phone.next_event().await.seq, expected);
    }
}

#[tokio::test]
async fn heartbeats_and_protocol_pings_arrive_every_interval() {
    let server = TestServer::start_with(|config| config.heartbeat_ms = 100).await;
    let mut phone = server.ws("/ws").await;
    let (mut heartbeats, mut pings) = (0, 0);
    let started = Instant::now();
    while heartbeats < 3 || pings < 3 {
        match phone.next_frame().await.expect("open") {
            Message::Text(text) => {
                if let ServerMessage::Heartbeat(beat) = serde_json::from_str(text.as_str()).unwrap()
                {
                    assert!(beat.server_ms > 0);
                    heartbeats += 1;
                    // Each heartbeat's ping comes right behind it (in the same write).
                    let next = phone.next_frame().await.expect("open");
                    assert!(
                        matches!(next, Message::Ping(_)),
                        "{next:?} after a heartbeat"
                    );
                    pings += 1;
                }
            }
            Message::Ping(_) => panic!("a ping without its heartbeat"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(heartbeats, pings);
    assert!(started.elapsed().as_millis() >= 250);
}

#[tokio::test]
async fn chat_on_the_phone_line_is_acknowledged_and_reaches_every_lane() {
    let server = TestServer::start().await;
    let mut caller = server.ws("/ws").await;
    let mut listener = server.ws("/ws").await;
    let mut radio = server.sse("/api/sse", None).await;
    caller.next_message().await;
    listener.next_message().await;
    radio.next_named("hello").await;
    caller
        .send_text(
            json!({"type":"chat","author":"bo","text":"over the line","client_ref":"r1"})
                .to_string(),
        )
        .await;
    let ServerMessage::ChatAccepted(accepted) = caller.next_non_heartbeat().await else {
        panic!("an ack")
    };
    assert_eq!(accepted.client_ref.as_deref(), Some("r1"));
    let event = listener.next_event().await;
    assert_eq!(event.seq, accepted.seq);
    let EventBody::Chat(chat) = event.body else {
        panic!("chat")
    };
    assert_eq!(
        (chat.text.as_str(), chat.via),
        ("over the line", switchboard_shared::ChatVia::Ws)
    );
    assert_eq!(radio.next_event().await.1.seq, accepted.seq);
    assert_eq!(
        caller.next_event().await.seq,
        accepted.seq,
        "the sender hears its own message too"
    );
}

#[tokio::test]
async fn bad_frames_get_clear_errors_and_the_call_stays_up() {
    let server = TestServer::start().await;
    let mut phone = server.ws("/ws").await;
    phone.next_message().await;
    let cases: [(Message, ErrorCode); 6] = [
        (Message::text("{not json"), ErrorCode::MalformedJson),
        (Message::text(r#"{"type":"dance"}"#), ErrorCode::UnknownType),
        (
            Message::text(r#"{"type":"ping","id":"x"}"#),
            ErrorCode::Invalid,
        ),
        (
            Message::text(r#"{"type":"chat","author":"","text":"x"}"#),
            ErrorCode::Invalid,
        ),
        (
            Message::text(format!(
                r#"{{"type":"chat","author":"a","text":"{}"}}"#,
                "x".repeat(5000)
            )),
            ErrorCode::TooLarge,
        ),
        (Message::binary(vec![1, 2, 3]), ErrorCode::Binary),
    ];
    for (frame, expected) in cases {
        phone.0.socket.send(frame).await.unwrap();
        match phone.next_non_heartbeat().await {
            ServerMessage::Error { code, message } => {
                assert_eq!(code, expected);
                assert!(!message.is_empty());
            }
            other => panic!("expected {expected:?}, got {other:?}"),
        }
    }
    // Still a working line.
    let accepted = server.post_chat("still there?").await;
    assert_eq!(phone.next_event().await.seq, accepted.seq);
    assert_eq!(server.stats().await.lanes[&LaneId::Ws].errors, 6);
}

#[tokio::test]
async fn a_peer_that_keeps_sending_bad_frames_is_hung_up_on_with_1008() {
    let server = TestServer::start().await;
    let mut phone = server.ws("/ws").await;
    for _ in 0..20 {
        if phone.0.socket.send(Message::text("garbage")).await.is_err() {
            break;
        }
    }
    assert_eq!(phone.close_code().await, Some(close_code::POLICY));
}

#[tokio::test]
async fn a_frame_over_the_hard_limit_ends_the_call_with_1009() {
    let server = TestServer::start().await;
    let mut phone = server.ws("/ws").await;
    phone.next_message().await;
    let _ = phone
        .0
        .socket
        .send(Message::text("x".repeat(100 * 1024)))
        .await;
    assert_eq!(phone.close_code().await, Some(close_code::TOO_BIG));
    // The server is fine.
    let mut other = server.ws("/ws").await;
    assert!(matches!(
        other.next_message().await,
        ServerMessage::Hello(_)
    ));
}

#[tokio::test]
async fn shutdown_hangs_up_with_1001() {
    let server = TestServer::start().await;
    let mut phone = server.ws("/ws").await;
    phone.next_message().await;
    let stopping = tokio::spawn(server.shutdown());
    assert_eq!(phone.close_code().await, Some(close_code::GOING_AWAY));
    drop(phone);
    stopping.await.unwrap();
}

#[tokio::test]
async fn a_silent_peer_is_hung_up_on_after_three_heartbeats() {
    let server = TestServer::start_with(|config| config.heartbeat_ms = 50).await;
    let mut phone = server.ws("/ws").await;
    // Not reading means the client library never answers the server's protocol pings.
    common::eventually("the server hangs up on the silent peer", || async {
        server.stats().await.lanes[&LaneId::Ws].connections_open == 0
    })
    .await;
    // Read what the server wrote, raw (the client library would try to answer the queued pings on a
    // closed socket and fail before reaching the close frame): the last frame is close with 4000.
    let MaybeTlsStream::Plain(tcp) = phone.0.socket.get_mut() else {
        panic!("plain TCP")
    };
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(common::PATIENCE, tcp.read_to_end(&mut raw)).await;
    let [high, low] = close_code::PEER_SILENT.to_be_bytes();
    let close = raw
        .windows(4)
        .any(|w| w[0] == 0x88 && w[2] == high && w[3] == low);
    assert!(close, "no close frame with 4000 among {} bytes", raw.len());
}

#[tokio::test]
async fn a_peer_that_reads_stays_up_across_many_heartbeats() {
    let server = TestServer::start_with(|config| config.heartbeat_ms = 50).await;
    let mut phone = server.ws("/ws").await;
    let mut heartbeats = 0;
    while heartbeats < 12 {
        if let ServerMessage::Heartbeat(_) = phone.next_message().await {
            heartbeats += 1;
        }
    }
}

#[tokio::test]
async fn protocol_violations_are_answered_with_1002_and_bad_text_with_1007() {
    let server = TestServer::start().await;
    // Each frame is written raw, as a broken or hostile client would.
    let cases: [(&str, &[u8], u16); 3] = [
        // A text frame whose (masked, zero key) payload is not UTF-8.
        (
            "invalid UTF-8",
            &[0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28],
            close_code::INVALID_DATA,
        ),
        // A client's frame must be masked.
        (
            "unmasked",
            &[0x81, 0x02, b'h', b'i'],
            close_code::PROTOCOL_ERROR,
        ),
        // RSV1 set with no extension agreed.
        (
            "reserved bit",
            &[0xC1, 0x82, 0, 0, 0, 0, b'h', b'i'],
            close_code::PROTOCOL_ERROR,
        ),
    ];
    for (what, frame, code) in cases {
        let mut phone = server.ws("/ws").await;
        phone.next_message().await;
        let MaybeTlsStream::Plain(tcp) = phone.0.socket.get_mut() else {
            panic!("plain TCP")
        };
        tcp.write_all(frame).await.unwrap();
        let mut raw = Vec::new();
        let _ = tokio::time::timeout(common::PATIENCE, tcp.read_to_end(&mut raw)).await;
        let [high, low] = code.to_be_bytes();
        let closed = raw
            .windows(4)
            .any(|w| w[0] == 0x88 && w[2] == high && w[3] == low);
        assert!(closed, "{what}: no close frame with {code} among {raw:?}");
    }
    // Nobody else was hurt.
    let mut phone = server.ws("/ws").await;
    phone.next_message().await;
    server.shutdown().await;
}

/// The server's text frames go straight to the socket while tungstenite writes the pongs a peer's
/// pings are owed: with events, heartbeats and the server's own pings (every 50 ms) flowing, each of
/// the peer's pings comes back with its payload and every frame arrives whole and in order (a frame
/// written into the middle of another would fail the client's parser).
#[tokio::test]
async fn pings_are_answered_between_the_events_and_every_frame_arrives_whole() {
    let server = TestServer::start_with(|config| config.heartbeat_ms = 50).await;
    let mut phone = server.ws("/ws").await;
    phone.next_message().await; // hello
    for round in 0..50u32 {
        let payload = round.to_be_bytes().to_vec();
        tokio::time::timeout(
            common::PATIENCE,
            phone.0.socket.send(Message::Ping(payload.clone().into())),
        )
        .await
        .expect("the ping is sent")
        .unwrap();
        let published = server.publish(4).await;
        let (mut answered, mut seen) = (false, 0);
        while !answered || seen < published.len() {
            match phone.next_frame().await.expect("the call stays up") {
                Message::Pong(pong) => {
                    assert_eq!(pong[..], payload[..], "round {round}");
                    answered = true;
                }
                Message::Text(text) => match serde_json::from_str(text.as_str()).unwrap() {
                    ServerMessage::Event(event) => {
                        assert_eq!(event.seq, published[seen], "round {round}");
                        seen += 1;
                    }
                    ServerMessage::Heartbeat(_) => {}
                    other => panic!("unexpected {other:?}"),
                },
                Message::Ping(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    server.shutdown().await;
}

/// The lane answers the upgrade itself: a request that is not a WebSocket handshake gets a plain
/// refusal, and a client that sends its first frame before the `101` arrives (in the same packet as its
/// request) is heard.
#[tokio::test]
async fn a_request_that_is_no_handshake_is_refused_and_a_frame_sent_with_the_request_is_heard() {
    let server = TestServer::start().await;
    let (status, body) = server.get_json("/ws").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "not_a_websocket_upgrade", "{body}");
    for (what, key) in [("missing", None), ("not 16 bytes", Some("c2hvcnQ="))] {
        let mut request = server
            .http
            .get(server.url("/ws"))
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13");
        if let Some(key) = key {
            request = request.header("sec-websocket-key", key);
        }
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status(), 400, "key {what}");
    }

    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let ping = json!({"type": "ping", "id": 9, "client_ms": 1.0}).to_string();
    let mut bytes = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        server.addr
    )
    .into_bytes();
    // A masked text frame (a zero key leaves the payload as it is).
    bytes.extend_from_slice(&[0x81, 0x80 | ping.len() as u8, 0, 0, 0, 0]);
    bytes.extend_from_slice(ping.as_bytes());
    tcp.write_all(&bytes).await.unwrap();
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    let pong = br#""type":"pong","id":9"#;
    while !raw.windows(pong.len()).any(|w| w == pong) {
        let read = tokio::time::timeout(common::PATIENCE, tcp.read(&mut chunk))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(read > 0, "closed: {}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&chunk[..read]);
    }
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    // RFC 6455's own example key and answer.
    assert!(
        text.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{text}"
    );
    server.shutdown().await;
}

/// A call waiting for news has its events written by the exchange, not by its own task. A reader that
/// stops reading fills its socket: the exchange hands the line back with a frame half-written, the call
/// finishes it and goes on itself (its send deadline running), and once the reader reads again it gets
/// every event exactly once, in order, each frame whole; then the call joins again and news still
/// comes. The lane counts each event once, whichever side wrote it.
#[tokio::test]
async fn a_reader_that_stops_reading_gets_every_event_once_and_in_order_when_it_reads_again() {
    let server = TestServer::start_with(|config| config.chat_per_second = 1_000_000).await;
    // A small receive window, so the server's socket fills after a few hundred kilobytes.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let url = format!("ws://{}/ws", server.addr);
    let (mut phone, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    let mut next_message = async || loop {
        let frame =
            tokio::time::timeout(common::PATIENCE, futures_util::StreamExt::next(&mut phone))
                .await
                .expect("a frame in time")
                .expect("the call is up")
                .expect("a whole frame");
        if let Message::Text(text) = frame {
            match serde_json::from_str(text.as_str()).unwrap() {
                ServerMessage::Heartbeat(_) => continue,
                message => return message,
            }
        }
    };
    assert!(matches!(next_message().await, ServerMessage::Hello(_)));

    // ~750 KB of news that nobody reads for now.
    let text = "x".repeat(switchboard_shared::chat::MAX_TEXT_CHARS);
    let mut published = Vec::new();
    for _ in 0..1500 {
        published.push(server.post_chat(&text).await.seq);
    }
    for &seq in &published {
        match next_message().await {
            ServerMessage::Event(event) => assert_eq!(event.seq, seq),
            other => panic!("expected event {seq}, got {other:?}"),
        }
    }
    // Caught up, the call is back at the exchange: news still comes, once.
    for seq in server.publish(3).await {
        match next_message().await {
            ServerMessage::Event(event) => assert_eq!(event.seq, seq),
            other => panic!("expected event {seq}, got {other:?}"),
        }
    }
    let stats = server.stats().await.lanes[&LaneId::Ws];
    assert_eq!(stats.messages, 1503);
    server.shutdown().await;
}
