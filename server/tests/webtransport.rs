//! The video call (WebTransport over QUIC) against a real server: a real `wtransport` client that
//! trusts the server's certificate only by the hash `/api/webtransport` gives, as a browser does.

mod common;

use common::{PATIENCE, TestServer, rss_kib};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;
use switchboard_client::WtClient;
use switchboard_shared::{
    BrowserMessage, ChatPost, ChatVia, ErrorCode, EventBody, Gap, LaneCounters, LaneId,
    ServerMessage, WebTransportInfo,
};

#[tokio::test]
async fn the_server_says_where_to_dial_and_which_certificate_to_trust() {
    let server = TestServer::start().await;
    let (status, info) = server.get_json("/api/webtransport").await;
    assert_eq!(status, 200);
    let info: WebTransportInfo = serde_json::from_value(info).unwrap();
    assert_eq!(
        info.url,
        format!("https://127.0.0.1:{}/api/webtransport", server.addr.port()),
        "by default on the HTTP port's number, over UDP"
    );
    assert_eq!(info.cert_sha256.len(), 64);
    assert!(info.cert_sha256.bytes().all(|b| b.is_ascii_hexdigit()));
    let days_left = (info.not_after_ms as f64 - now_ms()) / 86_400_000.0;
    assert!(
        days_left > 12.0 && days_left < 14.0,
        "browsers take a hashed certificate only when valid under 14 days: {days_left}"
    );
    // A client that trusts another hash cannot open a session.
    let wrong = WebTransportInfo {
        cert_sha256: "00".repeat(32),
        ..info.clone()
    };
    assert!(WtClient::connect(&wrong, &info.url).await.is_err());
}

#[tokio::test]
async fn a_session_opens_with_hello_then_carries_every_event_in_seq_order() {
    let server = TestServer::start().await;
    let mut call = server.webtransport("").await;
    let Some(ServerMessage::Hello(hello)) = call.next_message().await else {
        panic!("the first message is the hello");
    };
    assert_eq!((hello.head, hello.resumed_after), (0, None));
    let published = server.publish(20).await;
    for seq in published {
        assert_eq!(call.next_event().await.seq, seq);
    }
    common::eventually("the session and its UDP bytes counted", || async {
        let stats = server.stats().await;
        let lane = &stats.lanes[&LaneId::WebTransport];
        // 20 events of ~100 bytes and the handshake (a certificate) went down.
        lane.messages == 20 && lane.connections_open == 1 && lane.bytes_out > 4_000
    })
    .await;
    let (sent, received) = call.0.udp_bytes();
    assert!(
        sent > 1_200 && received > 4_000,
        "{sent} up, {received} down"
    );
    // Once the session is over, the server has counted what went each way, once.
    drop(call);
    common::eventually("the session closed", || async {
        server.stats().await.lanes[&LaneId::WebTransport].connections_open == 0
    })
    .await;
    let lane = server.stats().await.lanes[&LaneId::WebTransport];
    assert_counted_alike(&lane, sent, received);
}

/// The server's count of a session's UDP bytes each way is within a quarter of what its client saw
/// (`sent` up, `received` down).
fn assert_counted_alike(lane: &LaneCounters, sent: u64, received: u64) {
    for (way, server_bytes, client_bytes) in [
        ("down", lane.bytes_out, received),
        ("up", lane.bytes_in, sent),
    ] {
        let ratio = server_bytes as f64 / client_bytes as f64;
        assert!(
            (0.8..1.25).contains(&ratio),
            "{way}: the server counted {server_bytes}, the client {client_bytes}"
        );
    }
}

/// The page's cost table and `/api/stats` read the lane's bytes while sessions are open: they must
/// hold what went on the wire up to the reading, not what was counted at the last heartbeat.
#[tokio::test]
async fn an_open_sessions_bytes_are_counted_when_read_not_at_its_next_heartbeat() {
    let server = TestServer::start_with(|config| config.heartbeat_ms = 600_000).await;
    let mut call = server.webtransport("").await;
    assert!(matches!(
        call.next_message().await,
        Some(ServerMessage::Hello(_))
    ));
    for seq in server.publish(20).await {
        assert_eq!(call.next_event().await.seq, seq);
    }
    let (sent, received) = call.0.udp_bytes();
    // One reading, no waiting: no heartbeat has beaten, the session is open.
    let lane = server.stats().await.lanes[&LaneId::WebTransport];
    assert_eq!(lane.connections_open, 1);
    assert_counted_alike(&lane, sent, received);
}

#[tokio::test]
async fn after_resumes_with_exactly_the_missed_events_or_names_the_gap() {
    let server = TestServer::start_with(|config| config.history = 5).await;
    server.publish(8).await;
    let mut call = server.webtransport("?after=4").await;
    let Some(ServerMessage::Hello(hello)) = call.next_message().await else {
        panic!("the first message is the hello");
    };
    assert_eq!(hello.resumed_after, Some(4));
    for expected in 5..=8 {
        assert_eq!(call.next_event().await.seq, expected);
    }
    // Behind the history (seqs 4..=8 kept): a gap notice for what is gone, then the rest.
    let mut behind = server.webtransport("?after=1").await;
    behind.next_message().await;
    assert_eq!(
        behind.next_message().await,
        Some(ServerMessage::Gap(Gap { first: 2, last: 3 }))
    );
    assert_eq!(behind.next_event().await.seq, 4);
}

#[tokio::test]
async fn chat_said_on_the_session_is_published_to_every_lane_and_bad_lines_are_refused() {
    let server = TestServer::start().await;
    let mut call = server.webtransport("").await;
    call.next_message().await;
    let mut letter = server.stream("/api/stream").await;
    letter.next_message().await;
    let said = call
        .0
        .say(&BrowserMessage::Chat(ChatPost {
            author: "ada".into(),
            text: "over QUIC".into(),
            client_ref: Some("r1".into()),
        }))
        .await
        .unwrap();
    let ServerMessage::ChatAccepted(accepted) = said else {
        panic!("expected chat_accepted, got {said:?}");
    };
    assert_eq!(accepted.client_ref.as_deref(), Some("r1"));
    let event = letter.next_event().await;
    assert_eq!(event.seq, accepted.seq);
    let EventBody::Chat(chat) = event.body else {
        panic!("a chat event");
    };
    assert_eq!(
        (chat.text.as_str(), chat.via),
        ("over QUIC", ChatVia::WebTransport)
    );
    assert_eq!(call.next_event().await.seq, accepted.seq);

    // Garbage, an unknown kind and an oversized line: each refused with a reason, the session lives.
    for (line, code) in [
        (b"{not json\n".to_vec(), ErrorCode::MalformedJson),
        (
            br#"{"type":"shout"}"#.iter().chain(b"\n").copied().collect::<Vec<u8>>(),
            ErrorCode::UnknownType,
        ),
        (
            [vec![b'x'; 5_000], b"\n".to_vec()].concat(),
            ErrorCode::TooLarge,
        ),
    ] {
        match call.0.say_raw(&line).await.unwrap() {
            ServerMessage::Error { code: got, .. } => assert_eq!(got, code),
            other => panic!("expected an error, got {other:?}"),
        }
    }
    let next = server.post_chat("still here").await;
    assert_eq!(call.next_event().await.seq, next.seq);
}

#[tokio::test]
async fn sessions_asked_for_badly_are_refused_and_hurt_nobody() {
    let server = TestServer::start().await;
    let info = WtClient::info(&server.http, &server.url("")).await.unwrap();
    let mut call = server.webtransport("").await;
    call.next_message().await;
    for bad in [
        format!("{}?after=minus-one", info.url),
        format!("{}?mode=carrier-pigeon", info.url),
        info.url.replace("/api/webtransport", "/elsewhere"),
    ] {
        let refused = tokio::time::timeout(PATIENCE, WtClient::connect(&info, &bad))
            .await
            .expect("an answer in time");
        assert!(refused.is_err(), "{bad} was accepted");
    }
    let chat = server.post_chat("unharmed").await;
    assert_eq!(call.next_event().await.seq, chat.seq);
    common::eventually("refusals counted", || async {
        server.stats().await.lanes[&LaneId::WebTransport].errors >= 3
    })
    .await;
}

#[tokio::test]
async fn datagrams_carry_events_and_what_the_path_loses_stays_lost() {
    let server = TestServer::start_with(|config| config.heartbeat_ms = 200).await;
    // Loopback first: nothing is lost.
    let mut call = server.webtransport("?mode=datagram").await;
    let Some(ServerMessage::Hello(_)) = call.next_message().await else {
        panic!("the hello comes on the stream");
    };
    let published = server.publish(10).await;
    let mut got = BTreeSet::new();
    while got.len() < published.len() {
        got.insert(call.next_event().await.seq);
    }
    assert_eq!(got, published.iter().copied().collect());
    // An event too big for one datagram (500 three-byte characters) comes on the stream instead.
    let big = server.post_chat(&"€".repeat(500)).await;
    assert_eq!(call.next_event().await.seq, big.seq);

    // A path that loses a third of its packets: some datagrams never come, and nothing resends them;
    // the heartbeats (on the stream) still tell the head.
    let (status, _) = server
        .post_json(
            "/api/network",
            json!({"lane": "webtransport", "rtt_ms": 10, "jitter_ms": 0, "down_kbps": 0,
                   "up_kbps": 0, "loss_pct": 33}),
        )
        .await;
    assert_eq!(status, 200);
    let mut lossy = server.webtransport("?mode=datagram").await;
    lossy.next_message().await;
    let published = server.publish(60).await;
    let head = *published.last().unwrap();
    let mut got = BTreeSet::new();
    loop {
        match lossy.next_message().await.expect("session open") {
            ServerMessage::Event(event) => {
                got.insert(event.seq);
            }
            ServerMessage::Heartbeat(beat) if beat.head >= head => break,
            _ => {}
        }
    }
    // Let any datagram still on the path arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(Some(ServerMessage::Event(event))) =
        tokio::time::timeout(Duration::from_millis(50), lossy.0.next_message())
            .await
            .map(|message| message.and_then(Result::ok))
    {
        got.insert(event.seq);
    }
    assert!(
        got.len() > 20 && got.len() < 58,
        "about two in three of 60 datagrams arrive: {}",
        got.len()
    );
}

#[tokio::test]
async fn a_drop_fault_ends_the_session_and_a_restart_says_why() {
    let server = TestServer::start().await;
    let mut dropped = server.webtransport("").await;
    dropped.next_message().await;
    server
        .fault(json!({"kind": "drop", "lane": "webtransport"}))
        .await;
    tokio::time::timeout(PATIENCE, dropped.0.closed())
        .await
        .expect("a dropped session ends in time");
    let mut call = server.webtransport("").await;
    call.next_message().await;
    server
        .fault(json!({"kind": "restart", "lane": "all"}))
        .await;
    let closed = tokio::time::timeout(PATIENCE, call.0.closed())
        .await
        .expect("closed in time");
    assert_eq!(
        closed.map(|(code, _)| code),
        Some(u32::from(
            switchboard_shared::ws::close_code::SERVICE_RESTART
        ))
    );
    // An error fault refuses new sessions (and the page's question of where to dial) until it ends.
    server
        .fault(json!({"kind": "error", "lane": "webtransport", "duration_ms": 1_500}))
        .await;
    let (status, _) = server.get_json("/api/webtransport").await;
    assert_eq!(status, 503);
    common::eventually("sessions open again after the fault", || async {
        let Ok(info) = WtClient::info(&server.http, &server.url("")).await else {
            return false;
        };
        WtClient::connect(&info, &info.url).await.is_ok()
    })
    .await;
}

fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

#[tokio::test]
async fn over_a_long_round_trip_each_event_pays_half_of_it_once_not_one_after_another() {
    let server = TestServer::start().await;
    let (status, _) = server
        .post_json(
            "/api/network",
            json!({"lane": "webtransport", "rtt_ms": 400, "jitter_ms": 0, "down_kbps": 0,
                   "up_kbps": 0, "loss_pct": 0}),
        )
        .await;
    assert_eq!(status, 200);
    for mode in ["", "?mode=datagram"] {
        let mut call = server.webtransport(mode).await;
        call.next_message().await;
        let mut published = Vec::new();
        for n in 0..10 {
            published.push(server.post_chat(&format!("far away {n}")).await.seq);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for seq in published {
            let event = call.next_event().await;
            assert_eq!(event.seq, seq);
            let delay = now_ms() - event.ts_ms as f64;
            assert!(
                (180.0..600.0).contains(&delay),
                "#{seq} {mode}: {delay:.0} ms after it was published (one way is 200 ms)"
            );
        }
    }
}

/// A session whose reader stops (STOP_SENDING) ends, and its QUIC connection with it: left open, its
/// keep-alives would hold a connection alive after its slot under the per-address limit was given back.
#[tokio::test]
async fn a_session_that_stops_reading_closes_its_connection_and_gives_back_its_slot() {
    let server = TestServer::start().await;
    let mut call = server.webtransport("").await;
    let Some(ServerMessage::Hello(_)) = call.next_message().await else {
        panic!("the first message is the hello");
    };
    common::eventually("the session counted open", || async {
        server.stats().await.lanes[&LaneId::WebTransport].connections_open == 1
    })
    .await;
    // A talking stream open (as the page's chat keeps one): its task holds the connection too.
    let pong = call
        .0
        .say(&BrowserMessage::Ping(switchboard_shared::ws::Ping {
            id: 1,
            client_ms: now_ms(),
        }))
        .await
        .unwrap();
    assert!(matches!(pong, ServerMessage::Pong(_)), "{pong:?}");
    call.0.stop_reading();
    // Events to write make the server find the stream stopped.
    server.publish(3).await;
    let closed = tokio::time::timeout(PATIENCE, call.0.closed()).await;
    assert!(closed.is_ok(), "the QUIC connection outlived its session");
    common::eventually("the slot given back", || async {
        server.stats().await.lanes[&LaneId::WebTransport].connections_open == 0
    })
    .await;
}

/// The server reads none of a client's own unidirectional streams: QUIC's flow control lets a client
/// send it only a small window, never megabytes to sit in its buffers, and the session goes on.
#[tokio::test]
async fn a_client_cannot_make_the_server_buffer_what_it_never_reads() {
    let server = TestServer::start().await;
    let mut call = server.webtransport("").await;
    call.next_message().await;
    let megabyte = vec![b'x'; 1024 * 1024];
    let written =
        tokio::time::timeout(Duration::from_secs(3), call.0.write_own_stream(&megabyte)).await;
    assert!(
        written.is_err(),
        "the server took a megabyte it will never read: {written:?}"
    );
    // The session itself is unaffected.
    let pong = call
        .0
        .say(&BrowserMessage::Ping(switchboard_shared::ws::Ping {
            id: 2,
            client_ms: now_ms(),
        }))
        .await
        .unwrap();
    assert!(matches!(pong, ServerMessage::Pong(_)), "{pong:?}");
}

/// "More than 10 refusals within 10 s close the session" counts the session's, not each stream's: a
/// client that opens a new talking stream for every bad line is hung up on all the same.
#[tokio::test]
async fn refusals_are_counted_per_session_however_many_streams_carry_them() {
    let server = TestServer::start().await;
    let mut call = server.webtransport("").await;
    call.next_message().await;
    let mut answered = 0;
    for _ in 0..12 {
        match call.0.say_on_new_stream(b"{not json\n").await {
            Ok(Some(line)) if line.contains("malformed_json") => answered += 1,
            _ => break,
        }
    }
    assert!(
        answered <= 10,
        "{answered} refusals answered on fresh streams"
    );
    let closed = tokio::time::timeout(PATIENCE, call.0.closed())
        .await
        .expect("the session is closed");
    assert_eq!(
        closed.map(|(code, _)| code),
        Some(u32::from(switchboard_shared::ws::close_code::POLICY))
    );
}

/// A session that asks for the whole history and reads none of it is cut by the send deadline, as the
/// TCP lanes' readers are, and counted with them in `slow_readers_cut`.
#[tokio::test]
async fn a_session_that_reads_nothing_is_cut_and_counted_as_a_slow_reader() {
    let server = TestServer::start_with(|config| config.send_timeout_ms = 500).await;
    // About 2 MB of history: more than QUIC lets the server send a reader that does not read.
    let text = "😀".repeat(switchboard_shared::chat::MAX_TEXT_CHARS);
    for _ in 0..50 {
        let posts: Vec<_> = (0..20).map(|_| server.post_chat(&text)).collect();
        futures_util::future::join_all(posts).await;
    }
    let deaf = server.webtransport("?after=0").await;
    tokio::time::timeout(PATIENCE, deaf.0.closed())
        .await
        .expect("the deaf session is closed in time");
    common::eventually("the cut counted", || async {
        server.stats().await.lanes[&LaneId::WebTransport].slow_readers_cut == 1
    })
    .await;
}

/// QUIC handshakes that never say CONNECT are capped per address, as the TCP lanes' connections are:
/// past the cap a new one is refused at once instead of held for its 10 s, and the places come back
/// when the idle handshakes go.
#[tokio::test]
async fn handshakes_that_never_say_connect_are_capped_per_address() {
    let server = TestServer::start_with(|config| config.max_connections_per_client = 4).await;
    let info = WtClient::info(&server.http, &server.url("")).await.unwrap();
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(
            WtClient::handshake_only(&info)
                .await
                .expect("within the cap"),
        );
    }
    let over = tokio::time::timeout(PATIENCE, WtClient::handshake_only(&info))
        .await
        .expect("answered at once");
    assert!(over.is_err(), "a fifth pending handshake was let in");
    assert!(server.stats().await.connections.over_client_limit >= 1);
    for (connection, _) in &idle {
        connection.close(0u32.into(), b"gone");
    }
    drop(idle);
    common::eventually("a real session opens again", || async {
        WtClient::connect(&info, &info.url).await.is_ok()
    })
    .await;
}

/// The video call keeps the phone call's origin rule, port and scheme included: a page served by this
/// server may open a session; a page on another port of the same host (another app) may not.
#[tokio::test]
async fn a_page_from_another_port_may_not_open_a_session() {
    let server = TestServer::start().await;
    let info = WtClient::info(&server.http, &server.url("")).await.unwrap();
    let own = format!("http://127.0.0.1:{}", server.addr.port());
    let other = format!("http://127.0.0.1:{}", server.addr.port().wrapping_add(1));
    let mut call = tokio::time::timeout(PATIENCE, WtClient::connect_from(&info, &info.url, &own))
        .await
        .expect("in time")
        .expect("the server's own page is let in");
    assert!(matches!(
        call.next_message().await,
        Some(Ok(ServerMessage::Hello(_)))
    ));
    for refused in [other, format!("ftp://127.0.0.1:{}", server.addr.port())] {
        let answer =
            tokio::time::timeout(PATIENCE, WtClient::connect_from(&info, &info.url, &refused))
                .await
                .expect("in time");
        assert!(answer.is_err(), "a page of {refused} opened a session");
    }
}

/// Thirty hostile sessions, each pushing a megabyte on a stream of its own and a thousand 1 KB datagrams
/// the server never reads: the process grows by under 1 MB a session (quinn's defaults let each pin
/// over 2 MB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sessions_pin_under_a_megabyte_each() {
    const SESSIONS: u64 = 30;
    static MEGABYTE: [u8; 1024 * 1024] = [b'x'; 1024 * 1024];
    let server = TestServer::start_with(|config| config.max_connections_per_client = 0).await;
    let mut calls = Vec::new();
    for _ in 0..SESSIONS {
        let mut call = server.webtransport("").await;
        call.next_message().await;
        calls.push(call);
    }
    let before = rss_kib();
    for call in &calls {
        // What flow control lets through goes; the rest waits on the client, not the server. (One
        // session at a time: the clients' own send buffers are this process's memory too.)
        let _ = tokio::time::timeout(
            Duration::from_millis(100),
            call.0.write_own_stream(&MEGABYTE),
        )
        .await;
        for _ in 0..1_000 {
            let _ = call.0.send_datagram(&MEGABYTE[..1_000]);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown = rss_kib().saturating_sub(before);
    println!(
        "{SESSIONS} hostile sessions: +{grown} KiB, {} KiB a session",
        grown / SESSIONS
    );
    assert!(
        grown < SESSIONS * 1024,
        "+{grown} KiB for {SESSIONS} sessions"
    );
    drop(calls);
}
