//! One browser connection to the proxy: what the lab needs to know of it ([`Conn`]: its channel, when it
//! last carried a byte, whether it is cut or half-open) and the socket it runs on ([`ProxiedStream`]),
//! which carries its bytes over the channel's emulated network and, once half-open, swallows everything
//! both ways while still looking open.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;
use switchboard_shared::network::Condition;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::sync::CancellationToken;

use super::AppProxy;
use crate::listener::ClientSlot;
use crate::metering::FileHold;
use crate::network::shaped::{Inbound, Writer, ms_of};

/// How long a half-open connection is kept silently open when the browser never gives up on it.
const ZOMBIE_LIFETIME: Duration = Duration::from_secs(600);

/// Why the proxy cut a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutBy {
    /// A fault of the lab (`drop`, or the channel's connections refused).
    Fault,
    /// The idle timeout: the connection was silent that long.
    IdleTimeout,
    /// The browser took nothing the proxy sent it for the send timeout.
    Stalled,
}

pub use switchboard_shared::app::ChannelKey;

/// What the proxy knows of one browser connection.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct Conn {
    // Read or written on every read and write of a socket, and the first thing each finds cold with a
    // thousand sockets open: together, and first, they are one cache line.
    /// When a byte last passed, ms on the process's monotonic clock ([`ms_of`]).
    last_activity_ms: AtomicU64,
    /// Half-open: nothing passes either way any more, and nothing is closed.
    half_open: AtomicBool,
    /// Whether it was upgraded to a WebSocket.
    pub upgraded: AtomicBool,
    /// Closed with a reset rather than in order: what it carried broke off.
    reset: AtomicBool,
    /// The app closed (or began closing) the socket it carries: what the browser does next answers it.
    pub app_hung_up: AtomicBool,
    /// The browser awaits something on it that a half-open withheld (an answer, or a request it sent
    /// again): closing it then is giving up on it, where closing an idle kept-alive one is not.
    pub awaiting: AtomicBool,
    /// The browser sent a request on it after a half-open left it dead (reusing a kept-alive connection).
    pub asked_dead: AtomicBool,
    /// The browser gave up on it (its close frame, its end, a reset): with `app_hung_up`, both ends have,
    /// and what is left of it is their closing, not a line either believes in.
    pub browser_left: AtomicBool,
    /// Raised when its cut (or the proxy's shutdown) may have come: its socket's relay looks at the cut
    /// only then ([`Conn::cut_heard`]). Here, in the line every frame reads anyway: a gate of its own
    /// kept the flag in a line of its own, fetched cold at every frame (1.5 % of the proxy's samples).
    cut_woken: AtomicBool,
    pub id: u64,
    pub peer: SocketAddr,
    /// The channel of the request it carries now (or carried last).
    key: Mutex<Option<ChannelKey>>,
    /// Cancelled to cut the connection (both legs).
    pub cut: CancellationToken,
    cut_by: Mutex<Option<CutBy>>,
    /// Requests it has carried: the first one opened the connection.
    pub requests: AtomicU64,
    /// The plain request it carries now (a hash of its method and URL; 0 between requests and on a
    /// socket): cut in flight, the browser may send it again on a new connection — a resend, not a
    /// redial.
    pub asking: std::sync::atomic::AtomicU64,
    /// Where the line it carries is counted, so a half-open counts it dead at once.
    pub counted: super::figures::Counted,
    /// The relay's task, woken when the cut comes.
    relay_task: Mutex<Option<Waker>>,
    /// Its place among the open files and its client's connections, given back when it is gone.
    _admitted: Admitted,
}

/// A connection's place among the open files and among its client's connections.
#[derive(Debug, Default)]
pub struct Admitted {
    pub file: Option<FileHold>,
    pub slot: Option<ClientSlot>,
}

impl Conn {
    /// `cut` is a child of the proxy's shutdown: one token ends the connection either way.
    pub fn new(id: u64, peer: SocketAddr, admitted: Admitted, cut: CancellationToken) -> Conn {
        Conn {
            _admitted: admitted,
            id,
            peer,
            key: Mutex::new(None),
            last_activity_ms: AtomicU64::new(now_monotonic_ms()),
            half_open: AtomicBool::new(false),
            cut,
            cut_by: Mutex::new(None),
            requests: AtomicU64::new(0),
            upgraded: AtomicBool::new(false),
            reset: AtomicBool::new(false),
            awaiting: AtomicBool::new(false),
            app_hung_up: AtomicBool::new(false),
            asked_dead: AtomicBool::new(false),
            browser_left: AtomicBool::new(false),
            asking: std::sync::atomic::AtomicU64::new(0),
            counted: super::figures::Counted::default(),
            cut_woken: AtomicBool::new(true),
            relay_task: Mutex::new(None),
        }
    }

    /// Asks that the browser's socket be closed with a reset, not in order, when it closes.
    pub fn reset_on_close(&self) {
        self.reset.store(true, Relaxed);
    }

    pub fn key(&self) -> Option<ChannelKey> {
        self.key.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The id of its channel (a copy of the id only).
    pub fn channel_id(&self) -> Option<String> {
        self.key
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|key| key.id.clone())
    }

    /// Whether its channel is `id`, read in place: asked of every open connection for every channel,
    /// a copy of the key each time was most of what `GET /api/app` cost.
    pub fn in_channel_id(&self, id: &str) -> bool {
        self.key
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|key| key.id == id)
    }

    pub fn set_key(&self, key: ChannelKey) {
        *self.key.lock().unwrap_or_else(|e| e.into_inner()) = Some(key);
    }

    /// Whether a fault aimed at `channel` (`None` for every channel) hits this connection.
    pub fn in_channel(&self, channel: Option<&str>) -> bool {
        match channel {
            None => true,
            Some(id) => self.in_channel_id(id),
        }
    }

    pub fn touch(&self) {
        self.last_activity_ms.store(now_monotonic_ms(), Relaxed);
    }

    /// How long since a byte last passed.
    pub fn silent_for_ms(&self) -> u64 {
        now_monotonic_ms().saturating_sub(self.last_activity_ms.load(Relaxed))
    }

    pub fn is_half_open(&self) -> bool {
        self.half_open.load(Relaxed)
    }

    pub fn go_half_open(&self) {
        self.half_open.store(true, Relaxed);
    }

    /// Cuts both legs, saying why (the first reason sticks).
    pub fn cut_by(&self, why: CutBy) {
        let mut cut_by = self.cut_by.lock().unwrap_or_else(|e| e.into_inner());
        if cut_by.is_none() {
            *cut_by = Some(why);
        }
        drop(cut_by);
        self.cut.cancel();
    }

    pub fn was_cut_by(&self) -> Option<CutBy> {
        *self.cut_by.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the relay of its socket is to look at its cut now: only after the waker it polls the cut
    /// with ([`Waker::from`] the connection) fired, and once at first. `task` is the relay's own copy of
    /// the task's waker, stored here only when it changes.
    pub fn cut_heard(&self, cx: &Context<'_>, task: &mut Option<Waker>) -> bool {
        if !task.as_ref().is_some_and(|task| task.will_wake(cx.waker())) {
            let waker = cx.waker().clone();
            *self.relay_task.lock().unwrap_or_else(|e| e.into_inner()) = Some(waker.clone());
            *task = Some(waker);
        }
        // Mostly down: a load, no locked write. A wake after the load raises it again (the task's waker
        // stored first) and wakes the task: nothing is lost.
        self.cut_woken.load(Acquire) && self.cut_woken.swap(false, AcqRel)
    }

    /// Both ends gave up on it: still open only while they close (a WebSocket's closing handshake
    /// waits up to 30–60 s for an answer a dead line never brings).
    pub fn abandoned(&self) -> bool {
        self.browser_left.load(Relaxed) && self.app_hung_up.load(Relaxed)
    }

    /// One end gave up on it: once both have, the line it carries is no longer a live one (its tab's
    /// next connection is a reconnect, not a second client), counted so once, as a dead one is.
    pub fn line_given_up(&self) {
        if self.abandoned() {
            self.counted.died();
        }
    }

    /// Whether it carries something of its channel now: a line (a socket, a stream), a request awaiting
    /// its answer, or a request the browser sent on it after a half-open left it dead. A kept-alive
    /// connection between letters carries nothing: counted, a page polling every few seconds read as
    /// a line held open.
    pub fn carrying(&self) -> bool {
        self.asking.load(Relaxed) != 0
            || self.counted.carries()
            || (self.is_half_open() && self.awaiting.load(Relaxed))
    }

    /// Whether the browser, closing it now, gives up on something in flight: a socket, or a connection
    /// it awaits an answer on.
    pub fn busy(&self) -> bool {
        self.upgraded.load(Relaxed) || self.awaiting.load(Relaxed)
    }
}

/// The waker a socket's relay polls the cut with: it raises the flag the relay looks at, and wakes it.
impl Wake for Conn {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.cut_woken.store(true, Release);
        if let Some(task) = self
            .relay_task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            task.wake_by_ref();
        }
    }
}

fn now_monotonic_ms() -> u64 {
    ms_of(tokio::time::Instant::now()) as u64
}

/// The browser's socket to the proxy. Its bytes go over the emulated network of its channel (when one
/// is set), it tells its [`Conn`] when a byte passes, and once half-open it takes what the browser
/// sends and drops it, and says it wrote what it drops, closing nothing.
#[derive(Debug)]
pub struct ProxiedStream {
    reader: Option<OwnedReadHalf>,
    writer: Writer<OwnedWriteHalf>,
    inbound: Option<Box<Inbound>>,
    conn: Arc<Conn>,
    proxy: Arc<AppProxy>,
    /// The browser closed its end (read EOF or an error).
    browser_gone: bool,
}

impl ProxiedStream {
    pub fn new(stream: TcpStream, conn: Arc<Conn>, proxy: Arc<AppProxy>) -> ProxiedStream {
        let _ = stream.set_nodelay(true);
        // Capped as the server's own sockets are (nginx's `sndbuf`): a browser that reads nothing stalls
        // the proxy's writes soon, and is cut after the send timeout instead of being fed megabytes.
        let _ = socket2::SockRef::from(&stream).set_send_buffer_size(crate::listener::SEND_BUFFER);
        let (reader, writer) = stream.into_split();
        ProxiedStream {
            reader: Some(reader),
            writer: Writer::Direct(writer),
            inbound: None,
            conn,
            proxy,
            browser_gone: false,
        }
    }

    /// Its two directions, borrowed apart: the relay reads one and writes the other at once, with no
    /// lock between them (tokio's `split` takes one on every read and write).
    pub fn halves(&mut self) -> (ReadSide<'_>, WriteSide<'_>) {
        (
            ReadSide {
                reader: &mut self.reader,
                inbound: &mut self.inbound,
                browser_gone: &mut self.browser_gone,
                conn: &self.conn,
                proxy: &self.proxy,
            },
            WriteSide {
                writer: &mut self.writer,
                conn: &self.conn,
                proxy: &self.proxy,
            },
        )
    }

    /// Reads and drops what a half-open connection's browser sends; ready only when it goes away.
    fn swallow(
        reader: &mut OwnedReadHalf,
        cx: &mut Context<'_>,
        gone: &mut bool,
        tried: &mut bool,
    ) -> Poll<io::Result<()>> {
        let mut scratch = [0u8; 4096];
        loop {
            let mut read = ReadBuf::new(&mut scratch);
            match Pin::new(&mut *reader).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) if read.filled().is_empty() => {
                    *gone = true;
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Ok(())) => {
                    *tried = true;
                    continue;
                }
                Poll::Ready(Err(err)) => {
                    *gone = true;
                    return Poll::Ready(Err(err));
                }
            }
        }
    }
}

/// The emulated network of a connection's channel, if one is set.
fn condition(conn: &Conn, proxy: &AppProxy) -> Option<Arc<Condition>> {
    // Asked on every read and write: no copy of the channel's key while no network is set.
    if !proxy.lab.any_network() {
        return None;
    }
    let key = conn.key()?;
    proxy.lab.network_for(&key.id)
}

/// The reading direction of a [`ProxiedStream`] (see [`ProxiedStream::halves`]).
#[derive(Debug)]
pub struct ReadSide<'a> {
    reader: &'a mut Option<OwnedReadHalf>,
    inbound: &'a mut Option<Box<Inbound>>,
    browser_gone: &'a mut bool,
    conn: &'a Arc<Conn>,
    proxy: &'a Arc<AppProxy>,
}

/// The writing direction of a [`ProxiedStream`] (see [`ProxiedStream::halves`]).
#[derive(Debug)]
pub struct WriteSide<'a> {
    writer: &'a mut Writer<OwnedWriteHalf>,
    conn: &'a Arc<Conn>,
    proxy: &'a Arc<AppProxy>,
}

impl AsyncRead for ReadSide<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let upgraded = this.conn.upgraded.load(Relaxed);
        // Only a socket's frames are held here: an HTTP request's head is held by the forwarding,
        // which knows its channel once the head is read.
        let condition = if upgraded {
            condition(this.conn, this.proxy)
        } else {
            None
        };
        let Some(reader) = this.reader.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        // A socket's frames still reach the relay, which drops them and sees the browser hang up; an
        // HTTP connection's bytes are dropped here.
        if this.conn.is_half_open() && !upgraded {
            let mut tried = false;
            let result = ProxiedStream::swallow(reader, cx, this.browser_gone, &mut tried);
            if tried {
                // It asked again on the dead line (a letter on its schedule): not noticing, but closing
                // the line now would be giving up on that request.
                this.conn.awaiting.store(true, Relaxed);
                if !this.conn.asked_dead.swap(true, Relaxed) {
                    this.proxy.lab.asked_dead(this.conn);
                }
            }
            if *this.browser_gone {
                this.proxy.lab.left(this.conn);
            }
            return result;
        }
        let before = buf.filled().len();
        let result = if this.inbound.is_some() || condition.is_some() {
            let inbound = this.inbound.get_or_insert_with(Box::default);
            let result = inbound.poll_read(cx, reader, buf, condition.as_deref(), |_| {});
            if condition.is_none() && inbound.is_empty() {
                *this.inbound = None;
            }
            result
        } else {
            Pin::new(reader).poll_read(cx, buf)
        };
        match &result {
            Poll::Ready(Ok(())) if buf.filled().len() > before => this.conn.touch(),
            Poll::Ready(_) => *this.browser_gone = true,
            Poll::Pending => {}
        }
        result
    }
}

impl WriteSide<'_> {
    fn write_bufs(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.conn.is_half_open() {
            // Taken and dropped: the path is dead, and the sender cannot tell.
            return Poll::Ready(Ok(bufs.iter().map(|buf| buf.len()).sum()));
        }
        let condition = condition(self.conn, self.proxy);
        if condition.is_some() {
            self.writer.shape();
        }
        let result = self.writer.poll_write(cx, bufs, condition.as_deref());
        if let Poll::Ready(Ok(written)) = result
            && written > 0
        {
            self.conn.touch();
        }
        result
    }
}

impl AsyncWrite for WriteSide<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().write_bufs(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().write_bufs(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut *this.writer {
            Writer::Direct(half) if !this.conn.is_half_open() => Pin::new(half).poll_flush(cx),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.conn.is_half_open() {
            // Nothing is closed on a half-open line.
            return Poll::Ready(Ok(()));
        }
        match &mut *this.writer {
            Writer::Direct(half) => Pin::new(half).poll_shutdown(cx),
            Writer::Shaped(path) => path.poll_shutdown(cx),
            Writer::Moving => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncRead for ProxiedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let (mut read, _) = self.get_mut().halves();
        Pin::new(&mut read).poll_read(cx, buf)
    }
}

impl AsyncWrite for ProxiedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let (_, mut write) = self.get_mut().halves();
        Pin::new(&mut write).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let (_, mut write) = self.get_mut().halves();
        Pin::new(&mut write).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (_, mut write) = self.get_mut().halves();
        Pin::new(&mut write).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (_, mut write) = self.get_mut().halves();
        Pin::new(&mut write).poll_shutdown(cx)
    }
}

impl ProxiedStream {
    /// Closes the browser's side with a reset when it is dropped (nothing of the kind on a half-open
    /// line, which tells the browser nothing).
    pub fn reset(&self) {
        self.conn.reset_on_close();
    }
}

impl Drop for ProxiedStream {
    fn drop(&mut self) {
        self.proxy.closed(&self.conn);
        if self.conn.reset.load(Relaxed)
            && !self.conn.is_half_open()
            && let Some(reader) = &self.reader
        {
            // SO_LINGER 0: the close sends a reset. The write half is forgotten, not dropped: dropping
            // it would send a FIN first, and the browser would read a clean end before the reset. (On
            // an emulated path the write half lives in its pump, which ends it in order: there the
            // reset comes after a FIN.)
            let _ = reader.as_ref().set_zero_linger();
            if let Writer::Direct(half) = std::mem::replace(&mut self.writer, Writer::Moving) {
                half.forget();
            }
        }
        // A half-open connection whose browser has not given up stays open, silent, until it does (or
        // for ZOMBIE_LIFETIME): closing it would tell the browser what a dead path never tells.
        if self.conn.is_half_open()
            && !self.browser_gone
            && !self.conn.cut.is_cancelled()
            && let (Some(reader), Ok(runtime)) =
                (self.reader.take(), tokio::runtime::Handle::try_current())
        {
            let writer = std::mem::replace(&mut self.writer, Writer::Moving);
            let (conn, proxy) = (self.conn.clone(), self.proxy.clone());
            runtime.spawn(async move {
                let mut reader = reader;
                let (mut gone, mut tried) = (false, false);
                let waited = tokio::time::timeout(
                    ZOMBIE_LIFETIME,
                    std::future::poll_fn(|cx| {
                        ProxiedStream::swallow(&mut reader, cx, &mut gone, &mut tried)
                    }),
                )
                .await;
                if tried {
                    conn.awaiting.store(true, Relaxed);
                    if !conn.asked_dead.swap(true, Relaxed) {
                        proxy.lab.asked_dead(&conn);
                    }
                }
                if waited.is_ok() {
                    proxy.lab.left(&conn);
                }
                drop(writer);
            });
        }
    }
}
