//! Measures what one event costs on each lane, in bytes on the wire, against a real server on loopback.
//!
//! `cargo run --release -p switchboard-server --example wire_cost`
//!
//! Each lane's figure comes from the server's own byte meters (`/api/stats`), which count real socket
//! reads and writes: HTTP heads, chunked framing and WebSocket frame headers included. The video call's
//! come from the QUIC connection's UDP counters, read at the client (what it received is what the server
//! sent; what it sent includes its acknowledgements). The event is one chat message with a 40-character
//! text, as typed in the page.

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
    // Two video calls: events on the stream, and as datagrams. The handshake (and the question of where
    // to dial) is paid once per session, before the event.
    let info = switchboard_client::WtClient::info(&http, &url(""))
        .await
        .unwrap();
    let mut video = switchboard_client::WtClient::connect(&info, &info.url)
        .await
        .unwrap();
    video.next_message().await; // hello
    let handshake = video.udp_bytes();
    let datagram_url = format!("{}?mode=datagram", info.url);
    let mut datagrams = switchboard_client::WtClient::connect(&info, &datagram_url)
        .await
        .unwrap();
    datagrams.next_message().await; // hello
    // Let the hello's acknowledgements go by.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let video_before = video.udp_bytes();
    let datagrams_before = datagrams.udp_bytes();
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
    video.next_message().await.unwrap().unwrap();
    datagrams.next_message().await.unwrap().unwrap();
    held.await.unwrap();
    // The client acknowledges what it received a moment later (QUIC delays acks up to 25 ms).
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let udp_delta =
        |before: (u64, u64), after: (u64, u64)| (after.0 - before.0, after.1 - before.1);
    let video_event = udp_delta(video_before, video.udp_bytes());
    let datagram_event = udp_delta(datagrams_before, datagrams.udp_bytes());
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
        ("wt-stream", video_event),
        ("wt-dgram", datagram_event),
    ];
    for (name, (up, down)) in rows {
        println!("{name:<10} {up:>10} {down:>10} {:>10}", up + down);
    }
    println!(
        "a video call's QUIC + TLS handshake and CONNECT, to its hello: {} up, {} down (UDP payload)",
        handshake.0, handshake.1
    );
    server.abort();
}
