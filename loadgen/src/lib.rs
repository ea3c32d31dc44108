//! `loadgen`: opens N clients of one Switchboard lane against a server, ramps them up at a given rate,
//! keeps them for a given time, and reports what they got and what it cost.
//!
//! Every client runs the shared [`SeqTracker`], so delivered, missed and duplicate seqs are counted
//! exactly as the browser counts them. Delay is the receipt time minus the event's `ts_ms` (the load
//! generator and a local server share one clock). The server's side comes from its own `/api/stats`
//! (requests and bytes on the wire for the lane) and, when the server runs on this machine, from
//! `/proc` (CPU and RSS).
//!
//! Layout: [`lanes`] — one client per lane; [`proc`] — reading the server process; [`report`] — the
//! summary and its JSON. Run `cargo run --release -p switchboard-loadgen -- --help`.

pub mod lanes;
pub mod proc;
pub mod report;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use switchboard_shared::{LaneId, SeqTracker, ServerStats};
use tokio_util::sync::CancellationToken;

pub use report::Report;

/// What to run.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "loadgen",
    version,
    about = "Opens many clients of one Switchboard lane and measures them"
)]
pub struct LoadConfig {
    /// The server's base URL. Several instances of one server (sharing a stream through Redis) are
    /// given as several URLs, comma-separated: clients are dealt out to them in turn, and the server's
    /// figures (CPU, RSS, counters) are those of the first.
    #[arg(long, default_value = "http://127.0.0.1:3000", value_delimiter = ',')]
    pub url: Vec<String>,
    /// The lane every client uses: poll, longpoll, stream, sse, ws or webtransport.
    #[arg(long)]
    pub lane: LaneId,
    /// How `webtransport` clients take events: on the session's stream, or as datagrams.
    #[arg(long, default_value = "stream", value_parser = webtransport_mode)]
    pub webtransport_mode: switchboard_shared::WebTransportMode,
    /// How many clients.
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// How many clients to open per second while ramping up.
    #[arg(long, default_value_t = 500.0)]
    pub ramp: f64,
    /// How long to measure once every client is open, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// The polling interval of `poll` clients, in ms.
    #[arg(long, default_value_t = 1000)]
    pub poll_interval_ms: u64,
    /// The wait of `longpoll` clients, in ms.
    #[arg(long, default_value_t = 25_000)]
    pub wait_ms: u64,
    /// The server's process id, for CPU and RSS; found from the URL's port when the server is local.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Run the lane over this emulated network (loopback, lan, cable, 4g, 3g, satellite, lossy): set on
    /// the server's lane for the run (every instance named by --url) and cleared after it.
    #[arg(long, value_parser = switchboard_shared::network::preset_name)]
    pub network: Option<String>,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

fn webtransport_mode(word: &str) -> Result<switchboard_shared::WebTransportMode, String> {
    serde_json::from_value(serde_json::Value::String(word.to_owned()))
        .map_err(|_| "want stream or datagram".to_owned())
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the server at {url} refused the network condition: {why}")]
    Network { url: String, why: String },
    #[error("the server at {url} does not answer: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("bad --url: {0}")]
    BadUrl(String),
}

/// Live totals across every client, for the progress bar and the measuring window.
#[derive(Debug, Default)]
pub struct Live {
    pub connected: AtomicU64,
    pub delivered: AtomicU64,
    pub errors: AtomicU64,
}

/// What one client saw.
#[derive(Debug, Default)]
pub struct ClientRecord {
    pub tracker: SeqTracker,
    /// Delay of every delivered event, ms.
    pub delays_ms: Vec<f32>,
    /// Payload bytes received (bodies, SSE data, WebSocket text).
    pub bytes: u64,
    pub errors: u64,
    /// Requests made (HTTP lanes) or connections opened (streams).
    pub requests: u64,
}

impl ClientRecord {
    /// Records one received event.
    pub fn event(&mut self, live: &Live, seq: u64, ts_ms: u64) {
        if matches!(
            self.tracker.observe(seq),
            switchboard_shared::Arrival::Duplicate
        ) {
            return;
        }
        self.delays_ms
            .push((now_ms() - ts_ms as f64).max(0.0) as f32);
        live.delivered.fetch_add(1, Relaxed);
    }

    pub fn error(&mut self, live: &Live) {
        self.errors += 1;
        live.errors.fetch_add(1, Relaxed);
    }
}

/// Runs the load and returns the report (also printed, and written as JSON if asked).
pub async fn run(config: LoadConfig) -> Result<Report, LoadError> {
    let bases: Vec<String> = config
        .url
        .iter()
        .map(|url| url.trim_end_matches('/').to_owned())
        .collect();
    let base = bases
        .first()
        .cloned()
        .ok_or_else(|| LoadError::BadUrl("no URL given".into()))?;
    let port = reqwest::Url::parse(&base)
        .map_err(|err| LoadError::BadUrl(err.to_string()))?
        .port_or_known_default()
        .unwrap_or(80);
    let fd_note = raise_open_file_limit(config.clients);
    let http = reqwest::Client::builder()
        .build()
        .expect("a plain HTTP client builds");
    let stats_url = format!("{base}/api/stats");
    let fetch_stats = || async {
        http.get(&stats_url)
            .send()
            .await?
            .error_for_status()?
            .json::<ServerStats>()
            .await
    };
    fetch_stats()
        .await
        .map_err(|source| LoadError::Unreachable {
            url: base.clone(),
            source,
        })?;
    let server_pid = config.server_pid.or_else(|| proc::pid_listening_on(port));
    if let Some(preset) = &config.network {
        set_network(&http, &bases, config.lane, preset).await?;
    }

    let live = Arc::new(Live::default());
    let stop = CancellationToken::new();
    let progress = progress_bar(&config);
    let started = Instant::now();
    let mut clients = Vec::with_capacity(config.clients);
    let ramp_gap = Duration::from_secs_f64(1.0 / config.ramp.max(0.001));
    for index in 0..config.clients {
        let client = lanes::Client {
            base: bases[index % bases.len()].clone(),
            http: http.clone(),
            live: live.clone(),
            stop: stop.clone(),
        };
        clients.push(tokio::spawn(lanes::run(client, config.clone())));
        if index + 1 < config.clients {
            tokio::time::sleep(ramp_gap).await;
        }
        if index % 64 == 0 {
            update(&progress, &live, "ramping up");
        }
    }
    let ramp_secs = started.elapsed().as_secs_f64();

    // The measuring window: every client open.
    let stats_before = fetch_stats().await.ok();
    let cpu_before = server_pid.and_then(proc::cpu_seconds);
    let own_cpu_before = proc::cpu_seconds(std::process::id());
    let delivered_before = live.delivered.load(Relaxed);
    let window_start = Instant::now();
    let window = Duration::from_secs_f64(config.duration);
    let mut peak_rss = 0;
    while window_start.elapsed() < window {
        tokio::time::sleep(
            Duration::from_millis(200).min(window.saturating_sub(window_start.elapsed())),
        )
        .await;
        update(&progress, &live, "measuring");
        if let Some(rss) = server_pid.and_then(proc::rss_bytes) {
            peak_rss = peak_rss.max(rss);
        }
    }
    let window_secs = window_start.elapsed().as_secs_f64();
    let delivered_in_window = live.delivered.load(Relaxed) - delivered_before;
    let cpu_after = server_pid.and_then(proc::cpu_seconds);
    let own_cpu_after = proc::cpu_seconds(std::process::id());
    let stats_after = fetch_stats().await.ok();
    progress.finish_and_clear();

    stop.cancel();
    if config.network.is_some() {
        set_network(&http, &bases, config.lane, "loopback").await?;
    }
    let mut records = Vec::with_capacity(clients.len());
    for client in clients {
        if let Ok(record) = client.await {
            records.push(record);
        }
    }
    let server = report::ServerSide::new(
        config.lane,
        stats_before.as_ref().zip(stats_after.as_ref()),
        cpu_before
            .zip(cpu_after)
            .map(|(before, after)| (after - before) / window_secs * 100.0),
        (peak_rss > 0).then_some(peak_rss),
        window_secs,
    );
    let connected = live.connected.load(Relaxed);
    let notes = fd_note.into_iter().collect();
    let mut report = Report::new(
        &config,
        records,
        connected,
        ramp_secs,
        window_secs,
        delivered_in_window,
        server,
        notes,
    );
    report.load_generator_cpu_percent = own_cpu_before
        .zip(own_cpu_after)
        .map(|(before, after)| (after - before) / window_secs * 100.0);
    println!("{report}");
    if let Some(path) = &config.json {
        match std::fs::write(
            path,
            serde_json::to_string_pretty(&report).expect("reports serialize"),
        ) {
            Ok(()) => println!("report written to {}", path.display()),
            Err(err) => eprintln!("could not write {}: {err}", path.display()),
        }
    }
    Ok(report)
}

/// Puts `lane` of every instance on the network `preset`.
async fn set_network(
    http: &reqwest::Client,
    bases: &[String],
    lane: LaneId,
    preset: &str,
) -> Result<(), LoadError> {
    for base in bases {
        let url = format!("{base}/api/network");
        let refused = |why: String| LoadError::Network {
            url: url.clone(),
            why,
        };
        let response = http
            .post(&url)
            .json(&serde_json::json!({"lane": lane.as_str(), "preset": preset}))
            .send()
            .await
            .map_err(|err| refused(err.to_string()))?;
        if !response.status().is_success() {
            let status = response.status();
            return Err(refused(format!(
                "{status}: {}",
                response.text().await.unwrap_or_default()
            )));
        }
    }
    Ok(())
}

/// Raises the open-file limit as far as allowed; says so when it is still too low for the clients.
fn raise_open_file_limit(clients: usize) -> Option<String> {
    let needed = clients as u64 + 64;
    match rlimit::increase_nofile_limit(needed.max(1024)) {
        Ok(limit) if limit < needed => Some(format!(
            "the open-file limit is {limit}, below the {needed} this run needs: clients beyond it will fail to connect"
        )),
        Ok(_) => None,
        Err(err) => Some(format!("could not raise the open-file limit: {err}")),
    }
}

fn progress_bar(config: &LoadConfig) -> ProgressBar {
    if config.quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(config.clients as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} clients · {msg}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar
}

fn update(bar: &ProgressBar, live: &Live, phase: &str) {
    bar.set_position(live.connected.load(Relaxed));
    bar.set_message(format!(
        "{phase}: {} delivered, {} errors",
        live.delivered.load(Relaxed),
        live.errors.load(Relaxed)
    ));
}

/// This machine's clock in fractional Unix ms.
pub fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64() * 1000.0)
}
