//! A real app this project did not write, run as a test's own process: the Node.js apps in `e2e/apps/`
//! (a Socket.IO 4 chat with its own page, a `ws` server, a plain HTTP app with an EventSource feed),
//! on their packages from npm, which `./dev test` installs into `.tools/apps/`. Killed when dropped.
//! It panics, saying how to install them, when Node.js or the packages are missing.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long an app may take to say it listens.
const STARTUP: Duration = Duration::from_secs(15);

/// One of the apps in `e2e/apps/`, listening on a loopback port.
#[derive(Debug)]
pub struct NodeApp {
    pub port: u16,
    child: Child,
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
        let root = workspace();
        let modules = root.join(".tools/apps/node_modules");
        assert!(
            modules.join("socket.io").is_dir() && modules.join("ws").is_dir(),
            "the test apps' packages are missing from {}: `./dev test` installs them (npm ci in .tools/apps)",
            modules.display()
        );
        let mut child = Command::new("node")
            .arg(root.join("e2e/apps").join(script))
            .arg("0")
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
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line.strip_prefix("listening on ") {
                    let _ = sender.send(port.trim().parse::<u16>().ok());
                }
            }
        });
        let deadline = Instant::now() + STARTUP;
        let port = receiver
            .recv_timeout(deadline - Instant::now())
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("{script} did not say it listens"));
        NodeApp { port, child }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for NodeApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
