//! The failure lab against a real server, with clients that recover on their own (`common::follower`):
//! for every fault kind, detection, reconnect, and zero lost messages when the history covers the
//! outage — or an exact lost count when it cannot (evicted history, restart).

mod common;

use common::{PATIENCE, TestServer};
use serde_json::json;
use std::time::{Duration, Instant};
use switchboard_client::follower::{Follower, now_ms};
use switchboard_shared::{EventBody, FaultKind, LaneId, SeqTracker};

/// Heartbeats every 200 ms: a watchdog declares a line dead after 500 ms of silence.
const HEARTBEAT_MS: u64 = 200;

async fn lab() -> TestServer {
    TestServer::start_with(|config| config.heartbeat_ms = HEARTBEAT_MS).await
}

fn followers(server: &TestServer, after: u64) -> Vec<Follower> {
    LaneId::ALL
        .into_iter()
        .map(|lane| Follower::start(server.addr, lane, after))
        .collect()
}

async fn all_caught_up(followers: &[Follower], seq: u64) {
    for follower in followers {
        follower.wait_for(seq, PATIENCE).await;
    }
}

/// Every follower has every seq from 1 to `head`: none missing, none lost, none twice.
fn nothing_lost(followers: &[Follower], head: u64) {
    for follower in followers {
        let books = follower.books();
        let counts = books.tracker.counts();
        assert_eq!(
            (
                counts.delivered,
                counts.lost,
                counts.duplicates,
                books.missing()
            ),
            (head, 0, 0, 0),
            "{} lane: {books:?}",
            follower.lane
        );
    }
}

#[tokio::test]
async fn a_pause_stops_news_but_not_heartbeats_so_no_line_is_declared_dead() {
    let server = lab().await;
    let followers = followers(&server, 0);
    let before = server.publish(3).await;
    all_caught_up(&followers, 3).await;
    let fault = server
        .fault(json!({"kind": "pause", "lane": "all", "duration_ms": 1_500}))
        .await;
    assert_eq!(fault.kind, FaultKind::Pause);
    // Nothing is published while paused: chat is refused with a reason, not lost.
    let refused = server
        .http
        .post(server.url("/api/messages"))
        .json(&json!({"author": "t", "text": "during the pause"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    let (_, listed) = server.get_json("/api/faults").await;
    assert_eq!(listed["active"][0]["kind"], "pause");
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let after = server.publish(3).await;
    let head = *after.last().unwrap();
    assert_eq!(
        head,
        before.len() as u64 + 1 + 3,
        "the pause notice is seq 4"
    );
    all_caught_up(&followers, head).await;
    nothing_lost(&followers, head);
    for follower in &followers[2..] {
        let books = follower.books();
        assert!(
            books.declared_dead.is_empty() && books.connects == 1,
            "{}: heartbeats kept the line alive through a 1.5 s pause: {books:?}",
            follower.lane
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_drop_on_every_lane_is_noticed_redialled_and_costs_nothing() {
    let server = lab().await;
    let followers = followers(&server, 0);
    server.publish(5).await;
    all_caught_up(&followers, 5).await;
    // Long polls must be held when the drop comes, to see them answered with an error.
    server.fault(json!({"kind": "drop", "lane": "all"})).await;
    let head = *server.publish(5).await.last().unwrap();
    all_caught_up(&followers, head).await;
    nothing_lost(&followers, head);
    for follower in &followers[2..] {
        let books = follower.books();
        assert!(
            books.broken >= 1,
            "{}: the line broke: {books:?}",
            follower.lane
        );
        assert!(
            books.connects >= 2,
            "{}: and was redialled: {books:?}",
            follower.lane
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_drop_answers_a_held_letter_with_an_error() {
    let server = lab().await;
    let held = {
        let http = server.http.clone();
        let url = server.url("/api/longpoll?after=0&wait_ms=20000");
        tokio::spawn(async move { http.get(url).send().await.unwrap() })
    };
    common::eventually("the letter is held", || async {
        server.stats().await.lanes[&LaneId::LongPoll].connections_open == 1
    })
    .await;
    server
        .fault(json!({"kind": "drop", "lane": "longpoll"}))
        .await;
    let answer = tokio::time::timeout(PATIENCE, held).await.unwrap().unwrap();
    assert_eq!(answer.status(), 503);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("dropped"),
        "{body}"
    );
    server.shutdown().await;
}

/// A half-open line stays up and says nothing: only the watchdog can tell, and it must, well before the
/// server would tear the zombie down.
async fn half_open_is_found_by_the_watchdog(lane: LaneId) {
    let server = lab().await;
    let follower = Follower::start(server.addr, lane, 0);
    server.publish(2).await;
    follower.wait_for(2, PATIENCE).await;
    let injected = Instant::now();
    server
        .fault(json!({"kind": "half_open", "lane": lane.as_str(), "duration_ms": 4_000}))
        .await;
    let head = *server.publish(4).await.last().unwrap();
    follower.wait_for(head, PATIENCE).await;
    let recovered_in = injected.elapsed();
    let books = follower.books();
    assert_eq!(books.declared_dead.len(), 1, "{books:?}");
    let silent = books.declared_dead[0];
    assert!(
        silent >= Duration::from_millis(450) && silent < Duration::from_millis(2_000),
        "declared dead after {silent:?} of silence (2.5 × {HEARTBEAT_MS} ms expected)"
    );
    assert!(
        recovered_in < Duration::from_millis(3_500),
        "recovered in {recovered_in:?}, before the 4 s fault ended: the redial works"
    );
    assert_eq!(books.connects, 2);
    nothing_lost(std::slice::from_ref(&follower), head);
    server.shutdown().await;
}

#[tokio::test]
async fn half_open_websocket() {
    half_open_is_found_by_the_watchdog(LaneId::Ws).await;
}

#[tokio::test]
async fn half_open_sse() {
    half_open_is_found_by_the_watchdog(LaneId::Sse).await;
}

#[tokio::test]
async fn half_open_letters_go_unanswered_until_the_client_gives_up_and_asks_again() {
    let server = lab().await;
    let follower = Follower::start(server.addr, LaneId::Poll, 0);
    server.publish(1).await;
    follower.wait_for(1, PATIENCE).await;
    server
        .fault(json!({"kind": "half_open", "lane": "poll", "duration_ms": 2_000}))
        .await;
    let head = *server.publish(3).await.last().unwrap();
    follower.wait_for(head, PATIENCE).await;
    let books = follower.books();
    assert!(books.failures >= 1, "a letter went unanswered: {books:?}");
    nothing_lost(std::slice::from_ref(&follower), head);
    server.shutdown().await;
}

#[tokio::test]
async fn a_delay_holds_every_frame_and_reply_by_its_amount() {
    let server = lab().await;
    let followers = followers(&server, 0);
    server.publish(1).await;
    all_caught_up(&followers, 1).await;
    server
        .fault(json!({"kind": "delay", "lane": "all", "duration_ms": 3_000, "delay_ms": 400}))
        .await;
    let published = server.publish(3).await;
    let head = *published.last().unwrap();
    all_caught_up(&followers, head).await;
    nothing_lost(&followers, head);
    for follower in &followers {
        let books = follower.books();
        for (event, received_ms) in &books.events {
            if published.contains(&event.seq) {
                let delay = received_ms.saturating_sub(event.ts_ms);
                assert!(
                    delay >= 390,
                    "{}: #{} arrived {delay} ms after publication",
                    follower.lane,
                    event.seq
                );
            }
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn errors_make_clients_back_off_and_come_back_without_loss() {
    let server = lab().await;
    let followers = followers(&server, 0);
    server.publish(2).await;
    all_caught_up(&followers, 2).await;
    server
        .fault(json!({"kind": "error", "lane": "all", "duration_ms": 1_500}))
        .await;
    // Cut the open lines too, so their redials meet the 503s.
    server.fault(json!({"kind": "drop", "lane": "all"})).await;
    let (status, _) = server.get_json("/api/poll?after=0").await;
    assert_eq!(status, 503);
    let during = server.publish(3).await;
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let head = *server.publish(2).await.last().unwrap();
    assert!(during.iter().all(|&seq| seq < head));
    all_caught_up(&followers, head).await;
    nothing_lost(&followers, head);
    for follower in &followers {
        let books = follower.books();
        assert!(
            books.failures >= 1,
            "{}: met a 503: {books:?}",
            follower.lane
        );
        // Backing off: a handful of tries in 1.5 s, not hundreds.
        assert!(
            books.failures < 40,
            "{}: hammered the server: {books:?}",
            follower.lane
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_restart_starts_a_new_epoch_and_what_was_not_received_is_counted_lost_exactly() {
    let server = lab().await;
    let followers = followers(&server, 0);
    server.publish(4).await;
    all_caught_up(&followers, 4).await;
    let (_, stats) = server.get_json("/api/stats").await;
    let old_epoch = stats["epoch"].as_u64().unwrap();

    // A client that read up to 4 and then went away while 3 more were published.
    server.publish(3).await;
    all_caught_up(&followers, 7).await;
    server
        .fault(json!({"kind": "restart", "lane": "all"}))
        .await;
    let head = *server.publish(2).await.last().unwrap();
    // 8 is the restart notice, then 9 and 10.
    assert_eq!(head, 10);
    all_caught_up(&followers, head).await;
    nothing_lost(&followers, head);
    for follower in &followers {
        let books = follower.books();
        assert_eq!(
            books.tracker.counts().restarts,
            1,
            "{}: {books:?}",
            follower.lane
        );
    }

    // The late client resumes after 4 on every lane: 5, 6 and 7 died with the old history.
    let batch = server.batch("/api/poll?after=4").await;
    assert_ne!(batch.epoch, old_epoch);
    let mut tracker = SeqTracker::resuming_after(4);
    tracker.observe_epoch(old_epoch, 7);
    tracker.observe_epoch(batch.epoch, batch.head);
    tracker.declare_lost(batch.gap.expect("a gap notice"));
    for event in &batch.events {
        tracker.observe(event.seq);
    }
    assert_eq!(tracker.counts().lost, 3);
    assert_eq!(tracker.counts().delivered, 3);
    assert!(matches!(&batch.events[0].body, EventBody::Notice(notice) if notice.fault.is_some()));

    let mut ws = server.ws("/ws?after=4").await;
    ws.next_message().await;
    match ws.next_non_heartbeat().await {
        switchboard_shared::ServerMessage::Gap(gap) => assert_eq!((gap.first, gap.last), (5, 7)),
        other => panic!("expected the gap first, got {other:?}"),
    }
    let mut sse = server.sse("/api/sse", Some("4")).await;
    let gap = sse.next_named("gap").await;
    assert_eq!(gap.data, r#"{"first":5,"last":7}"#);
    server.shutdown().await;
}

#[tokio::test]
async fn a_restart_tells_a_websocket_it_is_restarting() {
    let server = lab().await;
    let mut ws = server.ws("/ws").await;
    ws.next_message().await;
    server
        .fault(json!({"kind": "restart", "lane": "all"}))
        .await;
    assert_eq!(ws.close_code().await, Some(1012));
    server.shutdown().await;
}

#[tokio::test]
async fn an_outage_longer_than_the_history_is_counted_lost_exactly() {
    let server = TestServer::start_with(|config| {
        config.heartbeat_ms = HEARTBEAT_MS;
        config.history = 20;
    })
    .await;
    let follower = Follower::start(server.addr, LaneId::Ws, 0);
    server.publish(5).await;
    follower.wait_for(5, PATIENCE).await;
    // Cut, and refused for long enough that 50 events pass while the client cannot get back in: the
    // server by then holds only the last 20.
    server
        .fault(json!({"kind": "error", "lane": "ws", "duration_ms": 2_000}))
        .await;
    server.fault(json!({"kind": "drop", "lane": "ws"})).await;
    let head = *server.publish(50).await.last().unwrap();
    let started = Instant::now();
    loop {
        let books = follower.books();
        if books.tracker.last() == Some(head) {
            // 5 + the error and drop notices + 50 = 57 published; the server holds the last 20.
            assert_eq!(head, 57);
            let received: std::collections::BTreeSet<u64> =
                books.events.iter().map(|(event, _)| event.seq).collect();
            assert!((38..=57).all(|seq| received.contains(&seq)), "{received:?}");
            let counts = books.tracker.counts();
            // Exactly what never arrived is lost: the notices may or may not have made it out before
            // the cut, so the count is checked against what did.
            assert_eq!(counts.lost, head - received.len() as u64, "{books:?}");
            assert!(counts.lost >= 30, "{books:?}");
            assert_eq!(counts.delivered, received.len() as u64);
            assert_eq!((books.missing(), counts.duplicates), (0, 0));
            break;
        }
        assert!(started.elapsed() < PATIENCE, "{books:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn faults_are_listed_announced_and_validated() {
    let server = lab().await;
    let (status, listed) = server.get_json("/api/faults").await;
    assert_eq!((status, listed["auth"].as_str()), (200, Some("loopback")));
    assert_eq!(listed["active"], json!([]));
    let started = now_ms();
    let fault = server
        .fault(json!({"kind": "half_open", "lane": "sse", "duration_ms": 60_000}))
        .await;
    assert!(fault.started_ms >= started && fault.until_ms == fault.started_ms + 60_000);
    let (_, listed) = server.get_json("/api/faults").await;
    assert_eq!(listed["active"][0]["lane"], "sse");
    // The notice is on the stream for every lane to show.
    let batch = server.batch("/api/poll?after=0").await;
    let EventBody::Notice(notice) = &batch.events[0].body else {
        panic!("expected the fault's notice");
    };
    assert_eq!(notice.code, "fault_half_open");
    assert_eq!(notice.fault.as_ref().unwrap().id, fault.id);

    for (body, status, code) in [
        (json!({"kind": "melt"}), 400, "bad_body"),
        (json!({"kind": "delay", "lane": "ws"}), 422, "invalid_fault"),
        (json!({"kind": "pause", "lane": "ws"}), 422, "invalid_fault"),
        (
            json!({"kind": "drop", "duration_ms": 5}),
            422,
            "invalid_fault",
        ),
        (
            json!({"kind": "error", "duration_ms": 10_000_000}),
            422,
            "invalid_fault",
        ),
        (json!({"kind": "drop", "lane": "nowhere"}), 400, "bad_body"),
    ] {
        let (got, answer) = server.inject(body.clone()).await;
        assert_eq!(got, status, "{body} → {answer}");
        assert_eq!(answer["error"]["code"], code, "{body} → {answer}");
        assert!(!answer["error"]["message"].as_str().unwrap().is_empty());
    }
    server.shutdown().await;
}

#[tokio::test]
async fn an_admin_token_is_required_when_configured() {
    let server = TestServer::start_with(|config| config.admin_token = Some("s3cret".into())).await;
    let (_, listed) = server.get_json("/api/faults").await;
    assert_eq!(listed["auth"], "token");
    let body = json!({"kind": "drop", "lane": "ws"});
    let (status, answer) = server.inject(body.clone()).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let send = |token: &str| {
        server
            .http
            .post(server.url("/api/faults"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    assert_eq!(send("guess").await.unwrap().status(), 403);
    assert_eq!(send("s3cret").await.unwrap().status(), 201);
    server.shutdown().await;
}

#[tokio::test]
async fn beyond_loopback_without_a_token_nobody_may_inject() {
    // Listening on every interface: reachable from other machines, so injection is off.
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = switchboard_server::Config::quiet();
    config.instance = Some("test".into());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(switchboard_server::run(listener, config, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/faults");
    let listed: serde_json::Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["auth"], "disabled");
    let refused = http
        .post(&url)
        .json(&json!({"kind": "drop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let text = refused.text().await.unwrap();
    assert!(text.contains("--admin-token"), "{text}");
    let _ = stop.send(());
    handle.await.unwrap().unwrap();
}

/// The largest silence a client of `lane` meets while a 1 s delay fault is on every lane and the stream
/// publishes every 100 ms: a delay postpones each frame and answer by its amount, it must not hold the
/// line for the fault's whole duration (which a watchdog would take for a dead line).
async fn largest_silence_during_a_delay(server: &TestServer, lane: LaneId) -> Duration {
    let publisher = {
        let url = server.url("/api/messages");
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for n in 0..45 {
                let _ = client
                    .post(&url)
                    .json(&json!({"author": "t", "text": format!("{n}")}))
                    .send()
                    .await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let mut arrivals = Vec::new();
    let until = Instant::now() + Duration::from_millis(4_500);
    match lane {
        LaneId::Ws => {
            let mut ws = server.ws("/ws").await;
            ws.next_message().await;
            server
                .fault(json!({"kind": "delay", "lane": "all", "duration_ms": 3_000, "delay_ms": 1_000}))
                .await;
            while Instant::now() < until {
                ws.next_message().await;
                arrivals.push(Instant::now());
            }
        }
        LaneId::HttpStream => {
            let mut letter = server.stream("/api/stream").await;
            letter.next_message().await;
            server
                .fault(json!({"kind": "delay", "lane": "all", "duration_ms": 3_000, "delay_ms": 1_000}))
                .await;
            while Instant::now() < until {
                letter.next_message().await;
                arrivals.push(Instant::now());
            }
        }
        LaneId::WebTransport => {
            let mut call = server.webtransport("").await;
            call.next_message().await;
            server
                .fault(json!({"kind": "delay", "lane": "all", "duration_ms": 3_000, "delay_ms": 1_000}))
                .await;
            while Instant::now() < until {
                call.next_message().await;
                arrivals.push(Instant::now());
            }
        }
        LaneId::Sse => {
            let mut sse = server.sse("/api/sse", None).await;
            sse.next_named("hello").await;
            server
                .fault(json!({"kind": "delay", "lane": "all", "duration_ms": 3_000, "delay_ms": 1_000}))
                .await;
            while Instant::now() < until {
                sse.next().await;
                arrivals.push(Instant::now());
            }
        }
        LaneId::Poll | LaneId::LongPoll => {
            server
                .fault(json!({"kind": "delay", "lane": "all", "duration_ms": 3_000, "delay_ms": 1_000}))
                .await;
            let mut after = server.stats().await.head;
            while Instant::now() < until {
                let path = match lane {
                    LaneId::Poll => format!("/api/poll?after={after}"),
                    _ => format!("/api/longpoll?after={after}&wait_ms=1000"),
                };
                let batch = server.batch(&path).await;
                after = batch.events.last().map_or(after, |event| event.seq);
                arrivals.push(Instant::now());
                if lane == LaneId::Poll {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    publisher.await.unwrap();
    arrivals
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_delay_fault_delays_each_frame_on_every_lane_and_never_silences_a_line() {
    // Heartbeats every 500 ms: at most delay + one heartbeat of silence on a line.
    let server = TestServer::start_with(|config| config.heartbeat_ms = 500).await;
    for lane in LaneId::ALL {
        let silence = largest_silence_during_a_delay(&server, lane).await;
        // Letters: the delay, one interval (100 ms) and the round trip itself.
        let allowed = Duration::from_millis(1_000 + 500 + 250);
        assert!(
            silence <= allowed,
            "{lane}: silent for {silence:?} during a 1 s delay"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn no_heartbeats_leaves_a_quiet_line_silent_on_its_lane_only() {
    let server = TestServer::start_with(|config| config.heartbeat_ms = 100).await;
    let mut radio = server.sse("/api/sse", None).await;
    let mut endless = server.stream("/api/stream").await;
    radio.next_named("hello").await;
    endless.next_message().await;
    let fault = server
        .fault(json!({"kind": "no_heartbeat", "lane": "sse", "duration_ms": 1_500}))
        .await;
    assert_eq!(fault.kind, FaultKind::NoHeartbeat);
    // The radio hears the fault's notice, then nothing at all (no news is published meanwhile)…
    let (_, notice) = radio.next_event().await;
    assert!(matches!(notice.body, EventBody::Notice(_)), "{notice:?}");
    let silence = tokio::time::timeout(Duration::from_millis(700), radio.0.next()).await;
    assert!(silence.is_err(), "the radio spoke: {silence:?}");
    // …while the endless letter, on another lane, kept its heartbeats all along.
    let mut beats = 0;
    while beats < 5 {
        let message = tokio::time::timeout(Duration::from_millis(300), endless.next_message())
            .await
            .expect("the endless letter keeps its heartbeats");
        if matches!(
            message,
            Some(switchboard_shared::ServerMessage::Heartbeat(_))
        ) {
            beats += 1;
        }
    }
    // When the fault ends, the radio's heartbeats come back.
    let heartbeat = tokio::time::timeout(PATIENCE, radio.next_named("heartbeat")).await;
    assert!(heartbeat.is_ok());
    server.shutdown().await;
}
