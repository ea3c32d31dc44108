//! Relaying what flows after the head: a WebSocket's frames both ways, and an event stream's events.
//!
//! Frames are relayed as the bytes that came, never decoded and encoded again: the browser's masked
//! frames reach the upstream masked as it sent them, and a frame's size, opcode and first bytes are read
//! on the way and put to the stages ([`super::stage`]). Small frames (most of them) are held until
//! whole, so a heartbeat can be recognised and swallowed when a stage says so; large ones stream through
//! as they come.
//!
//! A socket's two sides end as they ended: a clean end (FIN) on one side is passed on as a clean end,
//! an error or reset on one side resets the other at once — the proxy never leaves one side of a
//! socket open and silent when the other is gone, which would look like a half-open the app never had.

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::conn::{CutBy, ProxiedStream};
use super::record::MESSAGE_PREFIX;
use super::stage::{Direction, End, Fate, Flow, Form, Message};
use crate::hub::now_ms_f64;
use switchboard_shared::app::Reached;

/// Frames up to this payload are held until whole (so they can be read, and swallowed).
const WHOLE_FRAME: usize = 16 * 1024;
/// The room a read always has in the relay's buffer.
const READ_ROOM: usize = 4 * 1024;
/// The most bytes held back by a delay per direction before reading stops.
const MAX_DELAYED: usize = 1024 * 1024;

/// Why a socket's relay stopped before both sides ended in order.
#[derive(Debug)]
enum Broke {
    /// The browser's side failed (a reset, an error), in words.
    Browser(String),
    /// The app's side failed.
    App(String),
    /// The browser took nothing for the send timeout.
    Stalled,
}

/// Which side a failure is blamed on.
type Blame = fn(String) -> Broke;

/// The side a direction reads from, and the side it writes to.
fn sides(direction: Direction) -> (Blame, Blame) {
    match direction {
        Direction::Up => (Broke::Browser, Broke::App),
        Direction::Down => (Broke::App, Broke::Browser),
    }
}

/// Relays an upgraded socket until both sides ended, one broke, the lab cut it or the proxy stops; the
/// bytes each side sent past the upgrade's head (`*_early`) go first.
pub async fn socket(
    flow: Arc<Flow>,
    mut browser: ProxiedStream,
    browser_early: Bytes,
    mut app: TcpStream,
    app_early: Bytes,
) {
    let send_timeout = flow.proxy.settings.send_timeout;
    let _app_file = flow.proxy.settings.meters.hold_file();
    let outcome = {
        let (mut browser_read, mut browser_write) = browser.halves();
        let (mut app_read, mut app_write) = app.split();
        let up = frames(
            &mut browser_read,
            &mut app_write,
            browser_early,
            Direction::Up,
            &flow,
            send_timeout,
        );
        let down = frames(
            &mut app_read,
            &mut browser_write,
            app_early,
            Direction::Down,
            &flow,
            send_timeout,
        );
        // The connection's cut is a child of the proxy's shutdown: one token ends it either way. It is
        // looked at only when its own waker fired (the connection is that waker, and raises a flag in
        // the line of it every frame reads: [`Conn::cut_heard`]): the task wakes for every frame, and a
        // token's look takes a lock. (Polling the browser's side only when its own waker fired too was
        // measured: no less CPU, the look costing what it saved.)
        let mut relay = std::pin::pin!(futures_util::future::try_join(up, down));
        let mut cut = std::pin::pin!(flow.conn.cut.cancelled());
        let cut_waker = Waker::from(flow.conn.clone());
        let mut task = None;
        std::future::poll_fn(|cx| {
            if let Poll::Ready(ended) = relay.as_mut().poll(cx) {
                return Poll::Ready(ended.map(|_| ()));
            }
            if flow.conn.cut_heard(cx, &mut task)
                && cut
                    .as_mut()
                    .poll(&mut Context::from_waker(&cut_waker))
                    .is_ready()
            {
                // (Ready, the flag stays down: the relay ends now.)
                return Poll::Ready(Ok(()));
            }
            Poll::Pending
        })
        .await
    };
    match outcome {
        Ok(()) => flow.end(End::Complete),
        Err(Broke::Browser(why)) => {
            // Reset for reset: the app hears at once that its peer is gone.
            let _ = app.set_zero_linger();
            flow.end(End::Failed(format!("the browser's side broke: {why}")));
        }
        Err(Broke::App(why)) => {
            browser.reset();
            flow.end(End::Failed(format!("the app's side broke: {why}")));
        }
        Err(Broke::Stalled) => {
            flow.conn.cut_by(CutBy::Stalled);
            flow.end(End::Failed(format!(
                "the browser took nothing for {} s: cut",
                send_timeout.as_secs_f64()
            )));
        }
    }
    drop(browser);
    drop(app);
}

/// The header of one frame.
#[derive(Debug, Clone, Copy)]
struct Header {
    opcode: u8,
    mask: Option<[u8; 4]>,
    header_len: usize,
    payload_len: u64,
}

/// Reads a frame header from the start of `buf`, if it is all there.
fn header(buf: &[u8]) -> Option<Header> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0f;
    let masked = buf[1] & 0x80 != 0;
    let (payload_len, mut at) = match buf[1] & 0x7f {
        126 => {
            if buf.len() < 4 {
                return None;
            }
            (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
        }
        127 => {
            if buf.len() < 10 {
                return None;
            }
            let mut len = [0u8; 8];
            len.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(len), 10)
        }
        len => (u64::from(len), 2),
    };
    let mask = if masked {
        if buf.len() < at + 4 {
            return None;
        }
        let mut key = [0u8; 4];
        key.copy_from_slice(&buf[at..at + 4]);
        at += 4;
        Some(key)
    } else {
        None
    };
    Some(Header {
        opcode,
        mask,
        header_len: at,
        payload_len,
    })
}

/// The first bytes of a payload as text, unmasked: read where they lie when the frame is unmasked (the
/// app's), else unmasked into `scratch` — asked of every frame, so no allocation unless the bytes are
/// not text (a close frame's code is written out too).
fn text_of<'a>(
    payload: &'a [u8],
    mask: Option<[u8; 4]>,
    opcode: u8,
    scratch: &'a mut [u8; MESSAGE_PREFIX],
) -> Cow<'a, str> {
    let shown = &payload[..payload.len().min(MESSAGE_PREFIX)];
    let plain: &[u8] = match mask {
        Some(key) => {
            let unmasked = &mut scratch[..shown.len()];
            for (i, (out, byte)) in unmasked.iter_mut().zip(shown).enumerate() {
                *out = byte ^ key[i % 4];
            }
            unmasked
        }
        None => shown,
    };
    if opcode == 8 && plain.len() >= 2 {
        // A close frame: its code, then its reason.
        let code = u16::from_be_bytes([plain[0], plain[1]]);
        return Cow::Owned(format!("{code} {}", as_text(&plain[2..])).trim().to_owned());
    }
    as_text(plain)
}

/// Bytes as text: in place when they are UTF-8 (a character cut by the prefix's end is left out).
fn as_text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(cut) if cut.error_len().is_none() => Cow::Borrowed(
            std::str::from_utf8(&bytes[..cut.valid_up_to()]).expect("valid up to there"),
        ),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Relays one direction of a socket until its reader ends in order (then ends the other side's writing
/// in order too), or says which side broke.
async fn frames(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    early: Bytes,
    direction: Direction,
    flow: &Flow,
    send_timeout: Duration,
) -> Result<(), Broke> {
    let (reading_side, _) = sides(direction);
    let conn = &flow.conn;
    let lab = flow.lab();
    // A plain vector, its read bytes drained from the front: see the end of the loop.
    let mut buf: Vec<u8> = Vec::with_capacity((8 * 1024).max(early.len() + READ_ROOM));
    buf.extend_from_slice(&early);
    // A large frame streaming through: its payload bytes still to come.
    let mut streaming: u64 = 0;
    // Held back by a delay: when each piece is due, its bytes and how many messages it holds.
    let mut delayed: VecDeque<(Instant, Bytes, u64)> = VecDeque::new();
    let mut delayed_bytes = 0usize;
    // The messages waiting in `delayed`: lost if the relay ends before they are written.
    let mut waiting = Waiting {
        flow,
        direction,
        messages: 0,
    };
    let mut ended = false;
    // Made for the first delay only: a timer is a large part of the relay's state, and every wake-up
    // reads that state from memory (the smaller it is, the fewer lines).
    let mut timer: Option<Pin<Box<Sleep>>> = None;
    // Writes one piece, within the send timeout when it goes to the browser.
    async fn write(
        to: &mut (impl AsyncWrite + Unpin),
        bytes: &[u8],
        direction: Direction,
        send_timeout: Duration,
    ) -> Result<(), Broke> {
        let (_, writing_side) = sides(direction);
        let mut writing = std::pin::pin!(to.write_all(bytes));
        // Most writes are done at once (the socket had room): the send timeout's timer is set only for
        // one that has to wait (setting it took the runtime's handle, shared by every thread).
        let written = match writing.as_mut().now_or_never() {
            Some(written) => written,
            // (Boxed: a timeout is a timer, and this rare wait would otherwise make the relay's state
            // larger for every frame.)
            None => match Box::pin(tokio::time::timeout(send_timeout, writing.as_mut())).await {
                Ok(written) => written,
                Err(_) if direction == Direction::Down => return Err(Broke::Stalled),
                // The app not reading is the app's own business: its side's buffers fill, as they
                // would (the same write goes on: what it wrote is not written twice).
                Err(_) => writing.await,
            },
        };
        written.map_err(|err| writing_side(err.to_string()))
    }
    let mut first = !buf.is_empty();
    // Used only once a stage swallows a frame: most sockets never need it.
    let mut out = BytesMut::new();
    loop {
        if ended && delayed.is_empty() && buf.is_empty() {
            // On a half-open line the other end hears nothing, not even the end.
            if !conn.is_half_open() {
                let _ = to.shutdown().await;
            }
            return Ok(());
        }
        if let Some(&(due, _, _)) = delayed.front() {
            match timer.as_mut() {
                Some(timer) => timer.as_mut().reset(due),
                None => timer = Some(Box::pin(tokio::time::sleep_until(due))),
            }
        }
        if !first {
            tokio::select! {
                read = from.read_buf(&mut buf), if !ended && delayed_bytes < MAX_DELAYED => {
                    match read {
                        Ok(0) => {
                            ended = true;
                            if direction == Direction::Down
                                && !conn.app_hung_up.swap(true, Relaxed)
                            {
                                lab.app_left(conn);
                            }
                            if direction == Direction::Up {
                                // The browser hung up on the line (on a dead one: it noticed).
                                lab.left(conn);
                            }
                            if buf.is_empty() {
                                continue;
                            }
                        }
                        Ok(_) => {}
                        Err(err) => {
                            if direction == Direction::Up {
                                lab.left(conn);
                            }
                            return Err(reading_side(err.to_string()));
                        }
                    }
                }
                () = ran_out(&mut timer), if !delayed.is_empty() => {
                    while let Some((due, _, _)) = delayed.front() {
                        if *due > Instant::now() {
                            break;
                        }
                        let (_, bytes, messages) = delayed.pop_front().expect("just looked");
                        delayed_bytes -= bytes.len();
                        waiting.messages -= messages;
                        waiting.passed(messages, write(to, &bytes, direction, send_timeout).await)?;
                    }
                    continue;
                }
                else => {
                    // Ended with nothing delayed; what was left has been passed on.
                    buf.clear();
                    continue;
                }
            }
        }
        first = false;
        // What this read lets through, in order: the read's own bytes while every frame passes (written
        // from `buf` as they lie), copied into `out` (reused from read to read) only from the first
        // frame a stage swallowed.
        out.clear();
        let mut copied = false;
        // How far `buf` was read.
        let mut at = 0;
        let mut out_messages = 0u64;
        let mut closing = false;
        let mut delay = Duration::ZERO;
        loop {
            if streaming > 0 {
                let n = (streaming.min((buf.len() - at) as u64)) as usize;
                if n == 0 {
                    break;
                }
                if copied {
                    out.extend_from_slice(&buf[at..at + n]);
                }
                at += n;
                streaming -= n as u64;
                continue;
            }
            let Some(head) = header(&buf[at..]) else {
                break;
            };
            let whole = head.payload_len as usize <= WHOLE_FRAME;
            if whole && buf.len() - at < head.header_len + head.payload_len as usize {
                break;
            }
            let payload_start = at + head.header_len;
            let available = buf.len() - payload_start;
            // On the stack, not in the relay's state (which every wake-up reads from memory).
            let mut scratch = [0u8; MESSAGE_PREFIX];
            // A binary frame's bytes are not text; its size says enough.
            let text = if head.opcode == 2 {
                Cow::Borrowed("")
            } else {
                text_of(
                    &buf[payload_start..payload_start + available.min(head.payload_len as usize)],
                    head.mask,
                    head.opcode,
                    &mut scratch,
                )
            };
            let message = Message {
                direction,
                form: Form::Frame {
                    opcode: head.opcode,
                    whole,
                },
                size: head.payload_len,
                text: &text,
                at_ms: now_ms_f64(),
            };
            let decision = flow.proxy.pipeline.message(flow, &message);
            delay = delay.max(decision.delay);
            closing |= head.opcode == 8;
            if head.opcode == 8
                && direction == Direction::Down
                && !conn.app_hung_up.swap(true, Relaxed)
            {
                // The app closes the line: the browser's close that follows is an answer, not noticing.
                flow.lab().app_left(conn);
            }
            let passed = if whole {
                head.header_len + head.payload_len as usize
            } else {
                // Only the head now; the payload streams through as it comes.
                streaming = head.payload_len;
                head.header_len
            };
            if decision.fate == Fate::Swallowed && whole {
                if !copied {
                    out.extend_from_slice(&buf[..at]);
                    copied = true;
                }
            } else {
                if copied {
                    out.extend_from_slice(&buf[at..at + passed]);
                }
                // Messages the page gets: a close frame passes, but no handler of the page sees it.
                out_messages += u64::from(head.opcode != 8);
            }
            at += passed;
        }
        if ended {
            // The side ended mid-frame: what is left can never be whole. Passed on as it came.
            if copied {
                out.extend_from_slice(&buf[at..]);
            }
            at = buf.len();
        }
        if direction == Direction::Up && closing {
            // A browser that sends its close frame has given up on the line.
            lab.left(conn);
        }
        let passing: &[u8] = if copied { &out } else { &buf[..at] };
        if conn.is_half_open() {
            // Nothing passes a half-open line.
            flow.proxy
                .pipeline
                .delivered(flow, direction, Reached::Withheld, out_messages);
        } else if passing.is_empty() {
            // Nothing to pass now: part of a frame (it waits for the rest), or only what was swallowed.
        } else if delay.is_zero() && delayed.is_empty() {
            let written = write(to, passing, direction, send_timeout).await;
            waiting.passed(out_messages, written)?;
        } else {
            delayed_bytes += passing.len();
            waiting.messages += out_messages;
            let piece = Bytes::copy_from_slice(passing);
            delayed.push_back((Instant::now() + delay, piece, out_messages));
        }
        // What was read leaves the front and what is left (part of a frame, usually nothing) moves to
        // the start, so every read lands on the same few cache lines of one buffer. (Advancing a
        // `BytesMut` instead walked each read a message further into 8 KB until it wrapped: with a
        // thousand sockets the kernel's copy and the parse both met lines last touched seconds ago.)
        buf.drain(..at);
        buf.reserve(READ_ROOM);
    }
}

/// Until the timer runs out; never, when there is none.
async fn ran_out(timer: &mut Option<Pin<Box<Sleep>>>) {
    match timer {
        Some(timer) => timer.as_mut().await,
        None => std::future::pending().await,
    }
}

/// Messages a direction holds back (a delay), told as lost if the relay ends before they are written;
/// and where a write's outcome is told: delivered when the other side's socket took it, lost when not.
struct Waiting<'a> {
    flow: &'a Flow,
    direction: Direction,
    messages: u64,
}

impl Waiting<'_> {
    fn passed(&self, messages: u64, written: Result<(), Broke>) -> Result<(), Broke> {
        let reached = if written.is_ok() {
            Reached::Delivered
        } else {
            Reached::Lost
        };
        self.flow
            .proxy
            .pipeline
            .delivered(self.flow, self.direction, reached, messages);
        written
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.flow
            .proxy
            .pipeline
            .delivered(self.flow, self.direction, Reached::Lost, self.messages);
    }
}

/// Splits an event stream's body into its events as chunks come: Server-Sent Events end with a blank
/// line, NDJSON lines with a newline.
#[derive(Debug)]
pub struct Events {
    sse: bool,
    pending: BytesMut,
}

/// An event held longer than this without its end is passed on as it is.
const MAX_PENDING_EVENT: usize = 64 * 1024;

impl Events {
    pub fn new(sse: bool) -> Events {
        Events {
            sse,
            pending: BytesMut::new(),
        }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.pending.extend_from_slice(chunk);
    }

    /// The next whole event, separator included; or, when more than [`MAX_PENDING_EVENT`] bytes wait
    /// without an end, those bytes as they are.
    pub fn next_event(&mut self) -> Option<Bytes> {
        if let Some(end) = self.event_end() {
            return Some(self.pending.split_to(end).freeze());
        }
        (self.pending.len() > MAX_PENDING_EVENT).then(|| self.pending.split().freeze())
    }

    /// Where the first complete event ends (past its separator).
    fn event_end(&self) -> Option<usize> {
        let bytes = &self.pending[..];
        if !self.sse {
            return bytes.iter().position(|&b| b == b'\n').map(|at| at + 1);
        }
        let mut at = 0;
        while at + 1 < bytes.len() {
            if bytes[at] == b'\n' && bytes[at + 1] == b'\n' {
                return Some(at + 2);
            }
            if bytes[at] == b'\n' && bytes[at + 1] == b'\r' && bytes.get(at + 2) == Some(&b'\n') {
                return Some(at + 3);
            }
            at += 1;
        }
        None
    }

    /// What is left when the stream ends.
    pub fn rest(&mut self) -> Bytes {
        self.pending.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_headers_are_read_in_every_length_form() {
        let short = header(&[0x81, 0x05]).unwrap();
        assert_eq!(
            (short.opcode, short.payload_len, short.header_len),
            (1, 5, 2)
        );
        let masked = header(&[0x89, 0x80 | 126, 0x01, 0x00, 1, 2, 3, 4]).unwrap();
        assert_eq!(
            (
                masked.opcode,
                masked.payload_len,
                masked.header_len,
                masked.mask
            ),
            (9, 256, 8, Some([1, 2, 3, 4]))
        );
        let long = header(&[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]).unwrap();
        assert_eq!((long.payload_len, long.header_len), (65_536, 10));
        assert!(header(&[0x81]).is_none());
        assert!(
            header(&[0x81, 0x80 | 3, 1, 2]).is_none(),
            "the mask is not all there"
        );
    }

    #[test]
    fn masked_text_and_close_codes_are_read_as_sent() {
        let key = [7, 9, 11, 13];
        let masked: Vec<u8> = b"hello"
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect();
        let mut scratch = [0; MESSAGE_PREFIX];
        assert_eq!(text_of(&masked, Some(key), 1, &mut scratch), "hello");
        assert_eq!(
            text_of(&[0x03, 0xe8, b'b', b'y', b'e'], None, 8, &mut scratch),
            "1000 bye"
        );
        // A character the prefix cuts in two is left out, not made a replacement character.
        let long = format!("{}é", "a".repeat(MESSAGE_PREFIX - 1));
        assert_eq!(
            text_of(long.as_bytes(), None, 1, &mut scratch),
            "a".repeat(MESSAGE_PREFIX - 1)
        );
        assert_eq!(text_of(&[0xff, b'a'], None, 1, &mut scratch), "\u{fffd}a");
    }
}
