//! What the "Your app" view costs the server with a full recording: `GET /api/app` (which the page asks
//! every second) timed, and the server's CPU while a page polls it, after 150 sockets of 2,000 frames
//! each went through the proxy (the recording at its 64 MiB budget). Run with
//! `cargo bench -p switchboard-server --bench app_report`; results in BENCHMARKS.md.

use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

const SOCKETS: usize = 150;
const FRAMES: usize = 2_000;

/// CPU time this process has used, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime, fields 14 and 15 of the whole line (11 and 12 after the command).
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p / 100.0).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // The app: every socket gets FRAMES text frames of 200 bytes, then stays open.
    let app = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_addr = app.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = app.accept().await {
            tokio::spawn(async move {
                let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
                let frame = format!("{{\"type\":\"tick\",\"pad\":\"{}\"}}", "x".repeat(170));
                for _ in 0..FRAMES {
                    if socket.send(Message::text(frame.clone())).await.is_err() {
                        return;
                    }
                }
                while socket.next().await.is_some() {}
            });
        }
    });

    let mut config = switchboard_server::Config::quiet();
    config.upstream =
        Some(switchboard_server::proxy::Upstream::parse(&format!("http://{app_addr}")).unwrap());
    config.proxy_addr = "127.0.0.1:0".parse().unwrap();
    let dashboard = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (dashboard_addr, proxy_addr) =
        (dashboard.local_addr().unwrap(), proxy.local_addr().unwrap());
    tokio::spawn(switchboard_server::run_with_proxy(
        dashboard,
        Some(proxy),
        config,
        std::future::pending(),
    ));
    let http = reqwest::Client::new();
    let report_url = format!("http://{dashboard_addr}/api/app");
    while http.get(&report_url).send().await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let filling = Instant::now();
    let mut held = Vec::new();
    for batch in 0..SOCKETS / 10 {
        let mut readers = Vec::new();
        for n in 0..10 {
            readers.push(tokio::spawn(async move {
                // A path of its own per socket, one the route rules keep apart (`/feed/3/7` would be
                // one channel, `/feed/{n}/{n}`): 150 channels for the report to read.
                let url = format!("ws://{proxy_addr}/f{batch}x{n}");
                let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
                for _ in 0..FRAMES {
                    socket.next().await.unwrap().unwrap();
                }
                socket
            }));
        }
        for reader in readers {
            held.push(reader.await.unwrap());
        }
    }
    println!(
        "filled: {SOCKETS} sockets x {FRAMES} frames through the proxy in {:.1} s; process RSS {:.0} MiB",
        filling.elapsed().as_secs_f64(),
        rss_mib()
    );

    let mut times = Vec::new();
    let mut size = 0;
    let mut channels = 0;
    for _ in 0..200 {
        let started = Instant::now();
        let body = http
            .get(&report_url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        size = body.len();
        channels = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["channels"]
            .as_array()
            .map_or(0, Vec::len);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "GET /api/app, 200 times: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({size} bytes, {channels} channels)",
        percentile(&times, 50.0),
        percentile(&times, 99.0),
        times[times.len() - 1]
    );

    // A page polling the report every second, nothing else moving.
    let cpu_before = cpu_seconds();
    let polled = Instant::now();
    for _ in 0..10 {
        http.get(&report_url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let cpu = (cpu_seconds() - cpu_before) / polled.elapsed().as_secs_f64() * 100.0;
    println!(
        "a page asking the report every second for 10 s: {cpu:.2} % of a core; RSS {:.0} MiB",
        rss_mib()
    );

    // The HAR, read as it comes and let go (the page asks its last two minutes every 2 s).
    for (what, url) in [
        (
            "the last 120 s",
            format!("http://{dashboard_addr}/api/app/har?last_s=120"),
        ),
        (
            "the last 1 s",
            format!("http://{dashboard_addr}/api/app/har?last_s=1"),
        ),
    ] {
        let rss_before = rss_mib();
        let cpu_before = cpu_seconds();
        let started = Instant::now();
        let mut body = http.get(&url).send().await.unwrap().bytes_stream();
        let (mut bytes, mut peak) = (0usize, rss_before);
        while let Some(chunk) = body.next().await {
            bytes += chunk.unwrap().len();
            peak = peak.max(rss_mib());
        }
        println!(
            "GET /api/app/har ({what}, all of it recent): {:.0} ms, {:.0} ms of CPU, {:.1} MB; RSS +{:.0} MiB at its peak",
            started.elapsed().as_secs_f64() * 1000.0,
            (cpu_seconds() - cpu_before) * 1000.0,
            bytes as f64 / 1e6,
            peak - rss_before
        );
    }
    drop(held);
}
