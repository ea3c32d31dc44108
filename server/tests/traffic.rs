//! Traffic patterns, measured on a real phone line: the pace each pattern promises, the API that changes
//! it, and the notice that marks the change on every lane.

mod common;

use common::{TestServer, WsClient};
use serde_json::json;
use std::time::{Duration, Instant};
use switchboard_shared::traffic::{BURST_SIZE, TrafficState};
use switchboard_shared::{Event, EventBody, Notice, ServerMessage, Traffic};

async fn set_traffic(server: &TestServer, body: serde_json::Value) -> (u16, serde_json::Value) {
    server.post_json("/api/traffic", body).await
}

/// The next event on the line, passing over its greeting and anything else that is not one.
async fn next_event(ws: &mut WsClient) -> Event {
    loop {
        if let ServerMessage::Event(event) = ws.next_non_heartbeat().await {
            return event;
        }
    }
}

/// Every event the line brings during `window`, with when it came.
async fn listen(ws: &mut WsClient, window: Duration) -> Vec<(Instant, Event)> {
    let end = Instant::now() + window;
    let mut heard = Vec::new();
    while let Ok(event) = tokio::time::timeout_at(end.into(), next_event(ws)).await {
        heard.push((Instant::now(), event));
    }
    heard
}

fn quotes(heard: &[(Instant, Event)]) -> Vec<Instant> {
    heard
        .iter()
        .filter(|(_, event)| matches!(event.body, EventBody::Ticker(_)))
        .map(|(at, _)| *at)
        .collect()
}

/// Waits on `ws` for the notice of a change of pattern and returns the pattern it names.
async fn notice_of_change(ws: &mut WsClient) -> Traffic {
    loop {
        if let EventBody::Notice(Notice {
            code,
            traffic: Some(change),
            ..
        }) = next_event(ws).await.body
        {
            assert_eq!(code, "traffic_changed");
            return change.pattern;
        }
    }
}

#[tokio::test]
async fn each_pattern_keeps_its_pace_and_a_change_is_announced_at_once() {
    let server = TestServer::start_with(|config| {
        config.traffic = Traffic::Steady;
        config.ticker_ms = 100;
    })
    .await;
    let mut ws = server.ws("/ws").await;

    let (status, state) = server.get_json("/api/traffic").await;
    assert_eq!(status, 200);
    let state: TrafficState = serde_json::from_value(state).unwrap();
    assert_eq!(state.pattern, Traffic::Steady);
    assert_eq!(state.patterns.len(), 4);

    // Steady: the configured interval.
    let steady = quotes(&listen(&mut ws, Duration::from_secs(2)).await).len();
    assert!(
        (12..=22).contains(&steady),
        "steady at 100 ms: {steady} in 2 s"
    );

    // Firehose: hundreds a second.
    let (status, change) = set_traffic(&server, json!({"pattern": "firehose"})).await;
    assert_eq!(status, 200, "{change}");
    assert_eq!(
        (change["pattern"].as_str(), change["previous"].as_str()),
        (Some("firehose"), Some("steady"))
    );
    assert_eq!(notice_of_change(&mut ws).await, Traffic::Firehose);
    let firehose = quotes(&listen(&mut ws, Duration::from_secs(1)).await).len();
    assert!(firehose >= 100, "firehose: only {firehose} quotes in 1 s");

    // Quiet: at least 2 s between quotes, starting from the change.
    assert_eq!(
        set_traffic(&server, json!({"pattern": "quiet"})).await.0,
        200
    );
    assert_eq!(notice_of_change(&mut ws).await, Traffic::Quiet);
    // Quotes the firehose had already sent may still be in flight; give them a moment to land.
    listen(&mut ws, Duration::from_millis(200)).await;
    let quiet = quotes(&listen(&mut ws, Duration::from_millis(1_600)).await);
    assert!(
        quiet.is_empty(),
        "quiet spoke {} times in 1.6 s",
        quiet.len()
    );

    // Bursty: silence, then dozens of quotes within about a second.
    assert_eq!(
        set_traffic(&server, json!({"pattern": "bursty"})).await.0,
        200
    );
    assert_eq!(notice_of_change(&mut ws).await, Traffic::Bursty);
    let heard = quotes(&listen(&mut ws, Duration::from_secs(12)).await);
    let first = *heard.first().expect("a burst within 10 s of silence");
    let burst = heard
        .iter()
        .filter(|at| at.duration_since(first) < Duration::from_millis(1_500))
        .count() as u64;
    assert!(burst >= BURST_SIZE.0, "a burst of only {burst}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_bad_pattern_is_refused_with_a_message_that_names_the_field() {
    let server = TestServer::start().await;
    for (body, names) in [
        (json!({"pattern": "loud"}), "pattern \"loud\""),
        (json!({"pattern": "quiet", "rate": 3}), "\"rate\""),
        (json!({}), "pattern is missing"),
    ] {
        let (status, answer) = set_traffic(&server, body).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(
            answer["error"]["code"].as_str(),
            Some("invalid_traffic"),
            "{answer}"
        );
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(names), "{message}");
    }
    let response = server
        .http
        .post(server.url("/api/traffic"))
        .body("pattern=quiet")
        .send()
        .await
        .unwrap();
    // Not JSON by its Content-Type: refused like any other JSON endpoint's body.
    assert_eq!(response.status(), 415);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "unsupported_media_type");
    // Nothing changed.
    let (_, state) = server.get_json("/api/traffic").await;
    assert_eq!(state["pattern"], "bursty");
    server.shutdown().await;
}

#[tokio::test]
async fn only_an_admin_may_change_the_traffic_when_a_token_is_set() {
    let server = TestServer::start_with(|config| config.admin_token = Some("s3cret".into())).await;
    let (status, _) = set_traffic(&server, json!({"pattern": "quiet"})).await;
    assert_eq!(status, 401);
    let response = server
        .http
        .post(server.url("/api/traffic"))
        .bearer_auth("s3cret")
        .json(&json!({"pattern": "quiet"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server.shutdown().await;
}
