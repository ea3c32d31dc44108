//! Command-line flags (every one also readable from a `SWITCHBOARD_*` environment variable).

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The Switchboard server: one live event stream (host load, a simulated ticker, chat) published four
/// ways at once — short polling, long polling, Server-Sent Events and WebSocket.
#[derive(Debug, Clone, Parser)]
#[command(name = "switchboard-server", version)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "SWITCHBOARD_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// How often the sources speak: quiet (a quote every few seconds), steady (`--ticker-ms` and
    /// `--load-ms`), bursty (silence, then dozens of quotes at once) or firehose (200 quotes a second).
    /// Change it later on the page or with `POST /api/traffic`.
    #[arg(long, env = "SWITCHBOARD_TRAFFIC", default_value = "bursty", value_parser = traffic_pattern)]
    pub traffic: switchboard_shared::Traffic,

    /// Interval of the host-load source in the steady pattern, in milliseconds; 0 turns it off in every
    /// pattern.
    #[arg(long, env = "SWITCHBOARD_LOAD_MS", default_value_t = 1000)]
    pub load_ms: u64,

    /// Interval of the simulated ticker in the steady pattern, in milliseconds; 0 turns it off in every
    /// pattern.
    #[arg(long, env = "SWITCHBOARD_TICKER_MS", default_value_t = 500)]
    pub ticker_ms: u64,

    /// Seed of the ticker's random walk, so a run can be repeated.
    #[arg(long, env = "SWITCHBOARD_TICKER_SEED", default_value_t = 7)]
    pub ticker_seed: u64,

    /// Interval of heartbeats on the SSE and WebSocket lanes in milliseconds (at least 10).
    #[arg(long, env = "SWITCHBOARD_HEARTBEAT_MS", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(10..))]
    pub heartbeat_ms: u64,

    /// How many events the server keeps for resumes (at least 1).
    #[arg(long, env = "SWITCHBOARD_HISTORY", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub history: u64,

    /// The longest a long poll may ask to be held, in milliseconds.
    #[arg(long, env = "SWITCHBOARD_MAX_WAIT_MS", default_value_t = 60_000)]
    pub max_wait_ms: u64,

    /// The reconnect delay the SSE lane suggests to browsers (`retry:`), in milliseconds.
    #[arg(long, env = "SWITCHBOARD_SSE_RETRY_MS", default_value_t = 1000)]
    pub sse_retry_ms: u64,

    /// A name for this instance, reported to clients; defaults to `local-<pid>`.
    #[arg(long, env = "SWITCHBOARD_INSTANCE")]
    pub instance: Option<String>,

    /// The UDP address of the WebTransport (HTTP/3 over QUIC) endpoint; by default the HTTP port's number
    /// on 127.0.0.1 (or any free port when that one is taken — `GET /api/webtransport` tells the page).
    #[arg(long, env = "SWITCHBOARD_WEBTRANSPORT_ADDR")]
    pub webtransport_addr: Option<SocketAddr>,

    /// A directory of static files (the built frontend) served at `/`.
    #[arg(long, env = "SWITCHBOARD_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,

    /// The token that lets a client inject faults (`Authorization: Bearer TOKEN`). Without one, only
    /// clients on this machine may, and only while the server listens on a loopback address.
    #[arg(long, env = "SWITCHBOARD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Origins (`scheme://host:port`) allowed to open the WebSocket besides the server's own; `*` allows
    /// any. Comma-separated in the environment variable.
    #[arg(long, env = "SWITCHBOARD_ALLOW_ORIGIN", value_delimiter = ',')]
    pub allow_origin: Vec<String>,

    /// Host names (besides loopback names and IP addresses) under which this server may be reached for
    /// what changes things — chat posts, faults, network conditions, traffic — and for calls: a page on
    /// any other name (a DNS-rebinding attack) is refused. Comma-separated in the environment variable.
    #[arg(long, env = "SWITCHBOARD_PUBLIC_HOST", value_delimiter = ',')]
    pub public_host: Vec<String>,

    /// Behind a reverse proxy (see `deploy/nginx/`): count the per-client limits (streams, chat, fault
    /// injection from loopback) against the address the proxy forwards in `X-Forwarded-For`, and leave
    /// the TCP connection count per address to the proxy (every connection comes from it). Only set it
    /// when the server can be reached through the proxy alone.
    #[arg(long, env = "SWITCHBOARD_TRUST_PROXY")]
    pub trust_proxy: bool,

    /// The most streams, calls and held long polls one lane serves at once; 0 means no limit.
    #[arg(
        long,
        env = "SWITCHBOARD_MAX_CONNECTIONS_PER_LANE",
        default_value_t = 20_000
    )]
    pub max_connections_per_lane: usize,

    /// The most streams, calls and held long polls one client address may hold open at once, over all
    /// lanes; 0 means no limit (load tests from one machine need that).
    #[arg(
        long,
        env = "SWITCHBOARD_MAX_CONNECTIONS_PER_CLIENT",
        default_value_t = 64
    )]
    pub max_connections_per_client: usize,

    /// The most TCP connections one client address may hold open at once (kept-alive, idle or busy);
    /// past it a new one is answered 503 and closed. By default four times
    /// `--max-connections-per-client` (256), and no limit when that is 0.
    #[arg(long, env = "SWITCHBOARD_MAX_TCP_PER_CLIENT")]
    pub max_tcp_per_client: Option<usize>,

    /// Chat messages one client address may send per second (bursts of twice that are allowed).
    #[arg(long, env = "SWITCHBOARD_CHAT_PER_SECOND", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub chat_per_second: u32,

    /// Put your own app through the lab: forward everything that reaches `--proxy-addr` to this
    /// `http://HOST:PORT` (HTTPS upstreams are not supported), recording its traffic for the dashboard.
    #[arg(long, env = "SWITCHBOARD_UPSTREAM", value_parser = upstream_url)]
    pub upstream: Option<crate::proxy::Upstream>,

    /// How long the proxy waits for the app's answer to a request's head (then answers `504`), and for
    /// each next piece of a request's body (then `408`), in milliseconds. Held letters and streams are
    /// not cut once their head came.
    #[arg(long, env = "SWITCHBOARD_UPSTREAM_TIMEOUT_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(100..))]
    pub upstream_timeout_ms: u64,

    /// Keep the app's cookies and credentials (`Authorization`, `Cookie`, `Set-Cookie`,
    /// `Proxy-Authorization`) in the proxy's recording and its HAR as they came; by default their values
    /// are redacted.
    #[arg(long, env = "SWITCHBOARD_RECORD_SECRETS")]
    pub record_secrets: bool,

    /// Where the proxy in front of `--upstream` listens: open your app there.
    #[arg(long, env = "SWITCHBOARD_PROXY_ADDR", default_value = "127.0.0.1:4000")]
    pub proxy_addr: SocketAddr,

    /// Share the event stream and its history with other instances through this Redis
    /// (`redis://HOST:PORT`). Without it the server runs alone, with no other service.
    #[arg(long, env = "SWITCHBOARD_REDIS", value_parser = redis_url)]
    pub redis: Option<String>,

    /// Run every lane over this emulated network from the start: loopback, lan, cable, 4g, 3g,
    /// satellite or lossy (change it later on the page or with `POST /api/network`).
    #[arg(long, env = "SWITCHBOARD_NETWORK", value_parser = switchboard_shared::network::preset_name)]
    pub network: Option<String>,

    /// The longest any request that is not a stream or a held letter may take, in milliseconds.
    #[arg(long, env = "SWITCHBOARD_REQUEST_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..))]
    pub request_timeout_ms: u64,

    /// After a shutdown signal, how long open connections get to finish (streams and calls are ended,
    /// held letters answered) before the rest are abandoned and the process exits, in milliseconds.
    #[arg(long, env = "SWITCHBOARD_SHUTDOWN_TIMEOUT_MS", default_value_t = 5_000)]
    pub shutdown_timeout_ms: u64,

    /// How long a kept-alive connection may sit idle between requests before it is closed, in
    /// milliseconds.
    #[arg(long, env = "SWITCHBOARD_IDLE_TIMEOUT_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(100..))]
    pub idle_timeout_ms: u64,

    /// How long a reader may leave what it was sent untaken before its connection is cut, on every lane
    /// (a stream, a letter or a call whose client stopped reading), in milliseconds.
    #[arg(long, env = "SWITCHBOARD_SEND_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..))]
    pub send_timeout_ms: u64,

    /// The largest request head (request line and headers) accepted, in bytes; a larger one is answered
    /// 431 and its connection closed.
    #[arg(long, env = "SWITCHBOARD_MAX_HEAD_BYTES", default_value_t = 16 * 1024,
          value_parser = clap::value_parser!(u64).range(8192..=1024 * 1024))]
    pub max_head_bytes: u64,
}

/// Refuses a traffic pattern that does not exist, naming the ones that do.
fn traffic_pattern(name: &str) -> Result<switchboard_shared::Traffic, String> {
    switchboard_shared::Traffic::from_name(name).ok_or_else(|| {
        format!(
            "unknown traffic pattern (want one of {})",
            switchboard_shared::Traffic::ALL
                .map(|p| p.as_str())
                .join(", ")
        )
    })
}

/// Refuses a network preset that does not exist, naming the ones that do.
/// Refuses a Redis address that cannot be one, at start rather than at the first publish.
fn redis_url(url: &str) -> Result<String, String> {
    redis::Client::open(url)
        .map(|_| url.to_owned())
        .map_err(|err| format!("not a Redis URL (want redis://HOST:PORT): {err}"))
}

impl Config {
    /// The configuration for tests and embedding: both sources off, everything else at its default.
    pub fn quiet() -> Config {
        let mut config = Config::parse_from(["switchboard-server"]);
        config.load_ms = 0;
        config.ticker_ms = 0;
        config
    }

    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }

    /// Flags given that do nothing in the traffic pattern the server starts in, each said as a
    /// sentence at start: a pace set for the steady pattern is silently unused under the others.
    pub fn unused_flags(&self) -> Vec<String> {
        use switchboard_shared::Traffic;
        if self.traffic == Traffic::Steady {
            return Vec::new();
        }
        let defaults = Config::parse_from(["switchboard-server"]);
        [
            ("--ticker-ms", self.ticker_ms, defaults.ticker_ms),
            ("--load-ms", self.load_ms, defaults.load_ms),
        ]
        .into_iter()
        .filter(|&(_, value, default)| value != 0 && value != default)
        .map(|(flag, value, _)| {
            format!(
                "{flag} {value} paces the steady pattern only, and the stream starts {}: start with \
                 --traffic steady (or choose Steady on the page) for it to take effect",
                self.traffic
            )
        })
        .collect()
    }

    /// Who may inject faults: a token when one is configured; otherwise loopback clients, and nobody at
    /// all when the server is reachable from other machines.
    pub fn fault_auth(&self) -> switchboard_shared::FaultAuth {
        use switchboard_shared::FaultAuth;
        match (&self.admin_token, self.addr.ip().is_loopback()) {
            (Some(_), _) => FaultAuth::Token,
            (None, true) => FaultAuth::Loopback,
            (None, false) => FaultAuth::Disabled,
        }
    }

    /// The most TCP connections one client address may hold, if limited.
    pub fn tcp_per_client(&self) -> Option<usize> {
        if self.trust_proxy {
            return None;
        }
        let limit = self
            .max_tcp_per_client
            .unwrap_or(self.max_connections_per_client.saturating_mul(4));
        (limit > 0).then_some(limit)
    }

    pub fn send_timeout(&self) -> Duration {
        Duration::from_millis(self.send_timeout_ms)
    }

    pub fn instance_name(&self) -> String {
        self.instance
            .clone()
            .unwrap_or_else(|| format!("local-{}", std::process::id()))
    }
}

fn upstream_url(text: &str) -> Result<crate::proxy::Upstream, String> {
    crate::proxy::Upstream::parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_docs() {
        let config = Config::parse_from(["switchboard-server"]);
        assert_eq!(config.addr.to_string(), "127.0.0.1:3000");
        assert_eq!((config.history, config.heartbeat_ms), (10_000, 2000));
        // The default shows the lesson: mostly empty letters, and bursts that letters carry late.
        assert_eq!(config.traffic, switchboard_shared::Traffic::Bursty);
        assert_eq!(config.tcp_per_client(), Some(256));
        assert!(config.unused_flags().is_empty(), "the defaults say nothing");
        let fast = Config::parse_from(["s", "--ticker-ms", "5"]);
        let said = fast.unused_flags();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].starts_with(
                "--ticker-ms 5 paces the steady pattern only, and the stream starts bursty"
            ),
            "{said:?}"
        );
        let steady = Config::parse_from(["s", "--ticker-ms", "5", "--traffic", "steady"]);
        assert!(steady.unused_flags().is_empty());
        let unlimited = Config::parse_from(["s", "--max-connections-per-client", "0"]);
        assert_eq!(unlimited.tcp_per_client(), None);
    }

    #[test]
    fn fault_injection_needs_a_token_beyond_loopback() {
        use switchboard_shared::FaultAuth;
        let auth = |args: &[&str]| Config::parse_from(args).fault_auth();
        assert_eq!(auth(&["s"]), FaultAuth::Loopback);
        assert_eq!(auth(&["s", "--addr", "0.0.0.0:3000"]), FaultAuth::Disabled);
        assert_eq!(
            auth(&["s", "--addr", "0.0.0.0:3000", "--admin-token", "x"]),
            FaultAuth::Token
        );
        assert_eq!(auth(&["s", "--admin-token", "x"]), FaultAuth::Token);
    }

    #[test]
    fn nonsense_values_are_refused() {
        assert!(Config::try_parse_from(["s", "--history", "0"]).is_err());
        assert!(Config::try_parse_from(["s", "--heartbeat-ms", "1"]).is_err());
        assert!(Config::try_parse_from(["s", "--addr", "nowhere"]).is_err());
        assert!(Config::try_parse_from(["s", "--redis", "http://x"]).is_err());
        assert!(Config::try_parse_from(["s", "--network", "5g"]).is_err());
        assert!(Config::try_parse_from(["s", "--traffic", "loud"]).is_err());
        let config = Config::try_parse_from(["s", "--traffic", "quiet"]).unwrap();
        assert_eq!(config.traffic, switchboard_shared::Traffic::Quiet);
        let config = Config::try_parse_from(["s", "--network", "3g"]).unwrap();
        assert_eq!(config.network.as_deref(), Some("3g"));
        let config = Config::try_parse_from(["s", "--redis", "redis://127.0.0.1:6379"]).unwrap();
        assert_eq!(config.redis.as_deref(), Some("redis://127.0.0.1:6379"));
    }
}
