//! Measures, for each lane and fault, how long a client with the dashboard's policy (heartbeat watchdog
//! at 2.5 intervals, full-jitter backoff from 500 ms, letters given up 5 s past their expected answer)
//! takes to notice and to be back, against a real server with its default heartbeat (2 s), while news
//! is published every 200 ms before, during and after the fault.
//!
//! `cargo run --release -p switchboard-server --example fault_times` prints the table in the README's
//! "When things break".

use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use switchboard_client::{Follower, Policy};
use switchboard_server::Config;
use switchboard_shared::LaneId;

const ROUNDS: usize = 3;

#[tokio::main]
async fn main() {
    let faults: [(&str, serde_json::Value); 4] = [
        ("drop", json!({"kind": "drop"})),
        (
            "half_open 8 s",
            json!({"kind": "half_open", "duration_ms": 8_000}),
        ),
        (
            "error 3 s, then drop",
            json!({"kind": "error", "duration_ms": 3_000}),
        ),
        ("restart", json!({"kind": "restart", "lane": "all"})),
    ];
    println!("| fault | lane | noticed after (median of {ROUNDS}) | back after | lost |");
    println!("|---|---|---:|---:|---:|");
    for (name, fault) in &faults {
        for lane in LaneId::ALL {
            let mut noticed = Vec::new();
            let mut back = Vec::new();
            let mut lost = 0;
            for _ in 0..ROUNDS {
                let (n, b, l) = measure(lane, fault.clone(), name.starts_with("error")).await;
                noticed.extend(n);
                back.extend(b);
                lost += l;
            }
            println!(
                "| {name} | {} | {} | {} | {lost} |",
                lane.title(),
                median(&mut noticed),
                median(&mut back)
            );
        }
    }
}

fn median(values: &mut [Duration]) -> String {
    if values.is_empty() {
        return "not affected".into();
    }
    values.sort();
    let ms = values[values.len() / 2].as_millis();
    if ms >= 1000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

/// One fault on one lane: (noticed after, back after, seqs lost), times from the injection.
async fn measure(
    lane: LaneId,
    mut fault: serde_json::Value,
    then_drop: bool,
) -> (Option<Duration>, Option<Duration>, u64) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = Config::quiet();
    config.chat_per_second = 1_000;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(switchboard_server::run(listener, config, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let publish = |text: String| {
        let http = http.clone();
        async move {
            let answer: serde_json::Value = http
                .post(format!("http://{addr}/api/messages"))
                .json(&json!({"author": "bench", "text": text}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer["seq"].as_u64().unwrap_or(0)
        }
    };
    let follower = Follower::with_policy(addr, lane, 0, Policy::browser());
    let first = publish("before".into()).await;
    follower.wait_for(first, Duration::from_secs(10)).await;
    // Let the line settle into its heartbeat rhythm, then strike at a random point in it.
    tokio::time::sleep(Duration::from_millis(2_000 + rand::random::<u64>() % 2_000)).await;
    if fault.get("lane").is_none() {
        fault["lane"] = json!(lane.as_str());
    }
    let post = |body: serde_json::Value| {
        http.post(format!("http://{addr}/api/faults"))
            .json(&body)
            .send()
    };
    // News keeps coming up to the fault and while the lane is down, so what it missed must be replayed
    // (and what a restart wiped before a letter collected it is lost, as it would be in use).
    let last = Arc::new(AtomicU64::new(0));
    let newsroom = tokio::spawn({
        let (last, http) = (last.clone(), http.clone());
        async move {
            for n in 0.. {
                let answer = http
                    .post(format!("http://{addr}/api/messages"))
                    .json(&json!({"author": "bench", "text": format!("news {n}")}))
                    .send()
                    .await;
                // Refused while the server is down for the fault: that is news nobody could publish.
                if let Ok(answer) = answer
                    && let Ok(answer) = answer.json::<serde_json::Value>().await
                {
                    last.fetch_max(answer["seq"].as_u64().unwrap_or(0), Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 1_000)).await;
    let injected = Instant::now();
    assert!(post(fault).await.unwrap().status().is_success());
    if then_drop {
        post(json!({"kind": "drop", "lane": lane.as_str()}))
            .await
            .unwrap();
    }
    let deadline = injected + Duration::from_secs(40);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let last = last.load(Relaxed);
        let books = follower.books();
        let recovered = books.last_recovery.is_some_and(|at| at > injected);
        let untouched = books.last_break.is_none() && injected.elapsed() > Duration::from_secs(12);
        if (recovered || untouched) && books.has(last) || Instant::now() > deadline {
            newsroom.abort();
            let _ = stop.send(());
            let _ = server.await;
            return (
                books.last_break.map(|at| at - injected),
                books.last_recovery.map(|at| at - injected),
                books.tracker.counts().lost,
            );
        }
    }
}
