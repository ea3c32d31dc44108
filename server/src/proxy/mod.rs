//! Your app through the lab: a reverse proxy in front of the person's own app (`--upstream`), on its
//! own address (`--proxy-addr`). The person opens their app through it; every request, stream and
//! socket is forwarded faithfully, recorded within a bound, sorted into channels by the same
//! classifier the page uses for HAR files, and exposed to the lab's faults and emulated networks.
//!
//! Layout:
//! - [`stage`] — the proxy as a pipeline of stages: the hooks, the [`stage::Flow`] every stage sees,
//!   and [`stages`], one type per stage (the recorder, each fault kind, the emulated path's head delay);
//! - [`forward`] — one request forwarded (a WebSocket upgrade included), asking the stages at each step;
//! - [`relay`] — what flows after a head: a socket's frames both ways, an event stream's events;
//! - [`headers`] — what a head loses and gains on its way (hop-by-hop, framing, `Via`);
//! - [`conn`] — one browser connection: its channel, its silence, its cut, and its socket, which
//!   carries the channel's emulated network and goes half-open on a fault;
//! - [`record`] — the bounded recording, written out as HAR only when asked;
//! - [`figures`] — each channel's figures, kept as the traffic flows;
//! - [`lab`] — faults and networks on the app's channels, and what each fault did;
//! - [`report`] — `GET /api/app`: the channels with their figures, and the findings in words;
//! - [`api`] — the `/api/app` endpoints.

pub mod api;
pub mod conn;
pub mod decode;
pub mod figures;
pub mod forward;
pub mod headers;
pub mod lab;
pub mod record;
pub mod relay;
pub mod report;
pub mod stage;
pub mod stages;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use conn::{ChannelKey, Conn, ProxiedStream};
use lab::Lab;
use record::Recording;
use stage::Pipeline;

/// The proxy's limits and deadlines, from the server's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long the browser may take nothing the proxy sends it before its connection is cut (the
    /// main server's `--send-timeout-ms`).
    pub send_timeout: Duration,
    /// How long the app may take to answer a request's head, and the browser to send each next piece
    /// of a body (`--upstream-timeout-ms`).
    pub upstream_timeout: Duration,
    /// The most connections one client address may hold open to the proxy (the main server's
    /// `--max-tcp-per-client`).
    pub tcp_per_client: Option<usize>,
    /// Keep cookies and credentials in the recording as they came (`--record-secrets`).
    pub record_secrets: bool,
    /// The server's meters: the proxy's connections count among its open files.
    pub meters: Arc<crate::metering::Meters>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            send_timeout: Duration::from_secs(10),
            upstream_timeout: Duration::from_secs(30),
            tcp_per_client: None,
            record_secrets: false,
            meters: Arc::default(),
        }
    }
}

/// Where the proxy forwards: an `http://HOST:PORT` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// `HOST:PORT`, what the proxy connects to and sends as `Host`.
    pub authority: String,
    /// `http://HOST:PORT`, what an `Origin` of the proxy's own is rewritten to.
    pub origin: String,
    /// As the person gave it, for messages.
    pub url: String,
}

impl Upstream {
    /// Reads `http://HOST[:PORT][/]`; HTTPS upstreams and paths are refused, saying why.
    pub fn parse(text: &str) -> Result<Upstream, String> {
        let uri: axum::http::Uri = text
            .parse()
            .map_err(|err| format!("{text:?} is not a URL ({err}): expected http://HOST:PORT"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(format!(
                    "{text:?}: HTTPS upstreams are not supported; point --upstream at the app's plain HTTP address"
                ));
            }
            _ => return Err(format!("{text:?}: expected http://HOST:PORT")),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("{text:?}: expected http://HOST:PORT"))?;
        if uri.path() != "/" && !uri.path().is_empty() {
            return Err(format!(
                "{text:?}: the upstream is an address, not a path (the proxy forwards each request's own path)"
            ));
        }
        let host = authority.host();
        let port = authority.port_u16().unwrap_or(80);
        let authority = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(Upstream {
            origin: format!("http://{authority}"),
            url: format!("http://{authority}"),
            authority,
        })
    }
}

/// The proxy: what it forwards to, what it recorded, the lab's state and the connections open now.
#[derive(Debug)]
pub struct AppProxy {
    pub upstream: Upstream,
    /// `HOST:PORT` of the proxy itself, for requests that name no host.
    pub proxy_authority: String,
    pub recording: Arc<Recording>,
    /// Each channel's figures, kept as the traffic flows.
    pub figures: figures::Figures,
    pub lab: Lab,
    /// The stages every request passes, registered once.
    pub pipeline: Pipeline,
    pub settings: Settings,
    /// The route templates learned from the app's paths: what makes a path's channel an endpoint.
    routes: Mutex<switchboard_shared::app::route::Routes>,
    open: Mutex<HashMap<u64, Arc<Conn>>>,
    next_conn: AtomicU64,
    /// The last failure to reach the upstream, or `None` once it answered; unset before any try.
    upstream_state: Mutex<Option<Option<String>>>,
    /// A scenario sent with `POST /api/app/scenario`: where it stands, in words (none before the first).
    pub scenario: Mutex<Option<switchboard_shared::app::Finding>>,
    pub scenario_running: std::sync::atomic::AtomicBool,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
}

impl AppProxy {
    pub fn new(
        upstream: Upstream,
        proxy_addr: std::net::SocketAddr,
        settings: Settings,
        shutdown: CancellationToken,
        tasks: TaskTracker,
    ) -> AppProxy {
        AppProxy {
            upstream,
            proxy_authority: proxy_addr.to_string(),
            recording: Arc::default(),
            figures: figures::Figures::default(),
            lab: Lab::default(),
            pipeline: stages::standard(),
            settings,
            routes: Mutex::default(),
            open: Mutex::default(),
            next_conn: AtomicU64::new(1),
            upstream_state: Mutex::new(None),
            scenario: Mutex::new(None),
            scenario_running: std::sync::atomic::AtomicBool::new(false),
            shutdown,
            tasks,
        }
    }

    /// Where the person opens their app.
    pub fn proxy_url(&self) -> String {
        format!("http://{}/", self.proxy_authority)
    }

    /// Whether a `Host` names the proxy itself (its port, under a loopback name or an address) rather
    /// than some other name pointed at it.
    pub fn is_own_authority(&self, host: &str) -> bool {
        let port = |authority: &str| authority.rsplit_once(':').map(|(_, port)| port.to_owned());
        if port(host) != port(&self.proxy_authority) {
            return false;
        }
        let Some(name) = crate::limits::host_of(host) else {
            return false;
        };
        name == "localhost"
            || name.ends_with(".localhost")
            || name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok()
    }

    /// The channel a request belongs to, by its route template (learning from its path). When the path
    /// teaches a new placeholder, the channel the earlier paths were read by is renamed to the
    /// template, with its figures, experiments, faults and open connections: one endpoint stays one
    /// channel from its first connection on.
    pub fn channel_of(&self, method: &str, host: &str, path: &str, socket: bool) -> ChannelKey {
        let learned = self
            .routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .learn(method, path, socket);
        let key = ChannelKey::new(method, host, &learned.template, socket);
        if let Some(before) = learned.renamed {
            let old = ChannelKey::new(method, host, &before, socket);
            tracing::debug!(from = %old.name, to = %key.name, "proxy: a route template learned");
            self.figures.rename(&old, &key);
            self.lab.rename(&old.id, &key.id, &key.name);
            for conn in self.open_connections() {
                if conn.in_channel_id(&old.id) {
                    conn.set_key(key.clone());
                }
            }
        }
        key
    }

    /// Injects a fault of the lab: kept in effect, and applied by the stages to what is open now.
    pub fn inject(&self, request: &switchboard_shared::app::AppFaultRequest) {
        let before = self.figures.delivery();
        self.lab
            .inject(request, &self.open_connections(), &self.pipeline);
        self.lab.note_before(&before);
    }

    /// Sets (or with `None`, clears) the emulated network of a channel or of all of them: an
    /// experiment, which knows how long messages took before it.
    pub fn set_network(
        &self,
        channel: Option<String>,
        condition: Option<switchboard_shared::network::Condition>,
    ) {
        let before = self.figures.delivery();
        let setting = condition.is_some();
        self.lab
            .set_network(channel, condition, &self.open_connections());
        if setting {
            self.lab.note_before(&before);
        }
    }

    /// The browser connections open now.
    pub fn open_connections(&self) -> Vec<Arc<Conn>> {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// A browser connection ended (its socket was dropped).
    pub(crate) fn closed(&self, conn: &Conn) {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&conn.id);
    }

    /// Whether the upstream answered (`None`) or why it did not.
    pub(crate) fn upstream_answered(&self, failure: Option<String>) {
        let was = self
            .upstream_state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(failure.clone());
        // The app going down and coming back is observed as an experiment nobody injected.
        match (was, failure) {
            (None | Some(None), Some(why)) => {
                self.lab.upstream_down(&why, &self.open_connections());
            }
            (Some(Some(_)), None) => self.lab.upstream_back(),
            _ => {}
        }
    }

    pub fn upstream_state(&self) -> Option<Option<String>> {
        self.upstream_state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Serves the proxy on `listener` until shutdown: each browser connection with its own upstream
    /// connection, and a tick every 100 ms that ends faults and runs idle timeouts.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        let ticker = {
            let proxy = self.clone();
            async move {
                let mut every = tokio::time::interval(Duration::from_millis(100));
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    every.tick().await;
                    proxy.lab.tick();
                    if proxy.lab.any_fault() {
                        proxy.pipeline.tick(&proxy.lab, &proxy.open_connections());
                    }
                }
            }
        };
        self.tasks.spawn({
            let shutdown = self.shutdown.clone();
            async move {
                tokio::select! {
                    () = ticker => {}
                    () = shutdown.cancelled() => {}
                }
            }
        });
        let mut gate = crate::listener::Admission::new(
            self.settings.meters.clone(),
            self.settings.tcp_per_client,
        );
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(Duration::from_secs(60));
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of files, most likely: wait a little rather than spin.
                        tracing::warn!("proxy: cannot accept: {err}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = self.shutdown.cancelled() => break,
            };
            let Some((stream, slot)) = gate.admit(stream, peer) else {
                continue;
            };
            let admitted = conn::Admitted {
                file: Some(self.settings.meters.hold_file()),
                slot,
            };
            let id = self.next_conn.fetch_add(1, Relaxed);
            let conn = Arc::new(Conn::new(id, peer, admitted, self.shutdown.child_token()));
            self.open
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, conn.clone());
            let io = ProxiedStream::new(stream, conn.clone(), self.clone());
            let leg: forward::Leg = Arc::default();
            let service = {
                let (proxy, conn) = (self.clone(), conn.clone());
                hyper::service::service_fn(move |request| {
                    forward::handle(proxy.clone(), conn.clone(), leg.clone(), request)
                })
            };
            let connection = http
                .serve_connection(hyper_util::rt::TokioIo::new(io), service)
                .with_upgrades();
            let shutdown = self.shutdown.clone();
            self.tasks.spawn(async move {
                tokio::select! {
                    biased;
                    () = conn.cut.cancelled() => {}
                    () = shutdown.cancelled() => {}
                    served = connection => {
                        if let Err(err) = served {
                            tracing::debug!("proxy: connection ended: {err}");
                        }
                    }
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_is_an_http_address() {
        let upstream = Upstream::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(upstream.authority, "127.0.0.1:8080");
        assert_eq!(upstream.origin, "http://127.0.0.1:8080");
        assert_eq!(
            Upstream::parse("http://localhost/").unwrap().authority,
            "localhost:80"
        );
        assert_eq!(
            Upstream::parse("http://[::1]:9000").unwrap().authority,
            "[::1]:9000"
        );
        assert!(
            Upstream::parse("https://example.com")
                .unwrap_err()
                .contains("HTTPS")
        );
        assert!(
            Upstream::parse("http://x:1/app")
                .unwrap_err()
                .contains("path")
        );
        assert!(Upstream::parse("127.0.0.1:8080").is_err());
    }
}
