//! WebTransport: HTTP/3 over QUIC, on its own UDP port. `GET /api/webtransport` tells the page where to
//! dial and the SHA-256 of the certificate to trust (a browser accepts a self-signed certificate only by
//! its hash, and only one valid for under 14 days: one is made at start). The page then opens a session
//! on `https://HOST:UDP_PORT/api/webtransport?after=SEQ[&mode=datagram]`.
//!
//! On a session the server opens one unidirectional stream and writes the same JSON lines as the
//! endless letter (hello, events, heartbeats, gaps) in seq order. With `mode=datagram` events go as
//! unreliable datagrams instead — one event per datagram, lost when the path loses them (the only lane
//! where a missed seq is expected); hello, heartbeats and gaps stay on the stream, so the page still
//! learns the head. The browser says chat on a bidirectional stream it opens, one JSON line per message,
//! answered on the same stream like the phone call's frames. Bytes are the QUIC connection's own UDP
//! counters: packet headers, encryption, acknowledgements and retransmissions included.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use bytes::Bytes;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use switchboard_shared::ws::{Heartbeat, Hello, close_code};
use switchboard_shared::{Gap, LaneId, Seq, WebTransportInfo, WebTransportMode};
use tokio::sync::mpsc;
use wtransport::endpoint::{IncomingSession, SessionRequest, endpoint_side::Server};
use wtransport::{Connection, Endpoint, Identity, SendStream, ServerConfig, VarInt};

use super::push::{Encoding, Ending, Frames, PushStream};
use super::stream::Ndjson;
use crate::AppState;
use crate::error::AppError;
use crate::faults::Cut;
use crate::hub::Published;
use crate::limits::host_of;
use crate::metering::Counters;

mod path;
use path::{Lost, Path, talk, write_datagrams, write_stream};

/// A certificate a browser takes by its hash must be valid for less than two weeks.
const CERT_VALIDITY_DAYS: u32 = 13;
/// Frames waiting for the emulated path at most (then the session waits, as on a full send buffer).
const QUEUE_FRAMES: usize = 64;
/// The longest the server waits for a dialled session's request, and for a write to be taken.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// What a client may send the server before it reads: per stream, over the connection, and in
/// unread datagrams (the talking stream's lines are at most [`MESSAGE_LIMIT`]).
const STREAM_WINDOW: u32 = 64 * 1024;
const CONNECTION_WINDOW: u32 = 256 * 1024;
const DATAGRAM_BUFFER: usize = 8 * 1024;

/// The lane's framing: the endless letter's JSON lines, counted and cached as this lane's.
#[derive(Debug)]
pub struct Quic;

impl Encoding for Quic {
    const LANE: LaneId = LaneId::WebTransport;
    type Frame = Bytes;

    fn hello(state: &AppState, hello: &Hello) -> Bytes {
        Ndjson::hello(state, hello)
    }

    fn event(event: &Published) -> Bytes {
        Ndjson::event(event)
    }

    fn gap(gap: Gap) -> Bytes {
        Ndjson::gap(gap)
    }

    fn heartbeat(beat: &Heartbeat) -> Bytes {
        Ndjson::heartbeat(beat)
    }
}

/// The QUIC endpoint, once started: what `GET /api/webtransport` answers.
#[derive(Debug)]
pub struct Dialing {
    /// Where the endpoint listens (UDP).
    pub addr: SocketAddr,
    cert_sha256: String,
    not_after_ms: u64,
    sessions: Arc<OpenSessions>,
}

impl Dialing {
    /// Brings the lane's byte counters up to date with every open session's QUIC connection, for a
    /// reading of them (`/api/stats`, the metrics): a session's bytes are counted only then and when it
    /// ends, never per event (reading them takes the connection's lock, too dear for every event). A
    /// reading lags what went on the wire by at most [`RECOUNT_AFTER`].
    pub fn count_bytes(&self) {
        self.sessions.count();
    }

    /// The answer for a page that reached the HTTP server as `host` (its `Host` header): the session
    /// URL names the host the page used when the endpoint listens on every address, so a page opened
    /// from another machine dials the right one.
    pub fn info(&self, host: Option<&str>) -> WebTransportInfo {
        let ip = self.addr.ip();
        let host = match host.and_then(host_of) {
            Some(host) if ip.is_unspecified() => host,
            _ => match ip {
                IpAddr::V6(v6) => format!("[{v6}]"),
                IpAddr::V4(v4) => v4.to_string(),
            },
        };
        WebTransportInfo {
            url: format!(
                "https://{host}:{}{}",
                self.addr.port(),
                LaneId::WebTransport.path()
            ),
            cert_sha256: self.cert_sha256.clone(),
            not_after_ms: self.not_after_ms,
        }
    }
}

/// `GET /api/webtransport`: where to dial and which certificate to trust, or 503 when the endpoint is
/// not running (its UDP port could not be bound).
pub async fn info(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Json<WebTransportInfo>, AppError> {
    let dialing = state.webtransport.get().ok_or_else(|| {
        AppError::Unavailable(
            "WebTransport is not running on this server (its UDP port could not be opened; see the \
             server's log and --webtransport-addr)"
                .into(),
        )
    })?;
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok());
    Ok(Json(dialing.info(host)))
}

/// Binds the UDP port (`--webtransport-addr`, or the HTTP port's number on 127.0.0.1), makes the
/// certificate and accepts sessions until shutdown. Without a named address a taken port falls back to
/// any free one: the page learns the port from `/api/webtransport` anyway.
pub fn start(state: &AppState, http_addr: SocketAddr) -> std::io::Result<Dialing> {
    let socket = match state.config.webtransport_addr {
        Some(addr) => UdpSocket::bind(addr)?,
        None => {
            let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
            UdpSocket::bind((ip, http_addr.port())).or_else(|err| {
                tracing::info!(
                    "UDP port {} is taken ({err}); WebTransport listens on another",
                    http_addr.port()
                );
                UdpSocket::bind((ip, 0))
            })?
        }
    };
    let addr = socket.local_addr()?;
    let identity = Identity::self_signed_builder()
        .subject_alt_names(["localhost", "127.0.0.1", "::1"])
        .from_now_utc()
        .validity_days(CERT_VALIDITY_DAYS)
        .build()
        .map_err(std::io::Error::other)?;
    let certificate = &identity.certificate_chain().as_slice()[0];
    let cert_sha256 = hex(certificate.hash().as_ref());
    let not_after_ms = crate::hub::now_ms() + u64::from(CERT_VALIDITY_DAYS) * 24 * 60 * 60 * 1000;
    let config = ServerConfig::builder()
        .with_bind_socket(socket)
        .with_custom_transport(identity, transport())
        // The endless letter's and the phone call's keep-alive is the heartbeat; QUIC's own keeps NATs
        // open and notices a vanished peer within the idle timeout.
        .keep_alive_interval(Some(Duration::from_secs(5)))
        .max_idle_timeout(Some(Duration::from_secs(30)))
        .map_err(std::io::Error::other)?
        .build();
    let endpoint = Endpoint::server(config)?;
    tracing::info!(%addr, "WebTransport (HTTP/3 over QUIC) listening");
    let sessions = Arc::new(OpenSessions::default());
    state
        .tasks
        .spawn(accept(endpoint, state.clone(), sessions.clone()));
    Ok(Dialing {
        addr,
        cert_sha256,
        not_after_ms,
        sessions,
    })
}

/// QUIC's transport sized for what the lane carries, not quinn's defaults (1.25 MB per stream, 100
/// streams, 1.25 MB of datagrams), which let one session pin ~126 MB: the server never reads the
/// client's own unidirectional streams nor its datagrams, and its talking streams carry lines of at
/// most a few KiB.
fn transport() -> wtransport::config::QuicTransportConfig {
    use wtransport::quinn::VarInt as QuicVarInt;
    let mut transport = wtransport::config::QuicTransportConfig::default();
    // HTTP/3's control stream and QPACK's two, and one to spare (a browser may grease one): no room
    // for streams of the client's own that nothing reads.
    transport.max_concurrent_uni_streams(QuicVarInt::from_u32(4));
    // The page talks on one; a few more are harmless, each within its small window.
    transport.max_concurrent_bidi_streams(QuicVarInt::from_u32(8));
    transport.stream_receive_window(QuicVarInt::from_u32(STREAM_WINDOW));
    // All the client's streams together, whatever their number.
    transport.receive_window(QuicVarInt::from_u32(CONNECTION_WINDOW));
    // Datagrams from the client are never read: room for a few, the oldest dropped past it.
    transport.datagram_receive_buffer_size(Some(DATAGRAM_BUFFER));
    transport.datagram_send_buffer_size(DATAGRAM_BUFFER * 8);
    transport
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

async fn accept(endpoint: Endpoint<Server>, state: AppState, sessions: Arc<OpenSessions>) {
    let pending = Pending::default();
    // As many handshakes still waiting for their CONNECT as an address may hold sessions: past that a
    // new one is refused at once, instead of held for its 10 s like the rest.
    let most = state.config.max_connections_per_client;
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => break,
            incoming = endpoint.accept() => {
                let client = incoming.remote_address().ip();
                match pending.take(client, most) {
                    Some(slot) => {
                        let sessions = sessions.clone();
                        state.tasks.spawn(session(incoming, slot, state.clone(), sessions));
                    }
                    None => {
                        state.meters.cuts.over_client_limit.fetch_add(1, Relaxed);
                        tracing::debug!(%client, "refused a QUIC handshake: too many pending from its address");
                        incoming.refuse();
                    }
                }
            }
        }
    }
    endpoint.close(VarInt::from_u32(0), b"server shutting down");
    // Sessions close themselves on shutdown; this lets their last frames and closes go out.
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
}

#[derive(Debug, Deserialize)]
pub struct SessionQuery {
    /// Resume after this seq; without it the session starts from now.
    pub after: Option<Seq>,
    /// `stream` (the default: every message on one reliable stream) or `datagram`.
    #[serde(default)]
    pub mode: WebTransportMode,
}

/// What a session request asks for, or why it is refused.
fn parse_request(state: &AppState, request: &SessionRequest) -> Result<SessionQuery, String> {
    let uri: axum::http::Uri = request
        .path()
        .parse()
        .map_err(|_| "the path is not a URI path".to_owned())?;
    if uri.path() != LaneId::WebTransport.path() {
        return Err(format!(
            "WebTransport sessions are opened on {}",
            LaneId::WebTransport.path()
        ));
    }
    let query = axum::extract::Query::<SessionQuery>::try_from_uri(&uri)
        .map_err(|err| err.body_text())?
        .0;
    // The name the page dialled must be one this server answers to, as for the phone call.
    state
        .limits
        .check_host(Some(request.authority()))
        .map_err(|err| err.to_string())?;
    // Like the phone call's upgrade: a page from another origin may not open it. The phone call's page
    // origin is its `Host`; the video call's page was served by this server's HTTP side, on the host
    // the page dialled and this server's HTTP port — or, behind a proxy this server trusts
    // (`--trust-proxy`), on whatever port the proxy serves it. Scheme and port count, as for the
    // phone call.
    let mut headers = axum::http::HeaderMap::new();
    if let Some(origin) = request.origin().and_then(|o| o.parse().ok()) {
        headers.insert(header::ORIGIN, origin);
    }
    let origin_authority = request
        .origin()
        .and_then(|origin| origin.split_once("://"))
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or_default();
    if let Some(dialled) = host_of(request.authority()) {
        let page = if state.config.trust_proxy
            && host_of(&origin_authority).is_some_and(|origin| origin == dialled)
        {
            origin_authority.clone()
        } else {
            format!("{dialled}:{}", state.config.addr.port())
        };
        if let Ok(host) = page.parse() {
            headers.insert(header::HOST, host);
        }
    }
    state
        .limits
        .check_origin(&headers)
        .map_err(|err| err.to_string())?;
    Ok(query)
}

/// Handshakes per address that have not said CONNECT yet.
#[derive(Debug, Clone, Default)]
struct Pending(Arc<std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>>);

/// One pending handshake's place, given back when it is dropped.
struct PendingSlot {
    pending: Pending,
    client: IpAddr,
}

impl Pending {
    /// A place for one more handshake from `client`, if it holds fewer than `most` (0: no limit).
    fn take(&self, client: IpAddr, most: usize) -> Option<PendingSlot> {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(client).or_default();
        if most > 0 && *count >= most {
            return None;
        }
        *count += 1;
        Some(PendingSlot {
            pending: self.clone(),
            client,
        })
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut counts = self.pending.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.client);
            }
        }
    }
}

async fn session(
    incoming: IncomingSession,
    pending: PendingSlot,
    state: AppState,
    sessions: Arc<OpenSessions>,
) {
    let request = match tokio::time::timeout(HANDSHAKE_TIMEOUT, incoming).await {
        Ok(Ok(request)) => request,
        Ok(Err(err)) => {
            tracing::debug!("a WebTransport handshake failed: {err}");
            return;
        }
        Err(_) => {
            tracing::debug!("a WebTransport handshake took too long");
            return;
        }
    };
    // It said CONNECT: from here the per-address session limit counts it.
    drop(pending);
    // Not counted as a request: each dial already asked `GET /api/webtransport`, counted there, so the
    // lane's requests are its dials, as the phone call's are its upgrades (and as the page counts them).
    let counters = state.meters.lane(LaneId::WebTransport).clone();
    let client = request.remote_address().ip();
    let query = match parse_request(&state, &request) {
        Ok(query) => query,
        Err(why) => {
            tracing::info!("refused a WebTransport session: {why}");
            counters.errors.fetch_add(1, Relaxed);
            // The protocol's refusals are 403, 404 and 429 only.
            return request.forbidden().await;
        }
    };
    // The failure lab's error fault answers new dials 503; WebTransport can only say "not now".
    if state
        .faults
        .letter(LaneId::WebTransport)
        .error_for
        .is_some()
    {
        counters.errors.fetch_add(1, Relaxed);
        return request.too_many_requests().await;
    }
    let permit = match state.limits.admit(LaneId::WebTransport, Some(client)) {
        Ok(permit) => permit,
        Err(err) => {
            tracing::info!("refused a WebTransport session: {err}");
            counters.errors.fetch_add(1, Relaxed);
            return request.too_many_requests().await;
        }
    };
    let connection = match request.accept().await {
        Ok(connection) => connection,
        Err(err) => {
            tracing::debug!("a WebTransport session failed as it opened: {err}");
            return;
        }
    };
    let bytes = Arc::new(UdpBytes::new(&connection, counters.clone()));
    let listed = sessions.list(bytes.clone());
    let ended = serve(&state, &connection, query, &counters).await;
    // The connection closes with the session, whoever ended it: left open, its chat tasks and QUIC's
    // keep-alives would hold it alive after its slot was given back, past the per-address limit.
    let (code, reason) = ended.unwrap_or((close_code::NORMAL, "the session ended"));
    tracing::debug!(code, reason, "closing a WebTransport session");
    connection.close(VarInt::from_u32(u32::from(code)), reason.as_bytes());
    // Let the close go out before the last count of the connection's bytes.
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(listed);
    bytes.count();
    drop(permit);
}

/// Readings of the counters closer together than this share one count: each count visits every open
/// session (a lock each), and anyone may ask `/api/stats` as often as they like.
const RECOUNT_AFTER: Duration = Duration::from_millis(100);

/// The byte counts of the sessions open now, for [`Dialing::count_bytes`].
#[derive(Debug, Default)]
struct OpenSessions {
    next: std::sync::atomic::AtomicU64,
    open: std::sync::Mutex<std::collections::HashMap<u64, Arc<UdpBytes>>>,
    counted: std::sync::Mutex<Option<std::time::Instant>>,
}

impl OpenSessions {
    /// Lists a session's byte count until the returned guard is dropped.
    fn list(self: &Arc<Self>, bytes: Arc<UdpBytes>) -> Listed {
        let id = self.next.fetch_add(1, Relaxed);
        self.lock().insert(id, bytes);
        Listed {
            sessions: self.clone(),
            id,
        }
    }

    fn count(&self) {
        {
            let mut counted = self.counted.lock().unwrap_or_else(|e| e.into_inner());
            let now = std::time::Instant::now();
            if counted.is_some_and(|at| now.duration_since(at) < RECOUNT_AFTER) {
                return;
            }
            *counted = Some(now);
        }
        // Counted out of the lock: each count takes its connection's lock in turn, and sessions open
        // and close meanwhile.
        let open: Vec<Arc<UdpBytes>> = self.lock().values().cloned().collect();
        for bytes in open {
            bytes.count();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<u64, Arc<UdpBytes>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A session's place in [`OpenSessions`], given up when it ends.
#[derive(Debug)]
struct Listed {
    sessions: Arc<OpenSessions>,
    id: u64,
}

impl Drop for Listed {
    fn drop(&mut self) {
        self.sessions.lock().remove(&self.id);
    }
}

/// Counts the connection's UDP bytes into the lane's counters, as the delta since the last count (one per
/// session: each count adds only what is new). Read when the lane's counters are read
/// ([`Dialing::count_bytes`]) and when the session ends.
#[derive(Debug)]
struct UdpBytes {
    connection: Connection,
    counters: Arc<Counters>,
    sent: std::sync::atomic::AtomicU64,
    received: std::sync::atomic::AtomicU64,
}

impl UdpBytes {
    fn new(connection: &Connection, counters: Arc<Counters>) -> UdpBytes {
        UdpBytes {
            connection: connection.clone(),
            counters,
            sent: Default::default(),
            received: Default::default(),
        }
    }

    fn count(&self) {
        let stats = self.connection.quic_connection().stats();
        let sent = stats.udp_tx.bytes;
        let received = stats.udp_rx.bytes;
        // Counts may race (two readings of the counters, or one and the session's end): each adds what
        // it saw beyond the most already counted, so an older reading that loses the race adds nothing.
        self.counters.bytes_out.fetch_add(
            sent.saturating_sub(self.sent.fetch_max(sent, Relaxed)),
            Relaxed,
        );
        self.counters.bytes_in.fetch_add(
            received.saturating_sub(self.received.fetch_max(received, Relaxed)),
            Relaxed,
        );
    }
}

/// Serves one session until it ends; the close code and reason to send, if the server ends it.
async fn serve(
    state: &AppState,
    connection: &Connection,
    query: SessionQuery,
    counters: &Arc<Counters>,
) -> Option<(u16, &'static str)> {
    let send = match tokio::time::timeout(HANDSHAKE_TIMEOUT, open_uni(connection)).await {
        Ok(Ok(send)) => send,
        _ => return Some((close_code::GOING_AWAY, "could not open the stream")),
    };
    let mut stream = PushStream::<Quic>::open(state, query.after);
    let hello = stream.hello(state, query.after, None);
    // One pump for the stream and one for datagrams, as QUIC sends them: a stream packet that must be
    // sent again holds back what follows on its stream, never a datagram.
    let (out, queue) = mpsc::channel(QUEUE_FRAMES);
    let mut writer = tokio::spawn(write_stream(
        queue,
        send,
        counters.clone(),
        state.config.send_timeout(),
    ));
    let datagrams = (query.mode == WebTransportMode::Datagram).then(|| {
        let (out, queue) = mpsc::channel(QUEUE_FRAMES);
        state
            .tasks
            .spawn(write_datagrams(queue, connection.clone()));
        out
    });
    let mut frames = Frames::new();
    let mut hung_up = None;
    // Every talking stream of the session counts its refusals together.
    let refusals = super::ws::Refusals::default();
    let mut path = Path::default();
    // The hello pays the QUIC handshake too: one round trip before the session could be asked for.
    let handshake = state
        .network
        .condition(LaneId::WebTransport)
        .map_or(0.0, |condition| f64::from(condition.rtt_ms));
    let hello_due = path.stream(state, hello.len()).map(|due| due + handshake);
    if out.send((hello, hello_due)).await.is_err() {
        return None;
    }
    loop {
        tokio::select! {
            woken = stream.wait() => {
                let sent = match woken {
                    Ok(woken) => stream.frames(woken, &mut frames).await,
                    Err(ending) => Err(ending),
                };
                match sent {
                    Ok(()) => {
                        for frame in frames.drain(..) {
                            // An event too big for one datagram (a long chat message on a small
                            // path MTU) goes on the stream rather than not at all.
                            let fits = || {
                                connection
                                    .max_datagram_size()
                                    .is_some_and(|max| frame.len() <= max)
                            };
                            let queued = match &datagrams {
                                Some(datagrams) if is_event(&frame) && fits() => {
                                    match path.datagram(state, frame.len()) {
                                        // Lost on the way: nothing will ever resend it.
                                        Err(Lost) => Ok(()),
                                        Ok(due) => datagrams.send((frame, due)).await,
                                    }
                                }
                                _ => {
                                    let due = path.stream(state, frame.len());
                                    out.send((frame, due)).await
                                }
                            };
                            if queued.is_err() {
                                // A pump stopped: the stream or the connection failed.
                                break;
                            }
                        }
                    }
                    Err(ending) => {
                        hung_up = closing(ending);
                        break;
                    }
                }
            }
            incoming = connection.accept_bi() => match incoming {
                Ok((send, recv)) => {
                    state.tasks.spawn(talk(
                        state.clone(),
                        connection.clone(),
                        counters.clone(),
                        refusals.clone(),
                        (send, recv),
                    ));
                }
                Err(_) => break,
            },
            _ = &mut writer => break,
            _ = connection.closed() => break,
        }
    }
    drop(out);
    if hung_up.is_none() {
        writer.abort();
    } else {
        // What was queued before the end goes out first.
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut writer).await;
    }
    hung_up
}

async fn open_uni(connection: &Connection) -> Result<SendStream, String> {
    let opening = connection.open_uni().await.map_err(|err| err.to_string())?;
    opening.await.map_err(|err| err.to_string())
}

/// Whether a frame is an event (a datagram candidate) rather than a hello, heartbeat or gap notice.
fn is_event(frame: &[u8]) -> bool {
    frame.starts_with(br#"{"type":"event","#)
}

fn closing(ending: Ending) -> Option<(u16, &'static str)> {
    match ending {
        Ending::Shutdown | Ending::StreamEnded => {
            Some((close_code::GOING_AWAY, "server shutting down"))
        }
        Ending::Cut(Cut::Restart) => Some((close_code::SERVICE_RESTART, "server restarting")),
        // A dropped or dead path says nothing: the session just stops (the page's watchdog or QUIC's
        // idle timeout notices), so the connection is closed without a reason the page could show.
        Ending::Cut(Cut::Drop) | Ending::Silenced => Some((0, "")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_url_names_the_host_the_page_used_only_when_listening_everywhere() {
        let dialing = Dialing {
            addr: "0.0.0.0:4433".parse().unwrap(),
            cert_sha256: "ab".repeat(32),
            not_after_ms: 1,
            sessions: Arc::default(),
        };
        assert_eq!(
            dialing.info(Some("box.lan:3000")).url,
            "https://box.lan:4433/api/webtransport"
        );
        // A page that reached an every-address endpoint over IPv6 dials it bracketed.
        assert_eq!(
            dialing.info(Some("[::1]:3000")).url,
            "https://[::1]:4433/api/webtransport"
        );
        let loopback = Dialing {
            addr: "127.0.0.1:3000".parse().unwrap(),
            ..dialing
        };
        assert_eq!(
            loopback.info(Some("localhost:3000")).url,
            "https://127.0.0.1:3000/api/webtransport"
        );
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
