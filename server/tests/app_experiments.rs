//! The lab's experiments on a real Socket.IO 4 app (`e2e/apps/socketio-app.cjs`) and its real client
//! (`socketio-client.cjs`, the socket.io-client package), through the proxy: each finding judged
//! against the app's own server log and the client's own events — never against what the proxy
//! believes. Times are Unix ms on this machine's one clock, which the lab, the app and the client share.

mod common;

use common::{TestServer, app_report as report, through};
use std::time::{Duration, Instant};
use switchboard_client::node_app::NodeApp;
use switchboard_shared::app::AppReport;
use switchboard_shared::app::experiment::{Experiment, ExperimentState, Observation};

/// How much a finding's time may differ from the log line that proves it.
const WITHIN_MS: f64 = 1_000.0;
/// The longest any experiment here may take to show what it waits for.
const WAIT: Duration = Duration::from_secs(45);

/// The Socket.IO app with pings every `ping_ms`, Switchboard in front of it, and the client connected
/// through it (saying something every `tick_ms`, or only its heartbeats with 0).
async fn lab(ping_ms: u32, tick_ms: u32) -> (NodeApp, TestServer, String, NodeApp) {
    let app = NodeApp::start("socketio-app.cjs", &[&ping_ms.to_string()]);
    let (server, proxy) = through(&app.url()).await;
    let client = NodeApp::client("socketio-client.cjs", &[&proxy, &tick_ms.to_string()]);
    wait_for("the client connects through the proxy", || {
        events(&client, "connect", 0.0).first().copied()
    })
    .await;
    // The channel is known once its first figures are in.
    wait_for_report(&server, "the phone call's channel", |report| {
        report
            .channels
            .iter()
            .find(|c| c.name.ends_with("/socket.io/"))
            .map(|c| c.id.clone())
    })
    .await;
    (app, server, proxy, client)
}

/// The times of a log's `event` lines after `since` (Unix ms).
fn events(log: &NodeApp, event: &str, since: f64) -> Vec<f64> {
    log.log()
        .iter()
        .filter(|entry| entry["event"] == event)
        .filter_map(|entry| entry["at"].as_f64())
        .filter(|at| *at >= since)
        .collect()
}

/// The `why` of a log's `event` lines after `since`.
fn whys(log: &NodeApp, event: &str, since: f64) -> Vec<String> {
    log.log()
        .iter()
        .filter(|entry| entry["event"] == event && entry["at"].as_f64() >= Some(since))
        .map(|entry| entry["why"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_report<T>(
    server: &TestServer,
    what: &str,
    check: impl Fn(&AppReport) -> Option<T>,
) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let report = report(server).await;
        if let Some(found) = check(&report) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for: {what}; experiments: {:#?}",
            report.experiments
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The experiment `id` and its figures on the phone call, once `ready` says they show what is awaited.
async fn observed(
    server: &TestServer,
    id: u64,
    what: &str,
    ready: impl Fn(&Experiment, &Observation) -> bool,
) -> (Experiment, Observation) {
    wait_for_report(server, what, |report| {
        let phone = report
            .channels
            .iter()
            .find(|c| c.name.ends_with("/socket.io/"))?;
        let experiment = report.experiments.iter().find(|e| e.id == id)?;
        let seen = experiment.figures.get(&phone.id)?;
        ready(experiment, seen).then(|| (experiment.clone(), seen.clone()))
    })
    .await
}

async fn fault(server: &TestServer, body: serde_json::Value) -> u64 {
    let (status, answer) = server.post_json("/api/app/faults", body).await;
    assert_eq!(status, 200, "{answer}");
    report(server).await.experiments[0].id
}

/// Its findings' words, printed for the run's log as well.
fn texts(experiment: &Experiment) -> Vec<&str> {
    for finding in &experiment.findings {
        println!("#{} {:?}: {}", experiment.id, experiment.kind, finding.text);
    }
    experiment
        .findings
        .iter()
        .map(|f| f.text.as_str())
        .collect()
}

fn near(what: &str, lab_ms: f64, log_ms: f64) {
    assert!(
        (lab_ms - log_ms).abs() <= WITHIN_MS,
        "{what}: the lab says {lab_ms}, the log {log_ms} ({:+.0} ms)",
        lab_ms - log_ms
    );
}

/// This machine's one clock, as the lab reads it.
fn now_ms() -> f64 {
    switchboard_server::hub::now_ms_f64()
}

#[tokio::test]
async fn a_half_open_with_2_s_pings_is_noticed_by_the_ping_timeout_and_recovers_after_it() {
    let (app, server, _proxy, client) = lab(2_000, 1_000).await;
    let began = now_ms();
    let id = fault(
        &server,
        serde_json::json!({"kind": "half_open", "duration_ms": 10_000}),
    )
    .await;
    let (experiment, seen) = observed(&server, id, "recovered after the half-open", |_, seen| {
        seen.recovered_ms.is_some()
    })
    .await;
    wait_for("the client's own reconnect", || {
        events(&client, "connect", began).first().copied()
    })
    .await;
    // The client's own ping timeout (2 s + 5 s) is what noticed: its disconnect says so.
    assert_eq!(
        whys(&client, "disconnect", began)
            .first()
            .map(String::as_str),
        Some("ping timeout")
    );
    let gave_up = events(&client, "disconnect", began)[0];
    near("noticed", seen.noticed_ms.unwrap(), gave_up);
    // Its reconnect was held until the path came back, then reached the app: the app's log has it.
    let ended = experiment.ended_ms.unwrap();
    // It ended when its time was up, not at the lab's next tick (up to 100 ms later, from which a
    // recovery before it read as late).
    let scheduled = experiment.started_ms + 10_000.0;
    assert!(
        (ended - scheduled).abs() <= 5.0,
        "the half-open ended at {ended}, its time was up at {scheduled}"
    );
    let connected = wait_for("the app's own connect", || {
        events(&app, "connect", ended - WITHIN_MS).first().copied()
    })
    .await;
    near("redialed", seen.redialed_ms.unwrap(), connected);
    let client_back = events(&client, "connect", ended - WITHIN_MS)[0];
    near("recovered", seen.recovered_ms.unwrap(), client_back);
    assert!(seen.attempts >= 1 && seen.got.withheld >= 1, "{seen:#?}");
    // Both ends gave up on the old line by their ping timeouts and only wait out its closing handshake
    // (the `ws` library's 30 s): the row counts the new line alone, nothing dead.
    let row = wait_for_report(&server, "the phone call's row", |report| {
        report
            .channels
            .iter()
            .find(|c| c.name.ends_with("/socket.io/"))
            .map(|c| (c.open, c.dead))
    })
    .await;
    assert_eq!(
        row,
        (1, 0),
        "open and dead, after both ends gave up on the old line"
    );
    let said = texts(&experiment);
    assert!(
        said.iter().any(|t| t.starts_with(
            "During the 10.0 s half-open, your phone call (/socket.io/) noticed after"
        )),
        "{said:#?}"
    );
    assert!(
        said.iter().any(|t| t
            .starts_with("Messages reached the browser on your phone call (/socket.io/) again")),
        "{said:#?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_half_open_with_25_s_pings_goes_unnoticed_and_release_lets_the_app_recover() {
    let (app, server, _proxy, client) = lab(25_000, 1_000).await;
    let began = now_ms();
    let id = fault(
        &server,
        serde_json::json!({"kind": "half_open", "duration_ms": 3_000}),
    )
    .await;
    let (experiment, seen) = observed(&server, id, "two seconds after the half-open", |e, _| {
        e.ended_ms.is_some_and(|end| now_ms() - end > 2_000.0)
    })
    .await;
    assert_eq!(experiment.state, ExperimentState::Observing);
    // Neither side of the app has noticed: its log and the client's are silent, and so is the lab.
    assert!(events(&client, "disconnect", began).is_empty());
    assert!(events(&app, "disconnect", began).is_empty());
    assert_eq!((seen.noticed_ms, seen.recovered_ms), (None, None));
    let said = texts(&experiment);
    assert!(
        said.iter().any(|t| t.starts_with(
            "During the 3.0 s half-open, your phone call (/socket.io/) has not noticed yet"
        )) && said.iter().any(|t| t.starts_with(
            "Not recovered: nothing reached the browser on your phone call (/socket.io/) in the"
        ) && t.ends_with("since the fault ended (so far).")),
        "{said:#?}"
    );
    let phone = report(&server)
        .await
        .channels
        .into_iter()
        .find(|c| c.name.ends_with("/socket.io/"))
        .unwrap();
    assert_eq!(phone.dead, 1, "the dead line is counted");
    // Released, the dead line is cut: the client hears it and redials, as its log says.
    let released = now_ms();
    let (status, _) = server
        .post_json("/api/app/faults", serde_json::json!({"kind": "release"}))
        .await;
    assert_eq!(status, 200);
    let (_, seen) = observed(&server, id, "recovered after the release", |_, seen| {
        seen.recovered_ms.is_some()
    })
    .await;
    let client_back = wait_for("the client's own reconnect", || {
        events(&client, "connect", released).first().copied()
    })
    .await;
    assert_eq!(
        whys(&client, "disconnect", released)
            .first()
            .map(String::as_str),
        Some("transport close")
    );
    near("recovered", seen.recovered_ms.unwrap(), client_back);
    server.shutdown().await;
}

/// A drop after `before` (a fault on new connections, or none): the redial is the connection that got
/// through, as the app's log has it, and the attempts before it are counted as the client saw them fail.
async fn drop_after(before: Option<serde_json::Value>, refused: bool) -> (Experiment, Observation) {
    let (app, server, _proxy, client) = lab(2_000, 1_000).await;
    if let Some(before) = before {
        fault(&server, before).await;
    }
    let dropped = now_ms();
    let id = fault(&server, serde_json::json!({"kind": "drop"})).await;
    let (experiment, seen) = observed(&server, id, "the redial after the drop", |_, seen| {
        seen.redialed_ms.is_some() && seen.recovered_ms.is_some()
    })
    .await;
    let connected = wait_for("the app's own connect", || {
        events(&app, "connect", dropped).first().copied()
    })
    .await;
    near("redialed", seen.redialed_ms.unwrap(), connected);
    let client_back = wait_for("the client's own connect", || {
        events(&client, "connect", dropped).first().copied()
    })
    .await;
    near("recovered", seen.recovered_ms.unwrap(), client_back);
    assert_eq!(seen.cuts, 1);
    // Every attempt that failed is one the client saw fail.
    let failed = events(&client, "connect_error", dropped)
        .into_iter()
        .filter(|at| *at < connected)
        .count() as u64;
    let counted = if refused {
        seen.refused
    } else {
        seen.unavailable
    };
    assert_eq!(counted, failed, "{seen:#?}");
    server.shutdown().await;
    (experiment, seen)
}

#[tokio::test]
async fn after_a_drop_the_redial_is_when_the_app_saw_the_client_again() {
    let (experiment, seen) = drop_after(None, true).await;
    assert_eq!((seen.refused, seen.unavailable), (0, 0));
    let said = texts(&experiment);
    assert!(
        said.iter().any(|t| t.starts_with(
            "After the drop (1 connection cut), your phone call (/socket.io/) redialed in"
        )),
        "{said:#?}"
    );
}

#[tokio::test]
async fn refused_then_dropped_the_attempts_are_no_redial() {
    let (experiment, seen) = drop_after(
        Some(serde_json::json!({"kind": "hiccup", "duration_ms": 4_000})),
        true,
    )
    .await;
    assert!(seen.refused >= 1, "{seen:#?}");
    assert!(
        seen.redialed_ms.unwrap() - experiment.started_ms >= 3_500.0,
        "got through while refusals lasted: {seen:#?}"
    );
    let said = texts(&experiment);
    assert!(
        said.iter().any(|t| t.contains(&format!(
            "redialed in {}",
            switchboard_shared::format::format_ms(
                seen.redialed_ms.unwrap() - experiment.started_ms
            )
        )) && t.contains(" refused)")),
        "{said:#?}"
    );
}

#[tokio::test]
async fn answered_503_then_dropped_the_503s_are_counted_as_the_client_saw_them() {
    let (experiment, seen) = drop_after(
        Some(serde_json::json!({"kind": "http_503", "duration_ms": 4_000})),
        false,
    )
    .await;
    assert!(seen.unavailable >= 1, "{seen:#?}");
    let said = texts(&experiment);
    assert!(
        said.iter().any(|t| t.contains(" answered 503)")),
        "{said:#?}"
    );
}

#[tokio::test]
async fn swallowed_heartbeats_are_found_by_whichever_side_times_out_first_as_its_log_says() {
    let (app, server, _proxy, client) = lab(2_000, 0).await;
    let began = now_ms();
    let id = fault(
        &server,
        serde_json::json!({"kind": "no_heartbeat", "duration_ms": 9_000}),
    )
    .await;
    // With the server's pings swallowed, the client's ping timeout (interval + timeout) and the
    // server's (timeout after its next ping) end within a millisecond of each other: either may win.
    let why = wait_for("the client's own disconnect", || {
        whys(&client, "disconnect", began).first().cloned()
    })
    .await;
    let (experiment, seen) = observed(&server, id, "the dead line found", |_, seen| {
        seen.noticed_ms.is_some() || seen.app_closed_ms.is_some()
    })
    .await;
    let said = texts(&experiment);
    // The client's timer fired ("ping timeout"), or the app's did and told it ("transport close").
    // The two fire within a millisecond, so the app's close may reach the proxy first even when the
    // client's own timer fired: the lab then says the app hung up and the browser closed after,
    // claiming no noticing — true either way.
    let app_gone = || async {
        wait_for("the app's own disconnect", || {
            events(&app, "disconnect", began).first().copied()
        })
        .await
    };
    let client_gone = events(&client, "disconnect", began)[0];
    match (seen.noticed_ms, seen.app_closed_ms) {
        (Some(noticed), app_closed) if app_closed.is_none_or(|app| app > noticed) => {
            assert_eq!(why, "ping timeout", "noticed, by its own timer");
            near("noticed", noticed, client_gone);
            assert!(
                said.iter()
                    .any(|t| t.starts_with("With its heartbeats swallowed (")
                        && t.contains(
                            "on this channel), your phone call (/socket.io/) noticed after"
                        )),
                "{said:#?}"
            );
        }
        (_, Some(app_closed)) => {
            assert_eq!(whys(&app, "disconnect", began)[0], "ping timeout");
            near("the app hung up", app_closed, app_gone().await);
            assert_eq!(seen.noticed_ms, None, "told, not noticed");
            if let Some(closed) = seen.closed_after_app_ms {
                near("the browser closed after", closed, client_gone);
            }
            assert!(
                said.iter()
                    .any(|t| t.contains("your app hung up on your phone call (/socket.io/) after")),
                "{said:#?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Engine.IO's server pings again only once answered: one ping swallowed is all it takes.
    assert!(seen.got.swallowed >= 1, "{seen:#?}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_socket_redialed_while_its_heartbeats_were_swallowed_drops_again_after_the_end() {
    // Heartbeats swallowed for 11.5 s, Engine.IO pinging every 2 s with a 5 s timeout: the client gives
    // up on its socket 5–7 s in and redials within 1.5 s; its new socket's first ping, 2 s after it
    // opened, is swallowed too, and Engine.IO pings again only once answered — so the new socket's
    // timeout runs out 7 s after it opened, after the fault's end. Told as recovered and nothing more,
    // the app looked well while its line was about to drop.
    let (app, server, _proxy, client) = lab(2_000, 1_000).await;
    let began = now_ms();
    let id = fault(
        &server,
        serde_json::json!({"kind": "no_heartbeat", "duration_ms": 11_500}),
    )
    .await;
    let (experiment, seen) = observed(&server, id, "the redialed line dropped again", |_, seen| {
        seen.dropped_again.is_some()
    })
    .await;
    let ended = experiment.ended_ms.unwrap();
    let (at, by_app) = seen.dropped_again.unwrap();
    // The logs: one line given up on and one redialed while the fault lasted, and the redialed one's
    // end after it — whichever side's timer fired first (they fire within milliseconds).
    let redialed = events(&client, "connect", began);
    assert!(
        events(&client, "disconnect", began)
            .first()
            .is_some_and(|first| *first < ended)
            && redialed.first().is_some_and(|first| *first < ended),
        "the client's log: {:?}",
        client.log()
    );
    let gone = wait_for("the redialed line's end in both logs", || {
        let client_gone = events(&client, "disconnect", ended).first().copied()?;
        let app_gone = events(&app, "disconnect", ended).first().copied()?;
        Some(client_gone.min(app_gone))
    })
    .await;
    near("dropped again", at, gone);
    let said = texts(&experiment);
    assert!(
        said.iter().any(|t| t.starts_with(&format!(
            "Then your phone call (/socket.io/) dropped again {} after the ",
            switchboard_shared::format::format_ms(at - ended)
        )) && t.contains(if by_app {
            ": your app hung up on a line it had opened while the fault lasted, whose heartbeats the fault swallowed"
        } else {
            ": the browser gave up on a line it had opened while the fault lasted, whose heartbeats the fault swallowed"
        })),
        "{said:#?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_idle_timeout_shorter_than_the_ping_interval_cuts_as_often_as_the_client_says() {
    let (_app, server, _proxy, client) = lab(2_000, 0).await;
    let began = now_ms();
    let id = fault(
        &server,
        serde_json::json!({"kind": "idle_timeout", "idle_ms": 1_200}),
    )
    .await;
    wait_for("two cuts the client heard", || {
        (whys(&client, "disconnect", began).len() >= 2).then_some(())
    })
    .await;
    fault(&server, serde_json::json!({"kind": "clear"})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (experiment, seen) = observed(&server, id, "the cuts", |_, _| true).await;
    let heard = whys(&client, "disconnect", began);
    assert!(
        heard.iter().all(|why| why == "transport close"),
        "{heard:?}"
    );
    assert_eq!(seen.cuts, heard.len() as u64, "{seen:#?}");
    let said = texts(&experiment);
    assert!(
        said.iter().any(|t| t.starts_with(&format!(
            "The proxy's 1.2 s idle timeout cut your phone call (/socket.io/) {} times",
            heard.len()
        ))),
        "{said:#?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_app_killed_and_restarted_is_an_outage_its_client_came_back_from() {
    let (app, server, _proxy, client) = lab(2_000, 1_000).await;
    let port = app.port;
    let killed = now_ms();
    drop(app);
    wait_for("the client's attempts fail", || {
        (events(&client, "connect_error", killed).len() >= 2).then_some(())
    })
    .await;
    let restarted = NodeApp::start_on(port, "socketio-app.cjs", &["2000"]);
    let id = wait_for_report(&server, "the outage", |report| {
        report
            .experiments
            .iter()
            .find(|e| e.settings.why.is_some())
            .map(|e| e.id)
    })
    .await;
    let (experiment, seen) = observed(&server, id, "back after the outage", |_, seen| {
        seen.redialed_ms.is_some()
    })
    .await;
    let connected = wait_for("the restarted app's own connect", || {
        events(&restarted, "connect", killed).first().copied()
    })
    .await;
    near("redialed", seen.redialed_ms.unwrap(), connected);
    // Each attempt the proxy answered 502 is one the client saw fail (the first came before the lab
    // knew the app was down: it opened the experiment).
    let failed = events(&client, "connect_error", killed)
        .into_iter()
        .filter(|at| *at < connected)
        .count() as u64;
    assert!(
        seen.errors >= 1 && seen.errors <= failed,
        "{} errors counted, {failed} seen: {seen:#?}",
        seen.errors
    );
    let said = texts(&experiment);
    assert!(
        said.iter()
            .any(|t| t.starts_with("Your phone call (/socket.io/) got ")
                && t.contains(" 502 while your app was down; it got through again ")),
        "{said:#?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_delay_is_measured_as_the_client_felt_it() {
    let (_app, server, _proxy, client) = lab(25_000, 300).await;
    let id = fault(
        &server,
        serde_json::json!({"kind": "delay", "delay_ms": 600, "duration_ms": 4_000}),
    )
    .await;
    let (experiment, seen) = observed(&server, id, "messages after the delay", |_, seen| {
        seen.took_after.is_some_and(|(_, n)| n >= 7)
    })
    .await;
    let ((during, n), (after, _)) = (seen.took_during.unwrap(), seen.took_after.unwrap());
    assert!(n >= 5, "{n} messages measured");
    // Each tick the client says comes back to it through the app: the way up is not delayed, the
    // echo is. Its own log times the round trip.
    let echoes: Vec<f64> = client
        .log()
        .iter()
        .filter(|e| e["event"] == "chat")
        .filter_map(|e| {
            let said: f64 = e["text"].as_str()?.strip_prefix("tick ")?.parse().ok()?;
            let at = e["at"].as_f64()?;
            (said > experiment.started_ms + 100.0 && at < experiment.ended_ms? - 100.0)
                .then_some(at - said)
        })
        .collect();
    let mut felt = echoes.clone();
    felt.sort_by(f64::total_cmp);
    let felt = felt[felt.len() / 2];
    near("the delay", during, felt);
    assert!((600.0..800.0).contains(&during), "{during} ms");
    // The first messages after the end may still queue behind the last delayed ones (a line keeps
    // its order): the median of seven is past them.
    assert!(after < 100.0, "{after} ms after it ended");
    let (before, _) = seen.took_before.expect("how long messages took before it");
    assert!(before < 100.0, "{before} ms before it");
    let said = texts(&experiment);
    assert!(
        said.iter().any(|t| t.starts_with(
            "With 600 ms added to each message, the messages on your phone call (/socket.io/) left the proxy for the browser "
        )),
        "{said:#?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_scenario_sent_to_a_running_switchboard_shows_each_verdict_as_it_lands() {
    let (_app, server, _proxy, _client) = lab(2_000, 1_000).await;
    let http = reqwest::Client::new();
    let send = |text: &'static str| {
        let (http, url) = (http.clone(), server.url("/api/app/scenario"));
        async move {
            let answer = http.post(url).body(text).send().await.unwrap();
            let status = answer.status().as_u16();
            (status, answer.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, body) = send(
        "name = \"x\"\n[[step]]\nfault = \"drop\"\nfor_s = 1\nexpect = { redialed_in_s = 5 }\n",
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("TOML parse error at line 5"),
        "{body}"
    );
    let scenario = "name = \"redials\"\nwait_for = [\"phone\"]\n[[step]]\nfault = \"drop\"\nfor_s = 1\nexpect = { redialed_within_s = 5, recovered_within_s = 5 }\n";
    let (status, body) = send(scenario).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["steps"], 1);
    let (status, _) = send(scenario).await;
    assert_eq!(status, 409, "one at a time");
    let said = wait_for_report(&server, "the scenario's end", |report| {
        report
            .findings
            .first()
            .filter(|f| f.text.contains("1 of 1 step held"))
            .map(|f| f.text.clone())
    })
    .await;
    assert_eq!(said, "Scenario “redials”: 1 of 1 step held ✓");
    let report = report(&server).await;
    let verdicts: Vec<&str> = report.experiments[0]
        .findings
        .iter()
        .map(|f| f.text.as_str())
        .filter(|t| t.starts_with("Expected: "))
        .collect();
    assert!(
        verdicts.iter().any(|t| t
            .starts_with("Expected: your phone call (/socket.io/) redialed after")
            && t.ends_with("✓ (≤ 5.0 s)")),
        "{verdicts:#?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn letters_under_503s_are_counted_as_the_poller_saw_them() {
    let app = NodeApp::start("http-app.cjs", &[]);
    let (server, proxy) = through(&app.url()).await;
    // A page's polling loop: every 300 ms, whatever the answer; it notes each status it got.
    let statuses = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(f64, u16)>::new()));
    let stop = tokio_util::sync::CancellationToken::new();
    let poller = tokio::spawn({
        let (statuses, stop, url) = (statuses.clone(), stop.clone(), format!("{proxy}/status"));
        async move {
            let http = reqwest::Client::new();
            while !stop.is_cancelled() {
                if let Ok(answer) = http.get(&url).send().await {
                    let status = answer.status().as_u16();
                    let _ = answer.bytes().await;
                    statuses.lock().unwrap().push((now_ms(), status));
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    });
    let id = wait_for_report(&server, "the letters' channel", |report| {
        report
            .channels
            .iter()
            .find(|c| c.path == "/status")
            .map(|c| c.id.clone())
    })
    .await;
    let experiment_id = fault(
        &server,
        serde_json::json!({"kind": "http_503", "channel": id, "duration_ms": 3_000}),
    )
    .await;
    let said = wait_for_report(&server, "the 503s, in words, after the fault", |report| {
        let experiment = report.experiments.iter().find(|e| e.id == experiment_id)?;
        experiment.ended_ms?;
        experiment
            .findings
            .iter()
            .find(|f| f.text.contains("answers 503"))
            .map(|f| f.text.clone())
    })
    .await;
    stop.cancel();
    poller.await.unwrap();
    let (experiment, _) = read_experiment(&server, experiment_id).await;
    let (started, ended) = (experiment.started_ms, experiment.ended_ms.unwrap());
    let got_503 = statuses
        .lock()
        .unwrap()
        .iter()
        .filter(|(at, status)| *status == 503 && *at >= started && *at <= ended + 500.0)
        .count();
    assert!(
        got_503 >= 5,
        "{got_503} 503s in 3 s of polling every 300 ms"
    );
    assert!(
        said.starts_with(&format!("Your letters (/status) got {got_503} of "))
            && said.contains(" answers 503 during the 3.")
            && said.contains(" s; they kept asking every "),
        "{said} (the poller got {got_503})"
    );
    server.shutdown().await;
}

/// The experiment `id` as the report has it now, with its figures.
async fn read_experiment(server: &TestServer, id: u64) -> (Experiment, AppReport) {
    let report = report(server).await;
    let experiment = report
        .experiments
        .iter()
        .find(|e| e.id == id)
        .cloned()
        .unwrap();
    (experiment, report)
}

#[tokio::test]
async fn start_over_forgets_the_recording_the_channels_and_the_experiments_and_ends_every_fault() {
    let (_app, server, _proxy, client) = lab(2_000, 1_000).await;
    fault(&server, serde_json::json!({"kind": "drop"})).await;
    fault(
        &server,
        serde_json::json!({"kind": "hiccup", "duration_ms": 60_000}),
    )
    .await;
    let before = report(&server).await;
    assert!(before.recorded > 0 && before.experiments.len() == 2 && !before.faults.is_empty());
    let (status, body) = server
        .post_json("/api/app/reset", serde_json::json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let after: AppReport = serde_json::from_value(body).unwrap();
    assert!(after.experiments.is_empty(), "{:#?}", after.experiments);
    assert!(after.faults.is_empty() && after.history.is_empty() && after.cuts.is_empty());
    assert_eq!((after.recorded, after.dropped), (0, 0));
    // The refusals ended with it: the client, cut by the drop, gets through again.
    let since = now_ms();
    wait_for("the client back after the start over", || {
        events(&client, "connect", since).first().copied()
    })
    .await;
    wait_for_report(&server, "its channel counted afresh", |report| {
        report
            .channels
            .iter()
            .find(|c| c.name.ends_with("/socket.io/"))
            .map(|c| c.requests)
            .filter(|requests| *requests >= 1)
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn swallowed_heartbeats_leave_engine_ios_upgrade_alone() {
    // Engine.IO's upgrade probe (`2probe`/`3probe`) is a handshake, not a beat: with every heartbeat
    // swallowed, a client that starts on long polling still upgrades — before, the probe was swallowed,
    // the upgrade never completed and the client polled in a storm.
    let app = NodeApp::start("socketio-app.cjs", &["1000"]);
    let (server, proxy) = through(&app.url()).await;
    let (status, body) = server
        .post_json(
            "/api/app/faults",
            serde_json::json!({"kind": "no_heartbeat", "duration_ms": 8_000}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let client = NodeApp::client("socketio-client.cjs", &[&proxy, "500", "polling,websocket"]);
    let upgraded = wait_for("the client upgrades to its WebSocket", || {
        client
            .log()
            .iter()
            .find(|entry| entry["event"] == "upgrade")
            .map(|entry| entry["transport"].as_str().unwrap_or_default().to_owned())
    })
    .await;
    assert_eq!(upgraded, "websocket");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let report = report(&server).await;
    let polls: u64 = report
        .channels
        .iter()
        .filter(|c| c.name.starts_with("GET /socket.io/"))
        .map(|c| c.requests)
        .sum::<u64>()
        + report.other_requests;
    assert!(
        polls < 20,
        "no polling storm: {polls} requests besides the WebSocket; {:#?}",
        report.channels
    );
    let phone = report
        .channels
        .iter()
        .find(|c| c.name.starts_with("ws://"))
        .expect("the phone call");
    assert!(phone.got.delivered >= 4, "the chat flows: {:#?}", phone.got);
}

/// A Socket.IO chat through the lab, a client on it that upgrades to its WebSocket (as a browser's
/// does) and one more on long polling alone if asked: a half-open of `ms` on the socket, watched until
/// messages reached the socket again.
struct HalfOpened {
    _app: NodeApp,
    server: TestServer,
    socket_tab: NodeApp,
    polling_tab: Option<NodeApp>,
    began: f64,
    experiment: Experiment,
    seen: Observation,
}

async fn half_open_on_an_upgraded_socket(with_a_polling_tab: bool, ms: u64) -> HalfOpened {
    let app = NodeApp::start("socketio-app.cjs", &["2000"]);
    let (server, proxy) = through(&app.url()).await;
    let socket_tab = NodeApp::client(
        "socketio-client.cjs",
        &[&proxy, "1000", "polling,websocket"],
    );
    let polling_tab = with_a_polling_tab
        .then(|| NodeApp::client("socketio-client.cjs", &[&proxy, "1000", "polling"]));
    wait_for("the client upgrades to its WebSocket", || {
        socket_tab
            .log()
            .iter()
            .find(|entry| entry["event"] == "upgrade")
            .map(|_| ())
    })
    .await;
    let phone = wait_for_report(&server, "the phone call's channel", |report| {
        report
            .channels
            .iter()
            .find(|c| c.name.starts_with("ws://"))
            .map(|c| c.id.clone())
    })
    .await;
    let began = now_ms();
    let id = fault(
        &server,
        serde_json::json!({"kind": "half_open", "duration_ms": ms, "channel": phone}),
    )
    .await;
    let (experiment, seen) = wait_for_report(&server, "the socket recovered", |report| {
        let experiment = report.experiments.iter().find(|e| e.id == id)?;
        let seen = experiment.figures.get(&phone)?;
        seen.recovered_ms
            .is_some()
            .then(|| (experiment.clone(), seen.clone()))
    })
    .await;
    HalfOpened {
        _app: app,
        server,
        socket_tab,
        polling_tab,
        began,
        experiment,
        seen,
    }
}

#[tokio::test]
async fn a_half_open_on_the_socket_finds_the_tab_back_over_long_polling_before_its_socket() {
    // A browser's Socket.IO client starts on long polling and upgrades: when the lab kills its socket,
    // it reconnects over polling at once — back for the person long before its socket is. Said as a
    // socket that was down until the fault ended, that read as a 12 s outage.
    let HalfOpened {
        server,
        socket_tab: client,
        began,
        experiment,
        seen,
        ..
    } = half_open_on_an_upgraded_socket(false, 12_000).await;
    // The client's log: it gave up on its socket (its ping timeout), connected again over polling while
    // the fault lasted, and upgraded once it ended.
    let gave_up = events(&client, "disconnect", began)[0];
    let back = client
        .log()
        .iter()
        .filter(|entry| entry["event"] == "connect" && entry["transport"] == "polling")
        .filter_map(|entry| entry["at"].as_f64())
        .find(|at| *at > gave_up)
        .expect("the client connected again over polling");
    let ended = experiment.ended_ms.unwrap();
    assert!(
        back < ended,
        "the client was back at {back}, after the fault ended at {ended}"
    );
    let (over, at) = seen.fallback.clone().expect("the fallback is seen");
    assert_eq!(over, "GET /socket.io/");
    near("back over polling", at, back);
    assert!(at < seen.recovered_ms.unwrap(), "{seen:#?}");
    let said = texts(&experiment);
    assert!(
        said.iter().any(|t| t.starts_with(
            "Meanwhile the browser was back over GET /socket.io/ (the same endpoint's other transport)"
        ) && t.ends_with("while your phone call (/socket.io/) was down.")),
        "{said:#?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn another_tab_on_long_polling_is_there_all_along_and_the_socket_tab_back_in_a_session_of_its_own()
 {
    // Two tabs of one chat: one upgraded to its WebSocket, one that stays on long polling (a network
    // that blocks sockets). A half-open on the socket: what reaches the polling tab during the fault,
    // before the socket's tab gave up, is no tab coming back — the lab said "back over polling" at
    // the first poll after the socket was lost (or, a socket struck mid-upgrade, after the app closed
    // the socket its page never used). The socket's tab then starts over on polling, in a session of
    // its own: that is its way back, and the lab tells it apart from the other tab's polls by their
    // session ids.
    let HalfOpened {
        server,
        socket_tab,
        polling_tab,
        began,
        experiment,
        seen,
        ..
    } = half_open_on_an_upgraded_socket(true, 12_000).await;
    let polling_tab = polling_tab.expect("asked for");
    // The socket's tab gave up on its socket (its ping timeout) while the polling tab went on getting
    // the chat: the first chat it got in the fault is what the lab saw.
    let gave_up = events(&socket_tab, "disconnect", began)[0];
    let polled = events(&polling_tab, "chat", began);
    assert!(
        polled.first().is_some_and(|first| *first < gave_up),
        "the polling tab got nothing before the socket's tab gave up at {gave_up}: {polled:?}"
    );
    // Its polls or the answers to its posts (its ticks), whichever reached it first.
    let (over, at) = seen.all_along.clone().expect("the other transport is seen");
    assert!(
        over == "GET /socket.io/" || over == "POST /socket.io/",
        "{over}"
    );
    assert!(seen.fallback_all_along(), "{seen:#?}");
    assert!(
        at >= began && at < gave_up && at <= polled[0] + 50.0,
        "seen at {at}: the fault began at {began}, the polling tab's first chat came at {}, the \
         socket's tab gave up at {gave_up}",
        polled[0]
    );
    let said = texts(&experiment);
    assert!(
        said.iter().any(|t| t.starts_with(&format!(
            "A client was on {over} (the same endpoint's other transport) all along: it got answers there"
        ))),
        "{said:#?}"
    );
    // The socket's tab back over polling, by its own log: its first connect after it gave up, while
    // the fault lasted.
    let back = socket_tab
        .log()
        .iter()
        .filter(|entry| entry["event"] == "connect" && entry["transport"] == "polling")
        .filter_map(|entry| entry["at"].as_f64())
        .find(|at| *at > gave_up)
        .expect("the socket's tab connected again over polling");
    let ended = experiment.ended_ms.unwrap();
    assert!(
        back < ended,
        "the socket's tab was back at {back}, after the fault ended at {ended}"
    );
    let (over, at) = seen.fallback.clone().expect("its way back is seen");
    assert_eq!(over, "GET /socket.io/");
    near("the socket's tab back over polling", at, back);
    // Told in the order it happened: the client there all along first, though its rule comes late.
    let times: Vec<f64> = experiment.findings.iter().filter_map(|f| f.at_ms).collect();
    assert!(
        times.windows(2).all(|pair| pair[0] <= pair[1]),
        "{:#?}",
        experiment.findings
    );
    assert!(
        said.iter().any(|t| t.starts_with(
            "Meanwhile the browser was back over GET /socket.io/ (the same endpoint's other transport)"
        ) && t.contains(", in a session of its own: ")),
        "{said:#?}"
    );
    server.shutdown().await;
}
