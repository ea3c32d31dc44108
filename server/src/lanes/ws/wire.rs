//! The phone call's end of the wire: the upgrade answered by the lane itself, and the server's text
//! frames written straight to the socket.
//!
//! axum's `WebSocket` keeps the socket it is handed and puts every message through tungstenite's write
//! buffer: a copy of each event into a buffer each call keeps, a flush, and two wakers registered per
//! write. At 5,000 calls × 10 events a second that was ~4 % of the server's CPU where Node's `ws` writes
//! a header and the shared payload in one `writev` (BENCHMARKS.md). So the lane answers the upgrade
//! itself, takes its connection's own stream back from hyper, and writes its text frames as the radio
//! writes its events: each frame built once per event (header and payload, shared by every call on the
//! channel), several frames of one wake-up in one vectored write.
//!
//! The protocol ping of each heartbeat rides in the heartbeat's own buffer ([`text_frame_then_ping`]).
//! tungstenite still reads what the browser says (masking, fragments, limits, UTF-8) and writes the few
//! frames only it may: the pongs and the close it owes. Frames from the two writers
//! never interleave because the call does one thing at a time: a direct write is finished before the
//! call reads again, and whatever tungstenite queued while reading (a pong) is flushed before the next
//! direct write ([`super::call`]).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::extract::FromRequestParts;
use axum::http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use axum::response::Response;
use base64::Engine;
use bytes::Bytes;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use smallvec::SmallVec;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tungstenite::protocol::{Role, WebSocketConfig};

use crate::error::AppError;
use crate::listener::MeteredStream;

/// A request to open a phone call (RFC 6455 section 4.2.1), checked, with its connection's upgrade.
#[derive(Debug)]
pub struct Upgrade {
    accept: HeaderValue,
    on_upgrade: OnUpgrade,
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Upgrade, AppError> {
        let refuse = |message: &str| AppError::BadRequest {
            code: "not_a_websocket_upgrade",
            message: format!("{message}: /ws is opened with a WebSocket handshake (RFC 6455)"),
        };
        if parts.method != Method::GET || parts.version != Version::HTTP_11 {
            return Err(refuse("a call opens with GET over HTTP/1.1"));
        }
        let headers = &parts.headers;
        if !has_token(headers, CONNECTION, "upgrade") {
            return Err(refuse("the Connection header does not say upgrade"));
        }
        if !has_token(headers, UPGRADE, "websocket") {
            return Err(refuse("the Upgrade header does not say websocket"));
        }
        if headers
            .get(SEC_WEBSOCKET_VERSION)
            .map(HeaderValue::as_bytes)
            != Some(b"13")
        {
            return Err(refuse("Sec-WebSocket-Version must be 13"));
        }
        // The key is 16 random bytes in base64; anything else is a client that does not speak the
        // protocol (tungstenite 0.30 refuses it too).
        let key = headers
            .get(SEC_WEBSOCKET_KEY)
            .filter(|key| {
                base64::engine::general_purpose::STANDARD
                    .decode(key.as_bytes())
                    .is_ok_and(|nonce| nonce.len() == 16)
            })
            .ok_or_else(|| refuse("Sec-WebSocket-Key must be 16 bytes in base64"))?;
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or_else(|| refuse("this connection cannot be upgraded"))?;
        Ok(Upgrade {
            accept: HeaderValue::from_str(&accept).expect("base64 is a header value"),
            on_upgrade,
        })
    }
}

/// Whether a comma-separated header holds `token` (any case), as `Connection: keep-alive, Upgrade` does.
fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value.to_str().is_ok_and(|value| {
            value
                .split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    })
}

impl Upgrade {
    /// The `101 Switching Protocols` answer, and the connection to take once hyper has sent it.
    pub fn accept(self) -> (Response, OnUpgrade) {
        let mut response = Response::new(axum::body::Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(SEC_WEBSOCKET_ACCEPT, self.accept);
        (response, self.on_upgrade)
    }
}

/// The call's socket once the `101` went out: tungstenite reading (and writing its control frames) on
/// the connection's own stream. `None` when the peer left before.
pub async fn socket(
    on_upgrade: OnUpgrade,
    config: WebSocketConfig,
) -> Option<WebSocketStream<CallIo>> {
    let upgraded = match on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(err) => {
            tracing::debug!("a websocket upgrade failed: {err}");
            return None;
        }
    };
    // Every connection the router sees is a `MeteredStream` (lib.rs serves them): hyper hands it back
    // as it was given, with whatever it read past the request (a client that did not wait for the 101).
    let (io, read) = match upgraded.downcast::<TokioIo<MeteredStream>>() {
        Ok(parts) => (CallIo::Metered(parts.io.into_inner()), parts.read_buf),
        Err(upgraded) => {
            // Works, through hyper's upgraded stream (a layer more per write): a change to how
            // connections are served should say so, once, rather than quietly cost every call.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                tracing::warn!(
                    "a phone call's connection is not a MeteredStream: calls run on hyper's upgraded \
                     stream, a layer more per write"
                )
            });
            (CallIo::Other(TokioIo::new(upgraded)), Bytes::new())
        }
    };
    Some(if read.is_empty() {
        WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await
    } else {
        WebSocketStream::from_partially_read(io, read.to_vec(), Role::Server, Some(config)).await
    })
}

/// The stream a call runs on: its connection's own, or (if the router were ever served over another
/// kind of stream) hyper's upgraded one, which works the same.
#[derive(Debug)]
pub enum CallIo {
    Metered(MeteredStream),
    Other(TokioIo<Upgraded>),
}

impl AsyncRead for CallIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            CallIo::Metered(io) => Pin::new(io).poll_read(cx, buf),
            CallIo::Other(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for CallIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            CallIo::Metered(io) => Pin::new(io).poll_write(cx, buf),
            CallIo::Other(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            CallIo::Metered(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            CallIo::Other(io) => Pin::new(io).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            CallIo::Metered(io) => io.is_write_vectored(),
            CallIo::Other(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            CallIo::Metered(io) => Pin::new(io).poll_flush(cx),
            CallIo::Other(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            CallIo::Metered(io) => Pin::new(io).poll_shutdown(cx),
            CallIo::Other(io) => Pin::new(io).poll_shutdown(cx),
        }
    }
}

/// A whole text frame as a server sends it (final, unmasked): the header, then `parts` one after the
/// other as its payload.
pub fn text_frame(parts: &[&[u8]]) -> Bytes {
    Bytes::from(text_frame_with(parts, &[]))
}

/// A protocol ping with no payload, as a server sends it (final, unmasked).
const PING: [u8; 2] = [0x89, 0x00];

/// A whole text frame followed by a protocol ping, in one buffer: the heartbeat the browser sees and
/// the ping that finds a dead peer server-side (browsers cannot see pings) go out in one write, not
/// two — at 5,000 calls beating every 2 s, 2,500 system calls a second fewer.
pub fn text_frame_then_ping(parts: &[&[u8]]) -> Bytes {
    Bytes::from(text_frame_with(parts, &PING))
}

/// The text frame of `parts`, with `after` (whole frames) behind it.
fn text_frame_with(parts: &[&[u8]], after: &[u8]) -> Vec<u8> {
    let len: usize = parts.iter().map(|part| part.len()).sum();
    let mut frame = Vec::with_capacity(len + 10 + after.len());
    // FIN and the text opcode.
    frame.push(0x81);
    match len {
        0..=125 => frame.push(len as u8),
        126..=0xFFFF => {
            frame.push(126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            frame.push(127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    for part in parts {
        frame.extend_from_slice(part);
    }
    frame.extend_from_slice(after);
    frame
}

/// At most this many frames go into one `writev` (Linux takes up to 1,024 pieces).
const MOST_PIECES: usize = 64;

/// Whole frames on their way to the socket, as many as it takes at once in each write.
#[derive(Debug)]
pub struct Outgoing<'a> {
    frames: &'a [Bytes],
    /// Bytes of `frames` already written.
    written: usize,
}

impl<'a> Outgoing<'a> {
    pub fn new(frames: &'a [Bytes]) -> Outgoing<'a> {
        Outgoing { frames, written: 0 }
    }

    /// Writes until every frame is written (`Ready(Ok)`), the socket is full (`Pending`, the task's
    /// waker registered) or the write fails.
    pub fn poll_write<W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut skip = self.written;
            let mut pieces = SmallVec::<[IoSlice<'_>; 2]>::new();
            for frame in self.frames {
                if skip >= frame.len() {
                    skip -= frame.len();
                    continue;
                }
                pieces.push(IoSlice::new(&frame[skip..]));
                skip = 0;
                if pieces.len() == MOST_PIECES {
                    break;
                }
            }
            if pieces.is_empty() {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut *io).poll_write_vectored(cx, &pieces))? {
                0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                written => self.written += written,
            }
        }
    }
}

/// The payload of one whole text frame, as a client reads it.
#[cfg(test)]
pub(crate) fn text_payload(frame: &[u8]) -> &[u8] {
    use tungstenite::protocol::frame::FrameHeader;
    use tungstenite::protocol::frame::coding::{Data, OpCode};
    let mut cursor = std::io::Cursor::new(frame);
    let (header, length) = FrameHeader::parse(&mut cursor)
        .expect("a valid header")
        .expect("a whole header");
    assert!(header.is_final && header.mask.is_none());
    assert_eq!(header.opcode, OpCode::Data(Data::Text));
    let payload = &frame[cursor.position() as usize..];
    assert_eq!(payload.len() as u64, length, "one whole frame");
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_frame_says_its_length_as_the_protocol_reads_it() {
        // Each length form at its edges: 7 bits, 16 bits, 64 bits.
        for len in [0, 1, 125, 126, 200, 0xFFFF, 0x1_0000, 70_000] {
            let payload = vec![b'x'; len];
            let (head, rest) = payload.split_at(len / 3);
            let frame = text_frame(&[head, rest]);
            assert_eq!(text_payload(&frame), &payload[..], "{len}");
        }
    }

    #[test]
    fn a_heartbeat_is_a_whole_text_frame_then_an_empty_ping() {
        use tungstenite::protocol::frame::FrameHeader;
        use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
        for len in [10, 125, 126, 300] {
            let payload = vec![b'h'; len];
            let both = text_frame_then_ping(&[&payload]);
            let mut cursor = std::io::Cursor::new(&both[..]);
            let (text, length) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
            assert_eq!(text.opcode, OpCode::Data(Data::Text));
            assert!(text.is_final && text.mask.is_none());
            assert_eq!(length, len as u64);
            let start = cursor.position() as usize;
            assert_eq!(&both[start..start + len], &payload[..]);
            cursor.set_position((start + len) as u64);
            let (ping, length) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
            assert_eq!(ping.opcode, OpCode::Control(Control::Ping));
            assert!(ping.is_final && ping.mask.is_none());
            assert_eq!(length, 0);
            assert_eq!(
                cursor.position() as usize,
                both.len(),
                "nothing after the ping"
            );
        }
    }

    /// Takes at most `room` bytes per write, then says it is full once, as a socket does.
    struct Narrow {
        taken: Vec<u8>,
        room: usize,
        full_next: bool,
    }

    impl AsyncWrite for Narrow {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.poll_write_vectored(cx, &[IoSlice::new(buf)])
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            this.full_next = !this.full_next;
            if !this.full_next {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let mut room = this.room;
            for buf in bufs {
                let take = buf.len().min(room);
                this.taken.extend_from_slice(&buf[..take]);
                room -= take;
            }
            Poll::Ready(Ok(this.room - room))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn frames_written_in_pieces_arrive_whole_and_in_order() {
        let frames: Vec<Bytes> = (0..100)
            .map(|i| text_frame(&[format!("event {i}").as_bytes()]))
            .collect();
        let mut socket = Narrow {
            taken: Vec::new(),
            room: 7,
            full_next: false,
        };
        let mut outgoing = Outgoing::new(&frames);
        std::future::poll_fn(|cx| outgoing.poll_write(&mut socket, cx))
            .await
            .unwrap();
        assert_eq!(socket.taken, frames.concat());
    }
}
