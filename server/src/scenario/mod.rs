//! `switchboard-server scenario FILE`: the lab run against your app headless, as a test — the 2 AM bug
//! kept fixed in CI.
//!
//! It starts the proxy in front of the app (no dashboard), opens the scenario's page in headless
//! Chromium through it (or waits for the app's own tests to connect), runs each step as an experiment
//! of the lab, judges its expectations against the experiment's figures by the shared definitions, and
//! says each verdict in words. Exit status: 0 when every expectation held, 1 when one failed, 2 on a bad
//! file, an app that does not answer, or a page that never connects.

pub mod file;
pub mod judge;
pub mod junit;

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_shared::app::AppReport;
use switchboard_shared::app::experiment::Experiment;
use switchboard_shared::format::format_ms;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::hub::now_ms_f64;
use crate::proxy::{AppProxy, Settings, Upstream};
use file::{Action, Scenario, Step};
use judge::Check;

/// `switchboard-server scenario`'s flags.
#[derive(Debug, Parser)]
#[command(
    name = "switchboard-server scenario",
    about = "Runs a scenario file's steps against your app through the lab, headless, and says whether its expectations held (exit 0) or not (exit 1)."
)]
pub struct Args {
    /// The scenario file (TOML; see the README's "Your app's failure modes as a test").
    pub file: PathBuf,
    /// Your app's address (overrides the file's `upstream`).
    #[arg(long)]
    pub upstream: Option<String>,
    /// Write the verdicts as JUnit XML here (one test case per step).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write what passed through the proxy as a HAR file here.
    #[arg(long)]
    pub har: Option<PathBuf>,
    /// Where the proxy listens (a free loopback port by default).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub proxy_addr: std::net::SocketAddr,
}

/// What came of one step.
#[derive(Debug, Clone)]
pub struct StepVerdict {
    pub step: Step,
    pub checks: Vec<Check>,
    pub seconds: f64,
}

impl StepVerdict {
    pub fn held(&self) -> bool {
        self.checks.iter().all(|check| check.held == Some(true))
    }
}

/// Why a scenario could not be run at all (exit 2).
#[derive(Debug)]
pub struct Unrunnable(pub String);

/// Runs `switchboard-server scenario …` with the flags after `scenario`.
pub async fn main(args: Args) -> ExitCode {
    match run(&args).await {
        Ok(verdicts) if verdicts.iter().all(StepVerdict::held) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(Unrunnable(why)) => {
            eprintln!("switchboard scenario: {why}");
            ExitCode::from(2)
        }
    }
}

/// Reads the file, starts the proxy, runs every step; the verdicts, or why nothing could be run.
pub async fn run(args: &Args) -> Result<Vec<StepVerdict>, Unrunnable> {
    let text = std::fs::read_to_string(&args.file)
        .map_err(|err| Unrunnable(format!("cannot read {}: {err}", args.file.display())))?;
    let scenario = Scenario::parse(&text)
        .map_err(|why| Unrunnable(format!("{}: {why}", args.file.display())))?;
    let url = args
        .upstream
        .clone()
        .or_else(|| scenario.upstream.clone())
        .ok_or_else(|| {
            Unrunnable(
                "no app to test: give --upstream http://HOST:PORT or `upstream = …` in the file"
                    .into(),
            )
        })?;
    let upstream = Upstream::parse(&url).map_err(|why| Unrunnable(format!("upstream: {why}")))?;
    let reached = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(&upstream.authority),
    )
    .await;
    if !matches!(reached, Ok(Ok(_))) {
        return Err(Unrunnable(format!(
            "your app does not answer at {}: start it first",
            upstream.authority
        )));
    }
    let listener = TcpListener::bind(args.proxy_addr)
        .await
        .map_err(|err| Unrunnable(format!("cannot listen on {}: {err}", args.proxy_addr)))?;
    let proxy_addr = listener
        .local_addr()
        .map_err(|err| Unrunnable(err.to_string()))?;
    let (shutdown, tasks) = (CancellationToken::new(), TaskTracker::new());
    // The server's own defaults: a scenario has no dashboard whose flags would change them.
    let settings = Settings::default();
    let proxy = Arc::new(AppProxy::new(
        upstream,
        proxy_addr,
        settings,
        shutdown.clone(),
        tasks.clone(),
    ));
    tasks.spawn(proxy.clone().serve(listener));
    println!(
        "{}: your app through the lab at http://{proxy_addr}/ (forwarding to {url})",
        scenario.name
    );
    let browser = match &scenario.open {
        Some(path) => Some(Browser::open(&format!("http://{proxy_addr}{path}"))?),
        None => None,
    };
    let outcome = steps(&scenario, &proxy, &|said| said.print()).await;
    drop(browser);
    if let Ok(verdicts) = &outcome {
        if let Some(path) = &args.junit {
            std::fs::write(path, junit::write(&scenario.name, verdicts))
                .map_err(|err| Unrunnable(format!("cannot write {}: {err}", path.display())))?;
        }
        let held = verdicts.iter().filter(|v| v.held()).count();
        println!(
            "{}: {held} of {} step{} held{}",
            scenario.name,
            verdicts.len(),
            if verdicts.len() == 1 { "" } else { "s" },
            if held == verdicts.len() {
                " ✓"
            } else {
                " ✗"
            }
        );
    }
    if let Some(path) = &args.har {
        let now = now_ms_f64();
        let har: Vec<u8> = proxy
            .recording
            .har_pieces(now, None, proxy.figures.kinds(now))
            .flatten()
            .collect();
        std::fs::write(path, har)
            .map_err(|err| Unrunnable(format!("cannot write {}: {err}", path.display())))?;
    }
    shutdown.cancel();
    tasks.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tasks.wait()).await;
    outcome
}

/// Waits for the channels, then runs each step and judges it.
/// What a run says as it goes: a line of progress, or a step's verdict.
#[derive(Debug)]
pub enum Said<'a> {
    Line(String),
    Verdict {
        n: usize,
        of: usize,
        experiment: u64,
        verdict: &'a StepVerdict,
    },
}

impl Said<'_> {
    /// As the command prints it.
    pub fn print(&self) {
        match self {
            Said::Line(line) => println!("{line}"),
            Said::Verdict { n, of, verdict, .. } => println!(
                "step {n}/{of} {}: {}",
                verdict.step.words(),
                if verdict.checks.is_empty() {
                    "nothing expected".to_owned()
                } else {
                    verdict
                        .checks
                        .iter()
                        .map(|c| c.text.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                }
            ),
        }
    }
}

/// How long the channels waited for must have been there before the first step: a channel is listed
/// as soon as its first connection is, and a page's upgrade is not done then. (A Socket.IO page's
/// socket is listed at its probe, and its client moves onto it only with its upgrade packet, a moment
/// later: a half-open that struck in between hit a socket the page never used, and rightly found it
/// never noticed.)
const SETTLE: Duration = Duration::from_secs(1);

/// Waits for the channels, then runs each step and judges it, saying what happens through `say`.
pub async fn steps(
    scenario: &Scenario,
    proxy: &Arc<AppProxy>,
    say: &(dyn Fn(Said<'_>) + Send + Sync),
) -> Result<Vec<StepVerdict>, Unrunnable> {
    let waited = Instant::now();
    let mut said = Instant::now();
    // Since when every channel waited for has been there.
    let mut there_since: Option<Instant> = None;
    loop {
        let report = crate::proxy::report::report(proxy);
        let missing: Vec<&String> = scenario
            .wait_for
            .iter()
            .filter(|selector| !report.channels.iter().any(|c| judge::selects(selector, c)))
            .collect();
        if missing.is_empty() && (!scenario.wait_for.is_empty() || !report.channels.is_empty()) {
            let since = *there_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= SETTLE {
                break;
            }
        } else {
            there_since = None;
        }
        if waited.elapsed().as_secs_f64() > scenario.wait_s {
            let seen: Vec<String> = report
                .channels
                .iter()
                .map(|c| format!("{} {}", c.kind.as_str(), c.path))
                .collect();
            return Err(Unrunnable(format!(
                "no {} appeared in {}: seen {} (open the page through the proxy, or set `open`)",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                format_ms(scenario.wait_s * 1000.0),
                if seen.is_empty() {
                    "nothing".to_owned()
                } else {
                    seen.join(", ")
                }
            )));
        }
        if said.elapsed() >= Duration::from_secs(5) {
            said = Instant::now();
            say(Said::Line(format!(
                "  waiting for {:?} …",
                scenario.wait_for
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut verdicts = Vec::new();
    for (i, step) in scenario.steps.iter().enumerate() {
        let (experiment, verdict) = one_step(scenario, proxy, i + 1, step, say).await?;
        say(Said::Verdict {
            n: i + 1,
            of: scenario.steps.len(),
            experiment,
            verdict: &verdict,
        });
        verdicts.push(verdict);
    }
    Ok(verdicts)
}

/// Runs one step as an experiment, then watches until every expectation is decided (or out of time).
async fn one_step(
    scenario: &Scenario,
    proxy: &Arc<AppProxy>,
    n: usize,
    step: &Step,
    say: &(dyn Fn(Said<'_>) + Send + Sync),
) -> Result<(u64, StepVerdict), Unrunnable> {
    let began = Instant::now();
    let channel = match &step.channel {
        None => None,
        Some(selector) => {
            let report = crate::proxy::report::report(proxy);
            let found = report.channels.iter().find(|c| judge::selects(selector, c));
            Some(
                found
                    .ok_or_else(|| {
                        Unrunnable(format!("step {n}: no channel {selector} to aim at"))
                    })?
                    .id
                    .clone(),
            )
        }
    };
    let action = step
        .action()
        .map_err(|(field, why)| Unrunnable(format!("step {n}, {field}: {why}")))?;
    match &action {
        Action::Fault(fault) => {
            let mut fault = fault.clone();
            fault.channel = channel.clone();
            proxy.inject(&fault);
        }
        Action::Network(condition) => {
            proxy.set_network(channel.clone(), Some(condition.clone()));
        }
    }
    let id = proxy
        .lab
        .experiments()
        .first()
        .map(|(experiment, _)| experiment.id)
        .unwrap_or_default();
    let lasts = Duration::from_secs_f64(step.for_s);
    say(Said::Line(format!(
        "step {n}/{}: {} — running",
        scenario.steps.len(),
        step.words()
    )));
    let mut told = Instant::now();
    // The fault runs its course (a network and an idle timeout are ended here).
    while began.elapsed() < lasts {
        tokio::time::sleep(Duration::from_millis(200).min(lasts - began.elapsed())).await;
        if told.elapsed() >= Duration::from_secs(5) {
            told = Instant::now();
            say(Said::Line(format!(
                "  {} left",
                format_ms((lasts.saturating_sub(began.elapsed())).as_secs_f64() * 1000.0)
            )));
        }
    }
    match &action {
        Action::Network(_) => proxy.set_network(channel.clone(), None),
        Action::Fault(fault)
            if fault.kind == switchboard_shared::app::AppFaultKind::IdleTimeout =>
        {
            proxy.inject(&switchboard_shared::app::AppFaultRequest {
                kind: switchboard_shared::app::AppFaultKind::Clear,
                channel: channel.clone(),
                duration_ms: None,
                delay_ms: None,
                idle_ms: None,
            });
        }
        Action::Fault(_) => {}
    }
    // Then watched until every expectation is decided: the longest any of them may take after the end.
    let after = [
        step.expect.noticed_within_s,
        step.expect.redialed_within_s,
        step.expect.recovered_within_s,
        step.expect.back_within_s,
        // A pace is read from a few beats.
        step.expect.heartbeat_at_most_s.map(|s| 3.0 * s),
    ]
    .into_iter()
    .flatten()
    .fold(1.0_f64, f64::max);
    let deadline = Instant::now() + Duration::from_secs_f64(after + 1.0);
    loop {
        let (report, experiment) = read(proxy, id);
        let checks = checks_of(scenario, step, &report, &experiment);
        let decided = checks.iter().all(|c| c.held.is_some());
        if decided || Instant::now() >= deadline {
            return Ok((
                id,
                StepVerdict {
                    step: step.clone(),
                    checks: checks
                        .into_iter()
                        .map(|mut c| {
                            if c.held.is_none() {
                                // Still undecided when the watch ends: it did not hold.
                                c.held = Some(false);
                                c.text.push_str(" ✗");
                            }
                            c
                        })
                        .collect(),
                    seconds: began.elapsed().as_secs_f64(),
                },
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn read(proxy: &AppProxy, id: u64) -> (AppReport, Option<Experiment>) {
    let report = crate::proxy::report::report(proxy);
    let experiment = report.experiments.iter().find(|e| e.id == id).cloned();
    (report, experiment)
}

fn checks_of(
    scenario: &Scenario,
    step: &Step,
    report: &AppReport,
    experiment: &Option<Experiment>,
) -> Vec<Check> {
    let Some(experiment) = experiment else {
        return vec![Check {
            held: Some(false),
            text: "the lab lost the experiment (more than 32 since)".into(),
        }];
    };
    let now = now_ms_f64();
    let channels = judge::judged(step, &scenario.wait_for, experiment, &report.channels);
    let expects_any = step.expect != file::Expect::default();
    if channels.is_empty() && expects_any {
        return vec![Check {
            held: Some(false),
            text: "no channel to judge: none of those the scenario names was met by the step ✗"
                .into(),
        }];
    }
    channels
        .into_iter()
        .flat_map(|channel| judge::judge(&step.expect, experiment, channel, now))
        .collect()
}

/// Headless Chromium showing the app's page through the proxy, closed when dropped.
struct Browser {
    child: std::process::Child,
    _profile: tempdir::Profile,
}

impl Browser {
    fn open(url: &str) -> Result<Browser, Unrunnable> {
        let profile = tempdir::Profile::new()
            .map_err(|err| Unrunnable(format!("cannot make a browser profile: {err}")))?;
        let binary = ["chromium", "chromium-browser", "google-chrome"]
            .into_iter()
            .find(|name| which(name))
            .ok_or_else(|| {
                Unrunnable(
                    "`open` needs headless Chromium, and none is installed: apt-get install chromium (or drop `open` and connect your app's own tests through the proxy)"
                        .into(),
                )
            })?;
        let child = std::process::Command::new(binary)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path.display()))
            .arg(url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|err| Unrunnable(format!("cannot start {binary}: {err}")))?;
        println!("  opened {url} in headless {binary}");
        Ok(Browser {
            child,
            _profile: profile,
        })
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
}

/// A browser profile directory of its own, removed when dropped.
mod tempdir {
    use std::path::PathBuf;

    pub struct Profile {
        pub path: PathBuf,
    }

    impl Profile {
        pub fn new() -> std::io::Result<Profile> {
            let path = std::env::temp_dir().join(format!(
                "switchboard-scenario-{}-{}",
                std::process::id(),
                crate::hub::now_ms_f64() as u64
            ));
            std::fs::create_dir_all(&path)?;
            Ok(Profile { path })
        }
    }

    impl Drop for Profile {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
