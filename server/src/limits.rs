//! What one client may take: open connections per lane and per client address, chat messages per
//! second, and which web origins may open the phone line. Every refusal is a clear error (a status and
//! a readable message), and none of it costs the other clients anything.

use axum::http::{HeaderMap, header};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use switchboard_shared::{LaneId, PerLane};
use tokio::time::Instant;

use crate::config::Config;
use crate::error::AppError;

/// How many client addresses the chat limiter remembers before it forgets idle ones.
const CHAT_CLIENTS_REMEMBERED: usize = 4_096;

#[derive(Debug)]
pub struct Limits {
    per_lane: usize,
    per_client: usize,
    lane_open: PerLane<AtomicUsize>,
    client_open: Mutex<HashMap<IpAddr, usize>>,
    chat_per_second: f64,
    chat: Mutex<HashMap<IpAddr, Bucket>>,
    allowed_origins: Vec<String>,
    any_origin: bool,
    /// `--public-host` names, lowercased.
    public_hosts: Vec<String>,
}

/// A token bucket: `tokens` refill at the chat rate up to the burst.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One admitted connection; gives its place back when dropped.
#[derive(Debug)]
pub struct Permit {
    limits: Arc<Limits>,
    lane: LaneId,
    client: Option<IpAddr>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limits.lane_open[self.lane].fetch_sub(1, Ordering::Relaxed);
        if let Some(client) = self.client {
            let mut open = lock(&self.limits.client_open);
            if let Some(count) = open.get_mut(&client) {
                *count -= 1;
                if *count == 0 {
                    open.remove(&client);
                }
            }
        }
    }
}

impl Limits {
    pub fn new(config: &Config) -> Limits {
        let origins: Vec<String> = config
            .allow_origin
            .iter()
            .map(|origin| normalize_origin(origin))
            .filter(|origin| !origin.is_empty())
            .collect();
        Limits {
            per_lane: config.max_connections_per_lane,
            per_client: config.max_connections_per_client,
            lane_open: Default::default(),
            client_open: Mutex::default(),
            chat_per_second: f64::from(config.chat_per_second),
            chat: Mutex::default(),
            any_origin: origins.iter().any(|origin| origin == "*"),
            allowed_origins: origins,
            public_hosts: config
                .public_host
                .iter()
                .map(|host| host.trim().to_ascii_lowercase())
                .filter(|host| !host.is_empty())
                .collect(),
        }
    }

    /// Admits one more stream, call or held letter of `lane` from `client`, or says which limit is full.
    pub fn admit(
        self: &Arc<Self>,
        lane: LaneId,
        client: Option<IpAddr>,
    ) -> Result<Permit, AppError> {
        let lane_open = &self.lane_open[lane];
        let before = lane_open.fetch_add(1, Ordering::Relaxed);
        if self.per_lane > 0 && before >= self.per_lane {
            lane_open.fetch_sub(1, Ordering::Relaxed);
            return Err(AppError::Unavailable(format!(
                "the {lane} lane is full: it serves at most {} connections at once",
                self.per_lane
            )));
        }
        // Counted per address only when there is a limit, so load tests pay nothing for it.
        let client = client.filter(|_| self.per_client > 0);
        if let Some(address) = client {
            let mut open = lock(&self.client_open);
            let count = open.entry(address).or_insert(0);
            if *count >= self.per_client {
                drop(open);
                lane_open.fetch_sub(1, Ordering::Relaxed);
                return Err(AppError::TooMany(format!(
                    "{address} already holds {} open connections, the most one client may",
                    self.per_client
                )));
            }
            *count += 1;
        }
        Ok(Permit {
            limits: self.clone(),
            lane,
            client,
        })
    }

    /// Takes one chat message from `client`'s allowance, or says how long until the next is allowed.
    pub fn chat(&self, client: Option<IpAddr>) -> Result<(), Duration> {
        let Some(client) = client else {
            return Ok(());
        };
        let rate = self.chat_per_second;
        let burst = rate * 2.0;
        let now = Instant::now();
        let mut buckets = lock(&self.chat);
        if buckets.len() >= CHAT_CLIENTS_REMEMBERED && !buckets.contains_key(&client) {
            // Forget clients whose allowance is full again: they have nothing to remember.
            buckets.retain(|_, bucket| {
                bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate < burst
            });
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }

    /// A browser page may open the phone line only from the server's own origin or an allowed one:
    /// WebSockets are not covered by the browser's same-origin rules, so without this any web page a
    /// person visits could talk on their behalf. Clients that send no `Origin` (not browsers) pass.
    pub fn check_origin(&self, headers: &HeaderMap) -> Result<(), AppError> {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Ok(());
        };
        let origin = normalize_origin(origin.to_str().unwrap_or_default());
        let host = headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let same_site = origin
            .split_once("://")
            .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https") && rest == host);
        if same_site || self.any_origin || self.allowed_origins.contains(&origin) {
            return Ok(());
        }
        Err(AppError::Forbidden(format!(
            "the WebSocket does not accept pages from origin {origin:?}; start the server with \
             --allow-origin {origin} to allow it"
        )))
    }
}

impl Limits {
    /// Whether a request that changes things (or opens a call) named a host this server answers to:
    /// a loopback name, an IP address, or a `--public-host` name. A page served under any other name —
    /// the shape of DNS rebinding, where an attacker's name is pointed at this machine — is refused,
    /// even with a matching `Origin`. No `Host` at all (HTTP/1.0, not a browser) is let in.
    pub fn check_host(&self, host: Option<&str>) -> Result<(), AppError> {
        let Some(host) = host else {
            return Ok(());
        };
        // Garbage in the header names no host, and no host this server answers to.
        let name = host_of(host).unwrap_or_default();
        let loopback_name = name == "localhost" || name.ends_with(".localhost");
        let address = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok();
        if loopback_name || address || self.public_hosts.contains(&name) {
            return Ok(());
        }
        Err(AppError::Forbidden(format!(
            "this server does not answer to {name:?}: start it with --public-host {name} if that is \
             its name"
        )))
    }
}

/// `host[:port]` without the port (`[::1]:3000` → `[::1]`).
/// The host of an authority — `127.0.0.1`, `[::1]` (bracketed, as in a URL), `box.lan` — without its
/// port, lowercased; `None` when it is no authority. The one `host:port` parser of the server: the
/// `Host` header, an `Origin`'s authority, a URL's.
pub fn host_of(authority: &str) -> Option<String> {
    authority
        .parse::<axum::http::uri::Authority>()
        .ok()
        .map(|authority| authority.host().to_ascii_lowercase())
}

fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Counts and buckets are plain numbers written whole: a poisoned lock still holds valid ones.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use clap::Parser;

    fn limits(args: &[&str]) -> Arc<Limits> {
        let mut all = vec!["switchboard-server"];
        all.extend_from_slice(args);
        Arc::new(Limits::new(&Config::parse_from(all)))
    }

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn connections_are_limited_per_lane_and_per_client_and_given_back() {
        let limits = limits(&[
            "--max-connections-per-lane",
            "3",
            "--max-connections-per-client",
            "2",
        ]);
        let a1 = limits.admit(LaneId::Ws, ip(1)).unwrap();
        let _a2 = limits.admit(LaneId::Sse, ip(1)).unwrap();
        assert!(matches!(
            limits.admit(LaneId::Ws, ip(1)),
            Err(AppError::TooMany(_))
        ));
        let _b1 = limits.admit(LaneId::Ws, ip(2)).unwrap();
        let _c1 = limits.admit(LaneId::Ws, ip(3)).unwrap();
        assert!(matches!(
            limits.admit(LaneId::Ws, ip(4)),
            Err(AppError::Unavailable(_))
        ));
        drop(a1);
        assert!(limits.admit(LaneId::Ws, ip(1)).is_ok());
        assert!(lock(&limits.client_open).len() <= 3);
    }

    #[test]
    fn chat_is_limited_per_client_with_a_burst() {
        let limits = limits(&["--chat-per-second", "2"]);
        for _ in 0..4 {
            limits.chat(ip(1)).unwrap();
        }
        let wait = limits.chat(ip(1)).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(500));
        assert!(limits.chat(ip(2)).is_ok(), "another client is not affected");
    }

    #[test]
    fn only_the_own_and_allowed_origins_may_dial() {
        let headers = |origin: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:3000"));
            headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
            headers
        };
        let strict = limits(&[]);
        assert!(
            strict
                .check_origin(&headers("http://127.0.0.1:3000"))
                .is_ok()
        );
        assert!(
            strict
                .check_origin(&headers("http://127.0.0.1:8080"))
                .is_err()
        );
        assert!(
            strict
                .check_origin(&headers("https://evil.example"))
                .is_err()
        );
        assert!(strict.check_origin(&headers("null")).is_err());
        assert!(strict.check_origin(&HeaderMap::new()).is_ok());
        let dev = limits(&["--allow-origin", "http://127.0.0.1:8080/"]);
        assert!(dev.check_origin(&headers("http://127.0.0.1:8080")).is_ok());
        assert!(dev.check_origin(&headers("https://evil.example")).is_err());
        let open = limits(&["--allow-origin", "*"]);
        assert!(
            open.check_origin(&headers("https://anywhere.example"))
                .is_ok()
        );
    }
}
