//! An nginx of a test's own (Debian's package; `./dev test` installs it) running the shipped
//! configuration, `deploy/nginx/switchboard.conf`, on a free loopback port in front of the given
//! instances, with its pid, logs, temporary files and cache in a directory of its own; stopped when
//! dropped. It panics, saying how to install it, when `nginx` is missing, and with its error log when it
//! does not start.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The configuration users deploy, compiled in so the tests run exactly that.
pub const CONFIG: &str = include_str!("../../deploy/nginx/switchboard.conf");

/// How long nginx may take to listen after it is started.
const STARTUP: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Nginx {
    pub port: u16,
    runtime: PathBuf,
    child: Option<Child>,
}

/// The shipped configuration with its placeholders filled in.
pub fn render(listen: &str, upstreams: &[SocketAddr], runtime: &str) -> String {
    let servers: String = upstreams
        .iter()
        .map(|addr| format!("server {addr}; "))
        .collect();
    CONFIG
        .replace("@LISTEN@", listen)
        .replace("@UPSTREAMS@", &servers)
        .replace("@RUNTIME@", runtime)
}

impl Nginx {
    pub fn start(upstreams: &[SocketAddr]) -> Nginx {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let runtime =
            std::env::temp_dir().join(format!("switchboard-nginx-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&runtime);
        std::fs::create_dir_all(&runtime).expect("a directory for nginx");
        let config = runtime.join("nginx.conf");
        let text = render(
            &format!("127.0.0.1:{port}"),
            upstreams,
            &runtime.to_string_lossy(),
        );
        std::fs::write(&config, text).expect("nginx's configuration is written");
        let child = Command::new("nginx")
            .arg("-p")
            .arg(&runtime)
            .arg("-e")
            .arg(runtime.join("error.log"))
            .arg("-c")
            .arg(&config)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "nginx is not on PATH: `./dev test` installs it (apt-get install nginx) and looks in \
                 /usr/sbin, where Debian puts it",
            );
        let mut nginx = Nginx {
            port,
            runtime,
            child: Some(child),
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = nginx
                .child
                .as_mut()
                .is_some_and(|child| matches!(child.try_wait(), Ok(Some(_))));
            if exited || started.elapsed() > STARTUP {
                panic!("nginx did not start:\n{}", nginx.error_log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What nginx logged (warnings and errors), for a failing test to show.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.runtime.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Asked to stop (not killed): a killed master would leave its worker listening.
            let _ = Command::new("nginx")
                .arg("-p")
                .arg(&self.runtime)
                .arg("-e")
                .arg(self.runtime.join("error.log"))
                .arg("-c")
                .arg(self.runtime.join("nginx.conf"))
                .args(["-s", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + STARTUP;
            while !matches!(child.try_wait(), Ok(Some(_))) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.runtime);
    }
}
