//! Relaying what flows after the head: a WebSocket's frames both ways, and an event stream's events.
//!
//! Frames are relayed as the bytes that came, never decoded and encoded again: the browser's masked
//! frames reach the upstream masked as it sent them, and a frame's size, opcode and first bytes are read
//! on the way for the recording. Small frames (most of them) are held until whole, so a heartbeat can be
//! recognised and swallowed when the lab says so; large ones stream through as they come.

use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use switchboard_shared::app::{AppFaultKind, is_heartbeat_text};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::AppProxy;
use super::conn::Conn;
use super::record::{MESSAGE_PREFIX, Message, Recorder};
use crate::hub::now_ms_f64;

/// Frames up to this payload are held until whole (so they can be read, and swallowed).
const WHOLE_FRAME: usize = 16 * 1024;
/// The most bytes held back by a delay fault per direction before reading stops.
const MAX_DELAYED: usize = 1024 * 1024;

/// Which way a frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the browser to the app.
    Up,
    /// From the app to the browser.
    Down,
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

/// The first bytes of a payload as text, unmasked.
fn text_of(payload: &[u8], mask: Option<[u8; 4]>, opcode: u8) -> String {
    let shown = &payload[..payload.len().min(MESSAGE_PREFIX)];
    let plain: Vec<u8> = match mask {
        Some(key) => shown
            .iter()
            .enumerate()
            .map(|(i, byte)| byte ^ key[i % 4])
            .collect(),
        None => shown.to_vec(),
    };
    if opcode == 8 && plain.len() >= 2 {
        // A close frame: its code, then its reason.
        let code = u16::from_be_bytes([plain[0], plain[1]]);
        return format!("{code} {}", String::from_utf8_lossy(&plain[2..]))
            .trim()
            .to_owned();
    }
    String::from_utf8_lossy(&plain).into_owned()
}

/// Relays one direction of a socket until its reader ends (then shuts the other side's write half).
pub async fn frames(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    direction: Direction,
    proxy: Arc<AppProxy>,
    conn: Arc<Conn>,
    recorder: Recorder,
) -> std::io::Result<()> {
    let channel = conn.key().map(|key| key.id).unwrap_or_default();
    let mut buf = BytesMut::with_capacity(8 * 1024);
    // A large frame streaming through: its payload bytes still to come.
    let mut streaming: u64 = 0;
    let mut delayed: VecDeque<(Instant, Bytes)> = VecDeque::new();
    let mut delayed_bytes = 0usize;
    let mut ended = false;
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    loop {
        if ended && delayed.is_empty() {
            // On a half-open line the other end hears nothing, not even the end.
            if !conn.is_half_open() {
                let _ = to.shutdown().await;
            }
            return Ok(());
        }
        if let Some(&(due, _)) = delayed.front() {
            timer.as_mut().reset(due);
        }
        tokio::select! {
            read = from.read_buf(&mut buf), if !ended && delayed_bytes < MAX_DELAYED => {
                if read? == 0 {
                    ended = true;
                    if direction == Direction::Up && conn.is_half_open() {
                        // The browser hung up on the dead line: it noticed.
                        proxy.lab.half_open_noticed(&conn);
                    }
                    continue;
                }
            }
            () = &mut timer, if !delayed.is_empty() => {
                while let Some((due, _)) = delayed.front() {
                    if *due > Instant::now() {
                        break;
                    }
                    let (_, bytes) = delayed.pop_front().expect("just looked");
                    delayed_bytes -= bytes.len();
                    to.write_all(&bytes).await?;
                }
                continue;
            }
        }
        // What this read lets through, in order.
        let mut out = BytesMut::new();
        let mut closing = false;
        loop {
            if streaming > 0 {
                let n = (streaming.min(buf.len() as u64)) as usize;
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf.split_to(n));
                streaming -= n as u64;
                continue;
            }
            let Some(head) = header(&buf) else { break };
            let whole = head.payload_len as usize <= WHOLE_FRAME;
            if whole && buf.len() < head.header_len + head.payload_len as usize {
                break;
            }
            let at_ms = now_ms_f64();
            let payload_start = head.header_len;
            let available = buf.len() - payload_start;
            let text = text_of(
                &buf[payload_start..payload_start + available.min(head.payload_len as usize)],
                head.mask,
                head.opcode,
            );
            recorder.message(Message {
                at_ms,
                up: direction == Direction::Up,
                opcode: head.opcode,
                size: head.payload_len,
                // A binary frame's bytes are not text; its size says enough.
                text: if head.opcode == 2 {
                    String::new()
                } else {
                    text.clone()
                },
            });
            closing |= head.opcode == 8;
            // The fault is asked first: reading a frame as a heartbeat parses it, which every frame
            // would pay on this path while no fault asks for it.
            let swallow = whole
                && direction == Direction::Down
                && proxy
                    .lab
                    .active(AppFaultKind::NoHeartbeat, &channel)
                    .is_some()
                && (head.opcode == 9 || (head.opcode == 1 && is_heartbeat_text(&text)));
            if whole {
                let frame = buf.split_to(head.header_len + head.payload_len as usize);
                if swallow {
                    proxy.lab.swallowed(&channel);
                } else {
                    out.extend_from_slice(&frame);
                }
            } else {
                out.extend_from_slice(&buf.split_to(head.header_len));
                streaming = head.payload_len;
            }
        }
        if conn.is_half_open() {
            // Nothing passes a half-open line; a browser that sends its close frame has given up on it.
            if direction == Direction::Up && closing {
                proxy.lab.half_open_noticed(&conn);
            }
            continue;
        }
        if out.is_empty() {
            continue;
        }
        let delay = proxy
            .lab
            .active(AppFaultKind::Delay, &channel)
            .and_then(|fault| fault.delay_ms);
        match delay {
            None if delayed.is_empty() => to.write_all(&out).await?,
            _ => {
                let due = Instant::now() + Duration::from_millis(delay.unwrap_or(0));
                delayed_bytes += out.len();
                delayed.push_back((due, out.freeze()));
            }
        }
    }
}

/// Splits an event stream's body into its events (Server-Sent Events end with a blank line, NDJSON
/// lines with a newline) as chunks come, records each with its arrival time, and says which bytes to
/// pass on: all of them, but for heartbeats the lab says to swallow.
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

    /// Takes a chunk; returns what to pass on now.
    pub fn chunk(
        &mut self,
        chunk: &[u8],
        swallow_heartbeats: bool,
        recorder: &Recorder,
    ) -> (Bytes, u64) {
        self.pending.extend_from_slice(chunk);
        let mut out = BytesMut::new();
        let mut swallowed = 0;
        while let Some(end) = self.event_end() {
            let event = self.pending.split_to(end);
            let text = String::from_utf8_lossy(&event);
            let swallowed_beat = swallow_heartbeats && is_heartbeat_text(&text);
            if !text.trim().is_empty() {
                recorder.message(Message {
                    at_ms: now_ms_f64(),
                    up: false,
                    opcode: 1,
                    size: event.len() as u64,
                    text: text.trim_end().chars().take(MESSAGE_PREFIX).collect(),
                });
            }
            if swallowed_beat {
                swallowed += 1;
            } else {
                out.extend_from_slice(&event);
            }
        }
        if self.pending.len() > MAX_PENDING_EVENT {
            out.extend_from_slice(&self.pending.split());
        }
        (out.freeze(), swallowed)
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
        assert_eq!(text_of(&masked, Some(key), 1), "hello");
        assert_eq!(
            text_of(&[0x03, 0xe8, b'b', b'y', b'e'], None, 8),
            "1000 bye"
        );
    }
}
