//! Every connection bounded in time and memory, tried with raw sockets as an attacker would: idle
//! kept-alive connections, a second head sent halfway, a huge header, one address holding many
//! connections, and readers that stop reading. Each is cut or refused, counted in `/api/stats` and
//! `/metrics`, and the well-behaved client beside it keeps being served.

mod common;

use common::{PATIENCE, TestServer};
use std::time::{Duration, Instant};
use switchboard_shared::{LaneId, ServerStats};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Sends one GET for `/healthz` and reads its whole answer, leaving the connection kept alive.
async fn one_request(tcp: &mut TcpStream) {
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    // The answer is complete once its head and as many body bytes as its content-length have come.
    loop {
        let read = tokio::time::timeout(PATIENCE, tcp.read(&mut chunk))
            .await
            .expect("answered")
            .unwrap();
        assert!(read > 0, "closed before answering");
        answer.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .expect("a content-length")
                .trim()
                .parse()
                .unwrap();
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            if body.len() >= length {
                return;
            }
        }
    }
}

/// How long until the server closes `tcp` (reads and drops whatever comes first).
async fn closed_after(tcp: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, tcp.read_to_end(&mut sink))
        .await
        .expect("the server closes the connection");
    started.elapsed()
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let server = TestServer::start_with(|config| config.idle_timeout_ms = 400).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    one_request(&mut tcp).await;
    let idle = closed_after(&mut tcp).await;
    assert!(
        idle >= Duration::from_millis(300),
        "closed after only {idle:?}"
    );
    let stats = server.stats().await;
    assert_eq!(stats.connections.idle_timeout, 1, "{:?}", stats.connections);
    // A connection that keeps asking is not idle.
    let mut busy = TcpStream::connect(server.addr).await.unwrap();
    for _ in 0..4 {
        one_request(&mut busy).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    one_request(&mut busy).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_second_head_sent_halfway_is_cut_by_the_request_timeout() {
    // The idle timeout is long: only the head deadline can close this connection in time.
    let server = TestServer::start_with(|config| {
        config.request_timeout_ms = 300;
        config.idle_timeout_ms = 60_000;
    })
    .await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    one_request(&mut tcp).await;
    // Well inside the head deadline after the first answer: the connection is kept for the next one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    tcp.write_all(b"GET /api/poll HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ")
        .await
        .unwrap();
    let waited = closed_after(&mut tcp).await;
    assert!(waited < Duration::from_secs(3), "held {waited:?}");
    assert_eq!(server.stats().await.connections.head_timeout, 1);
    assert_eq!(server.get_json("/healthz").await.0, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn a_200_kb_header_is_refused_with_431() {
    let server = TestServer::start().await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let huge = "a".repeat(200 * 1024);
    let request = format!("GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nx-huge: {huge}\r\n\r\n");
    // The server may close before it has read it all: what matters is what it answered.
    let _ = tcp.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, tcp.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    // A head just under the cap (16 KiB) is fine.
    let big = "b".repeat(12 * 1024);
    let (status, _) = server
        .http
        .get(server.url("/healthz"))
        .header("x-big", big)
        .send()
        .await
        .map(|response| (response.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(server.stats().await.connections.head_too_large, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_connections() {
    let server = TestServer::start_with(|config| config.max_tcp_per_client = Some(4)).await;
    // Four kept-alive connections, each having asked once.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        one_request(&mut tcp).await;
        held.push(tcp);
    }
    // The fifth is told why, and closed.
    let mut fifth = TcpStream::connect(server.addr).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, fifth.read_to_end(&mut answer))
        .await
        .expect("refused at once")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("--max-tcp-per-client"), "{answer}");
    // One given back, one more may come.
    drop(held.pop());
    let mut again = None;
    let started = Instant::now();
    while again.is_none() && started.elapsed() < PATIENCE {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        if tcp
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
            .await
            .is_ok()
        {
            let mut text = Vec::new();
            let _ = tcp.read_to_end(&mut text).await;
            let text = String::from_utf8_lossy(&text).into_owned();
            if text.starts_with("HTTP/1.1 200") {
                again = Some(text);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = again.expect("a connection given back makes room for another");
    assert!(
        metrics.contains("switchboard_connections_cut_total{reason=\"over_client_limit\"} "),
        "{metrics}"
    );
    assert!(
        !metrics.contains("reason=\"over_client_limit\"} 0"),
        "{metrics}"
    );
    drop(held);
    server.shutdown().await;
}

/// A connection that reads almost nothing: its receive window stays a few kilobytes.
async fn stingy_reader(server: &TestServer) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(server.addr).await.unwrap()
}

/// Chat messages of 500 four-byte characters: about 2 KB each on the wire.
async fn publish_heavy(server: &TestServer, count: usize) {
    let text = "😀".repeat(switchboard_shared::chat::MAX_TEXT_CHARS);
    for _ in 0..count / 20 {
        let posts: Vec<_> = (0..20).map(|_| server.post_chat(&text)).collect();
        futures_util::future::join_all(posts).await;
    }
}

/// Reads what the kernel still holds for `tcp`, then expects the reset (not an orderly close).
async fn assert_reset(tcp: &mut TcpStream) {
    let mut sink = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout(PATIENCE, tcp.read(&mut sink)).await {
            Ok(Ok(0)) => panic!("closed in order, not reset"),
            Ok(Ok(_)) => continue,
            Ok(Err(err)) => {
                assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
                return;
            }
            Err(_) => panic!("the connection is still open"),
        }
    }
}

async fn slow_readers_cut(server: &TestServer, lane: LaneId) -> u64 {
    let stats: ServerStats = server.stats().await;
    stats.lanes[&lane].slow_readers_cut
}

#[tokio::test]
async fn readers_that_stop_reading_are_cut_by_the_send_deadline_and_bystanders_keep_every_seq() {
    let server = TestServer::start_with(|config| {
        config.send_timeout_ms = 500;
        config.idle_timeout_ms = 1_000;
    })
    .await;
    // A radio that listens and one that stopped listening, from the start of the history.
    let mut radio = server.sse("/api/sse?after=0", None).await;
    let (heard, mut seqs) = tokio::sync::mpsc::unbounded_channel();
    let listening = tokio::spawn(async move {
        loop {
            let (_, event) = radio.next_event().await;
            if heard.send(event.seq).is_err() {
                break;
            }
        }
    });
    let mut deaf = stingy_reader(&server).await;
    deaf.write_all(b"GET /api/sse?after=0 HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    // Events until the deaf radio's socket is full and its deadline has passed.
    let started = Instant::now();
    while slow_readers_cut(&server, LaneId::Sse).await == 0 {
        assert!(
            started.elapsed() < PATIENCE * 3,
            "the deaf radio was never cut"
        );
        publish_heavy(&server, 200).await;
    }
    // Cut with a reset: the kernel drops what was queued for it at once.
    assert_reset(&mut deaf).await;
    // The radio that listened has every seq, in order, up to the head.
    let head = server.stats().await.head;
    let mut last = 0;
    while last < head {
        let seq = tokio::time::timeout(PATIENCE, seqs.recv())
            .await
            .expect("the listening radio keeps receiving")
            .expect("its stream stays open");
        assert_eq!(seq, last + 1, "after {last}");
        last = seq;
    }
    listening.abort();

    // A letter's answer that is never read: it fits in the kernel's buffers, so the server is done
    // with it, and the idle timeout then resets the connection, dropping what is queued.
    let mut unread = stingy_reader(&server).await;
    unread
        .write_all(b"GET /api/poll?after=0 HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_reset(&mut unread).await;
    assert_eq!(server.get_json("/healthz").await.0, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_keeps_its_deadline_with_a_radio_that_stopped_reading() {
    let server = TestServer::start_with(|config| {
        config.send_timeout_ms = 60_000;
        config.shutdown_timeout_ms = 500;
    })
    .await;
    let mut deaf = stingy_reader(&server).await;
    deaf.write_all(b"GET /api/sse?after=0 HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    publish_heavy(&server, 1_000).await;
    let started = Instant::now();
    server.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped after {:?}",
        started.elapsed()
    );
    drop(deaf);
}

/// The server binary, started under a shell's `ulimit -n` (soft and hard): it cannot raise that.
struct Process {
    child: std::process::Child,
    addr: String,
}

impl Process {
    fn start_with_file_limit(files: u32) -> Process {
        use std::io::BufRead;
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n {files} && exec \"$0\" --addr 127.0.0.1:0 --load-ms 0 --ticker-ms 0"
            ))
            .arg(env!("CARGO_BIN_EXE_switchboard-server"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the server starts");
        // Log lines come first on the same output.
        let addr = std::io::BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok)
            .find_map(|line| {
                line.strip_prefix("Switchboard is running at http://")
                    .and_then(|rest| rest.strip_suffix('/'))
                    .map(str::to_owned)
            })
            .expect("the server prints its URL");
        Process { child, addr }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn near_its_open_file_limit_the_server_refuses_cleanly_and_recovers() {
    let server = Process::start_with_file_limit(100);
    // 64 files are kept for what is not a client: 36 connections may be open.
    let mut dialed = Vec::new();
    for _ in 0..50 {
        dialed.push(TcpStream::connect(&server.addr).await.unwrap());
    }
    // An accepted connection says nothing until asked; a refused one is answered at once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (mut held, mut refusals) = (Vec::new(), Vec::new());
    for tcp in dialed {
        let mut first = [0u8; 512];
        match tcp.try_read(&mut first) {
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => held.push(tcp),
            Ok(read) => refusals.push(String::from_utf8_lossy(&first[..read]).into_owned()),
            Err(err) => refusals.push(err.to_string()),
        }
    }
    assert_eq!(held.len(), 36, "accepted");
    assert_eq!(refusals.len(), 14);
    assert!(refusals[0].starts_with("HTTP/1.1 503"), "{}", refusals[0]);
    assert!(refusals[0].contains("open-file limit"), "{}", refusals[0]);
    // Given back, the files serve again.
    drop(held);
    let http = reqwest::Client::new();
    let started = Instant::now();
    let stats: ServerStats = loop {
        let asked = http
            .get(format!("http://{}/api/stats", server.addr))
            .send()
            .await;
        if let Ok(response) = asked
            && response.status() == 200
        {
            break response.json().await.unwrap();
        }
        assert!(started.elapsed() < PATIENCE, "the server never recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The 14 above, and any retry of this loop that came before the server saw the others close.
    assert!(
        stats.connections.over_file_limit >= 14,
        "{:?}",
        stats.connections
    );
}

/// A reader that asks for the whole history and reads none of it fills its capped send buffer at once,
/// so the send deadline starts and cuts it even when nothing new is published: the kernel does not
/// quietly hold megabytes for it.
#[tokio::test]
async fn a_reader_of_the_whole_history_that_reads_nothing_is_cut_without_new_events() {
    let server = TestServer::start_with(|config| config.send_timeout_ms = 500).await;
    // About 2 MB of history.
    publish_heavy(&server, 1_000).await;
    let mut deaf = stingy_reader(&server).await;
    deaf.write_all(b"GET /api/sse?after=0 HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    while slow_readers_cut(&server, LaneId::Sse).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the deaf radio still holds its history in the kernel"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_reset(&mut deaf).await;
    server.shutdown().await;
}
