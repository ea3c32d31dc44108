//! The letters lanes against a real server: short polling and long polling.

mod common;

use common::{PATIENCE, TestServer};
use std::time::{Duration, Instant};
use switchboard_shared::{Batch, EventBody, Gap, LaneId};

async fn poll(server: &TestServer, query: &str) -> Batch {
    server.batch(&format!("/api/poll{query}")).await
}

fn seqs(batch: &Batch) -> Vec<u64> {
    batch.events.iter().map(|event| event.seq).collect()
}

#[tokio::test]
async fn poll_answers_what_is_new_at_once_and_empty_when_nothing_is() {
    let server = TestServer::start().await;
    let empty = poll(&server, "").await;
    assert_eq!((empty.head, empty.events.len(), empty.gap), (0, 0, None));

    let published = server.publish(3).await;
    let batch = poll(&server, "?after=0").await;
    assert_eq!(seqs(&batch), published);
    assert_eq!(batch.head, 3);
    let EventBody::Chat(chat) = &batch.events[0].body else {
        panic!("a chat event")
    };
    assert_eq!(
        (chat.author.as_str(), chat.text.as_str()),
        ("tester", "message 0")
    );
    assert_eq!(seqs(&poll(&server, "?after=1").await), vec![2, 3]);
    assert!(poll(&server, "?after=3").await.events.is_empty());

    let stats = server.stats().await.lanes[&LaneId::Poll];
    assert_eq!(
        (stats.requests, stats.empty_replies, stats.messages),
        (4, 2, 5)
    );
}

#[tokio::test]
async fn poll_after_evicted_history_gets_an_explicit_gap() {
    let server = TestServer::start_with(|config| config.history = 5).await;
    server.publish(12).await;
    let batch = poll(&server, "?after=2").await;
    assert_eq!(batch.gap, Some(Gap { first: 3, last: 7 }));
    assert_eq!(seqs(&batch), vec![8, 9, 10, 11, 12]);
    assert_eq!(batch.next_after(2), 12);
}

#[tokio::test]
async fn bad_query_values_get_a_json_400() {
    let server = TestServer::start().await;
    for path in [
        "/api/poll?after=-1",
        "/api/poll?after=abc",
        "/api/poll?after=99999999999999999999999",
        "/api/longpoll?wait_ms=soon",
        "/api/longpoll?after=1&wait_ms=600001",
    ] {
        let (status, body) = server.get_json(path).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(body["error"]["code"], "bad_query", "{path}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().len() > 5,
            "{path}: a human message"
        );
    }
    let (_, body) = server.get_json("/api/longpoll?wait_ms=600001").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 60000"),
        "{body}"
    );
    assert_eq!(server.stats().await.lanes[&LaneId::Poll].errors, 3);
}

#[tokio::test]
async fn long_poll_is_held_for_its_wait_when_nothing_happens() {
    let server = TestServer::start().await;
    let started = Instant::now();
    let response = server
        .http
        .get(server.url("/api/longpoll?after=0&wait_ms=400"))
        .send()
        .await
        .unwrap();
    let held = started.elapsed();
    let batch: Batch = response.json().await.unwrap();
    assert!(batch.events.is_empty());
    assert!(
        held >= Duration::from_millis(400),
        "answered after {held:?}, before its wait ran out"
    );
    let stats = server.stats().await.lanes[&LaneId::LongPoll];
    assert_eq!(
        (stats.requests, stats.empty_replies, stats.connections_open),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn a_held_long_poll_is_answered_by_the_next_chat_post() {
    let server = TestServer::start().await;
    let url = server.url("/api/longpoll?after=0&wait_ms=30000");
    let client = server.http.clone();
    let started = Instant::now();
    let held = tokio::spawn(async move {
        client
            .get(url)
            .send()
            .await
            .unwrap()
            .json::<Batch>()
            .await
            .unwrap()
    });
    // Make sure the request is really being held before posting.
    common::eventually("the long poll to be held", || async {
        server.stats().await.lanes[&LaneId::LongPoll].connections_open == 1
    })
    .await;
    let accepted = server.post_chat("wake up").await;
    let batch = tokio::time::timeout(PATIENCE, held)
        .await
        .expect("answered")
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "answered by the post, not by the timeout"
    );
    assert_eq!(seqs(&batch), vec![accepted.seq]);
}

#[tokio::test]
async fn long_poll_answers_at_once_when_news_is_already_there() {
    let server = TestServer::start().await;
    server.publish(2).await;
    let started = Instant::now();
    let batch = server.batch("/api/longpoll?after=1&wait_ms=30000").await;
    assert_eq!(seqs(&batch), vec![2]);
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn shutdown_answers_held_long_polls() {
    let server = TestServer::start().await;
    let url = server.url("/api/longpoll?after=0&wait_ms=60000");
    let client = server.http.clone();
    let held = tokio::spawn(async move { client.get(url).send().await.unwrap() });
    common::eventually("the long poll to be held", || async {
        server.stats().await.lanes[&LaneId::LongPoll].connections_open == 1
    })
    .await;
    server.shutdown().await;
    let response = tokio::time::timeout(PATIENCE, held).await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    let batch: Batch = response.json().await.unwrap();
    assert!(batch.events.is_empty());
}
