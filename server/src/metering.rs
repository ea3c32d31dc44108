//! Per-lane accounting, bytes on the wire included.
//!
//! Counting bytes from parsed requests would miss what the user actually pays for: request and response
//! heads, chunked framing, WebSocket frame headers, close frames. So every accepted TCP connection is
//! wrapped in a [`MeteredStream`] that counts the bytes really read and written, and each request tells the
//! connection's [`ConnMeter`] which lane it belongs to:
//!
//! - bytes *written* go to the lane of the request being answered;
//! - bytes *read* wait until the request they belong to is identified (its head must be read before its
//!   path is known), then go to that request's lane; after a WebSocket upgrade, every frame read goes to
//!   the WebSocket lane.
//!
//! The stream is also where an emulated network condition (see [`crate::network`]) bites: while the
//! lane it serves has one, what is written comes out late, slowly or after a retransmission.
//!
//! A browser does not pipeline HTTP/1.1 requests, so one connection serves one request at a time and this
//! attribution is exact.

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;
use switchboard_shared::{LaneCounters, LaneId, PerLane};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::net::tcp::OwnedReadHalf;

use crate::network::Network;
use crate::network::shaped::{Inbound, Writer};
use switchboard_shared::network::Condition;

/// Counters of one lane (or of the "other" requests), updated lock-free from any task.
#[derive(Debug, Default)]
pub struct Counters {
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    pub requests: AtomicU64,
    pub empty_replies: AtomicU64,
    pub messages: AtomicU64,
    pub frames_in: AtomicU64,
    pub errors: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> LaneCounters {
        LaneCounters {
            connections_open: self.connections_open.load(Relaxed),
            connections_total: self.connections_total.load(Relaxed),
            requests: self.requests.load(Relaxed),
            empty_replies: self.empty_replies.load(Relaxed),
            messages: self.messages.load(Relaxed),
            frames_in: self.frames_in.load(Relaxed),
            errors: self.errors.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
        }
    }

    /// Counts a stream or held request as open until the guard is dropped.
    pub fn open(self: &Arc<Self>) -> OpenGuard {
        self.connections_open.fetch_add(1, Relaxed);
        self.connections_total.fetch_add(1, Relaxed);
        OpenGuard(self.clone())
    }
}

/// Keeps `connections_open` counted while alive.
#[derive(Debug)]
pub struct OpenGuard(Arc<Counters>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Relaxed);
    }
}

/// The counters of every lane, plus those of requests that belong to no lane.
#[derive(Debug, Default)]
pub struct Meters {
    lanes: PerLane<Arc<Counters>>,
    other: Arc<Counters>,
}

impl Meters {
    pub fn lane(&self, lane: LaneId) -> &Arc<Counters> {
        &self.lanes[lane]
    }

    pub fn other(&self) -> &Arc<Counters> {
        &self.other
    }

    fn of(&self, lane: Option<LaneId>) -> &Counters {
        lane.map_or(&self.other, |lane| &self.lanes[lane])
    }
}

/// The lane a request path belongs to (the paths are [`LaneId::path`]'s, which the router serves).
pub fn lane_of_path(path: &str) -> Option<LaneId> {
    LaneId::from_path(path)
}

/// The lane of a request, kept in one atomic word: its place in [`LaneId::ALL`], or one past the end
/// for a request that belongs to no lane.
fn slot_of(lane: Option<LaneId>) -> usize {
    lane.map_or(LaneId::COUNT, LaneId::index)
}

fn lane_in(slot: usize) -> Option<LaneId> {
    LaneId::ALL.get(slot).copied()
}

/// Byte accounting of one TCP connection.
#[derive(Debug)]
pub struct ConnMeter {
    meters: Arc<Meters>,
    /// The lane of the request this connection is serving ([`slot_of`]).
    slot: AtomicUsize,
    /// Bytes read that are not yet attributed to a request.
    unattributed_in: AtomicU64,
    /// Requests begun on this connection.
    requests: AtomicU64,
}

impl ConnMeter {
    fn new(meters: Arc<Meters>) -> ConnMeter {
        ConnMeter {
            meters,
            slot: AtomicUsize::new(slot_of(None)),
            unattributed_in: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        }
    }

    /// A request for `lane` starts on this connection: the bytes read so far are its head, and their
    /// count is returned with the request's number on the connection (the browser can see neither its
    /// own request headers nor whether it opened a connection, so the server tells it).
    pub fn begin(&self, lane: Option<LaneId>) -> RequestHead {
        let on_connection = self.requests.fetch_add(1, Relaxed) + 1;
        self.slot.store(slot_of(lane), Relaxed);
        RequestHead {
            bytes: self.flush_in(),
            on_connection,
        }
    }

    /// The lane of the request this connection serves, if it belongs to one.
    pub fn lane(&self) -> Option<LaneId> {
        lane_in(self.slot.load(Relaxed))
    }

    /// Attributes the bytes read so far to the current request's lane and returns how many there were.
    pub fn flush_in(&self) -> u64 {
        let bytes = self.unattributed_in.swap(0, Relaxed);
        if bytes > 0 {
            self.current().bytes_in.fetch_add(bytes, Relaxed);
        }
        bytes
    }

    fn current(&self) -> &Counters {
        self.meters.of(self.lane())
    }

    fn read(&self, bytes: usize) {
        self.unattributed_in.fetch_add(bytes as u64, Relaxed);
    }

    fn wrote(&self, bytes: usize) {
        self.current().bytes_out.fetch_add(bytes as u64, Relaxed);
    }
}

/// What the server knows of a request before its body: its head's size as read off the wire (request
/// line, headers, blank line) and which request on its connection it is (1: a new connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead {
    pub bytes: u64,
    pub on_connection: u64,
}

/// What every request knows about its connection (installed by [`MeteredListener`]).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    pub meter: Arc<ConnMeter>,
}

impl Connected<IncomingStream<'_, MeteredListener>> for ConnInfo {
    fn connect_info(stream: IncomingStream<'_, MeteredListener>) -> ConnInfo {
        ConnInfo {
            remote: *stream.remote_addr(),
            meter: stream.io().meter.clone(),
        }
    }
}

/// A TCP listener whose connections count their bytes.
#[derive(Debug)]
pub struct MeteredListener {
    inner: TcpListener,
    meters: Arc<Meters>,
    network: Arc<Network>,
    head_timeout: Duration,
}

impl MeteredListener {
    /// Connections must send their first request head within `head_timeout`.
    pub fn new(
        inner: TcpListener,
        meters: Arc<Meters>,
        network: Arc<Network>,
        head_timeout: Duration,
    ) -> MeteredListener {
        MeteredListener {
            inner,
            meters,
            network,
            head_timeout,
        }
    }
}

impl Listener for MeteredListener {
    type Io = MeteredStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (MeteredStream, SocketAddr) {
        // axum's TcpListener accept already retries (and backs off on running out of file descriptors).
        let (stream, remote) = Listener::accept(&mut self.inner).await;
        // Small messages are the whole point here: do not let Nagle hold them back.
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%remote, "could not set TCP_NODELAY: {err}");
        }
        let (reader, writer) = stream.into_split();
        (
            MeteredStream {
                reader,
                writer: Writer::Direct(writer),
                inbound: None,
                network: self.network.clone(),
                meter: Arc::new(ConnMeter::new(self.meters.clone())),
                first_head: Some(Box::pin(tokio::time::sleep(self.head_timeout))),
            },
            remote,
        )
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

pin_project_lite::pin_project! {
    /// A TCP stream that reports every byte read and written to its [`ConnMeter`], and carries its
    /// bytes over the emulated path while its lane has a condition.
    #[derive(Debug)]
    pub struct MeteredStream {
        reader: OwnedReadHalf,
        writer: Writer,
        // Set while the phone line's incoming frames are held on the emulated path.
        inbound: Option<Box<Inbound>>,
        network: Arc<Network>,
        meter: Arc<ConnMeter>,
        // Until the first request head is complete: a connection that never sends one (garbage, a
        // slow-loris) is closed when this runs out instead of being held for ever.
        first_head: Option<Pin<Box<tokio::time::Sleep>>>,
    }

    impl PinnedDrop for MeteredStream {
        fn drop(this: Pin<&mut Self>) {
            // Whatever was read last (a close frame, half a request) belongs to the last request.
            this.meter.flush_in();
        }
    }
}

impl AsyncRead for MeteredStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        if let Some(deadline) = this.first_head {
            if this.meter.requests.load(Relaxed) > 0 {
                *this.first_head = None;
            } else if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no complete request head in time",
                )));
            }
        }
        // Only the phone line's frames are held here: HTTP requests are held whole by the network
        // middleware, which knows their lane before they are handled.
        let phone = this.meter.lane() == Some(LaneId::Ws);
        if this.inbound.is_some() || (phone && this.network.is_armed(LaneId::Ws)) {
            let condition = if phone {
                this.network.condition(LaneId::Ws)
            } else {
                None
            };
            let inbound = this.inbound.get_or_insert_with(Box::default);
            let meter = &this.meter;
            let result = inbound.poll_read(cx, this.reader, buf, condition.as_deref(), |bytes| {
                meter.read(bytes)
            });
            if condition.is_none() && inbound.is_empty() {
                *this.inbound = None;
            }
            return result;
        }
        let before = buf.filled().len();
        let result = Pin::new(this.reader).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            this.meter.read(buf.filled().len() - before);
        }
        result
    }
}

impl MeteredStream {
    /// The condition of the lane this connection serves now, moving the connection onto the emulated
    /// path the first time there is one (it stays there, so what it holds keeps its order).
    fn shaping(&mut self) -> Option<Arc<Condition>> {
        let condition = self
            .meter
            .lane()
            .filter(|&lane| self.network.is_armed(lane))
            .and_then(|lane| self.network.condition(lane));
        if condition.is_some() {
            self.writer.shape();
        }
        condition
    }

    fn write_bufs(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let condition = this.shaping();
        let result = match &mut this.writer {
            Writer::Direct(half) => Pin::new(half).poll_write_vectored(cx, bufs),
            Writer::Shaped(path) => path.poll_write(cx, bufs, condition.as_deref()),
            Writer::Moving => unreachable!("a writer moves within one call"),
        };
        if let Poll::Ready(Ok(written)) = result {
            this.meter.wrote(written);
        }
        result
    }
}

impl AsyncWrite for MeteredStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write_bufs(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.write_bufs(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        match &self.writer {
            Writer::Direct(half) => half.is_write_vectored(),
            _ => true,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().writer {
            Writer::Direct(half) => Pin::new(half).poll_flush(cx),
            // Handed to the network: the path delivers it on its own time.
            _ => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().writer {
            Writer::Direct(half) => Pin::new(half).poll_shutdown(cx),
            Writer::Shaped(path) => path.poll_shutdown(cx),
            Writer::Moving => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wait_for_their_request_and_writes_follow_the_current_one() {
        let meters = Arc::new(Meters::default());
        let meter = ConnMeter::new(meters.clone());
        meter.read(100); // the head of a poll request
        meter.begin(Some(LaneId::Poll));
        meter.wrote(250);
        meter.read(80); // the next request's head, read before its path is known
        meter.begin(None);
        meter.wrote(40);
        let poll = meters.lane(LaneId::Poll).snapshot();
        let other = meters.other().snapshot();
        assert_eq!((poll.bytes_in, poll.bytes_out), (100, 250));
        assert_eq!((other.bytes_in, other.bytes_out), (80, 40));
    }

    #[test]
    fn open_guards_count_while_alive() {
        let meters = Meters::default();
        let guard = meters.lane(LaneId::Sse).open();
        let _second = meters.lane(LaneId::Sse).open();
        drop(guard);
        let sse = meters.lane(LaneId::Sse).snapshot();
        assert_eq!((sse.connections_open, sse.connections_total), (1, 2));
    }

    #[test]
    fn paths_map_to_lanes() {
        assert_eq!(lane_of_path("/api/longpoll"), Some(LaneId::LongPoll));
        assert_eq!(lane_of_path("/ws"), Some(LaneId::Ws));
        assert_eq!(lane_of_path("/api/messages"), None);
    }
}
