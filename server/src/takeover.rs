//! The radio and the endless letter served off the connection, without hyper's buffers.
//!
//! A stream is one HTTP response for its whole life. Served by hyper, its connection keeps hyper's state
//! until it ends: an 8 KiB read buffer (hyper's minimum) and an 8 KiB head-writing buffer, so an idle
//! SSE client cost ~14 KB where a phone call, whose socket the upgrade hands over, costs ~3.5 KB. HTTP/1
//! only hands a socket over for a `101`, so this module takes the connection before hyper sees it: when
//! the first request on a new connection is a complete `GET` for a stream, it parses that head itself,
//! runs it through the same router (every limit, meter, fault and network condition applies as before),
//! writes the response head, then the body chunk by chunk, straight to the socket, and closes the
//! connection when the stream ends. Anything else — another path, a head split over several packets, a
//! request with a body, HTTP/1.0, a later request on a kept-alive connection — goes to hyper untouched
//! (only peeked at), so nothing but memory changes.

use std::io;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::{Body, BodyDataStream, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::response::Parts;
use axum::http::{HeaderName, HeaderValue, Method, Request, Version, header};
use bytes::{Buf, Bytes};
use futures_util::{FutureExt, StreamExt};
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use switchboard_shared::LaneId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tower::ServiceExt;

use crate::listener::MeteredStream;
use crate::metering::ConnInfo;

/// How much of the first request is looked at: a browser's or a proxy's stream request is well under
/// 2 KiB; a longer head is hyper's to read (and to refuse over `--max-head-bytes`).
const PEEK_BYTES: usize = 4096;

/// Headers a taken-over request may carry (hyper's own default limit is 100; a stream request has ~15).
const MAX_HEADERS: usize = 48;

/// What the first request on a new connection is.
#[derive(Debug)]
pub enum Opening {
    /// A complete `GET` for a stream, already read off the socket.
    Stream(Box<Request<Body>>),
    /// Anything else, not consumed: hyper serves it.
    Hyper,
    /// Nothing came within the idle timeout (hyper would have closed it as idle too).
    Idle,
    /// The peer closed or the connection failed before a request.
    Gone,
}

/// Waits for the first bytes of a new connection and decides who serves them.
pub async fn first_request(stream: &mut MeteredStream, idle: Duration, info: &ConnInfo) -> Opening {
    match tokio::time::timeout(idle, stream.readable()).await {
        Err(_) => return Opening::Idle,
        Ok(Err(_)) => return Opening::Gone,
        Ok(Ok(())) => {}
    }
    // Allocated only now, for this look, so a connection waiting for its request holds no buffer.
    let mut peeked = vec![0; PEEK_BYTES];
    let len = match stream.peek(&mut peeked).await {
        Ok(0) | Err(_) => return Opening::Gone,
        Ok(len) => len,
    };
    let Some((request, head_len)) = stream_request(&peeked[..len]) else {
        return Opening::Hyper;
    };
    // Take exactly the head: the meter counts it, as it counts what hyper reads.
    if stream.read_exact(&mut peeked[..head_len]).await.is_err() {
        return Opening::Gone;
    }
    let mut request = request;
    request.extensions_mut().insert(ConnectInfo(info.clone()));
    Opening::Stream(Box::new(request))
}

/// The request in `bytes` when it is a whole `GET` for a stream lane that this module may serve, and
/// the length of its head.
fn stream_request(bytes: &[u8]) -> Option<(Request<Body>, usize)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        _ => return None,
    };
    if parsed.method != Some("GET") || parsed.version != Some(1) {
        return None;
    }
    let path = parsed.path?;
    let route = path.split_once('?').map_or(path, |(route, _)| route);
    if route != LaneId::Sse.path() && route != LaneId::HttpStream.path() {
        return None;
    }
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(path)
        .version(Version::HTTP_11);
    for header in parsed.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).ok()?;
        // A body, an upgrade or an expectation is HTTP that hyper knows how to answer; a stream
        // request has none of them.
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || name == header::UPGRADE
            || name == header::EXPECT
        {
            return None;
        }
        request = request.header(name, HeaderValue::from_bytes(header.value).ok()?);
    }
    Some((request.body(Body::empty()).ok()?, head_len))
}

/// Answers `request` through `router` on the taken-over connection, then closes it.
///
/// Two futures one after the other, not one `async fn`: the task holds this for the stream's whole
/// life, and an `async fn` keeps room for all its arguments and locals at once (the request, the
/// response's head, the router's state) — 1,064 bytes where the body's part alone needs under half.
pub fn serve(
    stream: MeteredStream,
    request: Request<Body>,
    router: Router,
) -> impl Future<Output = ()> + Send {
    // Boxed: the router's future is large and lives only until the head is ready.
    Box::pin(router.oneshot(request)).then(move |response| {
        let response = match response {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let (parts, body) = response.into_parts();
        let length = HttpBody::size_hint(&body).exact();
        send(stream, head(&parts, length), body, length.is_none())
    })
}

/// The response's head as it goes on the wire, with this module's framing.
fn head(parts: &Parts, length: Option<u64>) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        parts.status.as_str(),
        parts.status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    for (name, value) in &parts.headers {
        // The framing is this module's to say.
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || name == header::CONNECTION
        {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(
        format!("date: {}\r\n", httpdate::fmt_http_date(SystemTime::now())).as_bytes(),
    );
    match length {
        Some(length) => head.extend_from_slice(format!("content-length: {length}\r\n").as_bytes()),
        None => head.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    // The connection ends with the stream: no second request follows on it.
    head.extend_from_slice(b"connection: close\r\n\r\n");
    head
}

/// Writes the head, then the body as it comes (chunked unless its length is known), then closes.
///
/// A function returning a future, not an `async fn`: that would keep its arguments twice (as
/// arguments and as the locals they are moved into) for the stream's whole life.
fn send(
    mut stream: MeteredStream,
    head: Vec<u8>,
    body: Body,
    chunked: bool,
) -> impl Future<Output = ()> + Send {
    let mut body = body.into_data_stream();
    async move {
        if stream.write_all(&head).await.is_err() {
            return;
        }
        drop(head);
        loop {
            match poll_fn(|cx| next(cx, &mut stream, &mut body)).await {
                Next::Data(data) => {
                    if write_chunk(&mut stream, data, chunked).await.is_err() {
                        return;
                    }
                }
                Next::End => {
                    if chunked && stream.write_all(b"0\r\n\r\n").await.is_err() {
                        return;
                    }
                    let _ = stream.shutdown().await;
                    return;
                }
                // A cut or a failed half-open line: the response stops short, without its last
                // chunk, so the client sees it broken, as it did from hyper.
                Next::Broken => return,
                Next::PeerGone => return,
            }
        }
    }
}

/// What a taken-over stream does next.
enum Next {
    Data(Bytes),
    /// The body ended.
    End,
    /// The body failed.
    Broken,
    /// The client closed the connection, or it failed.
    PeerGone,
}

/// Waits for the body's next piece, or for the client to leave. A function polled by hand rather
/// than a `select!` in `send`: the macro's futures and outputs were room every open stream kept.
fn next(cx: &mut Context<'_>, stream: &mut MeteredStream, body: &mut BodyDataStream) -> Poll<Next> {
    // The client says nothing more on this connection; reading only tells when it went away (the read
    // costs nothing until the socket is readable).
    let mut probe = [0u8; 16];
    let mut read = ReadBuf::new(&mut probe);
    match Pin::new(&mut *stream).poll_read(cx, &mut read) {
        Poll::Ready(Ok(())) if read.filled().is_empty() => return Poll::Ready(Next::PeerGone),
        Poll::Ready(Err(_)) => return Poll::Ready(Next::PeerGone),
        // Something it should not have sent, dropped; polled again soon, so that a client that
        // keeps talking cannot hold the body back.
        Poll::Ready(Ok(())) => cx.waker().wake_by_ref(),
        Poll::Pending => {}
    }
    loop {
        return match body.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(data))) if data.is_empty() => continue,
            Poll::Ready(Some(Ok(data))) => Poll::Ready(Next::Data(data)),
            Poll::Ready(Some(Err(_))) => Poll::Ready(Next::Broken),
            Poll::Ready(None) => Poll::Ready(Next::End),
            Poll::Pending => Poll::Pending,
        };
    }
}

async fn write_chunk(
    stream: &mut MeteredStream,
    data: bytes::Bytes,
    chunked: bool,
) -> io::Result<()> {
    if !chunked {
        return stream.write_all(&data).await;
    }
    // The size line goes on the stack: this runs for every event on every stream.
    let mut line = [0u8; 20];
    let size = {
        use std::io::Write;
        let mut cursor = io::Cursor::new(&mut line[..]);
        write!(cursor, "{:x}\r\n", data.len())?;
        cursor.position() as usize
    };
    let mut chunk = Buf::chain(Buf::chain(&line[..size], data), &b"\r\n"[..]);
    stream.write_all_buf(&mut chunk).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_stream_request_is_taken_with_its_query_and_headers() {
        let head = b"GET /api/sse?after=41 HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 42\r\n\r\n";
        let (request, len) = stream_request(head).expect("an SSE request");
        assert_eq!(len, head.len());
        assert_eq!(request.uri().query(), Some("after=41"));
        assert_eq!(request.headers()["last-event-id"], "42");
        let (_, len) = stream_request(b"GET /api/stream HTTP/1.1\r\n\r\nGET /").expect("a stream");
        assert_eq!(len, 28, "only the head is taken, not what follows it");
    }

    #[test]
    fn everything_else_is_left_to_hyper() {
        for head in [
            &b"GET /api/sse HTTP/1.1\r\nHost: x\r\n"[..],
            b"GET /api/poll HTTP/1.1\r\n\r\n",
            b"GET /ws HTTP/1.1\r\n\r\n",
            b"POST /api/sse HTTP/1.1\r\n\r\n",
            b"GET /api/sse HTTP/1.0\r\n\r\n",
            b"GET /api/sse HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            b"GET /api/sse HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            b"GET /api/ssex HTTP/1.1\r\n\r\n",
            b"GARBAGE",
        ] {
            assert!(
                stream_request(head).is_none(),
                "{:?} should go to hyper",
                String::from_utf8_lossy(head)
            );
        }
    }

    fn returned_size<A, B, C, R>(_: fn(A, B, C) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    /// Every open stream's task holds this for the stream's whole life. As one `async fn` with a
    /// `select!` it was 1,064 bytes; 448 now.
    #[test]
    fn a_stream_keeps_little_state_because_every_open_stream_holds_it() {
        let size = returned_size(serve);
        assert!(size <= 480, "a taken-over stream's future is {size} bytes");
    }
}
