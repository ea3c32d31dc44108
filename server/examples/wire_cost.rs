//! Measures what one event costs on each lane, in bytes on the wire, against a real server on loopback.
//!
//! `cargo run --release -p switchboard-server --example wire_cost`
//!
//! Each lane's figure comes from the server's own byte meters (`/api/stats`), which count real socket
//! reads and writes: HTTP heads, chunked framing and WebSocket frame headers included. The event is one
//! chat message with a 40-character text, as typed in the page.

use futures_util::StreamExt;
use serde_json::json;
use switchboard_server::Config;
use switchboard_shared::{LaneCounters, LaneId, ServerStats};

const TEXT: &str = "the quick brown fox jumps over a lazy do";

#[tokio::main]
async fn main() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = Config::quiet();
    // Heartbeats would add to the stream lanes' counts while we measure.
    config.heartbeat_ms = 3_600_000;
    config.instance = Some("wire-cost".into());
    let server = tokio::spawn(switchboard_server::run(
        listener,
        config,
        std::future::pending(),
    ));
    let http = reqwest::Client::new();
    let url = |path: &str| format!("http://{addr}{path}");
    let stats = || async {
        http.get(url("/api/stats"))
            .send()
            .await
            .unwrap()
            .json::<ServerStats>()
            .await
            .unwrap()
    };
    let post = || async {
        let body = json!({"author": "ana", "text": TEXT});
        http.post(url("/api/messages"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };
    let lane = |stats: &ServerStats, lane: LaneId| stats.lanes[&lane];
    let delta = |before: LaneCounters, after: LaneCounters| {
        (
            after.bytes_in - before.bytes_in,
            after.bytes_out - before.bytes_out,
        )
    };

    // Open the streams first, so their opening costs are not counted against the event.
    let sse = http.get(url("/api/sse")).send().await.unwrap();
    let mut sse_stream = sse.bytes_stream();
    sse_stream.next().await; // hello
    let endless = http.get(url("/api/stream")).send().await.unwrap();
    let mut endless = endless.bytes_stream();
    endless.next().await; // hello
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    ws.next().await; // hello
    // The held request is part of what the long-polled event costs.
    let before_held = stats().await;
    let held_url = url("/api/longpoll?after=0&wait_ms=30000");
    let held = tokio::spawn({
        let http = http.clone();
        async move {
            http.get(held_url)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
        }
    });
    // Let the long poll arrive and be held.
    while lane(&stats().await, LaneId::LongPoll).connections_open == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    let before = stats().await;
    let accepted = post().await;
    sse_stream.next().await.unwrap().unwrap();
    endless.next().await.unwrap().unwrap();
    ws.next().await.unwrap().unwrap();
    held.await.unwrap();
    // A poll that finds the event, and one that finds nothing.
    let after = accepted["seq"].as_u64().unwrap() - 1;
    let get = |path: String| {
        let http = http.clone();
        let url = url(&path);
        async move { http.get(url).send().await.unwrap().bytes().await.unwrap() }
    };
    get(format!("/api/poll?after={after}")).await;
    let after_news = stats().await;
    get(format!("/api/poll?after={}", after + 1)).await;
    let after_empty = stats().await;

    let event_json = get(format!("/api/poll?after={after}")).await;
    let event_len = serde_json::from_slice::<serde_json::Value>(&event_json).unwrap()["events"][0]
        .to_string()
        .len();
    println!("one chat event ({event_len} bytes of JSON), bytes on the wire per lane:");
    println!("{:<10} {:>10} {:>10} {:>10}", "lane", "up", "down", "total");
    let rows = [
        (
            "poll",
            delta(lane(&before, LaneId::Poll), lane(&after_news, LaneId::Poll)),
        ),
        (
            "poll-empty",
            delta(
                lane(&after_news, LaneId::Poll),
                lane(&after_empty, LaneId::Poll),
            ),
        ),
        (
            "longpoll",
            delta(
                lane(&before_held, LaneId::LongPoll),
                lane(&after_news, LaneId::LongPoll),
            ),
        ),
        (
            "stream",
            delta(
                lane(&before, LaneId::HttpStream),
                lane(&after_news, LaneId::HttpStream),
            ),
        ),
        (
            "sse",
            delta(lane(&before, LaneId::Sse), lane(&after_news, LaneId::Sse)),
        ),
        (
            "ws",
            delta(lane(&before, LaneId::Ws), lane(&after_news, LaneId::Ws)),
        ),
    ];
    for (name, (up, down)) in rows {
        println!("{name:<10} {up:>10} {down:>10} {:>10}", up + down);
    }
    server.abort();
}
