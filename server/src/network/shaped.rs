//! The emulated path on one TCP connection: what the server writes comes out at the socket when the
//! [`PathClock`] says, and what the browser sends on a phone line reaches the server when it says.
//!
//! Writing: a connection that meets a condition hands its write half to a pump task and from then on
//! puts each chunk, stamped with the time it is due, into a bounded queue; the pump sleeps on one timer
//! (reset per chunk, not made per chunk) and writes each chunk when it is due. A write is accepted at
//! once while the queue has room, as a real send buffer accepts it: the writer is not held up by the
//! delay, only by a full queue (bandwidth). Flushing means "handed to the network".
//!
//! Reading: bytes read from the socket are held, stamped, until their time; only the phone line is
//! read this way (HTTP requests are delayed whole by the middleware, which knows their lane).

use bytes::Bytes;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use switchboard_shared::network::{Condition, PathClock};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::PollSender;

/// Chunks waiting in one connection's queue at most; with [`MAX_CHUNK`] this bounds what a slow path
/// holds per connection (~1 MiB), like a socket's send buffer.
const QUEUE_CHUNKS: usize = 64;
/// The largest chunk one write puts in the queue.
const MAX_CHUNK: usize = 16 * 1024;
/// The most bytes read from the socket and held back on a phone line.
const MAX_HELD_IN: usize = 256 * 1024;

/// A line with nothing to emulate: what a shaped connection uses once its condition is cleared, so
/// what it still holds keeps its order.
fn perfect() -> &'static Condition {
    static PERFECT: std::sync::OnceLock<Condition> = std::sync::OnceLock::new();
    PERFECT.get_or_init(|| Condition {
        name: "loopback".into(),
        rtt_ms: 0,
        jitter_ms: 0,
        down_kbps: 0,
        up_kbps: 0,
        loss_pct: 0.0,
    })
}

/// A small, fast random source per connection (splitmix64): the path's jitter and loss need no more.
#[derive(Debug)]
pub struct Dice(u64);

impl Dice {
    pub fn new() -> Dice {
        static NEXT: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        Dice(NEXT.fetch_add(0x9e37_79b9_7f4a_7c15, Relaxed) ^ u64::from(nanos))
    }

    /// A uniform number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Default for Dice {
    fn default() -> Self {
        Dice::new()
    }
}

/// Milliseconds on the process's monotonic clock, the time base of every [`PathClock`].
pub fn ms_of(at: Instant) -> f64 {
    at.duration_since(epoch()).as_secs_f64() * 1000.0
}

pub fn instant_of(ms: f64) -> Instant {
    epoch() + Duration::from_secs_f64(ms.max(0.0) / 1000.0)
}

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// One connection's write half (`W`): direct to the socket, or through the emulated path.
#[derive(Debug)]
pub enum Writer<W> {
    Direct(W),
    Shaped(Box<Outbound>),
    /// Only between the two, while the write half moves to its pump.
    Moving,
}

enum Chunk {
    Data {
        bytes: Bytes,
        due: Instant,
    },
    /// Close the write half once everything before it is out.
    Shutdown,
}

/// The server → browser direction of a shaped connection.
#[derive(Debug)]
pub struct Outbound {
    queue: PollSender<Chunk>,
    clock: PathClock,
    dice: Dice,
    shut: bool,
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Chunk::Data { bytes, .. } => write!(f, "Data({} bytes)", bytes.len()),
            Chunk::Shutdown => f.write_str("Shutdown"),
        }
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> Writer<W> {
    /// Moves the connection onto the emulated path (once; later calls do nothing).
    pub fn shape(&mut self) {
        if !matches!(self, Writer::Direct(_)) {
            return;
        }
        let Writer::Direct(half) = std::mem::replace(self, Writer::Moving) else {
            unreachable!("checked just above");
        };
        let (sender, receiver) = mpsc::channel(QUEUE_CHUNKS);
        tokio::spawn(pump(receiver, half));
        *self = Writer::Shaped(Box::new(Outbound {
            queue: PollSender::new(sender),
            clock: PathClock::default(),
            dice: Dice::new(),
            shut: false,
        }));
    }

    /// Writes `bufs` to the socket, or into the emulated path under `condition`.
    pub fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
        condition: Option<&Condition>,
    ) -> Poll<io::Result<usize>> {
        match self {
            // One piece goes out with `send`, which the kernel hands straight to the socket; `writev`
            // first goes through the file layer (the file's position lock, the iovec's import and
            // checks): at one write per delivery, 3 points of a core at 5,000 calls × 10 events/s.
            Writer::Direct(half) if bufs.len() == 1 => Pin::new(half).poll_write(cx, &bufs[0]),
            Writer::Direct(half) => Pin::new(half).poll_write_vectored(cx, bufs),
            Writer::Shaped(path) => path.poll_write(cx, bufs, condition),
            Writer::Moving => unreachable!("a writer moves within one call"),
        }
    }
}

impl Outbound {
    /// Takes up to [`MAX_CHUNK`] bytes of `bufs` into the path, or waits for room in the queue.
    pub fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
        condition: Option<&Condition>,
    ) -> Poll<io::Result<usize>> {
        if self.shut {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if ready!(self.queue.poll_reserve(cx)).is_err() {
            // The pump is gone: the socket failed under it.
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let mut chunk = Vec::with_capacity(MAX_CHUNK.min(bufs.iter().map(|b| b.len()).sum()));
        for buf in bufs {
            let room = MAX_CHUNK - chunk.len();
            chunk.extend_from_slice(&buf[..buf.len().min(room)]);
            if chunk.len() == MAX_CHUNK {
                break;
            }
        }
        let condition = condition.unwrap_or_else(|| perfect());
        let delivery = self.clock.send(
            ms_of(Instant::now()),
            chunk.len(),
            condition,
            condition.down_kbps,
            self.dice.unit(),
            self.dice.unit(),
        );
        let written = chunk.len();
        let due = instant_of(delivery.out_ms);
        if self
            .queue
            .send_item(Chunk::Data {
                bytes: Bytes::from(chunk),
                due,
            })
            .is_err()
        {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Poll::Ready(Ok(written))
    }

    /// Closes the write half once everything queued before it is out.
    pub fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.shut {
            return Poll::Ready(Ok(()));
        }
        if ready!(self.queue.poll_reserve(cx)).is_ok() {
            let _ = self.queue.send_item(Chunk::Shutdown);
        }
        self.shut = true;
        Poll::Ready(Ok(()))
    }
}

/// Writes each chunk when it is due, on one timer; ends when the connection is done with it (the queue
/// closes), when it is told to shut the write half, or when the socket fails.
async fn pump<W: AsyncWrite + Unpin>(mut queue: mpsc::Receiver<Chunk>, mut socket: W) {
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    while let Some(chunk) = queue.recv().await {
        match chunk {
            Chunk::Data { bytes, due } => {
                if due > Instant::now() {
                    timer.as_mut().reset(due);
                    timer.as_mut().await;
                }
                if socket.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Chunk::Shutdown => {
                let _ = socket.shutdown().await;
                return;
            }
        }
    }
}

/// The browser → server direction of a phone line: bytes read off the socket, held until they are due.
#[derive(Debug)]
pub struct Inbound {
    held: VecDeque<(Instant, Bytes)>,
    held_bytes: usize,
    /// When the browser's end of the connection (its FIN, or a failure) reaches the server.
    end: Option<(Instant, Option<io::ErrorKind>)>,
    clock: PathClock,
    dice: Dice,
    timer: Pin<Box<Sleep>>,
}

impl Default for Inbound {
    fn default() -> Self {
        Inbound {
            held: VecDeque::new(),
            held_bytes: 0,
            end: None,
            clock: PathClock::default(),
            dice: Dice::new(),
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }
}

impl Inbound {
    /// Reads what the socket has (counting it with `counted`), and hands over what is due.
    pub fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        socket: &mut (impl AsyncRead + Unpin),
        buf: &mut ReadBuf<'_>,
        condition: Option<&Condition>,
        mut counted: impl FnMut(usize),
    ) -> Poll<io::Result<()>> {
        let condition = condition.unwrap_or_else(|| perfect());
        let mut scratch = [0u8; 8 * 1024];
        while self.end.is_none() && self.held_bytes < MAX_HELD_IN {
            let mut read = ReadBuf::new(&mut scratch);
            let now = ms_of(Instant::now());
            match Pin::new(&mut *socket).poll_read(cx, &mut read) {
                Poll::Pending => break,
                Poll::Ready(outcome) => {
                    let n = read.filled().len();
                    counted(n);
                    let delivery = self.clock.send(
                        now,
                        n,
                        condition,
                        condition.up_kbps,
                        self.dice.unit(),
                        // Loss is charged on what the server writes; the way up only pays its delay.
                        1.0,
                    );
                    let due = instant_of(delivery.out_ms);
                    match outcome {
                        Ok(()) if n > 0 => {
                            self.held
                                .push_back((due, Bytes::copy_from_slice(read.filled())));
                            self.held_bytes += n;
                        }
                        Ok(()) => self.end = Some((due, None)),
                        Err(err) => self.end = Some((due, Some(err.kind()))),
                    }
                }
            }
        }
        loop {
            let now = Instant::now();
            let next = match (self.held.front(), self.end) {
                (Some(&(due, _)), _) => due,
                (None, Some((due, _))) => due,
                (None, None) => return Poll::Pending,
            };
            if next > now {
                self.timer.as_mut().reset(next);
                if self.timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                continue;
            }
            if let Some((_, bytes)) = self.held.front_mut() {
                let n = bytes.len().min(buf.remaining());
                buf.put_slice(&bytes.split_to(n));
                self.held_bytes -= n;
                if bytes.is_empty() {
                    self.held.pop_front();
                }
                return Poll::Ready(Ok(()));
            }
            return Poll::Ready(match self.end {
                Some((_, Some(kind))) => Err(kind.into()),
                _ => Ok(()),
            });
        }
    }

    /// Whether nothing is held (the connection may go back to plain reads).
    pub fn is_empty(&self) -> bool {
        self.held.is_empty() && self.end.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dice_are_uniform_enough() {
        let mut dice = Dice::new();
        let rolls: Vec<f64> = (0..10_000).map(|_| dice.unit()).collect();
        assert!(rolls.iter().all(|&r| (0.0..1.0).contains(&r)));
        let below_tenth = rolls.iter().filter(|&&r| r < 0.1).count();
        assert!((800..1_200).contains(&below_tenth), "{below_tenth}");
    }
}
