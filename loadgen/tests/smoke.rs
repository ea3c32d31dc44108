//! A short smoke run of the load generator on every lane against a real server: a few clients, a few
//! seconds, every one connected, events delivered, nothing missed or duplicated. (The full benchmarks
//! are run by hand; see BENCHMARKS.md.)

use clap::Parser;
use switchboard_loadgen::{LoadConfig, run};
use switchboard_server::Config;
use switchboard_shared::LaneId;

async fn smoke(lane: LaneId) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = Config::quiet();
    config.traffic = switchboard_shared::Traffic::Steady;
    config.ticker_ms = 20; // 50 events per second
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(switchboard_server::run(listener, config, async {
        let _ = stopped.await;
    }));
    let load = LoadConfig::parse_from([
        "loadgen",
        "--url",
        &format!("http://{addr}"),
        "--lane",
        lane.as_str(),
        "--clients",
        "6",
        "--ramp",
        "200",
        "--duration",
        "2",
        "--poll-interval-ms",
        "100",
        "--quiet",
    ]);
    let report = run(load).await.unwrap();
    assert_eq!(report.connected, 6, "{report}");
    assert!(report.delivered > 6 * 20, "{report}");
    assert!(report.deliveries_per_sec > 0.0, "{report}");
    assert_eq!(
        (report.missed, report.lost, report.duplicates, report.errors),
        (0, 0, 0, 0),
        "{report}"
    );
    let delay = report.delay_ms.unwrap();
    assert!(delay.p50 >= 0.0 && delay.max < 10_000.0, "{report}");
    let server_side = &report.server;
    assert!(
        server_side.events_published_per_sec.unwrap() > 10.0,
        "{report}"
    );
    assert!(
        server_side.wire_bytes_out_per_sec.unwrap() > 0.0,
        "{report}"
    );
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_smoke() {
    smoke(LaneId::Poll).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn longpoll_smoke() {
    smoke(LaneId::LongPoll).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_smoke() {
    smoke(LaneId::HttpStream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_smoke() {
    smoke(LaneId::Sse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_smoke() {
    smoke(LaneId::Ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webtransport_smoke() {
    smoke(LaneId::WebTransport).await;
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let load = LoadConfig::parse_from([
        "loadgen",
        "--url",
        &format!("http://{addr}"),
        "--lane",
        "ws",
        "--quiet",
    ]);
    let err = run(load).await.unwrap_err();
    assert!(err.to_string().contains("does not answer"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_an_emulated_network_pays_its_delay_and_clears_it_after() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = Config::quiet();
    config.traffic = switchboard_shared::Traffic::Steady;
    config.ticker_ms = 50;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(switchboard_server::run(listener, config, async {
        let _ = stopped.await;
    }));
    let load = LoadConfig::parse_from([
        "loadgen",
        "--url",
        &format!("http://{addr}"),
        "--lane",
        "ws",
        "--clients",
        "4",
        "--duration",
        "2",
        "--network",
        "4g",
        "--quiet",
    ]);
    let report = run(load).await.unwrap();
    assert_eq!(report.network.as_deref(), Some("4g"));
    assert_eq!((report.missed, report.errors), (0, 0), "{report}");
    // One way is 30 ± 15 ms: never under 15.
    let delay = report.delay_ms.unwrap();
    assert!(delay.p50 >= 15.0 && delay.max < 1_000.0, "{report}");
    assert!(report.wire_bytes_per_delivery.unwrap() > 20.0, "{report}");
    let state: serde_json::Value = reqwest::get(format!("http://{addr}/api/network"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        state["lanes"]["ws"].is_null(),
        "cleared after the run: {state}"
    );
    assert!(LoadConfig::try_parse_from(["loadgen", "--lane", "ws", "--network", "5g"]).is_err());
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
