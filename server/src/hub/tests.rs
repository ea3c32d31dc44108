use super::*;
use switchboard_shared::{ChatMessage, ChatVia};

fn chat(text: &str) -> EventBody {
    EventBody::Chat(ChatMessage {
        author: "t".into(),
        text: text.into(),
        via: ChatVia::Post,
        client_ref: None,
    })
}

fn seqs(replay: &Replay) -> Vec<Seq> {
    replay.events.iter().map(|event| event.seq).collect()
}

#[test]
fn publishing_assigns_increasing_seqs_and_timestamps() {
    let hub = Hub::new(10);
    let first = hub.publish(chat("a"));
    let second = hub.publish(chat("b"));
    assert_eq!((first.seq, second.seq, hub.head()), (1, 2, 2));
    assert!(second.ts_ms >= first.ts_ms);
}

#[test]
fn a_restart_forgets_the_history_but_not_the_seqs() {
    let hub = Hub::new(10);
    for n in 0..4 {
        hub.publish(chat(&n.to_string()));
    }
    let before = hub.epoch();
    let epoch = hub.restart();
    assert!(epoch > before);
    assert_eq!((hub.epoch(), hub.len(), hub.head()), (epoch, 0, 4));
    assert_eq!(hub.since(1, 10).gap, Some(Gap { first: 2, last: 4 }));
    assert_eq!(hub.publish(chat("after")).seq, 5);
    let replay = hub.since(2, 10);
    assert_eq!(
        (replay.gap, seqs(&replay)),
        (Some(Gap { first: 3, last: 4 }), vec![5])
    );
}

#[test]
fn the_history_is_bounded_and_reports_gaps() {
    let hub = Hub::new(3);
    for n in 0..5 {
        hub.publish(chat(&n.to_string()));
    }
    assert_eq!((hub.len(), hub.oldest(), hub.head()), (3, Some(3), 5));
    let replay = hub.since(0, 100);
    assert_eq!(replay.gap, Some(Gap { first: 1, last: 2 }));
    assert_eq!(seqs(&replay), vec![3, 4, 5]);
    let replay = hub.since(3, 100);
    assert_eq!((replay.gap, seqs(&replay)), (None, vec![4, 5]));
    let replay = hub.since(5, 100);
    assert!(replay.events.is_empty() && replay.gap.is_none());
    let replay = hub.since(2, 1);
    assert_eq!((seqs(&replay), replay.truncated), (vec![3], true));
    // A position from the future (another epoch) gets nothing rather than a bogus gap.
    assert!(hub.since(99, 10).events.is_empty() && hub.since(99, 10).gap.is_none());
}

#[tokio::test]
async fn a_subscription_replays_then_follows_live() {
    let hub = Arc::new(Hub::new(100));
    for n in 0..3 {
        hub.publish(chat(&n.to_string()));
    }
    let mut subscription = hub.subscribe(Some(1));
    hub.publish(chat("live"));
    let mut got = Vec::new();
    for _ in 0..3 {
        match subscription.next().await.unwrap() {
            Delivery::Event(event) => got.push(event.seq),
            Delivery::Gap(gap) => panic!("unexpected {gap:?}"),
        }
    }
    assert_eq!(got, vec![2, 3, 4]);
}

#[test]
fn ready_hands_over_what_is_waiting_without_blocking() {
    let hub = Arc::new(Hub::new(100));
    let mut subscription = hub.subscribe(None);
    assert!(subscription.ready().is_none(), "nothing published yet");
    for n in 0..3 {
        hub.publish(chat(&n.to_string()));
    }
    let mut got = Vec::new();
    while let Some(delivery) = subscription.ready() {
        let Delivery::Event(event) = delivery else {
            panic!("unexpected {delivery:?}")
        };
        got.push(event.seq);
    }
    assert_eq!(got, vec![1, 2, 3]);
    // A resume behind the head is served from the history, a gap first where it has been evicted.
    let small = Arc::new(Hub::new(2));
    let mut behind = small.subscribe(None);
    for n in 0..4 {
        small.publish(chat(&n.to_string()));
    }
    behind.resume(0);
    assert!(matches!(
        behind.ready(),
        Some(Delivery::Gap(Gap { first: 1, last: 2 }))
    ));
    let rest: Vec<Seq> = std::iter::from_fn(|| match behind.ready()? {
        Delivery::Event(event) => Some(event.seq),
        Delivery::Gap(gap) => panic!("a second gap {gap:?}"),
    })
    .collect();
    assert_eq!(rest, vec![3, 4]);
}

#[tokio::test]
async fn a_subscriber_that_lags_past_the_live_buffer_still_gets_everything_held() {
    let hub = Arc::new(Hub::new(LIVE_CAPACITY * 4));
    let mut subscription = hub.subscribe(None);
    let total = LIVE_CAPACITY * 3;
    for n in 0..total {
        hub.publish(chat(&n.to_string()));
    }
    let mut expected = 1;
    while expected <= total as Seq {
        match subscription.next().await.unwrap() {
            Delivery::Event(event) => assert_eq!(event.seq, expected),
            Delivery::Gap(gap) => panic!("nothing was evicted, yet {gap:?}"),
        }
        expected += 1;
    }
}

#[tokio::test]
async fn a_subscriber_behind_the_history_is_told_exactly_what_it_lost() {
    let hub = Arc::new(Hub::new(10));
    let mut subscription = hub.subscribe(None);
    for n in 0..(LIVE_CAPACITY + 50) {
        hub.publish(chat(&n.to_string()));
    }
    let head = hub.head();
    let Some(Delivery::Gap(gap)) = subscription.next().await else {
        panic!("expected a gap first")
    };
    assert_eq!(
        gap,
        Gap {
            first: 1,
            last: head - 10
        }
    );
    for expected in (head - 9)..=head {
        let Some(Delivery::Event(event)) = subscription.next().await else {
            panic!("expected events")
        };
        assert_eq!(event.seq, expected);
    }
}
