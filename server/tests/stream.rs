//! The endless letter (HTTP streaming) against a real server, read line by line over reqwest.

mod common;

use common::TestServer;
use std::time::{Duration, Instant};
use switchboard_shared::{Gap, LaneId, ServerMessage};

#[tokio::test]
async fn a_stream_opens_with_hello_then_carries_each_event_on_its_own_line() {
    let server = TestServer::start().await;
    let mut letter = server.stream("/api/stream").await;
    let Some(ServerMessage::Hello(hello)) = letter.next_message().await else {
        panic!("the first line is the hello");
    };
    assert_eq!(
        (hello.head, hello.instance.as_str(), hello.resumed_after),
        (0, "test", None)
    );
    let published = server.publish(3).await;
    for seq in published {
        assert_eq!(letter.next_event().await.seq, seq);
    }
    common::eventually("messages counted", || async {
        let stats = server.stats().await;
        stats.lanes[&LaneId::HttpStream].messages == 3
            && stats.lanes[&LaneId::HttpStream].connections_open == 1
    })
    .await;
}

#[tokio::test]
async fn after_resumes_with_exactly_the_missed_events() {
    let server = TestServer::start().await;
    server.publish(6).await;
    let mut letter = server.stream("/api/stream?after=2").await;
    let Some(ServerMessage::Hello(hello)) = letter.next_message().await else {
        panic!("the first line is the hello");
    };
    assert_eq!(hello.resumed_after, Some(2));
    for expected in 3..=6 {
        assert_eq!(letter.next_event().await.seq, expected);
    }
    let live = server.post_chat("after the replay").await;
    assert_eq!(letter.next_event().await.seq, live.seq);
}

#[tokio::test]
async fn heartbeats_arrive_every_interval_on_a_quiet_stream() {
    let server = TestServer::start_with(|config| config.heartbeat_ms = 100).await;
    let mut letter = server.stream("/api/stream").await;
    letter.next_message().await;
    let started = Instant::now();
    for _ in 0..3 {
        let Some(ServerMessage::Heartbeat(beat)) = letter.next_message().await else {
            panic!("a quiet stream carries heartbeats");
        };
        assert!(beat.server_ms > 0);
    }
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn resuming_from_evicted_history_gets_a_gap_line_then_what_is_held() {
    let server = TestServer::start_with(|config| config.history = 4).await;
    server.publish(10).await;
    let mut letter = server.stream("/api/stream?after=2").await;
    letter.next_message().await;
    assert_eq!(
        letter.next_message().await,
        Some(ServerMessage::Gap(Gap { first: 3, last: 6 }))
    );
    for expected in 7..=10 {
        assert_eq!(letter.next_event().await.seq, expected);
    }
}

#[tokio::test]
async fn a_bad_resume_point_is_refused_with_a_clear_error() {
    let server = TestServer::start().await;
    for bad in ["-1", "soon", "99999999999999999999999"] {
        let (status, answer) = server.get_json(&format!("/api/stream?after={bad}")).await;
        assert_eq!(status, 400, "after={bad}: {answer}");
        assert_eq!(answer["error"]["code"], "bad_query");
    }
    // Nobody else was hurt: a good stream still opens.
    let mut letter = server.stream("/api/stream").await;
    assert!(matches!(
        letter.next_message().await,
        Some(ServerMessage::Hello(_))
    ));
}

#[tokio::test]
async fn shutdown_ends_the_stream() {
    let server = TestServer::start().await;
    let mut letter = server.stream("/api/stream").await;
    letter.next_message().await;
    server.shutdown().await;
    // The response ends (or the connection with it): no further line.
    let next = tokio::time::timeout(Duration::from_secs(5), letter.0.next_message()).await;
    assert!(
        matches!(next, Ok(None) | Ok(Some(Err(_)))),
        "the stream ended: {next:?}"
    );
}
