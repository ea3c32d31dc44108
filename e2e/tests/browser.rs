//! The whole product as a person uses it: the built dashboard served by a real server on 127.0.0.1:0,
//! opened in headless Chromium (driven over WebDriver by chromedriver), watched until every lane
//! has delivered the same seqs, then used to chat both ways. Screenshots go to `artifacts/`.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use switchboard_server::Config;
use switchboard_shared::{LaneId, ServerStats};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use switchboard_client::nginx::Nginx;

mod recorder;
use switchboard_client::redis::Redis;

/// How long the page may take to show what is asserted (generous: a shared 2-core machine).
const PATIENCE: Duration = Duration::from_secs(30);

/// The server's defaults, with the built dashboard at `/` and brisk sources so the page fills.
fn server_config(dist: &std::path::Path) -> Config {
    let mut config = Config::quiet();
    config.static_dir = Some(dist.to_path_buf());
    config.instance = Some("e2e".into());
    config.load_ms = 1_000;
    config.traffic = switchboard_shared::Traffic::Steady;
    config.ticker_ms = 700;
    config.heartbeat_ms = 1_000;
    // The test's bursts and the page's chat share one address.
    config.chat_per_second = 50;
    config
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate sits in the workspace")
        .to_path_buf()
}

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
    /// chromedriver's and its Chromium's temporary directory: a session that never closed (a test
    /// that failed) leaves its ~120 MB profile behind, and a day of runs filled the disk.
    scratch: PathBuf,
}

impl Driver {
    async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        // A short name: Chromium's profile under it holds a Unix socket, whose path may not pass
        // 107 bytes (a long one made Chromium exit before the session began).
        let scratch = std::env::temp_dir().join(format!("cd-{port}"));
        std::fs::create_dir_all(&scratch).expect("a scratch directory for Chromium");
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .env("TMPDIR", &scratch)
            // Its own process group, which its Chromium and Chromium's helpers join: see `drop`.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is on PATH (./dev test installs Debian's chromium-driver)");
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(started.elapsed() < PATIENCE, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Driver {
            child,
            url,
            scratch,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group, not chromedriver alone: a session that never closed (a test that failed)
        // left its Chromium running after chromedriver was gone, and it used a core for the rest of
        // the run.
        let group = format!("-{}", self.child.id());
        if !Command::new("kill")
            .args(["-KILL", "--", &group])
            .status()
            .is_ok_and(|status| status.success())
        {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// A Chromium session; with `record`, its DevTools Network events are logged for [`recorder::record`].
async fn browser(driver: &Driver, record: bool) -> Client {
    let mut capabilities = serde_json::json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--window-size=1280,1500", "--hide-scrollbars",
            ],
        }
    });
    if record {
        capabilities["goog:loggingPrefs"] = serde_json::json!({ "performance": "ALL" });
        capabilities["goog:chromeOptions"]["perfLoggingPrefs"] =
            serde_json::json!({ "enableNetwork": true, "enablePage": false });
    }
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!("a JSON object")
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session through chromedriver")
}

/// Clicks the element with test id `testid`, as a person would.
async fn click(page: &Client, testid: &str) {
    page.find(Locator::Css(&format!("[data-testid='{testid}']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The lanes that keep a line open (the endless letter, the radio, the phone and video calls): their
/// connects, dead lines and instances are shown; letters have none.
fn lines() -> Vec<&'static str> {
    LaneId::ALL
        .into_iter()
        .filter(|lane| !lane.shape().is_request())
        .map(LaneId::as_str)
        .collect()
}

/// A byte count as the scoreboard shows it ("563 B", "3.1 kB", "1.2 MB"; the video call's estimates
/// with "≈ " before them).
fn shown_bytes(shown: &str) -> f64 {
    let counted = shown.trim().trim_start_matches('≈').trim();
    let (number, unit) = counted.split_once(' ').unwrap_or((counted, "B"));
    let number: f64 = number
        .replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("not a byte count: {shown:?}"));
    number
        * match unit {
            "kB" => 1e3,
            "MB" => 1e6,
            "GB" => 1e9,
            _ => 1.0,
        }
}

async fn number(page: &Client, testid: &str) -> u64 {
    let text = text(page, &format!("[data-testid='{testid}']")).await;
    parse_count(testid, &text)
}

/// Several figures read in one look, so they are from the same refresh of the page (read one by one,
/// an event arriving in between would make them disagree).
async fn numbers<const N: usize>(page: &Client, testids: [&str; N]) -> [u64; N] {
    let texts = page
        .execute(
            "return arguments[0].map(id =>
                 document.querySelector(`[data-testid='${id}']`).textContent);",
            vec![serde_json::json!(testids.to_vec())],
        )
        .await
        .unwrap();
    let texts: Vec<String> = serde_json::from_value(texts).unwrap();
    std::array::from_fn(|at| parse_count(testids[at], &texts[at]))
}

fn parse_count(testid: &str, text: &str) -> u64 {
    // Counts are shown with their thousands separated.
    text.trim()
        .replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("{testid} shows {text:?}, not a number"))
}

async fn text(page: &Client, css: &str) -> String {
    page.find(Locator::Css(css))
        .await
        .unwrap_or_else(|err| panic!("{css} is on the page: {err}"))
        .text()
        .await
        .unwrap_or_default()
}

/// Polls `check` until it holds, or fails with what it last saw.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let started = Instant::now();
    loop {
        match check().await {
            Ok(()) => return,
            Err(seen) if started.elapsed() > PATIENCE => panic!("{what}: {seen}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn save_screenshot(page: &Client, name: &str) {
    let png = page.screenshot().await.expect("a screenshot");
    let dir = workspace_root().join("artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts/ can be made");
    std::fs::write(dir.join(name), png).expect("the screenshot can be saved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs the built dashboard (dist/) and Chromium; `./dev test` runs it with --ignored"]
async fn every_lane_delivers_the_same_seqs_and_chat_arrives_every_way() {
    let session = Session::open().await;
    let (page, base, http) = (&session.page, &session.base, &session.http);

    // Every lane is up: the letters have been answered, the lines said hello.
    eventually("every lane connects", || async {
        let mut seen = Vec::new();
        for lane in LaneId::ALL {
            let id = lane.as_str();
            seen.push((id, number(page, &format!("{id}-requests")).await));
        }
        let mut connects = Vec::new();
        for lane in lines() {
            connects.push((lane, number(page, &format!("{lane}-connects")).await));
        }
        if seen.iter().all(|&(_, n)| n > 0) && connects.iter().all(|&(_, n)| n == 1) {
            Ok(())
        } else {
            Err(format!("requests {seen:?}, connects {connects:?}"))
        }
    })
    .await;
    // The video call's bytes as the page counts them (it cannot see QUIC's packets: each message plus a
    // packet's overhead, and the handshake measured once) agree with the server's UDP counters (which
    // the server reads at each of the session's wake-ups: a heartbeat at the latest).
    eventually("the video call's bytes agree with the server's", || async {
        let stats: ServerStats = http
            .get(format!("{base}/api/stats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let server = &stats.lanes[&LaneId::WebTransport];
        let page_up = shown_bytes(&text(page, "[data-testid='webtransport-bytes-up']").await);
        let page_down = shown_bytes(&text(page, "[data-testid='webtransport-bytes-down']").await);
        let agree = |page_bytes: f64, server_bytes: u64| {
            (0.6..1.6).contains(&(page_bytes / server_bytes.max(1) as f64))
        };
        (agree(page_up, server.bytes_in) && agree(page_down, server.bytes_out))
            .then_some(())
            .ok_or(format!(
                "page up {page_up} down {page_down}; server in {} out {}",
                server.bytes_in, server.bytes_out
            ))
    })
    .await;
    // The streams name the instance they reached (a letter does too when there are several).
    for lane in lines() {
        let via = text(page, &format!("[data-testid='{lane}-instance']")).await;
        assert_eq!(via, "via e2e", "{lane}");
    }

    // Publish a burst through the server; every lane must end up with every seq up to it.
    for n in 0..10 {
        let accepted = http
            .post(format!("{base}/api/messages"))
            .json(&serde_json::json!({"author": "e2e", "text": format!("burst {n}")}))
            .send()
            .await
            .unwrap();
        assert!(accepted.status().is_success());
    }
    let stats: ServerStats = http
        .get(format!("{base}/api/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let head = stats.head;
    eventually("every lane delivers the same seqs", || async {
        let mut seen = Vec::new();
        for lane in LaneId::ALL {
            let id = lane.as_str();
            let last = number(page, &format!("{id}-last-seq")).await;
            let missed = number(page, &format!("{id}-missed")).await;
            let duplicates = number(page, &format!("{id}-duplicates")).await;
            seen.push((id, last, missed, duplicates));
        }
        // From one common starting point, a lane at `head` with nothing missed holds every seq.
        if seen
            .iter()
            .all(|&(_, last, missed, duplicates)| last >= head && missed == 0 && duplicates == 0)
        {
            Ok(())
        } else {
            Err(format!(
                "head {head}; (lane, last seq, missed, duplicates) {seen:?}"
            ))
        }
    })
    .await;
    let delivered: Vec<u64> = {
        let mut all = Vec::new();
        for lane in LaneId::ALL {
            all.push(number(page, &format!("{}-delivered", lane.as_str())).await);
        }
        all
    };
    assert!(delivered.iter().all(|&n| n >= 10), "{delivered:?}");

    // Chat: as a letter, on the phone line and on the video call; each reaches every lane's copy.
    let input = page
        .find(Locator::Css("[data-testid='chat-input']"))
        .await
        .unwrap();
    // Each is confirmed by the server's answer: the letter's, or a chat_accepted on the same line, with
    // the seq it was published under.
    for (said, button, confirmed) in [
        (
            "hello by letter",
            "send-post",
            "sent as a letter: published as #",
        ),
        (
            "hello by phone",
            "send-ws",
            "said on the phone line: published as #",
        ),
        (
            "hello by video call",
            "send-webtransport",
            "said on the video call: published as #",
        ),
    ] {
        input.send_keys(said).await.unwrap();
        page.find(Locator::Css(&format!("[data-testid='{button}']")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        eventually(&format!("{said:?} is confirmed"), || async {
            let status = text(page, "[data-testid='chat-status']").await;
            status.starts_with(confirmed).then_some(()).ok_or(status)
        })
        .await;
    }
    // Enter sends, as the README says: with a call up, on the phone line.
    input.send_keys("hello by Enter").await.unwrap();
    input
        .send_keys(&char::from(fantoccini::key::Key::Enter).to_string())
        .await
        .unwrap();
    eventually("Enter sent the message on the phone line", || async {
        let status = text(page, "[data-testid='chat-status']").await;
        status
            .starts_with("said on the phone line: published as #")
            .then_some(())
            .ok_or(status)
    })
    .await;
    eventually("every chat message arrives on every lane", || async {
        let mut missing = Vec::new();
        for lane in LaneId::ALL {
            let id = lane.as_str();
            let log = text(
                page,
                &format!("[data-testid='lane-{id}'] [data-testid='chat-log']"),
            )
            .await;
            for wanted in [
                "hello by letter",
                "hello by phone",
                "hello by video call",
                "hello by Enter",
            ] {
                if !log.contains(wanted) {
                    missing.push(format!("{id} lacks {wanted:?}"));
                }
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join("; "))
        }
    })
    .await;

    // Letters cost requests, and asked often most come back empty: the interval control speeds them up.
    page.find(Locator::Css("[data-testid='poll-setting']"))
        .await
        .unwrap()
        .select_by_value("250")
        .await
        .unwrap();
    eventually("empty letters are counted", || async {
        let empty = number(page, "poll-empty").await;
        (empty > 0)
            .then_some(())
            .ok_or(format!("{empty} empty replies"))
    })
    .await;
    assert_eq!(
        number(page, "ws-requests").await,
        1,
        "one call, one request"
    );
    let bytes = text(page, "[data-testid='ws-bytes-down']").await;
    assert!(
        bytes.ends_with('B') && bytes != "0 B",
        "the phone call's bytes: {bytes}"
    );
    let canvas = page
        .find(Locator::Css("[data-testid='timeline-canvas']"))
        .await
        .unwrap();
    let marks: u64 = canvas
        .attr("data-marks")
        .await
        .unwrap()
        .unwrap_or_default()
        .parse()
        .unwrap_or(0);
    assert!(marks > 20, "the timeline drew {marks} marks");
    // SWITCHBOARD_E2E_LINGER_S lets the page fill for a while before the picture (for the README).
    if let Some(linger) = std::env::var("SWITCHBOARD_E2E_LINGER_S")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        tokio::time::sleep(Duration::from_secs(linger)).await;
    }
    save_screenshot(page, "e2e-dashboard.png").await;

    // Usable on a phone-sized screen.
    page.set_window_size(390, 1600).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    save_screenshot(page, "e2e-narrow.png").await;
    session.close().await;
}

/// A server that runs until told to stop.
struct Running {
    stop: oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    fn spawn(listener: TcpListener, config: Config) -> Running {
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(switchboard_server::run(listener, config, async move {
            let _ = stopped.await;
        }));
        Running { stop, handle }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.handle.await.unwrap().unwrap();
    }
}

fn built_dashboard() -> PathBuf {
    let dist = workspace_root().join("dist");
    assert!(
        dist.join("index.html").exists(),
        "no built dashboard in {}",
        dist.display()
    );
    dist
}

/// A server with the built dashboard, a browser on it, and the page's lanes all connected.
struct Session {
    page: Client,
    base: String,
    http: reqwest::Client,
    _driver: Driver,
    servers: Vec<Running>,
}

impl Session {
    async fn open() -> Session {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = Running::spawn(listener, server_config(&built_dashboard()));
        Session::on(base, vec![server]).await
    }

    /// Opens the page at `base` (a server, or a load balancer in front of several).
    async fn on(base: String, servers: Vec<Running>) -> Session {
        Session::on_recording(base, servers, false).await
    }

    /// Like [`Session::on`], with the page's Network events recorded when `record` is set.
    async fn on_recording(base: String, servers: Vec<Running>, record: bool) -> Session {
        let driver = Driver::start().await;
        let page = browser(&driver, record).await;
        page.goto(&format!("{base}/")).await.unwrap();
        // The page mounts once its WebAssembly has loaded, which can take seconds on a busy machine;
        // until then none of the panels is there to read.
        page.wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css("[data-testid='timeline-canvas']"))
            .await
            .unwrap_or_else(|err| panic!("the page mounts: {err}"));
        eventually("every line is up", || async {
            let mut connects = Vec::new();
            for lane in lines() {
                connects.push((lane, number(&page, &format!("{lane}-connects")).await));
            }
            connects
                .iter()
                .all(|&(_, n)| n == 1)
                .then_some(())
                .ok_or(format!("connects {connects:?}"))
        })
        .await;
        Session {
            page,
            base,
            http: reqwest::Client::new(),
            _driver: driver,
            servers,
        }
    }

    /// Publishes one chat message and returns its seq.
    async fn publish(&self, text: &str) -> u64 {
        let accepted: serde_json::Value = self
            .http
            .post(format!("{}/api/messages", self.base))
            .json(&serde_json::json!({"author": "e2e", "text": text}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        accepted["seq"].as_u64().expect("a seq")
    }

    /// Injects a fault from the page's own panel, as a person would.
    async fn click_fault(&self, kind: &str, lane: &str, duration_ms: u64) {
        self.page
            .find(Locator::Css("[data-testid='fault-lane']"))
            .await
            .unwrap()
            .select_by_value(lane)
            .await
            .unwrap();
        self.page
            .execute(
                "const input = document.querySelector(\"[data-testid='fault-duration']\");
                 input.value = arguments[0];
                 input.dispatchEvent(new Event('change', { bubbles: true }));",
                vec![serde_json::json!(duration_ms.to_string())],
            )
            .await
            .unwrap();
        self.page
            .find(Locator::Css(&format!("[data-testid='fault-{kind}']")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        eventually("the fault is injected", || async {
            let status = text(&self.page, "[data-testid='fault-status']").await;
            status.starts_with("injected").then_some(()).ok_or(status)
        })
        .await;
    }

    /// Waits until `lane` has every seq up to `seq` with nothing missed.
    async fn caught_up(&self, lane: &str, seq: u64) {
        eventually(
            &format!("{lane} catches up to {seq} with 0 missed"),
            || async {
                let last = number(&self.page, &format!("{lane}-last-seq")).await;
                let missed = number(&self.page, &format!("{lane}-missed")).await;
                let duplicates = number(&self.page, &format!("{lane}-duplicates")).await;
                (last >= seq && missed == 0 && duplicates == 0)
                    .then_some(())
                    .ok_or(format!(
                        "last {last}, missed {missed}, duplicates {duplicates}"
                    ))
            },
        )
        .await;
    }

    async fn close(self) {
        self.page.close().await.unwrap();
        for server in self.servers {
            server.stop().await;
        }
    }
}

/// Every element whose content is wider than its box (cut off, or spilling over its neighbours), and
/// whether the page itself scrolls sideways. Scroll areas, form fields and pictures are left out: they
/// are meant to hold more than they show.
const OVERFLOWING: &str = r#"
    const cut = [];
    for (const el of document.querySelectorAll('body *')) {
        if (el.closest('svg, select, .sr-only') || ['CANVAS', 'INPUT', 'TEXTAREA', 'SELECT', 'OPTION'].includes(el.tagName)) continue;
        const style = getComputedStyle(el);
        if (style.display === 'none' || style.visibility === 'hidden') continue;
        if (style.textOverflow === 'ellipsis') cut.push('ellipsis: ' + el.outerHTML.slice(0, 120));
        if (['auto', 'scroll'].includes(style.overflowX)) continue;
        if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) {
            cut.push(el.scrollWidth + ' > ' + el.clientWidth + ': ' + el.outerHTML.slice(0, 160));
        }
    }
    // What sticks out past the right edge of the window (the innermost such elements say why).
    const out = [...document.querySelectorAll('body *')].filter((el) => !el.closest('svg, .sr-only')
        && el.getBoundingClientRect().right > window.innerWidth + 1
        && ![...el.children].some((child) => child.getBoundingClientRect().right > window.innerWidth + 1));
    for (const el of out.slice(0, 8)) cut.push('sticks out to ' + Math.round(el.getBoundingClientRect().right) + ': ' + el.outerHTML.slice(0, 160));
    const page = document.documentElement.scrollWidth;
    if (page > window.innerWidth + 1) cut.push('the page scrolls sideways: ' + page + ' > ' + window.innerWidth);
    return { cut, width: window.innerWidth };
"#;

/// Scrolls the comparison table to the top of the window, for a screenshot of it.
async fn show_comparison(page: &Client) {
    page.execute(
        "document.querySelector('.compare').scrollIntoView({ block: 'start' });",
        vec![],
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// The relative luminance of a `#rrggbb` colour (WCAG 2).
fn luminance(hex: &str) -> f64 {
    let hex = hex.trim().trim_start_matches('#');
    let channel = |i: usize| {
        let c =
            f64::from(u8::from_str_radix(&hex[i..i + 2], 16).expect("a #rrggbb colour")) / 255.0;
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4)
}

fn contrast(a: &str, b: &str) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// The page as a person first reads it: the table compares the live lanes, the verdict names their
/// figures, the timeline is walked by keyboard, nothing is cut off at a phone's, a tablet's and two
/// laptops' widths, and with the system set to dark and to less motion the page follows both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs the built dashboard (dist/) and Chromium; `./dev test` runs it with --ignored"]
async fn the_page_compares_the_lanes_fits_every_width_and_follows_dark_and_less_motion() {
    let session = Session::open().await;
    let page = &session.page;
    eventually(
        "every lane has a delay in the table and the verdict names them",
        || async {
            let mut missing = Vec::new();
            for lane in LaneId::ALL {
                if lane == LaneId::WebTransport {
                    continue;
                }
                let p50 = text(page, &format!("[data-testid='{lane}-delay-p50']")).await;
                if p50 == "–" {
                    missing.push(lane.as_str());
                }
            }
            let verdict = text(page, "[data-testid='verdict']").await;
            (missing.is_empty() && verdict.contains("p50") && verdict.contains("came back empty"))
                .then_some(())
                .ok_or(format!("no delay yet on {missing:?}; verdict {verdict:?}"))
        },
    )
    .await;
    let rows = page
        .find_all(Locator::Css("[data-testid='compare-table'] tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 12, "a row per figure");

    // The keyboard: Tab-reachable canvas, an arrow to select, Enter for the detail in words.
    let canvas = page
        .find(Locator::Css("[data-testid='timeline-canvas']"))
        .await
        .unwrap();
    canvas
        .send_keys(&char::from(fantoccini::key::Key::Right).to_string())
        .await
        .unwrap();
    eventually("an arrow key selects a mark", || async {
        let said = text(page, "[data-testid='timeline-said']").await;
        said.starts_with("Letters: ").then_some(()).ok_or(said)
    })
    .await;
    canvas
        .send_keys(&char::from(fantoccini::key::Key::Enter).to_string())
        .await
        .unwrap();
    let words = text(page, "[data-testid='detail-words']").await;
    assert!(
        words.starts_with("This letter") || words.starts_with("Event #"),
        "{words}"
    );

    for width in [390, 768, 1280, 1440] {
        page.set_window_size(width, 1500).await.unwrap();
        let mut seen = serde_json::Value::Null;
        // Give the layout a moment to settle at the new width (the page re-renders four times a second).
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            seen = page.execute(OVERFLOWING, vec![]).await.unwrap();
            if seen["cut"].as_array().is_some_and(Vec::is_empty) {
                break;
            }
        }
        assert_eq!(
            seen["cut"],
            serde_json::json!([]),
            "at {width} px (viewport {}) something is cut off",
            seen["width"]
        );
        if width != 768 {
            show_comparison(page).await;
            save_screenshot(page, &format!("e2e-compare-{width}.png")).await;
        }
    }

    // Dark, and less motion, as the system would ask for them.
    recorder::devtools(
        page,
        "Emulation.setEmulatedMedia",
        serde_json::json!({ "features": [
            { "name": "prefers-color-scheme", "value": "dark" },
            { "name": "prefers-reduced-motion", "value": "reduce" },
        ] }),
    )
    .await
    .expect("chromedriver passes DevTools commands on");
    page.set_window_size(1280, 1500).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let colours = page
        .execute(
            "const root = getComputedStyle(document.documentElement);
             const lanes = arguments[0].map((lane) => root.getPropertyValue('--' + lane).trim());
             const canvas = document.querySelector(\"[data-testid='timeline-canvas']\");
             const pixel = canvas.getContext('2d').getImageData(3, 3, 1, 1).data;
             return { lanes, surface: root.getPropertyValue('--surface').trim(),
                      body: getComputedStyle(document.body).backgroundColor,
                      pixel: Array.from(pixel.slice(0, 3)), motion: canvas.getAttribute('data-motion') };",
            vec![serde_json::json!(LaneId::ALL.map(LaneId::as_str))],
        )
        .await
        .unwrap();
    let surface = colours["surface"].as_str().unwrap().to_owned();
    assert!(luminance(&surface) < 0.05, "a dark surface: {colours}");
    let pixel: Vec<u64> = serde_json::from_value(colours["pixel"].clone()).unwrap();
    assert!(
        pixel.iter().all(|&c| c < 80),
        "the timeline draws on a dark ground: {colours}"
    );
    let lanes: Vec<String> = serde_json::from_value(colours["lanes"].clone()).unwrap();
    for (i, lane) in lanes.iter().enumerate() {
        assert!(
            contrast(lane, &surface) >= 3.0,
            "lane colour {lane} stands out of the dark surface {surface}: {:.1}",
            contrast(lane, &surface)
        );
        for other in &lanes[i + 1..] {
            let apart = (0..3)
                .map(|c| {
                    let at = |hex: &str| {
                        i32::from_str_radix(&hex.trim_start_matches('#')[c * 2..c * 2 + 2], 16)
                            .unwrap()
                    };
                    (at(lane) - at(other)).abs()
                })
                .sum::<i32>();
            assert!(
                apart >= 60,
                "{lane} and {other} are too alike to tell apart"
            );
        }
    }
    assert_eq!(
        colours["motion"], "reduced",
        "the timeline moves in steps when the system asks for less motion"
    );
    let seen = page.execute(OVERFLOWING, vec![]).await.unwrap();
    assert_eq!(seen["cut"], serde_json::json!([]), "dark, at 1280 px");
    show_comparison(page).await;
    save_screenshot(page, "e2e-compare-dark.png").await;
    session.close().await;
}

/// The page's own traffic as a person keeps it: a live session under firehose traffic (more marks than
/// the timeline draws, long polls answered at once) exported as a HAR (downloaded by the browser),
/// opened again in the page with the same counts; a broken file refused plainly; and the server's own
/// `/ws` watched as an endpoint from outside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs the built dashboard (dist/) and Chromium; `./dev test` runs it with --ignored"]
async fn a_session_exported_as_har_opens_again_with_its_counts_and_an_endpoint_is_watched() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = server_config(&built_dashboard());
    // Firehose from the first event, so the whole session is one period the table counts.
    config.traffic = switchboard_shared::Traffic::Firehose;
    let session = Session::on(base, vec![Running::spawn(listener, config)]).await;
    let page = &session.page;
    let downloads = workspace_root()
        .join("target")
        .join(format!("e2e-downloads-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&downloads);
    std::fs::create_dir_all(&downloads).unwrap();
    recorder::devtools(
        page,
        "Browser.setDownloadBehavior",
        serde_json::json!({ "behavior": "allow", "downloadPath": downloads.to_str().unwrap() }),
    )
    .await
    .expect("downloads allowed");
    eventually("the letters have asked a few times", || async {
        let asked = number(page, "poll-requests").await;
        (asked >= 4)
            .then_some(())
            .ok_or(format!("{asked} requests"))
    })
    .await;
    // Until the timeline has let its oldest marks go: the file must not lose what they were.
    // Until the timeline has let its oldest marks go (it holds 10,000; the five lanes each deliver 200
    // a second): the file must not lose what they were.
    eventually("the timeline has let its oldest marks go", || async {
        let delivered = number(page, "ws-delivered").await;
        (delivered >= 2_500)
            .then_some(())
            .ok_or(format!("{delivered} delivered on the phone call"))
    })
    .await;
    // Stopped, the lanes' counts stay put while the file is written and read back.
    for lane in LaneId::ALL {
        click(page, &format!("{lane}-toggle")).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let [requests, empty, held] =
        numbers(page, ["poll-requests", "poll-empty", "longpoll-requests"]).await;

    click(page, "export-har").await;
    let mut exported = None;
    let started = Instant::now();
    while exported.is_none() {
        assert!(
            started.elapsed() < PATIENCE,
            "no HAR was downloaded to {}",
            downloads.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        exported = std::fs::read_dir(&downloads)
            .unwrap()
            .filter_map(Result::ok)
            .map(|file| file.path())
            .find(|path| path.extension().is_some_and(|ext| ext == "har"));
    }
    let exported = exported.unwrap();
    let har: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&exported).unwrap()).expect("a JSON file");
    assert_eq!(har["log"]["version"], "1.2");
    assert_eq!(har["log"]["creator"]["name"], "Switchboard");

    let open_har = page
        .find(Locator::Css("[data-testid='open-har']"))
        .await
        .unwrap();
    open_har
        .send_keys(exported.to_str().unwrap())
        .await
        .unwrap();
    eventually("the exported file opens", || async {
        let status = text(page, "[data-testid='har-status']").await;
        (status.starts_with("switchboard-") && status.contains("channel"))
            .then_some(())
            .ok_or(status)
    })
    .await;
    let figure = |kind: &'static str, testid: &'static str| async move {
        let css = format!(
            "[data-testid='imported-channel'][data-kind='{kind}'] [data-testid='{testid}']"
        );
        parse_count(testid, &text(page, &css).await)
    };
    assert_eq!(
        (
            figure("letters", "imported-requests").await,
            figure("letters", "imported-empty").await
        ),
        (requests, empty),
        "the letters opened again as they were counted live"
    );
    assert_eq!(
        figure("held", "imported-requests").await,
        held,
        "the held letters opened again as held letters, as many as were sent"
    );
    assert!(
        figure("phone", "imported-frames").await > 0,
        "the phone call's frames came along"
    );
    // Its heartbeats, as the server sent them, are read as heartbeats again.
    let heartbeat = page
        .execute(
            "const dts = [...document.querySelectorAll(\"[data-testid='imported-channel'][data-kind='phone'] dt\")];
             const dt = dts.find(d => d.textContent === 'heartbeat');
             return dt ? dt.nextElementSibling.textContent : '';",
            vec![],
        )
        .await
        .unwrap();
    let heartbeat = heartbeat.as_str().unwrap_or_default();
    assert!(
        heartbeat.starts_with("every "),
        "the phone call's heartbeats: {heartbeat:?}"
    );
    assert!(
        figure("radio", "imported-frames").await > 0,
        "the radio's events came along"
    );
    page.execute(
        "document.querySelector('.har').scrollIntoView({ block: 'start' });",
        vec![],
    )
    .await
    .unwrap();
    save_screenshot(page, "e2e-har.png").await;

    let broken = downloads.join("broken.har");
    std::fs::write(&broken, "{\"log\": {\"entries\": [ this is cut off").unwrap();
    open_har.send_keys(broken.to_str().unwrap()).await.unwrap();
    eventually("a broken file is refused plainly", || async {
        let status = text(page, "[data-testid='har-status']").await;
        // The refusal names its file.
        status
            .starts_with("broken.har: This file is not JSON")
            .then_some(())
            .ok_or(status)
    })
    .await;

    let socket = format!("{}/ws", session.base.replacen("http", "ws", 1));
    page.find(Locator::Css("[data-testid='watch-url']"))
        .await
        .unwrap()
        .send_keys(&socket)
        .await
        .unwrap();
    click(page, "watch-start").await;
    eventually("the server's own /ws is watched from outside", || async {
        let messages = number(page, "watched-messages").await;
        (messages >= 3)
            .then_some(())
            .ok_or(format!("{messages} messages"))
    })
    .await;
    page.execute(
        "document.querySelector('.watch').scrollIntoView({ block: 'center' });",
        vec![],
    )
    .await
    .unwrap();
    save_screenshot(page, "e2e-watch.png").await;

    // The same server under another name is another origin: its event stream sends no CORS header for
    // this page, and the browser refuses it. The panel says so.
    let elsewhere = format!(
        "{}/api/sse",
        session.base.replacen("127.0.0.1", "localhost", 1)
    );
    let field = page
        .find(Locator::Css("[data-testid='watch-url']"))
        .await
        .unwrap();
    field.clear().await.unwrap();
    field.send_keys(&elsewhere).await.unwrap();
    click(page, "watch-start").await;
    eventually("a cross-origin stream is refused, in the browser's words", || async {
        let said = page
            .execute(
                "const error = document.querySelector(\"[data-testid='watched-error']\"); return error ? error.textContent : '';",
                vec![],
            )
            .await
            .unwrap();
        let said = said.as_str().unwrap_or_default().to_owned();
        said.contains("refused or lost").then_some(()).ok_or(said)
    })
    .await;
    let _ = std::fs::remove_dir_all(&downloads);
    session.close().await;
}

/// A HAR recorded from Chromium's own DevTools Network events while the dashboard ran on quiet
/// traffic (letters mostly empty, held letters held for seconds, a radio, a phone call) opens in the page
/// as those four channels, with the letters' requests and empty answers as the recording has them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs the built dashboard (dist/) and Chromium; `./dev test` runs it with --ignored"]
async fn a_har_recorded_by_chromium_opens_as_the_channels_it_recorded() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = server_config(&built_dashboard());
    config.traffic = switchboard_shared::Traffic::Quiet;
    let server = Running::spawn(listener, config);
    let session = Session::on_recording(base, vec![server], true).await;
    let page = &session.page;
    eventually("three held letters have come back", || async {
        let held = number(page, "longpoll-requests").await;
        (held >= 4)
            .then_some(())
            .ok_or(format!("{held} held letters sent"))
    })
    .await;
    let har = recorder::record(page).await;
    let entries = har["log"]["entries"].as_array().unwrap();
    let polls: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|entry| {
            entry["request"]["url"]
                .as_str()
                .is_some_and(|url| url.contains("/api/poll?"))
        })
        .collect();
    let empty_polls = polls
        .iter()
        .filter(|entry| {
            entry["response"]["content"]["text"]
                .as_str()
                .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
                .is_some_and(|body| body["events"].as_array().is_some_and(Vec::is_empty))
        })
        .count() as u64;
    assert!(
        polls.len() >= 3,
        "the recording has the letters: {}",
        polls.len()
    );
    for kind in ["websocket", "eventsource"] {
        assert!(
            entries.iter().any(|entry| entry["_resourceType"] == kind),
            "the recording has a {kind}"
        );
    }
    let dir = workspace_root().join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("e2e-recorded.har");
    std::fs::write(&file, serde_json::to_string_pretty(&har).unwrap()).unwrap();

    page.find(Locator::Css("[data-testid='open-har']"))
        .await
        .unwrap()
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    eventually("the recording opens", || async {
        let status = text(page, "[data-testid='har-status']").await;
        status
            .starts_with("e2e-recorded.har")
            .then_some(())
            .ok_or(status)
    })
    .await;
    let kinds = page
        .execute(
            "return [...document.querySelectorAll(\"[data-testid='imported-channel']\")].map((panel) => panel.dataset.kind);",
            vec![],
        )
        .await
        .unwrap();
    let kinds: Vec<String> = serde_json::from_value(kinds).unwrap();
    for kind in ["letters", "held", "radio", "phone"] {
        assert!(
            kinds.iter().any(|seen| seen == kind),
            "no {kind} among {kinds:?}"
        );
    }
    let figure = |testid: &'static str| async move {
        let css = format!(
            "[data-testid='imported-channel'][data-kind='letters'] [data-testid='{testid}']"
        );
        parse_count(testid, &text(page, &css).await)
    };
    assert_eq!(
        (
            figure("imported-requests").await,
            figure("imported-empty").await
        ),
        (polls.len() as u64, empty_polls),
        "the letters, as Chromium recorded them"
    );
    page.execute(
        "document.querySelector('.har').scrollIntoView({ block: 'start' });",
        vec![],
    )
    .await
    .unwrap();
    save_screenshot(page, "e2e-recorded.png").await;

    // A 50 MB HAR opens without freezing the page: a timer keeps firing while it is read.
    let big = workspace_root()
        .join("target")
        .join(format!("e2e-big-{}.har", std::process::id()));
    let entry = |i: usize| {
        format!(
            r#"{{"startedDateTime": "2026-11-28T{:02}:{:02}:{:02}.000Z", "time": 12, "request": {{"method": "GET", "url": "https://app.test/api/poll?after={i}", "headersSize": 300, "bodySize": 0}}, "response": {{"status": 200, "headersSize": 150, "bodySize": 2000, "content": {{"size": 2000, "mimeType": "application/json", "text": "{{\"events\": [\"{}\"]}}"}}}}, "timings": {{"wait": 11}}}}"#,
            // One a second from 10:00, the steady pace of a polling loop.
            10 + i / 3600,
            i / 60 % 60,
            i % 60,
            "x".repeat(1900)
        )
    };
    let count = 23_000;
    let contents = format!(
        r#"{{"log": {{"version": "1.2", "creator": {{"name": "e2e", "version": "1"}}, "entries": [{}]}}}}"#,
        (0..count).map(entry).collect::<Vec<_>>().join(",")
    );
    assert!(contents.len() > 50_000_000, "{} bytes", contents.len());
    std::fs::write(&big, contents).unwrap();
    page.execute(
        "window.e2eTicks = 0; window.e2eTimer = setInterval(() => { window.e2eTicks += 1; }, 50);",
        vec![],
    )
    .await
    .unwrap();
    page.find(Locator::Css("[data-testid='open-har']"))
        .await
        .unwrap()
        .send_keys(big.to_str().unwrap())
        .await
        .unwrap();
    let progress = std::cell::RefCell::new(std::collections::BTreeSet::new());
    eventually("the 50 MB HAR opens", || async {
        let status = text(page, "[data-testid='har-status']").await;
        if status.starts_with("reading") {
            progress.borrow_mut().insert(status.clone());
        }
        status.starts_with("e2e-big").then_some(()).ok_or(status)
    })
    .await;
    let ticks = page
        .execute(
            "clearInterval(window.e2eTimer); return window.e2eTicks;",
            vec![],
        )
        .await
        .unwrap();
    let _ = std::fs::remove_file(&big);
    let status = text(page, "[data-testid='har-status']").await;
    assert!(
        status.contains("23,000 entries, 1 channel found"),
        "{status}"
    );
    assert!(
        ticks.as_u64().unwrap_or(0) >= 5,
        "the page's timers ran while 50 MB were read: {ticks} ticks"
    );
    let progress = progress.into_inner();
    assert!(progress.len() >= 2, "progress was shown: {progress:?}");
    session.close().await;
}

/// The failure lab from the page: a hiccup, a drop and a half-open line on the phone call and the
/// radio. Each time the page notices (the watchdog, for the half-open line), redials, resumes after its
/// last seq and ends with nothing missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs the built dashboard (dist/) and Chromium; `./dev test` runs it with --ignored"]
async fn the_page_notices_and_recovers_from_faults_injected_from_its_panel() {
    let session = Session::open().await;
    let page = &session.page;

    // A hiccup longer than the watchdog's limit: heartbeats go on, so no line is declared dead.
    session.click_fault("pause", "all", 3_000).await;
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    let seq = session.publish("after the hiccup").await;
    for lane in LaneId::ALL {
        session.caught_up(lane.as_str(), seq).await;
    }
    for lane in lines() {
        assert_eq!(number(page, &format!("{lane}-dead")).await, 0, "{lane}");
        assert_eq!(number(page, &format!("{lane}-connects")).await, 1, "{lane}");
    }

    for lane in lines().into_iter().rev() {
        // Dropped: the line breaks at once, the lane redials and resumes.
        let connects = number(page, &format!("{lane}-connects")).await;
        session.click_fault("drop", lane, 5_000).await;
        // The redial first, then news: an event published the moment the fault is armed may still
        // leave on the old line before its task sees the cut (seen once on the video call in a full
        // run), and would then prove nothing about the new one.
        eventually(
            &format!("the {lane} line redials after the drop"),
            || async {
                let now = number(page, &format!("{lane}-connects")).await;
                (now > connects)
                    .then_some(())
                    .ok_or(format!("connects {now}, {connects} before the drop"))
            },
        )
        .await;
        let seq = session.publish(&format!("after the {lane} drop")).await;
        session.caught_up(lane, seq).await;

        // Half-open: nothing arrives, not even heartbeats; only the watchdog can tell.
        let connects = number(page, &format!("{lane}-connects")).await;
        session.click_fault("half_open", lane, 10_000).await;
        eventually(
            &format!("the {lane} watchdog finds the silent line"),
            || async {
                let dead = number(page, &format!("{lane}-dead")).await;
                let now = number(page, &format!("{lane}-connects")).await;
                (dead == 1 && now > connects)
                    .then_some(())
                    .ok_or(format!("dead {dead}, connects {now}"))
            },
        )
        .await;
        let seq = session
            .publish(&format!("after the {lane} half-open line"))
            .await;
        session.caught_up(lane, seq).await;
        let detect = text(page, &format!("[data-testid='{lane}-detect']")).await;
        assert!(
            detect.ends_with('s'),
            "{lane} shows how long it took to notice: {detect:?}"
        );
    }
    for lane in LaneId::ALL {
        assert_eq!(number(page, &format!("{}-lost", lane.as_str())).await, 0);
    }
    save_screenshot(page, "e2e-faults.png").await;
    session.close().await;
}

/// Two instances sharing one stream through Redis, behind the real nginx running the shipped
/// configuration (`deploy/nginx/switchboard.conf`). The page's lanes land on either instance (round
/// robin); instance a is then shut down (a deploy): every lane that was on it loses its line, redials
/// through nginx, lands on b and resumes there — nothing missed, nothing twice — and says "via b".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs the built dashboard (dist/) and Chromium; `./dev test` runs it with --ignored"]
async fn behind_nginx_the_lanes_of_an_instance_that_goes_away_resume_on_the_other() {
    let redis = Redis::start();
    let dist = built_dashboard();
    let (mut addrs, mut servers) = (Vec::new(), Vec::new());
    for name in ["a", "b"] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(listener.local_addr().unwrap());
        let mut config = server_config(&dist);
        config.instance = Some(name.into());
        config.redis = Some(redis.url());
        config.trust_proxy = true;
        servers.push(Running::spawn(listener, config));
    }
    let http = reqwest::Client::new();
    for addr in &addrs {
        eventually("the instance reaches Redis", || async {
            let status = http.get(format!("http://{addr}/healthz")).send().await;
            match status {
                Ok(answer) if answer.status() == 200 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }
    let nginx = Nginx::start(&addrs);
    let b = servers.pop().expect("b");
    let a = servers.pop().expect("a");
    let session = Session::on(nginx.origin(), vec![b]).await;
    let page = &session.page;
    // The page says what it is behind, from the header the configuration adds.
    assert_eq!(
        text(page, "[data-testid='proxy']").await,
        "behind nginx · idle timeout 15s"
    );
    // Letters asked often, up to date, share one URL: nginx answers some from its one-second cache,
    // and the page marks and counts them. Held letters are never cached.
    page.find(Locator::Css("[data-testid='poll-setting']"))
        .await
        .unwrap()
        .select_by_value("250")
        .await
        .unwrap();
    eventually("nginx's cache answers letters", || async {
        let hits = number(page, "poll-cache-hits").await;
        (hits > 0).then_some(()).ok_or(format!("{hits} cache hits"))
    })
    .await;
    assert_eq!(number(page, "longpoll-cache-hits").await, 0);
    let before = session.publish("before the deploy").await;
    let mut were_on_a = Vec::new();
    for lane in LaneId::ALL {
        let lane = lane.as_str();
        session.caught_up(lane, before).await;
        let via = text(page, &format!("[data-testid='{lane}-instance']")).await;
        assert!(via == "via a" || via == "via b", "{lane}: {via:?}");
        if via == "via a" {
            were_on_a.push(lane);
        }
    }

    a.stop().await;
    for lane in LaneId::ALL {
        let lane = lane.as_str();
        eventually(&format!("{lane} is on b"), || async {
            let via = text(page, &format!("[data-testid='{lane}-instance']")).await;
            (via == "via b").then_some(()).ok_or(via)
        })
        .await;
    }
    let after = session.publish("after the deploy").await;
    for lane in LaneId::ALL {
        let lane = lane.as_str();
        session.caught_up(lane, after).await;
        assert_eq!(number(page, &format!("{lane}-lost")).await, 0, "{lane}");
    }
    // A line that was on a dialled again; one on b never had to.
    for lane in lines() {
        let expected = if were_on_a.contains(&lane) { 2 } else { 1 };
        assert_eq!(
            number(page, &format!("{lane}-connects")).await,
            expected,
            "{lane} (on a before: {were_on_a:?})"
        );
    }
    save_screenshot(page, "e2e-moved.png").await;
    session.close().await;
    drop(nginx);
}

/// Behind nginx, whose idle timeout is 15 s, a line that says nothing for that long is hung up on by the
/// proxy. With the sources paused (a hiccup) and the radio's heartbeats off, the radio goes quiet and
/// nginx cuts it after 15 s, and the page says the proxy did it (its watchdog stood aside, as an app
/// without heartbeats has none). The phone call and the endless letter, whose heartbeats go on through
/// the same silence, stay up: this is what heartbeats are for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs the built dashboard (dist/) and Chromium; `./dev test` runs it with --ignored"]
async fn behind_nginx_a_line_without_heartbeats_is_cut_by_the_proxys_idle_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = server_config(&built_dashboard());
    config.trust_proxy = true;
    let server = Running::spawn(listener, config);
    let nginx = Nginx::start(&[addr]);
    let session = Session::on(nginx.origin(), vec![server]).await;
    let page = &session.page;
    // Heartbeats off first: announced while news still flows, so the page knows before the silence.
    session.click_fault("no_heartbeat", "sse", 22_000).await;
    session.click_fault("pause", "all", 22_000).await;
    let paused = Instant::now();
    eventually("nginx hangs up on the quiet radio", || async {
        let cuts = number(page, "sse-proxy-cuts").await;
        (cuts >= 1)
            .then_some(())
            .ok_or(format!("{cuts} cuts after {:?}", paused.elapsed()))
    })
    .await;
    assert!(
        paused.elapsed() >= Duration::from_secs(13),
        "cut after only {:?}",
        paused.elapsed()
    );
    assert_eq!(
        number(page, "sse-dead").await,
        0,
        "the watchdog stood aside"
    );
    for lane in ["ws", "stream"] {
        assert_eq!(
            number(page, &format!("{lane}-proxy-cuts")).await,
            0,
            "{lane}"
        );
        assert_eq!(number(page, &format!("{lane}-connects")).await, 1, "{lane}");
    }
    save_screenshot(page, "e2e-proxy-idle.png").await;
    session.close().await;
    drop(nginx);
}

/// A delay figure of the scoreboard, in milliseconds (shown as whole ms with thousands separated).
async fn delay_ms(page: &Client, testid: &str) -> f64 {
    let shown = text(page, &format!("[data-testid='{testid}']")).await;
    shown
        .replace(',', "")
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{testid} shows {shown:?}, not a delay"))
}

/// The clock offset every delay is corrected by, as the page's badge shows it ("server clock +2 ms · …").
async fn clock_offset_ms(page: &Client) -> f64 {
    let badge = text(page, ".badge .clock").await;
    badge
        .strip_prefix("server clock ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|figure| figure.trim_start_matches('+').parse().ok())
        .unwrap_or_else(|| panic!("the clock badge says {badge:?}, not an offset"))
}

/// Chooses a network preset for every lane from the page's own panel and waits for the server's word:
/// the change starts a new period of figures on its own.
async fn choose_network(session: &Session, preset: &str) {
    session
        .page
        .find(Locator::Css("[data-testid='network-preset']"))
        .await
        .unwrap()
        .select_by_value(preset)
        .await
        .unwrap();
    eventually(&format!("the lanes run over {preset}"), || async {
        let status = text(&session.page, "[data-testid='network-status']").await;
        status.starts_with("every lane").then_some(()).ok_or(status)
    })
    .await;
}

/// The network panel, as a person uses it: on 3g the letters are staler than the phone call, which pays
/// about half the round trip per event; back on loopback both are fast again. Filling the browser's six
/// connections with extra radio streams starves the letters while the phone call goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs the built dashboard (dist/) and Chromium; `./dev test` runs it with --ignored"]
async fn on_3g_the_letters_fall_behind_the_phone_call_and_recover_on_loopback() {
    let session = Session::open().await;
    let page = &session.page;
    // The phone call dialled a connection of its own (letters may ride ones kept alive from the page's
    // own loading).
    assert_eq!(number(page, "ws-new-connections").await, 1);
    // The clock is read from the fastest trip each way, and a page just started is busy, so its first
    // trips can read slow: with 3g chosen at once, its only trips on loopback were those, and the
    // offset read -24 ms once (half of a way down 48 ms slower than the way up). The page probes every
    // second at first: a few seconds on loopback give it clean trips, as a person's first seconds on
    // the page do.
    tokio::time::sleep(Duration::from_secs(4)).await;

    // Figures from 3g only (the delays kept from loopback before it would pull every median down): the
    // change starts a period of its own.
    choose_network(&session, "3g").await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    let letters = delay_ms(page, "poll-delay-p50").await;
    let letters_p95 = delay_ms(page, "poll-delay-p95").await;
    let phone = delay_ms(page, "ws-delay-p50").await;
    let phone_p95 = delay_ms(page, "ws-delay-p95").await;
    let heard = number(page, "ws-delivered").await;
    let offset = clock_offset_ms(page).await;
    // Printed so that a run that fails elsewhere still shows what the page measured.
    eprintln!(
        "on 3g: phone p50 {phone} ms, p95 {phone_p95} ms over {heard} events, clock {offset:+} ms; \
         letters p50 {letters} ms, p95 {letters_p95} ms"
    );
    assert!(
        letters > phone,
        "letters p50 {letters} ms vs phone {phone} ms"
    );
    // Every delay is corrected by the clock offset the phone line measures. The browser and the server
    // read one machine's clock here, so the true offset is 0: the page's must be near it (taking both
    // ways from the probe with the shortest round trip, as NTP does, read 17 ms off on 3g). It reads
    // -1 to +2 ms here; the margin is for a page busy at its first probe on a loaded machine (a way
    // 20 ms slow moves the offset by half of that).
    assert!(
        offset.abs() <= 12.0,
        "the page's clock offset is {offset:+} ms, where browser and server share one clock"
    );
    // One way is 150 ± 50 ms: the phone call pays half the round trip per event, and more at its tail
    // (on loopback its p50 is a few ms). The median of a few dozen uniform delays itself wanders by
    // ±50/√n ms (140–161 ms in five runs here; 170 ms once in CI), so the window is four of those
    // either way, plus 10 ms above for what TCP's order and the page's own turn add.
    let wander = 4.0 * 50.0 / (heard.max(1) as f64).sqrt();
    let window = |p50: f64| 150.0 - wander <= p50 && p50 <= 160.0 + wander;
    assert!(
        window(phone),
        "phone p50 {phone} ms over {heard} events, where the path's one way is 150 ± 50 ms (±{wander:.0})"
    );
    assert!(phone_p95 >= 150.0, "phone p95 {phone_p95} ms");
    let listed = text(page, "[data-testid='network-ws']").await;
    assert!(listed.contains("3g (300 ± 50 ms"), "{listed}");
    let shaded: u64 = page
        .find(Locator::Css("[data-testid='timeline-canvas']"))
        .await
        .unwrap()
        .attr("data-conditions")
        .await
        .unwrap()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(shaded >= 4, "every lane's row is shaded: {shaded}");
    // Tall enough for the timeline, the panels and the scoreboards' delays in one picture.
    page.set_window_size(1280, 2300).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    save_screenshot(page, "e2e-network-3g.png").await;

    choose_network(&session, "loopback").await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    let period = text(page, "[data-testid='scores-since']").await;
    assert!(period.contains("since a network change"), "{period}");
    // The 3g period is one click away: its figures under this period's, its verdict under this one.
    let before = text(page, "[data-testid='compare-before']").await;
    assert!(before.starts_with("Before: on 3g"), "{before}");
    click(page, "compare-before").await;
    let phone_before = text(page, "[data-testid='ws-delay-p50-before']").await;
    // "before:" is for screen readers; the figure is the last word.
    let phone_before: f64 = phone_before
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("no 3g delay beside this period's: {phone_before:?}"));
    assert!(
        window(phone_before),
        "phone p50 on 3g, before: {phone_before} ms (±{wander:.0})"
    );
    let said_before = text(page, "[data-testid='verdict-before']").await;
    assert!(said_before.contains("On 3g"), "{said_before}");
    show_comparison(page).await;
    save_screenshot(page, "e2e-periods.png").await;
    click(page, "compare-before").await;
    let phone_after = delay_ms(page, "ws-delay-p50").await;
    let letters_after = delay_ms(page, "poll-delay-p95").await;
    assert!(
        phone_after < 50.0,
        "phone p50 back on loopback: {phone_after} ms"
    );
    // Figures from loopback only again. The letters' median is too noisy over a dozen letters (it spans
    // the whole polling interval either way); their tail is not: on 3g it carries the round trip on top
    // of the interval.
    assert!(
        letters_after < letters_p95,
        "letters p95 {letters_after} ms after, {letters_p95} ms on 3g"
    );

    // Six extra radio streams hold every connection the browser allows this host: letters wait.
    let seq = session.publish("before the extra streams").await;
    session.caught_up("poll", seq).await;
    click(page, "extra-streams").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let starved = session
        .publish("while the streams hold the connections")
        .await;
    session.caught_up("ws", starved).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let letters_seq = number(page, "poll-last-seq").await;
    assert!(
        letters_seq < starved,
        "the letters waited for a connection: at {letters_seq}, the phone call at {starved}"
    );
    click(page, "extra-streams").await;
    session.caught_up("poll", starved).await;
    session.close().await;
}

/// The traffic panel and the trace, as a person uses them: under quiet traffic most letters come back
/// with nothing new while the phone call just waits on its one line; clicking a chat message on the
/// phone call's row follows its seq to every lane, with how much later each one got it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs the built dashboard (dist/) and Chromium; `./dev test` runs it with --ignored"]
async fn quiet_traffic_wastes_letters_and_one_message_is_traced_across_lanes() {
    let session = Session::open().await;
    let page = &session.page;
    click(page, "traffic-quiet").await;
    eventually("the server runs quiet traffic", || async {
        let state: serde_json::Value = session
            .http
            .get(format!("{}/api/traffic", session.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (state["pattern"] == "quiet")
            .then_some(())
            .ok_or(state.to_string())
    })
    .await;
    eventually("the change is marked on the timeline", || async {
        let marked = page
            .find(Locator::Css("[data-testid='timeline-canvas']"))
            .await
            .unwrap()
            .attr("data-traffic")
            .await
            .unwrap()
            .unwrap_or_default();
        (marked == "1").then_some(()).ok_or(marked)
    })
    .await;
    click(page, "reset-scores").await;
    let calls_before = number(page, "ws-requests").await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    let requests = number(page, "poll-requests").await;
    let empty = number(page, "poll-empty").await;
    // A quote every 2–6 s and a load sample every 10 s against a letter a second: at most about half
    // the letters can find news, and usually fewer.
    assert!(requests >= 14, "letters sent in 20 s: {requests}");
    assert!(
        empty * 2 >= requests,
        "under quiet traffic most letters are empty: {empty} of {requests}"
    );
    assert_eq!(
        number(page, "ws-requests").await,
        calls_before,
        "the phone call waited on its one line"
    );
    page.set_window_size(1280, 2300).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    save_screenshot(page, "e2e-quiet-traffic.png").await;

    // One chat message, then a click on its mark in the phone call's row.
    let seq = session.publish("follow me").await;
    for lane in LaneId::ALL {
        session.caught_up(lane.as_str(), seq).await;
    }
    // As a person would, hold the view still before aiming at a mark: a live view moves under the
    // pointer between the moment the summary shows and the click.
    click(page, "timeline-follow").await;
    let aimed = page
        .execute_async(
            "const [seq, row, rows, done] = arguments;
             const canvas = document.querySelector(\"[data-testid='timeline-canvas']\");
             const rect = canvas.getBoundingClientRect();
             const y = rect.top + (rect.height - 22) / rows * (row + 0.5);
             const at = (kind, x) => canvas.dispatchEvent(new PointerEvent(kind,
                 { bubbles: true, clientX: x, clientY: y }));
             const seen = [];
             (async () => {
               for (let x = rect.right - 2; x > rect.left; x -= 2) {
                 at('pointermove', x);
                 await new Promise(r => setTimeout(r, 0));
                 const hover = document.querySelector('.timeline .hover');
                 const text = hover ? hover.textContent : '';
                 if (text.startsWith('#' + seq + ' ')) {
                   canvas.dispatchEvent(new MouseEvent('click',
                       { bubbles: true, clientX: x, clientY: y }));
                   return done('clicked');
                 }
                 if (text && seen[seen.length - 1] !== text) { seen.push(text); }
               }
               done('not found among: ' + seen.slice(0, 12).join(' | '));
             })();",
            vec![
                serde_json::json!(seq),
                serde_json::json!(LaneId::Ws.index()),
                serde_json::json!(LaneId::COUNT),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        aimed,
        serde_json::json!("clicked"),
        "the mark of #{seq} on the phone call's row"
    );
    eventually("the detail traces the seq on every lane", || async {
        let mut rows = Vec::new();
        for lane in LaneId::ALL.map(LaneId::as_str) {
            let row = match page
                .find(Locator::Css(&format!("[data-testid='trace-{lane}']")))
                .await
            {
                Ok(row) => row.text().await.unwrap_or_default(),
                Err(_) => format!("{lane}: no detail open"),
            };
            rows.push(row);
        }
        rows.iter()
            .all(|row| row.contains("after the stamp"))
            .then_some(())
            .ok_or(rows.join(" | "))
    })
    .await;
    let traced = page
        .find(Locator::Css("[data-testid='timeline-canvas']"))
        .await
        .unwrap()
        .attr("data-traced")
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(traced, LaneId::ALL.map(LaneId::as_str).join(" "));
    // Back to live: the traced message stays selected as the view moves on.
    click(page, "timeline-follow").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    save_screenshot(page, "e2e-traced.png").await;
    session.close().await;
}

/// The video call's datagrams, as a person tries them: switched from the panel, the session redials;
/// over a path that loses a quarter of its packets some events never come — and the scoreboard counts
/// every one of them as missed (delivered and missed add up to the seqs the lane has passed), while the
/// phone call on the same page misses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs the built dashboard (dist/) and Chromium; `./dev test` runs it with --ignored"]
async fn the_video_call_on_datagrams_counts_what_a_lossy_path_loses() {
    let session = Session::open().await;
    let page = &session.page;
    page.find(Locator::Css("[data-testid='webtransport-setting']"))
        .await
        .unwrap()
        .select_by_value("datagram")
        .await
        .unwrap();
    eventually("the video call redials for datagrams", || async {
        let connects = number(page, "webtransport-connects").await;
        (connects == 2)
            .then_some(())
            .ok_or(format!("{connects} connects"))
    })
    .await;
    let calm = session.publish("datagrams on loopback").await;
    // A datagram is never resent, even on loopback: Chromium drops one the page did not read in time,
    // which on a busy two-core machine happens now and then (1 of 77 in a cold CI-like run). So the
    // baseline asks for next to nothing lost, not for nothing, and the lossy path below is counted
    // from what this shows.
    // Judged once twenty came: just after the redial a single drop read as "1 missed, 3 delivered".
    eventually("the video call catches up on loopback", || async {
        let [last, duplicates, delivered] = numbers(
            page,
            [
                "webtransport-last-seq",
                "webtransport-duplicates",
                "webtransport-delivered",
            ],
        )
        .await;
        (last >= calm && duplicates == 0 && delivered >= 20)
            .then_some(())
            .ok_or(format!(
                "last {last}, duplicates {duplicates}, delivered {delivered}"
            ))
    })
    .await;
    let [delivered, missed] =
        numbers(page, ["webtransport-delivered", "webtransport-missed"]).await;
    assert!(
        missed * 20 <= delivered,
        "next to nothing missed on loopback: {missed} missed, {delivered} delivered"
    );

    let set: serde_json::Value = session
        .http
        .post(format!("{}/api/network", session.base))
        .json(
            &serde_json::json!({"lane": "webtransport", "rtt_ms": 20, "jitter_ms": 0,
            "down_kbps": 0, "up_kbps": 0, "loss_pct": 25}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(set["lanes"]["webtransport"]["loss_pct"], 25.0, "{set}");
    // The change starts a new period of figures: count from there.
    eventually("the lossy path starts a period", || async {
        let period = text(page, "[data-testid='scores-since']").await;
        period
            .contains("since a network change")
            .then_some(())
            .ok_or(period)
    })
    .await;
    let [start, delivered_before, missed_before] = numbers(
        page,
        [
            "webtransport-last-seq",
            "webtransport-delivered",
            "webtransport-missed",
        ],
    )
    .await;
    // (The ticker's events keep coming: one may already be lost between the change and this read,
    // so the figures below are counted from here.)
    let mut last = 0;
    for n in 0..40 {
        last = session.publish(&format!("datagram {n}")).await;
    }
    session.caught_up("ws", last).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // What a lost datagram costs is a missed seq, counted as soon as a later one arrives.
    let (passed, delivered, missed) = {
        let [end, delivered, missed] = numbers(
            page,
            [
                "webtransport-last-seq",
                "webtransport-delivered",
                "webtransport-missed",
            ],
        )
        .await;
        (
            end - start,
            delivered - delivered_before,
            missed - missed_before,
        )
    };
    assert!(missed > 0, "a quarter of 40 datagrams lost, none missed?");
    assert!(delivered > 15, "{delivered} of 40 delivered");
    assert_eq!(
        delivered + missed,
        passed,
        "every seq the video call passed is delivered or counted missed"
    );
    assert_eq!(
        number(page, "ws-missed").await,
        0,
        "the phone call misses nothing"
    );
    let marked: u64 = page
        .find(Locator::Css("[data-testid='timeline-canvas']"))
        .await
        .unwrap()
        .attr("data-missed")
        .await
        .unwrap()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(marked > 0, "the timeline marks where seqs went missing");
    page.set_window_size(1280, 2300).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    save_screenshot(page, "e2e-datagrams.png").await;
    session.close().await;
}

/// Scrolls the "Your app" view to the top of the window, for a screenshot of it.
async fn show_app(page: &Client) {
    page.execute(
        "document.querySelector(\"[data-testid='app-view']\").scrollIntoView({block: 'start'})",
        vec![],
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// The number in a cell of the "Your app" table, for the channel of `kind`.
async fn app_cell(page: &Client, kind: &str, testid: &str) -> String {
    text(
        page,
        &format!("[data-testid='app-channel'][data-kind='{kind}'] [data-testid='{testid}']"),
    )
    .await
}

/// Your app through the lab, as a person uses it: a Socket.IO 4 chat (from npm, with its own page)
/// started, Switchboard in front of it, the app opened through the proxy in one browser and the
/// dashboard in another. The dashboard shows the app's held letters and its phone call with heartbeats;
/// a drop is followed by the app redialing; an idle timeout shorter than its ping interval cuts it and
/// says so; a half-open is noticed (or not) in words; the HAR download opens in the page's HAR import
/// with the same channels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs the built dashboard (dist/) and Chromium; `./dev test` runs it with --ignored"]
async fn a_socket_io_app_through_the_lab_shows_its_channels_and_what_faults_do_to_it() {
    use switchboard_client::node_app::NodeApp;
    // Pings every 2 s; long polling for its first 7 s, then the upgrade.
    let app = NodeApp::start("socketio-app.cjs", &["2000", "7000"]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = server_config(&built_dashboard());
    config.upstream = Some(switchboard_server::proxy::Upstream::parse(&app.url()).unwrap());
    config.proxy_addr = "127.0.0.1:0".parse().unwrap();
    let server = Running::spawn(listener, config);
    let http = reqwest::Client::new();
    let report = loop {
        if let Ok(answer) = http.get(format!("{base}/api/app")).send().await
            && answer.status() == 200
        {
            break answer.json::<serde_json::Value>().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let proxy_url = report["proxy_url"].as_str().unwrap().to_owned();

    // The app, opened through the proxy.
    let app_driver = Driver::start().await;
    let app_page = browser(&app_driver, false).await;
    app_page.goto(&proxy_url).await.unwrap();
    let transport = || async { text(&app_page, "#state").await };
    eventually("the app connects on long polling", || async {
        let state = transport().await;
        (state == "connected (polling)").then_some(()).ok_or(state)
    })
    .await;
    eventually("the app upgrades to a WebSocket", || async {
        let state = transport().await;
        (state == "connected (websocket)")
            .then_some(())
            .ok_or(state)
    })
    .await;

    let session = Session::on(base.clone(), vec![server]).await;
    let page = &session.page;
    eventually("Your app shows held letters and a phone call with its heartbeat", || async {
        let kinds = page
            .execute(
                "return [...document.querySelectorAll(\"[data-testid='app-channel']\")].map(r => r.dataset.kind)",
                vec![],
            )
            .await
            .unwrap();
        let heartbeat = if kinds.to_string().contains("phone") {
            app_cell(page, "phone", "app-heartbeat").await
        } else {
            String::new()
        };
        (kinds.to_string().contains("held") && heartbeat == "every 2.0 s")
            .then_some(())
            .ok_or(format!("{kinds} · {heartbeat}"))
    })
    .await;
    // Its page, script, handshake and uploads are no channels: said aside, in one sentence.
    let report: serde_json::Value = http
        .get(format!("{base}/api/app"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = report["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        names
            .iter()
            .all(|name| !name.starts_with("POST ") && !name.ends_with(".js")),
        "{names:?}"
    );
    let aside = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["text"].as_str())
        .find(|text| text.starts_with("Aside from its channels: your page (2 files"))
        .unwrap_or_else(|| panic!("no word on the page's files: {:#}", report["findings"]));
    assert!(aside.contains("upload"), "{aside}");
    let held = report["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "held")
        .unwrap();
    assert!(
        held["uploads"].as_u64().unwrap() >= 1,
        "its POSTs are its long-polling session's uploads: {held:#}"
    );
    let phone = report["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "phone")
        .unwrap();
    assert_eq!(
        phone["uploads"].as_u64(),
        Some(0),
        "a socket sends up on itself, not in its polling's POSTs: {phone:#}"
    );
    show_app(page).await;
    save_screenshot(page, "e2e-your-app.png").await;

    // A drop: the app redials, and the page says in how long.
    let connects = || async {
        app_page
            .execute("return window.connects", vec![])
            .await
            .unwrap()
            .as_u64()
            .unwrap_or(0)
    };
    let before = connects().await;
    click(page, "app-fault-drop").await;
    eventually("the app redials after the drop", || async {
        let now = connects().await;
        let reconnects = app_cell(page, "phone", "app-reconnects").await;
        let findings = text(page, "[data-testid='app-experiments']").await;
        (now > before
            && reconnects != "0"
            && findings.contains("your phone call (/socket.io/) redialed in"))
        .then_some(())
        .ok_or(format!(
            "connects {before} → {now}, reconnects {reconnects}: {findings}"
        ))
    })
    .await;
    eventually("the app is back on its WebSocket", || async {
        let state = transport().await;
        (state == "connected (websocket)")
            .then_some(())
            .ok_or(state)
    })
    .await;

    // A proxy's idle timeout shorter than the app's ping interval cuts the quiet socket.
    page.execute(
        "const input = document.querySelector(\"[data-testid='app-idle-ms']\");
         input.value = '1200';
         input.dispatchEvent(new Event('change', { bubbles: true }));",
        vec![],
    )
    .await
    .unwrap();
    click(page, "app-fault-idle_timeout").await;
    eventually(
        "the idle timeout cuts the phone call and says why",
        || async {
            let cuts = app_cell(page, "phone", "app-cuts").await;
            let findings = text(page, "[data-testid='app-experiments']").await;
            (!cuts.ends_with("/ 0")
                && findings.contains("idle timeout cut your phone call (/socket.io/)"))
            .then_some(())
            .ok_or(format!("cuts {cuts}: {findings}"))
        },
    )
    .await;
    click(page, "app-fault-clear").await;

    // Half-open for 30 s: Socket.IO's own ping timeout (2 s + 5 s) finds the dead line; its redial is
    // held until the path comes back, and the page recovers without a reload. The finding's times are
    // judged against the page's own events and the app's own log.
    eventually("the app is back on its WebSocket", || async {
        let state = transport().await;
        (state == "connected (websocket)")
            .then_some(())
            .ok_or(state)
    })
    .await;
    page.execute(
        "const select = document.querySelector(\"select[aria-label='Duration']\");
         select.value = '30000';
         select.dispatchEvent(new Event('change', { bubbles: true }));",
        vec![],
    )
    .await
    .unwrap();
    let page_clock = || async {
        app_page
            .execute("return Date.now()", vec![])
            .await
            .unwrap()
            .as_f64()
            .unwrap()
    };
    let began = page_clock().await;
    click(page, "app-fault-half_open").await;
    eventually("the half-open is noticed, in words", || async {
        let findings = text(page, "[data-testid='app-experiments']").await;
        (findings.contains("half-open, your phone call (/socket.io/) noticed after"))
            .then_some(())
            .ok_or(findings)
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let experiment = loop {
        let report: serde_json::Value = http
            .get(format!("{base}/api/app"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let phone = report["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["kind"] == "phone")
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .unwrap();
        let experiment = report["experiments"][0].clone();
        if experiment["figures"][&phone]["recovered_ms"].is_f64() {
            break experiment["figures"][&phone].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the page did not recover after the half-open: {experiment:#}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // The proxy hands a message to the browser's socket a moment before the page's handler runs.
    eventually("the page has a packet over its WebSocket again", || async {
        let got = app_page
            .execute(
                "return window.events.some(e => e.event === 'frame' && e.transport === 'websocket' && e.at > arguments[0])",
                vec![serde_json::json!(began + 29_000.0)],
            )
            .await
            .unwrap();
        (got == serde_json::json!(true)).then_some(()).ok_or(got.to_string())
    })
    .await;
    let page_events = app_page
        .execute("return window.events", vec![])
        .await
        .unwrap();
    let page_event = |event: &str| {
        page_events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == event && e["at"].as_f64().unwrap() > began)
            .map(|e| {
                (
                    e["at"].as_f64().unwrap(),
                    e["why"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .next()
            .unwrap_or_else(|| panic!("no {event} on the page since the half-open: {page_events}"))
    };
    let (gave_up, why) = page_event("disconnect");
    assert_eq!(
        why, "ping timeout",
        "the page's own heartbeat found the dead line"
    );
    let near = |what: &str, lab: f64, log: f64| {
        assert!(
            (lab - log).abs() <= 1_000.0,
            "{what}: the lab says {lab}, the page or the app {log} ({:+.0} ms)",
            lab - log
        );
    };
    near(
        "noticed",
        experiment["noticed_ms"].as_f64().unwrap(),
        gave_up,
    );
    let (back, _) = page_event("connect");
    assert!(
        back - began >= 29_000.0,
        "the page got through during the half-open"
    );
    // Messages are again on the phone call when the page's first packet comes over its WebSocket
    // (the upgrade's probe, a ping or a chat): its `connect` comes over letters first (Engine.IO
    // opens with polling and then upgrades), so the connect itself is not the phone call's recovery.
    let on_the_phone = page_events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["event"] == "frame"
                && e["transport"] == "websocket"
                && e["at"].as_f64().unwrap() >= back
        })
        .map(|e| e["at"].as_f64().unwrap())
        .next()
        .unwrap_or_else(|| {
            panic!("no packet on the page's WebSocket since it reconnected: {page_events}")
        });
    println!("the half-open's figures: {experiment:#}\nthe page's events: {page_events}");
    near(
        "recovered",
        experiment["recovered_ms"].as_f64().unwrap(),
        on_the_phone,
    );
    let app_connect = app
        .log()
        .iter()
        .filter(|e| e["event"] == "connect" && e["at"].as_f64().unwrap() > began + 29_000.0)
        .map(|e| e["at"].as_f64().unwrap())
        .next()
        .expect("the app's own log has the page's reconnect");
    near(
        "redialed",
        experiment["redialed_ms"].as_f64().unwrap(),
        app_connect,
    );
    eventually("the page says it recovered, in words", || async {
        let findings = text(page, "[data-testid='app-experiments']").await;
        (findings.contains("Messages reached the browser on your phone call (/socket.io/) again"))
            .then_some(())
            .ok_or(findings)
    })
    .await;
    eventually(
        "the app is back on its WebSocket, without a reload",
        || async {
            let state = transport().await;
            (state == "connected (websocket)")
                .then_some(())
                .ok_or(state)
        },
    )
    .await;
    let findings = text(page, "[data-testid='app-findings']").await;
    println!("findings about the Socket.IO app:\n{findings}");
    assert!(
        findings.contains("Your phone call (/socket.io/) heartbeats every 2.0 s"),
        "the pace of its pings, across its reconnects: {findings}"
    );
    // A custom path of the person's own figures, on every channel of the app.
    page.execute(
        "document.querySelector('.app-view details.custom').open = true;
         const rtt = document.querySelector(\"[data-testid='app-network-rtt']\");
         rtt.value = '400';
         rtt.dispatchEvent(new Event('change', { bubbles: true }));",
        vec![],
    )
    .await
    .unwrap();
    click(page, "app-network-apply").await;
    eventually("the custom path is in effect on the app", || async {
        let said = text(page, "[data-testid='app-said']").await;
        let in_effect = page
            .execute(
                "return document.querySelector(\"[data-testid='app-in-effect']\")?.textContent || ''",
                vec![],
            )
            .await
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_owned();
        (said.starts_with("Every channel of your app now runs over custom (400 ± 50 ms")
            && in_effect.contains("custom (400 ± 50 ms"))
        .then_some(())
        .ok_or(format!("{said} | {in_effect}"))
    })
    .await;
    show_app(page).await;
    save_screenshot(page, "e2e-your-app-faults.png").await;

    // The HAR download opens in the page's HAR import with the same channels.
    let har = http
        .get(format!("{base}/api/app/har"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        har.headers()["content-disposition"],
        "attachment; filename=\"your-app.har\""
    );
    let file = workspace_root().join("artifacts/your-app.har");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, har.bytes().await.unwrap()).unwrap();
    let report: serde_json::Value = http
        .get(format!("{base}/api/app"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    findings_agree_with_their_rows(&report);
    let mut live: Vec<String> = report["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap().to_owned())
        .collect();
    live.sort();
    page.find(Locator::Css("[data-testid='open-har']"))
        .await
        .unwrap()
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    eventually("the downloaded HAR opens with the same channels", || async {
        let imported = page
            .execute(
                "return [...document.querySelectorAll(\".har [data-testid='imported-channel']\")].map(c => c.dataset.kind)",
                vec![],
            )
            .await
            .unwrap();
        let mut kinds: Vec<String> = imported
            .as_array()
            .map(|kinds| kinds.iter().filter_map(|k| k.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        kinds.sort();
        (kinds == live).then_some(()).ok_or(format!("{kinds:?} against {live:?}"))
    })
    .await;
    app_page.close().await.unwrap();
    session.close().await;
}

/// A framework's app through the lab, as its page in headless Chromium uses it.
struct Framework<'a> {
    /// The app (`e2e/apps/`) and its arguments after the port.
    script: &'a str,
    args: &'a [&'a str],
    /// The page to open, path and query.
    page: &'a str,
    /// The channel expected for its endpoint: its kind and how its name ends.
    kind: &'a str,
    name_end: &'a str,
    /// Its heartbeat's pace in ms, and what a swallowed beat's data holds (`None`: ping frames); no
    /// heartbeat at all when `None`.
    beat: Option<(f64, Option<&'a str>)>,
    /// The page's own event that says it is connected again (`None`: a channel that never redials,
    /// each letter is a request of its own).
    reopened: Option<&'a str>,
    /// How the page counts the data it got.
    counter: &'a str,
    /// What the report's findings about the app must say, in part.
    says: &'a [&'a str],
}

/// Every pace a text states (`every 2.0 s`, `every 850 ms`), in ms.
fn paces_in(text: &str) -> Vec<f64> {
    text.match_indices("every ")
        .filter_map(|(at, _)| {
            let mut words = text[at + 6..].split_whitespace();
            let number: f64 = words.next()?.parse().ok()?;
            match words.next()?.trim_end_matches([',', '.', ':', ')', ';']) {
                "ms" => Some(number),
                "s" => Some(number * 1_000.0),
                _ => None,
            }
        })
        .collect()
}

/// No finding contradicts the row of its channel: a heartbeat's pace it names is the row's (the live
/// findings exactly, an experiment's frozen words within 15 %), "no heartbeat recognised" stands beside
/// no heartbeat, and "nothing new N of M" is the row's empty answers of its requests.
fn findings_agree_with_their_rows(report: &serde_json::Value) {
    let rows = report["channels"].as_array().unwrap();
    let live = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f, true));
    let frozen = report["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["findings"].as_array().unwrap().iter().map(|f| (f, false)));
    for (finding, is_live) in live.chain(frozen) {
        let Some(row) = rows.iter().find(|row| row["id"] == finding["channel"]) else {
            continue;
        };
        let text = finding["text"].as_str().unwrap();
        let beat = row["heartbeat_ms"].as_f64();
        for pace in paces_in(text) {
            // Letters' own pace ("kept asking every …") is not a heartbeat's.
            if !text.contains("heartbeat") {
                continue;
            }
            let beat =
                beat.unwrap_or_else(|| panic!("{text:?} beside a row with no heartbeat: {row:#}"));
            let agrees = if is_live {
                switchboard_shared::format::format_ms(pace)
                    == switchboard_shared::format::format_ms(beat)
            } else {
                (pace - beat).abs() <= 0.15 * beat
            };
            assert!(
                agrees,
                "{text:?} beside a heartbeat every {beat} ms: {row:#}"
            );
        }
        if text.contains("No heartbeat recognised") {
            assert!(beat.is_none(), "{text:?} beside {row:#}");
        }
        if is_live && let Some(at) = text.find("% of the time (") {
            let counts: Vec<u64> = text[at + 15..]
                .split([' ', ':', ')'])
                .filter_map(|word| word.parse().ok())
                .take(2)
                .collect();
            assert_eq!(
                counts,
                vec![
                    row["empty_answers"].as_u64().unwrap(),
                    row["requests"].as_u64().unwrap()
                ],
                "{text:?} beside {row:#}"
            );
        }
    }
}

/// Runs `framework` through the lab, judged against its page's own events: one channel of its kind
/// for its endpoint, the heartbeat's true pace (± 15 %), a drop's redial within half a second of the
/// page's own reconnect, and `no_heartbeat` swallowing the heartbeat only — the page's data keeps
/// coming, and the HAR marks only the beats as what the browser did not get.
async fn through_the_lab(framework: Framework<'_>) {
    use switchboard_client::node_app::NodeApp;
    let app = NodeApp::start(framework.script, framework.args);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = server_config(&built_dashboard());
    config.upstream = Some(switchboard_server::proxy::Upstream::parse(&app.url()).unwrap());
    config.proxy_addr = "127.0.0.1:0".parse().unwrap();
    let _server = Running::spawn(listener, config);
    // Idle kept-alive connections are not reused after the test's pauses: the server may close one
    // just as it is asked again.
    let http = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let report = || async {
        loop {
            if let Ok(answer) = http.get(format!("{base}/api/app")).send().await
                && answer.status() == 200
            {
                break answer.json::<serde_json::Value>().await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let proxy_url = report().await["proxy_url"].as_str().unwrap().to_owned();
    let driver = Driver::start().await;
    let page = browser(&driver, false).await;
    page.goto(&format!(
        "{}{}",
        proxy_url.trim_end_matches('/'),
        framework.page
    ))
    .await
    .unwrap();
    let events = || async {
        page.execute("return window.events", vec![])
            .await
            .unwrap()
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let counted = || async {
        page.execute(&format!("return {}", framework.counter), vec![])
            .await
            .unwrap()
            .as_u64()
            .unwrap_or(0)
    };

    // One channel for its endpoint, of the right kind, with its heartbeat's pace (or none).
    let channel = |report: &serde_json::Value| {
        let found: Vec<serde_json::Value> = report["channels"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["name"].as_str().unwrap().ends_with(framework.name_end))
            .cloned()
            .collect();
        (found.len() == 1)
            .then(|| found[0].clone())
            .ok_or(format!("{:#}", report["channels"]))
    };
    eventually("one channel of its kind, with its heartbeat", || async {
        let found = channel(&report().await)?;
        let pace = found["heartbeat_ms"].as_f64();
        let right_pace = match framework.beat {
            Some((every, _)) => pace.is_some_and(|pace| (pace - every).abs() <= 0.15 * every),
            // Long enough to have shown one if it had one.
            None => pace.is_none() && found["requests"].as_u64().unwrap_or(0) >= 6,
        };
        (found["kind"] == framework.kind && right_pace)
            .then_some(())
            .ok_or(format!("{found:#}"))
    })
    .await;
    let id = channel(&report().await).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let fault = |body: serde_json::Value| {
        let http = http.clone();
        let url = format!("{base}/api/app/faults");
        async move {
            let answer = http.post(url).json(&body).send().await.unwrap();
            assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
        }
    };

    // A drop: the page reconnects on the same channel; the redial is timed as the page's own reconnect,
    // within half a second.
    if let Some(reopened) = framework.reopened {
        let before = events().await.len();
        fault(serde_json::json!({"kind": "drop", "channel": id})).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        let (redialed, seen) = loop {
            let report = report().await;
            let seen = report["experiments"][0]["figures"][&id].clone();
            if let Some(ms) = seen["redialed_ms"].as_f64() {
                break (ms, seen);
            }
            assert!(
                Instant::now() < deadline,
                "no redial: {:#}",
                report["experiments"][0]
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        // The page hears of it a moment after the proxy handed it over.
        let deadline = Instant::now() + PATIENCE;
        let opened = loop {
            let events_now = events().await;
            if let Some(at) = events_now[before..]
                .iter()
                .find(|e| e["event"] == reopened)
                .map(|e| e["at"].as_f64().unwrap())
            {
                break at;
            }
            assert!(
                Instant::now() < deadline,
                "the page got through again after the drop: {:#?}",
                &events_now[before..]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(
            (redialed - opened).abs() <= 500.0,
            "redialed: the lab says {redialed}, the page's {reopened} at {opened} ({:+.0} ms); the lab saw {seen:#}; the page: {:#?}",
            redialed - opened,
            &events().await[before..]
        );
        let after = channel(&report().await).unwrap();
        // A line reconnects; letters are each a request of their own.
        if matches!(framework.kind, "phone" | "radio") {
            assert!(after["reconnects"].as_u64().unwrap() >= 1, "{after:#}");
        }
        assert_eq!(after["id"], id, "the same endpoint after the reconnect");
    }

    // No heartbeat for 7 s: the beat is swallowed, the data keeps coming.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got_before = counted().await;
    fault(serde_json::json!({"kind": "no_heartbeat", "channel": id, "duration_ms": 7_000})).await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    let got = counted().await - got_before;
    assert!(
        got >= 5,
        "the data kept coming while the beat was swallowed: {got} messages in 7 s"
    );
    let swallowed = channel(&report().await).unwrap()["got"]["swallowed"]
        .as_u64()
        .unwrap();
    let har: serde_json::Value = http
        .get(format!("{base}/api/app/har"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let marked: Vec<serde_json::Value> = har["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|entry| {
            ["_webSocketMessages", "_eventSourceMessages"]
                .iter()
                .filter_map(|key| entry[*key].as_array().cloned())
                .flatten()
                .collect::<Vec<_>>()
        })
        .filter(|message| message["_swallowed"] == true)
        .collect();
    match framework.beat {
        Some((every, data)) => {
            let beats = (7_000.0 / every) as u64;
            assert!(
                (beats.saturating_sub(2)..=beats + 1).contains(&swallowed),
                "swallowed {swallowed}: the beats of 7 s"
            );
            // The HAR marks what the browser did not get: the heartbeats, nothing else.
            assert!(
                !marked.is_empty()
                    && marked.iter().all(|message| match data {
                        Some(data) => message["data"].as_str().unwrap_or_default().contains(data),
                        None => message["opcode"] == 9,
                    }),
                "swallowed in the HAR: {marked:#?}"
            );
        }
        None => {
            assert_eq!((swallowed, marked.len()), (0, 0));
            // Nothing recorded in the HAR as not received either.
            eventually("it says there was nothing to swallow", || async {
                let report = report().await;
                let texts = report["experiments"][0]["findings"].to_string();
                texts
                    .contains("No heartbeat recognised on your")
                    .then_some(())
                    .ok_or(texts)
            })
            .await;
        }
    }
    findings_agree_with_their_rows(&report().await);
    let findings = report().await["findings"].to_string();
    for said in framework.says {
        assert!(findings.contains(said), "{said:?} in {findings}");
    }
    page.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs the built dashboard (dist/) and Chromium; `./dev test` runs it with --ignored"]
async fn a_sockjs_app_on_its_websocket_is_one_phone_call_with_its_true_heartbeat() {
    // SockJS beats with WebSocket ping frames on this transport; its session URLs are one endpoint.
    through_the_lab(Framework {
        script: "sockjs-app.cjs",
        args: &["2000"],
        page: "/?transport=websocket",
        kind: "phone",
        name_end: "/sockjs/{server}/{session}/websocket",
        beat: Some((2_000.0, None)),
        reopened: Some("open"),
        counter: "window.messages",
        says: &[],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs the built dashboard (dist/) and Chromium; `./dev test` runs it with --ignored"]
async fn a_sockjs_app_on_xhr_streaming_is_one_endless_letter_with_its_true_heartbeat() {
    through_the_lab(Framework {
        script: "sockjs-app.cjs",
        args: &["2000"],
        page: "/?transport=xhr-streaming",
        kind: "radio",
        name_end: "/sockjs/{server}/{session}/xhr_streaming",
        beat: Some((2_000.0, Some("h"))),
        reopened: Some("open"),
        counter: "window.messages",
        says: &[],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs the built dashboard (dist/) and Chromium; `./dev test` runs it with --ignored"]
async fn a_graphql_ws_app_pinging_every_2_s_beats_every_2_s_its_pongs_paired() {
    // The client pings, the server's pong comes milliseconds later: one beat, every 2 s.
    through_the_lab(Framework {
        script: "graphql-ws-app.cjs",
        args: &[],
        page: "/?keepalive=2000",
        kind: "phone",
        name_end: "/graphql",
        beat: Some((2_000.0, Some("pong"))),
        reopened: Some("connect"),
        counter: "window.ticks",
        says: &[],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs the built dashboard (dist/) and Chromium; `./dev test` runs it with --ignored"]
async fn a_ws_app_with_protocol_pings_beats_at_their_pace_and_its_data_is_no_beat() {
    // Data every second, a ping frame every 2 s: the pings are the beat, however regular the data.
    through_the_lab(Framework {
        script: "ticks-app.cjs",
        args: &["2000"],
        page: "/ws",
        kind: "phone",
        name_end: "/live",
        beat: Some((2_000.0, None)),
        reopened: Some("open"),
        counter: "window.messages",
        says: &["heartbeats every 2.0 s"],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs the built dashboard (dist/) and Chromium; `./dev test` runs it with --ignored"]
async fn an_sse_feed_with_comment_heartbeats_is_a_radio_whose_beat_is_its_comments() {
    through_the_lab(Framework {
        script: "ticks-app.cjs",
        args: &["2000"],
        page: "/sse",
        kind: "radio",
        name_end: "GET /events",
        beat: Some((2_000.0, Some("ping"))),
        reopened: Some("open"),
        counter: "window.messages",
        says: &["EventSource itself never checks them"],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs the built dashboard (dist/) and Chromium; `./dev test` runs it with --ignored"]
async fn etag_polling_is_letters_whose_304s_are_named_and_that_have_no_beat_to_swallow() {
    through_the_lab(Framework {
        script: "ticks-app.cjs",
        args: &["2000"],
        page: "/poll",
        kind: "letters",
        name_end: "GET /state",
        beat: None,
        reopened: None,
        counter: "window.messages",
        says: &["brought nothing new", "204 No Content or 304 Not Modified"],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs the built dashboard (dist/) and Chromium; `./dev test` runs it with --ignored"]
async fn a_sockjs_app_on_xhr_polling_is_one_channel_of_held_letters() {
    // Its data (every second) answers each poll before a heartbeat is due (2 s): no beat is seen, and
    // the lab says there is none to swallow. A drop cuts the poll in flight: sockjs-client closes
    // (1006) and the page opens a new session, whose first poll is the redial.
    through_the_lab(Framework {
        script: "sockjs-app.cjs",
        args: &["2000"],
        page: "/?transport=xhr-polling",
        kind: "held",
        name_end: "/sockjs/{server}/{session}/xhr",
        beat: None,
        reopened: Some("open"),
        counter: "window.messages",
        says: &[],
    })
    .await;
}
