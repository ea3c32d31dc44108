//! Two instances sharing one stream through a real `redis-server` (Debian's; `./dev test` installs it),
//! started on a free loopback port with no persistence and stopped afterwards.

mod common;

use common::{PATIENCE, TestServer, eventually};
use futures_util::future::join_all;
use switchboard_client::redis::Redis;
use switchboard_shared::{Event, EventBody, Seq, SeqTracker, ServerMessage};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// An instance named `name` on the shared stream, with a short heartbeat so silences show quickly.
async fn instance(redis: &Redis, name: &str) -> TestServer {
    let (url, name) = (redis.url(), name.to_owned());
    let server = TestServer::start_with(move |config| {
        config.redis = Some(url);
        config.instance = Some(name);
        config.heartbeat_ms = 200;
    })
    .await;
    healthy(&server).await;
    server
}

async fn health(server: &TestServer) -> (u16, serde_json::Value) {
    server.get_json("/healthz").await
}

async fn healthy(server: &TestServer) {
    eventually("the instance reaches Redis", || async {
        health(server).await.0 == 200
    })
    .await;
}

/// The next `n` chat events of a call, as (seq, text).
async fn read_chats(
    messages: &mut mpsc::UnboundedReceiver<ServerMessage>,
    n: usize,
) -> Vec<(Seq, String)> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let event = next_event(messages).await;
        got.push((event.seq, chat_text(&event).to_owned()));
    }
    got
}

/// Reads a call's messages on a task of its own (answering pings all the while) into a channel.
fn listen(mut ws: common::WsClient) -> mpsc::UnboundedReceiver<ServerMessage> {
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(frame) = ws.next_frame().await {
            if let Message::Text(text) = frame
                && sender
                    .send(serde_json::from_str(text.as_str()).unwrap())
                    .is_err()
            {
                break;
            }
        }
    });
    receiver
}

async fn next_message(messages: &mut mpsc::UnboundedReceiver<ServerMessage>) -> ServerMessage {
    tokio::time::timeout(PATIENCE, messages.recv())
        .await
        .expect("a message in time")
        .expect("the call is still up")
}

async fn next_event(messages: &mut mpsc::UnboundedReceiver<ServerMessage>) -> Event {
    loop {
        match next_message(messages).await {
            ServerMessage::Event(event) => return event,
            ServerMessage::Heartbeat(_) | ServerMessage::Hello(_) => {}
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

fn chat_text(event: &Event) -> &str {
    match &event.body {
        EventBody::Chat(chat) => &chat.text,
        other => panic!("expected chat, got {other:?}"),
    }
}

#[tokio::test]
async fn a_chat_posted_to_one_instance_reaches_sse_and_websocket_clients_of_the_other_with_its_seq()
{
    let redis = Redis::start();
    let a = instance(&redis, "a").await;
    let b = instance(&redis, "b").await;
    let mut b_sse = b.sse("/api/sse", None).await;
    let hello = b_sse.next_named("hello").await;
    assert!(hello.data.contains(r#""instance":"b""#), "{}", hello.data);
    let mut b_ws = b.ws("/ws").await;
    let ServerMessage::Hello(hello) = b_ws.next_message().await else {
        panic!("expected hello")
    };
    assert_eq!(hello.instance, "b");
    let mut a_ws = a.ws("/ws").await;
    a_ws.next_message().await;

    let accepted = a.post_chat("through a, to everyone").await;
    let (_, on_b_sse) = b_sse.next_event().await;
    let on_b_ws = b_ws.next_event().await;
    let on_a_ws = a_ws.next_event().await;
    for event in [&on_b_sse, &on_b_ws, &on_a_ws] {
        assert_eq!(event.seq, accepted.seq);
        assert_eq!(event.ts_ms, accepted.ts_ms);
        assert_eq!(chat_text(event), "through a, to everyone");
    }
    // And back the other way, by a chat typed into a call on b.
    b_ws.send_text(r#"{"type":"chat","author":"b-user","text":"from b's call"}"#)
        .await;
    let accepted_seq = loop {
        match b_ws.next_non_heartbeat().await {
            ServerMessage::ChatAccepted(accepted) => break accepted.seq,
            ServerMessage::Event(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(accepted_seq, accepted.seq + 1);
    let on_a = a_ws.next_event().await;
    assert_eq!(
        (on_a.seq, chat_text(&on_a)),
        (accepted_seq, "from b's call")
    );
    // Both instances say which they are, and that they share the stream.
    for (server, name) in [(&a, "a"), (&b, "b")] {
        let (status, body) = health(server).await;
        assert_eq!(status, 200);
        assert_eq!(body["instance"], name);
        assert_eq!(body["backplane"]["state"], "ok");
        assert_eq!(server.stats().await.instance, name);
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_client_that_read_up_to_s_on_one_instance_resumes_on_the_other_with_no_gap_and_no_duplicate()
 {
    let redis = Redis::start();
    let a = instance(&redis, "a").await;
    let b = instance(&redis, "b").await;
    let mut on_a = a.ws("/ws").await;
    on_a.next_message().await;
    let first = a.publish(10).await;
    let mut tracker = SeqTracker::new();
    let mut s: Seq = 0;
    for _ in 0..6 {
        s = on_a.next_event().await.seq;
        tracker.observe(s);
    }
    drop(on_a); // the client moves: a load balancer sent its redial elsewhere
    let second = b.publish(5).await;
    let head = *second.last().unwrap();
    assert_eq!(head, first[0] + 14, "one counter for both instances");
    eventually("b has read everything", || async {
        b.stats().await.head == head
    })
    .await;

    // The phone call, the video call, the radio and a letter each resume on b after S.
    let mut ws = b.ws(&format!("/ws?after={s}")).await;
    ws.next_message().await;
    let mut video = b.webtransport(&format!("?after={s}")).await;
    video.next_message().await;
    let mut sse = b.sse("/api/sse", Some(&s.to_string())).await;
    let batch = b.batch(&format!("/api/poll?after={s}")).await;
    assert!(batch.gap.is_none());
    let expected: Vec<Seq> = (s + 1..=head).collect();
    assert_eq!(
        batch.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        expected
    );
    for seq in s + 1..=head {
        assert_eq!(ws.next_event().await.seq, seq);
        assert_eq!(video.next_event().await.seq, seq);
        assert_eq!(sse.next_event().await.1.seq, seq);
        tracker.observe(seq);
    }
    let counts = tracker.counts();
    assert_eq!((counts.duplicates, tracker.missing_count()), (0, 0));
    // An instance started later serves resumes from the shared history too.
    let c = instance(&redis, "c").await;
    let late = c.batch(&format!("/api/poll?after={}", first[0])).await;
    assert!(late.gap.is_none());
    assert_eq!(late.events.len() as u64, head - first[0]);
    for server in [a, b, c] {
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_thousand_events_published_concurrently_through_both_instances_arrive_everywhere_in_one_order()
 {
    let redis = Redis::start();
    let a = instance(&redis, "a").await;
    let b = instance(&redis, "b").await;
    // Each call read by a task of its own, as a browser reads: a call left unread while the burst is
    // posted does not answer the heartbeats' pings, and on a busy machine three heartbeats (600 ms
    // here) pass before the test reads it — the server rightly hangs up on a silent peer.
    let mut ws_a = listen(a.ws("/ws").await);
    next_message(&mut ws_a).await;
    let mut ws_b = listen(b.ws("/ws").await);
    next_message(&mut ws_b).await;
    let mut sse_b = b.sse("/api/sse", None).await;
    sse_b.next_named("hello").await;

    let posts = (0..1000).map(|i| {
        let server = if i % 2 == 0 { &a } else { &b };
        async move { server.post_chat(&format!("burst {i}")).await.seq }
    });
    let mut accepted: Vec<Seq> = join_all(posts).await;
    accepted.sort_unstable();
    let first = accepted[0];
    assert_eq!(
        accepted,
        (first..first + 1000).collect::<Vec<_>>(),
        "1,000 distinct, contiguous seqs"
    );
    let mut seen_by: Vec<Vec<(Seq, String)>> = Vec::new();
    seen_by.push(read_chats(&mut ws_a, 1000).await);
    seen_by.push(read_chats(&mut ws_b, 1000).await);
    let mut over_sse = Vec::new();
    while over_sse.len() < 1000 {
        let (_, event) = sse_b.next_event().await;
        over_sse.push((event.seq, chat_text(&event).to_owned()));
    }
    seen_by.push(over_sse);
    for seen in &seen_by {
        let seqs: Vec<Seq> = seen.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, accepted, "every seq, in order, once");
    }
    assert!(
        seen_by.windows(2).all(|pair| pair[0] == pair[1]),
        "the same event under each seq everywhere"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn when_redis_goes_away_instances_degrade_refuse_publishes_keep_their_clients_and_recover_exactly()
 {
    let mut redis = Redis::start();
    let a = instance(&redis, "a").await;
    let b = instance(&redis, "b").await;
    // Read by a task of its own, as a browser would, so it answers pings while the test does other things.
    let mut ws_b = listen(b.ws("/ws").await);
    let before = a.publish(5).await;
    let head_before = *before.last().unwrap();
    for &seq in &before {
        assert_eq!(next_event(&mut ws_b).await.seq, seq);
    }
    // A letter-reader that read only up to the second event, but was told how far the stream went.
    let mut behind = SeqTracker::new();
    let batch = b.batch(&format!("/api/poll?after={}", before[0] - 1)).await;
    behind.observe_epoch(batch.epoch, batch.head);
    behind.observe(before[0]);
    behind.observe(before[1]);

    redis.stop();
    eventually("a reports degraded", || async { health(&a).await.0 == 503 }).await;
    let (_, body) = health(&a).await;
    assert_eq!(body["status"], "degraded");
    assert!(
        body["why"].as_str().is_some_and(|why| !why.is_empty()),
        "says why: {body}"
    );
    // A publish is refused, clearly, rather than lost.
    let refused = a
        .http
        .post(a.url("/api/messages"))
        .json(&serde_json::json!({"author": "t", "text": "into the void"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    let why = refused.text().await.unwrap();
    assert!(
        why.contains("Redis") && why.contains("unreachable"),
        "{why}"
    );
    // The call on b stays up: heartbeats keep coming while Redis is away.
    let mut beats = 0;
    while beats < 3 {
        if let ServerMessage::Heartbeat(_) = next_message(&mut ws_b).await {
            beats += 1;
        }
    }

    redis.start_again();
    healthy(&a).await;
    healthy(&b).await;
    // Redis came back empty; the instances put the epoch and the count back, and say what happened.
    let notice = loop {
        let event = next_event(&mut ws_b).await;
        if let EventBody::Notice(notice) = event.body {
            assert!(event.seq > head_before, "seqs go on increasing");
            break notice;
        }
    };
    println!("notice: {}", notice.text);
    assert_eq!(notice.code, "redis_recovered");
    assert!(
        notice.text.contains("publishes were refused"),
        "{}",
        notice.text
    );
    let after = a.post_chat("after the outage").await;
    assert!(after.seq > head_before);
    loop {
        let event = next_event(&mut ws_b).await;
        if event.seq == after.seq {
            break;
        }
    }
    // The reader that was behind resumes: its epoch is the same, the three events it had not read are
    // still held by b, and nothing is counted lost; a client asking from before b's memory would get a
    // gap notice instead.
    let resumed = b.batch(&format!("/api/poll?after={}", before[1])).await;
    assert_eq!(
        behind.observe_epoch(resumed.epoch, resumed.head),
        switchboard_shared::EpochChange::Same
    );
    assert!(resumed.gap.is_none());
    for event in &resumed.events {
        behind.observe(event.seq);
    }
    assert_eq!((behind.counts().lost, behind.missing_count()), (0, 0));
    assert_eq!(resumed.events[0].seq, before[2]);
    // An instance that starts now knows only what Redis still holds: the rest is an exact gap.
    let c = instance(&redis, "c").await;
    let fresh = c.batch(&format!("/api/poll?after={}", before[1])).await;
    let gap = fresh
        .gap
        .expect("the events Redis lost are a gap on a new instance");
    assert_eq!((gap.first, gap.last), (before[2], head_before));
    for server in [a, b, c] {
        server.shutdown().await;
    }
}
