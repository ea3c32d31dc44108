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

    /// Interval of the host-load source in milliseconds; 0 turns it off.
    #[arg(long, env = "SWITCHBOARD_LOAD_MS", default_value_t = 1000)]
    pub load_ms: u64,

    /// Interval of the simulated ticker in milliseconds; 0 turns it off.
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

    /// A directory of static files (the built frontend) served at `/`.
    #[arg(long, env = "SWITCHBOARD_STATIC_DIR")]
    pub static_dir: Option<PathBuf>,
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

    pub fn instance_name(&self) -> String {
        self.instance
            .clone()
            .unwrap_or_else(|| format!("local-{}", std::process::id()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_docs() {
        let config = Config::parse_from(["switchboard-server"]);
        assert_eq!(config.addr.to_string(), "127.0.0.1:3000");
        assert_eq!((config.history, config.heartbeat_ms), (10_000, 2000));
    }

    #[test]
    fn nonsense_values_are_refused() {
        assert!(Config::try_parse_from(["s", "--history", "0"]).is_err());
        assert!(Config::try_parse_from(["s", "--heartbeat-ms", "1"]).is_err());
        assert!(Config::try_parse_from(["s", "--addr", "nowhere"]).is_err());
    }
}
