//! The server's TCP listener: every accepted connection is wrapped in a stream that counts the bytes
//! really read and written ([`crate::metering`]) and is where an emulated network condition
//! ([`crate::network`]) bites: while the lane it serves has one, what is written comes out late, slowly
//! or after a retransmission.

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use switchboard_shared::LaneId;
use switchboard_shared::network::Condition;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::net::tcp::OwnedReadHalf;

use crate::metering::{ConnInfo, ConnMeter, Meters};
use crate::network::Network;
use crate::network::shaped::{Inbound, Writer};

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
            if this.meter.has_begun() {
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
