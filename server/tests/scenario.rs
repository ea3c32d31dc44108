//! `switchboard-server scenario`, run as a developer's CI would run it: the real binary against the
//! real Socket.IO app (`e2e/apps/socketio-app.cjs`, pinging every 2 s), its own page opened in headless
//! Chromium through the proxy. One scenario holds (its ping timeout notices a half-open on its socket
//! and it is back over long polling before the fault ends; it redials after a drop), one must fail (an idle timeout shorter than its ping interval with `cuts = 0`): the
//! exit codes, the JUnit XML (parsed) and the words of the failure are what is checked.

use std::path::PathBuf;
use std::process::Command;
use switchboard_client::node_app::NodeApp;

fn scenario(name: &str, text: &str, upstream: &str) -> (i32, String, String, PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-scenario-test-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("scenario.toml");
    std::fs::write(&file, text).unwrap();
    let junit = dir.join("junit.xml");
    let har = dir.join("session.har");
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard-server"))
        .arg("scenario")
        .arg(&file)
        .args(["--upstream", upstream])
        .arg("--junit")
        .arg(&junit)
        .arg("--har")
        .arg(&har)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    println!("{stdout}{stderr}");
    (out.status.code().unwrap_or(-1), stdout, stderr, dir)
}

/// The test cases of a JUnit file: (name, failure message if it failed).
fn cases(xml: &str) -> Vec<(String, Option<String>)> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let suite = doc.root_element();
    assert_eq!(suite.tag_name().name(), "testsuite");
    suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|case| {
            let failure = case
                .children()
                .find(|n| n.has_tag_name("failure"))
                .and_then(|f| f.attribute("message").map(str::to_owned));
            (case.attribute("name").unwrap().to_owned(), failure)
        })
        .collect()
}

#[test]
fn a_scenario_that_holds_passes_and_one_that_does_not_fails_saying_by_how_much() {
    let app = NodeApp::start("socketio-app.cjs", &["2000"]);
    let holds = r#"
name = "chat survives a half-open and a drop"
open = "/"
wait_for = ["phone"]

[[step]]
fault = "half_open"
channel = "phone"
for_s = 15
expect = { noticed_within_s = 10, back_within_s = 12 }

[[step]]
fault = "drop"
for_s = 1
expect = { redialed_within_s = 5, recovered_within_s = 5, heartbeat_at_most_s = 5 }
"#;
    let (code, stdout, _, dir) = scenario("holds", holds, &app.url());
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("step 1/2 half_open 15.0 s on phone: your phone call (/socket.io/) noticed after")
            // The page's client starts on long polling: with its socket dead it is back over that,
            // long before the fault ends (its socket would be back only then).
            && stdout.contains("your phone call (/socket.io/) was back over GET /socket.io/ after")
            && stdout.contains("chat survives a half-open and a drop: 2 of 2 steps held ✓"),
        "{stdout}"
    );
    let xml = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    let passed = cases(&xml);
    assert_eq!(passed.len(), 2);
    assert!(passed.iter().all(|(_, failure)| failure.is_none()), "{xml}");
    let har: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("session.har")).unwrap()).unwrap();
    assert!(
        har["log"]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["_webSocketMessages"].is_array()),
        "the session's HAR has the phone call"
    );

    let fails = r#"
name = "a proxy's idle timeout"
open = "/"
wait_for = ["phone"]

[[step]]
fault = "idle_timeout"
idle_ms = 1200
for_s = 6
expect = { cuts = 0 }
"#;
    let (code, stdout, _, dir) = scenario("fails", fails, &app.url());
    assert_eq!(code, 1, "{stdout}");
    let xml = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    let failed = cases(&xml);
    assert_eq!(failed.len(), 1);
    let (name, failure) = &failed[0];
    assert_eq!(name, "step 1: idle_timeout 6.0 s (idle 1200 ms)");
    let failure = failure.as_deref().expect("the step failed");
    assert!(
        failure.starts_with("the lab cut your phone call (/socket.io/) ")
            && failure.ends_with("times ✗ (= 0 expected)"),
        "{failure}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_bad_file_or_an_app_that_does_not_answer_is_exit_2_naming_why() {
    let (code, _, stderr, dir) = scenario(
        "bad",
        "name = \"x\"\n[[step]]\nfault = \"half_open\"\nfor_s = 5\nexpect = { noticed_in_s = 3 }\n",
        "http://127.0.0.1:9",
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("scenario.toml: TOML parse error at line 5, column 12 (`expect = { noticed_in_s = 3 }`): unknown field `noticed_in_s`, expected one of `noticed_within_s`"),
        "{stderr}"
    );
    let (code, _, stderr, _) = scenario(
        "unreachable",
        "name = \"x\"\n[[step]]\nfault = \"drop\"\nfor_s = 1\n",
        "http://127.0.0.1:9",
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("your app does not answer at 127.0.0.1:9"),
        "{stderr}"
    );
    // Channels that never appear: the wait ends, naming them and what was seen.
    let app = NodeApp::start("http-app.cjs", &[]);
    let (code, _, stderr, _) = scenario(
        "never",
        "name = \"x\"\nwait_for = [\"radio\"]\nwait_s = 1\n[[step]]\nfault = \"drop\"\nfor_s = 1\n",
        &app.url(),
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("no radio appeared in 1.0 s: seen nothing (open the page through the proxy, or set `open`)"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Whatever it is built with: the same command against a graphql-ws app (GraphQL over WebSocket, as
/// Apollo and urql speak it), its own page in headless Chromium. Its client retries a dropped line
/// with a randomised back-off of a few seconds; the app's own log has the reconnect.
#[test]
fn a_scenario_runs_against_a_graphql_ws_app_too() {
    let app = NodeApp::start("graphql-ws-app.cjs", &[]);
    let redials = r#"
name = "subscriptions come back after a drop"
open = "/"
wait_for = ["phone"]

[[step]]
fault = "drop"
for_s = 1
expect = { redialed_within_s = 10, recovered_within_s = 10 }
"#;
    let (code, stdout, _, dir) = scenario("graphql-ws", redials, &app.url());
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("step 1/1 drop 1.0 s: your phone call (/graphql) redialed after")
            && stdout.contains("your phone call (/graphql) got messages again after"),
        "{stdout}"
    );
    // The reconnect: a `connect` after the drop's `disconnect`. (Not "two connects": the scenario
    // begins once the socket is upgraded, and a drop that lands before the client's `connection_init`
    // closes a socket the app never counted as connected — seen once in a fresh clone's run.)
    let log = app.log();
    let dropped = log
        .iter()
        .position(|entry| entry["event"] == "disconnect")
        .unwrap_or_else(|| panic!("the app's own log has the drop: {log:?}"));
    assert!(
        log[dropped..]
            .iter()
            .any(|entry| entry["event"] == "connect"),
        "the app's own log has the reconnect: {log:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
