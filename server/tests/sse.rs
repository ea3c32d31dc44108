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
