//! The proxy is bounded whatever the browser or the app does: downloads the browser does not read are
//! cut after the send timeout and give their memory back; heads of hundreds of kilobytes count in the
//! recording's budget; requests the browser gave up on end, and leave room for new ones.
//!
//! One test, run alone in its binary: it measures the process's memory, which other tests running
//! beside it would disturb.

mod common;

use common::{PATIENCE, TestServer, rss_kib, through_with};
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use switchboard_client::node_app::NodeApp;
use switchboard_shared::har::Har;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The recording's budget (`proxy::record::BUDGET_BYTES`), in KiB.
const BUDGET_KIB: u64 = 64 * 1024;

/// The server's open TCP connections (the proxy's both sides among them), asked on a connection of its
/// own that is closed after: it counts itself, and no kept-alive one lingers between two asks.
async fn tcp_open(server: &TestServer) -> u64 {
    let once = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let stats: switchboard_shared::ServerStats = once
        .get(server.url("/api/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats.connections.tcp_open
}

/// The highest RSS seen while `work` runs, sampled every 20 ms, in KiB.
async fn peak_rss<T>(work: impl std::future::Future<Output = T>) -> (T, u64) {
    let peak = Arc::new(AtomicU64::new(rss_kib()));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(), Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let out = work.await;
    sampler.abort();
    peak.fetch_max(rss_kib(), Relaxed);
    (out, peak.load(Relaxed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_stays_within_its_bounds_whatever_the_browser_does() {
    let app = NodeApp::start("http-app.cjs", &[]);
    let (server, proxy) = through_with(&app.url(), |config| {
        config.send_timeout_ms = 1000;
        config.max_tcp_per_client = Some(10_000);
    })
    .await;
    let proxy = proxy.trim_start_matches("http://").to_owned();

    // 40 downloads of 100 MB that the browser never reads: cut after the send timeout, memory back.
    let open_before = tcp_open(&server).await;
    let before = rss_kib();
    let (cut_after, peak) = peak_rss(async {
        let mut stalled = Vec::new();
        for _ in 0..40 {
            let mut stream = TcpStream::connect(&proxy).await.unwrap();
            stream
                .write_all(format!("GET /big?mb=100 HTTP/1.1\r\nhost: {proxy}\r\n\r\n").as_bytes())
                .await
                .unwrap();
            stalled.push(stream);
        }
        let started = Instant::now();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(tcp_open(&server).await >= open_before + 40);
        while tcp_open(&server).await > open_before {
            assert!(
                started.elapsed() < PATIENCE,
                "{} of the proxy's sockets still open",
                tcp_open(&server).await - open_before
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let cut_after = started.elapsed();
        drop(stalled);
        cut_after
    })
    .await;
    let grown = peak.saturating_sub(before) / 1024;
    println!("40 unread downloads: cut after {cut_after:?}, peak +{grown} MiB");
    assert!(
        grown < 64,
        "40 unread downloads held +{grown} MiB (each must hold a few chunks, not megabytes)"
    );

    // 2,000 requests with 360 KB of headers each (720 MB in all): the recording keeps to its budget.
    let before = rss_kib();
    let big = "h".repeat(4 * 1024);
    let (_, peak) = peak_rss(async {
        let sent = Arc::new(AtomicU64::new(0));
        let mut workers = Vec::new();
        for _ in 0..4 {
            let (http, proxy, big, sent) = (
                server.http.clone(),
                proxy.clone(),
                big.clone(),
                sent.clone(),
            );
            workers.push(tokio::spawn(async move {
                while sent.fetch_add(1, Relaxed) < 2_000 {
                    let mut request = http.get(format!("http://{proxy}/status"));
                    for n in 0..90 {
                        request = request.header(format!("x-big-{n}"), &big);
                    }
                    // The app refuses such heads (431); the proxy records them all the same.
                    let answer = request.send().await.unwrap();
                    let _ = answer.bytes().await;
                }
            }));
        }
        for worker in workers {
            worker.await.unwrap();
        }
    })
    .await;
    let grown = peak.saturating_sub(before);
    println!(
        "2,000 heads of 360 KB: peak +{} MiB (budget {} MiB)",
        grown / 1024,
        BUDGET_KIB / 1024
    );
    assert!(
        grown < BUDGET_KIB + 50 * 1024,
        "+{} MiB: the recording's budget does not count headers",
        grown / 1024
    );

    // 2,000 requests the browser gave up on end as cancelled, and leave room for 50 new ones.
    let mut gave_up = Vec::new();
    for n in 0..2_000 {
        let mut stream = TcpStream::connect(&proxy).await.unwrap();
        stream
            .write_all(
                format!("GET /wait?ms=20000&n={n} HTTP/1.1\r\nhost: {proxy}\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
        gave_up.push(stream);
        if gave_up.len() == 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            gave_up.clear();
        }
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(gave_up);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for n in 0..50 {
        let answer = server
            .http
            .get(format!("http://{proxy}/status?fresh={n}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }
    let har: Har = server
        .http
        .get(server.url("/api/app/har"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fresh = har
        .log
        .entries
        .iter()
        .filter(|entry| entry.request.url.contains("fresh="))
        .count();
    assert_eq!(
        fresh, 50,
        "requests the browser gave up on crowded out new ones"
    );
    let open_ended = har
        .log
        .entries
        .iter()
        .filter(|entry| entry.request.url.contains("/wait") && entry.response.error.is_none())
        .count();
    assert_eq!(
        open_ended, 0,
        "a request the browser gave up on stays open for ever"
    );
    let _ = har.log.entries.iter().map(|e| e.time).fold(0.0, f64::max);

    let mut body = server
        .http
        .get(server.url("/api/app"))
        .send()
        .await
        .unwrap()
        .bytes_stream();
    while body.next().await.is_some() {}
    server.shutdown().await;
}
