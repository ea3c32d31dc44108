//! The radio lane against a real server, read by a real SSE parser.

mod common;

use common::TestServer;
use std::time::{Duration, Instant};
use switchboard_shared::ws::{Heartbeat, Hello};
use switchboard_shared::{Gap, LaneId};

#[tokio::test]
async fn a_stream_opens_with_retry_and_hello_then_carries_events_with_ids() {
    let server = TestServer::start().await;
    let mut radio = server.sse("/api/sse", None).await;
    let hello = radio.next().await.unwrap();
    assert_eq!(hello.event, "hello");
    assert_eq!(hello.retry, Some(Duration::from_millis(1000)));
    assert!(hello.id.is_empty(), "hello must not move Last-Event-ID");
    let hello: Hello = serde_json::from_str(&hello.data).unwrap();
    assert_eq!(
        (hello.head, hello.instance.as_str(), hello.resumed_after),
        (0, "test", None)
    );

    let published = server.publish(3).await;
    for seq in published {
        let (sse, event) = radio.next_event().await;
        assert_eq!(event.seq, seq);
        assert_eq!(sse.id, seq.to_string());
    }
    common::eventually("messages counted", || async {
        server.stats().await.lanes[&LaneId::Sse].messages == 3
    })
    .await;
}

#[tokio::test]
async fn last_event_id_resumes_with_exactly_the_missed_events() {
    let server = TestServer::start().await;
    server.publish(6).await;
    let mut radio = server.sse("/api/sse", Some("2")).await;
    let hello: Hello = serde_json::from_str(&radio.next_named("hello").await.data).unwrap();
    assert_eq!(hello.resumed_after, Some(2));
    for expected in 3..=6 {
        assert_eq!(radio.next_event().await.1.seq, expected);
    }
    let live = server.post_chat("after the replay").await;
    assert_eq!(radio.next_event().await.1.seq, live.seq);
}

#[tokio::test]
async fn the_after_parameter_resumes_when_there_is_no_header_and_the_header_wins_when_there_is() {
    let server = TestServer::start().await;
    server.publish(5).await;
    let mut by_query = server.sse("/api/sse?after=3", None).await;
    assert_eq!(by_query.next_event().await.1.seq, 4);
    let mut by_header = server.sse("/api/sse?after=1", Some("4")).await;
    assert_eq!(by_header.next_event().await.1.seq, 5);
}

#[tokio::test]
async fn named_heartbeats_arrive_every_interval() {
    let server = TestServer::start_with(|config| config.heartbeat_ms = 100).await;
    let mut radio = server.sse("/api/sse", None).await;
    radio.next_named("hello").await;
    let started = Instant::now();
    for _ in 0..3 {
        let beat = radio.next_named("heartbeat").await;
        assert!(beat.id.is_empty(), "heartbeats must not move Last-Event-ID");
        let beat: Heartbeat = serde_json::from_str(&beat.data).unwrap();
        assert!(beat.server_ms > 0);
    }
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "three heartbeats take about three intervals"
    );
}

#[tokio::test]
async fn resuming_from_evicted_history_gets_a_gap_event_then_what_is_held() {
    let server = TestServer::start_with(|config| config.history = 4).await;
    server.publish(10).await;
    let mut radio = server.sse("/api/sse", Some("1")).await;
    let gap: Gap = serde_json::from_str(&radio.next_named("gap").await.data).unwrap();
    assert_eq!(gap, Gap { first: 2, last: 6 });
    for expected in 7..=10 {
        assert_eq!(radio.next_event().await.1.seq, expected);
    }
}

#[tokio::test]
async fn a_bad_last_event_id_is_refused_with_a_json_400() {
    let server = TestServer::start().await;
    let response = server
        .http
        .get(server.url("/api/sse"))
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_header");
}

#[tokio::test]
async fn an_open_stream_is_counted_until_the_client_leaves() {
    let server = TestServer::start().await;
    let radio = server.sse("/api/sse", None).await;
    common::eventually("one open stream", || async {
        server.stats().await.lanes[&LaneId::Sse].connections_open == 1
    })
    .await;
    drop(radio);
    common::eventually("no open stream", || async {
        server.stats().await.lanes[&LaneId::Sse].connections_open == 0
    })
    .await;
}

#[tokio::test]
async fn shutdown_ends_open_streams_cleanly() {
    let server = TestServer::start().await;
    let mut radio = server.sse("/api/sse", None).await;
    radio.next_named("hello").await;
    server.shutdown().await;
    assert!(
        radio.next().await.is_none(),
        "the stream ends instead of hanging"
    );
}

/// A connection of its own to `server`, with `bytes` already sent on it.
async fn send_raw(server: &TestServer, bytes: &[u8]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    socket.write_all(bytes).await.unwrap();
    socket
}

/// Reads from `socket` until `text` has arrived (or fails after the patience).
async fn read_until(socket: &mut tokio::net::TcpStream, received: &mut Vec<u8>, text: &str) {
    use tokio::io::AsyncReadExt;
    let deadline = Instant::now() + common::PATIENCE;
    while !String::from_utf8_lossy(received).contains(text) {
        let mut buf = [0u8; 4096];
        let read = tokio::time::timeout_at(deadline.into(), socket.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{text:?} did not arrive; got {:?}",
                    String::from_utf8_lossy(received)
                )
            })
            .unwrap();
        assert!(
            read > 0,
            "closed before {text:?}: {:?}",
            String::from_utf8_lossy(received)
        );
        received.extend_from_slice(&buf[..read]);
    }
}

#[tokio::test]
async fn a_stream_on_a_new_connection_is_served_off_it_framed_as_before_and_counted() {
    let server = TestServer::start().await;
    server.publish(2).await;
    // What a browser sends: the whole head at once, on a connection of its own.
    let mut socket = send_raw(
        &server,
        b"GET /api/sse?after=1 HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n",
    )
    .await;
    let mut received = Vec::new();
    read_until(&mut socket, &mut received, "id: 2\n").await;
    let text = String::from_utf8_lossy(&received).to_lowercase();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head, then the body");
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    for line in [
        "content-type: text/event-stream",
        "cache-control: no-cache",
        "x-accel-buffering: no",
        "transfer-encoding: chunked",
        "connection: close",
        "x-content-type-options: nosniff",
    ] {
        assert!(head.contains(line), "{line:?} missing from {head}");
    }
    assert!(head.contains("\r\ndate: "), "{head}");
    // Chunked as hyper framed it: a size in hex, the frame, CRLF.
    let first = body.split("\r\n").next().unwrap();
    let size = usize::from_str_radix(first, 16).expect("a chunk size");
    assert!(
        body[first.len() + 2..].starts_with("retry: 1000\n"),
        "{body}"
    );
    assert_eq!(&body[first.len() + 2 + size..][..2], "\r\n", "{body}");
    // Live events follow; the stream is counted open, and closed when the client goes.
    let live = server.post_chat("live").await;
    read_until(&mut socket, &mut received, &format!("id: {}\n", live.seq)).await;
    common::eventually("one open stream", || async {
        server.stats().await.lanes[&LaneId::Sse].connections_open == 1
    })
    .await;
    drop(socket);
    common::eventually("no open stream once the client left", || async {
        server.stats().await.lanes[&LaneId::Sse].connections_open == 0
    })
    .await;
}

/// A client has nothing to say on a stream's connection, but one that talks anyway (a broken proxy,
/// a pipelined request) must neither stop its events nor be taken for gone.
#[tokio::test]
async fn a_client_that_keeps_writing_on_its_stream_still_gets_every_event() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start().await;
    let mut socket = send_raw(&server, b"GET /api/sse HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut received = Vec::new();
    read_until(&mut socket, &mut received, "event: hello\n").await;
    for round in 0..20 {
        socket
            .write_all(&[b'x'; 4096])
            .await
            .expect("the server keeps reading what it is sent");
        let live = server.post_chat(&format!("said {round}")).await;
        read_until(&mut socket, &mut received, &format!("id: {}\n", live.seq)).await;
    }
    assert_eq!(
        server.stats().await.lanes[&LaneId::Sse].connections_open,
        1,
        "still one open stream"
    );
}

#[tokio::test]
async fn a_refused_stream_request_on_a_new_connection_gets_its_whole_error_and_the_line_closes() {
    use tokio::io::AsyncReadExt;
    let server = TestServer::start().await;
    let mut socket = send_raw(
        &server,
        b"GET /api/sse HTTP/1.1\r\nHost: x\r\nLast-Event-ID: nope\r\n\r\n",
    )
    .await;
    let mut received = Vec::new();
    tokio::time::timeout(common::PATIENCE, socket.read_to_end(&mut received))
        .await
        .expect("the server closes the connection after its answer")
        .unwrap();
    let text = String::from_utf8_lossy(&received);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}", body.len())),
        "{head}"
    );
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"]["code"], "bad_header");
}

#[tokio::test]
async fn a_stream_asked_for_on_a_kept_alive_connection_is_still_served() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start().await;
    // A letter first (hyper serves the connection), then the radio on the same connection.
    let mut socket = send_raw(&server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut received = Vec::new();
    read_until(&mut socket, &mut received, "HTTP/1.1 200").await;
    socket
        .write_all(b"GET /api/sse HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_until(&mut socket, &mut received, "event: hello").await;
}
