//! A real app this project did not write, run as a test's own process: the Node.js apps in `e2e/apps/`
//! (a Socket.IO 4 chat with its own page and client, a graphql-ws subscription with its own page, a `ws`
//! server, a plain HTTP app with an EventSource feed),
//! on their packages from npm, which `./dev test` installs into `.tools/apps/`. Killed when dropped.
//! It panics, saying how to install them, when Node.js or the packages are missing.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long an app may take to say it listens.
const STARTUP: Duration = Duration::from_secs(15);

/// One of the apps in `e2e/apps/`, listening on a loopback port.
#[derive(Debug)]
pub struct NodeApp {
    pub port: u16,
    child: Child,
    log: Arc<Mutex<Vec<serde_json::Value>>>,
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the client crate lives in the workspace")
        .to_owned()
}

impl NodeApp {
    /// Starts `e2e/apps/{script}` with `args` after its port (a free one, chosen by the app).
    pub fn start(script: &str, args: &[&str]) -> NodeApp {
        NodeApp::start_on(0, script, args)
    }

    /// Starts `e2e/apps/{script}` on `port` (0: a free one): an app restarted where it was.
    pub fn start_on(port: u16, script: &str, args: &[&str]) -> NodeApp {
        let port = port.to_string();
        let mut all = vec![port.as_str()];
        all.extend_from_slice(args);
        let (child, log, said) = spawn(script, &all);
        let port = said
            .recv_timeout(STARTUP)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("{script} did not say it listens"));
        NodeApp { port, child, log }
    }

    /// Runs `e2e/apps/{script}` with `args` as a client (it listens on nothing): its log is kept as an
    /// app's is.
    pub fn client(script: &str, args: &[&str]) -> NodeApp {
        let (child, log, _) = spawn(script, args);
        NodeApp {
            port: 0,
            child,
            log,
        }
    }

    /// The app's own server log so far: each `log {json}` line it printed, in order (the Socket.IO app
    /// logs `{"at": unix_ms, "event": "connect" | "disconnect", "id", "why"}`) — what a test judges the
    /// lab's findings against.
    pub fn log(&self) -> Vec<serde_json::Value> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

type Log = Arc<Mutex<Vec<serde_json::Value>>>;

/// Runs node on `e2e/apps/{script}`: the process, its log as it comes, and the port it says it listens
/// on.
fn spawn(script: &str, args: &[&str]) -> (Child, Log, std::sync::mpsc::Receiver<Option<u16>>) {
    let root = workspace();
    let modules = root.join(".tools/apps/node_modules");
    assert!(
        [
            "socket.io",
            "socket.io-client",
            "ws",
            "graphql",
            "graphql-ws",
            "sockjs",
            "sockjs-client"
        ]
        .iter()
        .all(|package| modules.join(package).is_dir()),
        "the test apps' packages are missing from {}: `./dev test` installs them (npm ci in .tools/apps)",
        modules.display()
    );
    let mut child = Command::new("node")
        .arg(root.join("e2e/apps").join(script))
        .args(args)
        .env("NODE_PATH", &modules)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect(
            "node is not installed: `./dev test` installs Node.js (apt-get install nodejs npm)",
        );
    let stdout = child.stdout.take().expect("piped");
    let (sender, receiver) = std::sync::mpsc::channel();
    let log = Arc::new(Mutex::new(Vec::new()));
    let kept = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(port) = line.strip_prefix("listening on ") {
                let _ = sender.send(port.trim().parse::<u16>().ok());
            } else if let Some(entry) = line.strip_prefix("log ")
                && let Ok(entry) = serde_json::from_str(entry)
            {
                kept.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
            }
        }
    });
    (child, log, receiver)
}

impl Drop for NodeApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
