//! The store fed with real reports, as the lane clients make them.

use super::score::DELAYS_KEPT;
use super::*;
use crate::wire::ClosedBy;
use switchboard_shared::ws::{Heartbeat, Hello};
use switchboard_shared::{
    Batch, ChatMessage, ChatVia, Event, EventBody, Fault, Gap, Notice, Shape,
};

#[test]
fn a_reset_starts_the_figures_afresh_where_each_lane_is() {
    let mut store = Store::new();
    store.start_after(0);
    let span = store.new_span();
    for seq in 1..=3 {
        store.apply(
            LaneId::Sse,
            100.0 * seq as f64,
            Wire::EventReceived {
                span,
                event: chat(seq, 50 * seq, "x"),
                bytes_down: 10,
            },
        );
    }
    store.reset_scores(1_000.0);
    let sse = store.lane(LaneId::Sse);
    assert_eq!((sse.delivered(), sse.bytes_down), (0, 0));
    assert_eq!(sse.delay_summary(), None);
    assert_eq!(sse.tracker.last(), Some(3), "still knows where it is");
    store.apply(
        LaneId::Sse,
        2_000.0,
        Wire::EventReceived {
            span,
            event: chat(4, 1_990, "x"),
            bytes_down: 10,
        },
    );
    let sse = store.lane(LaneId::Sse);
    assert_eq!((sse.delivered(), sse.missed()), (1, 0));
    assert_eq!(store.period().start_ms, 1_000.0);
    assert_eq!(store.period().cause, PeriodCause::Reset);
}

/// A network notice on the stream, as the server sends it, for every lane.
fn network_notice(seq: Seq, at_ms: u64, name: &str) -> Event {
    use switchboard_shared::FaultTarget;
    use switchboard_shared::network::{LaneConditions, NetworkChange, preset};
    let condition = preset(name);
    let mut lanes = LaneConditions::default();
    for lane in LaneId::ALL {
        lanes[lane] = condition.clone();
    }
    Event {
        seq,
        ts_ms: at_ms,
        body: EventBody::Notice(Notice {
            level: switchboard_shared::NoticeLevel::Info,
            code: "network_changed".into(),
            text: format!("every lane now runs over {name}"),
            fault: None,
            network: Some(Box::new(NetworkChange {
                lane: FaultTarget::ALL,
                condition,
                at_ms,
                lanes,
            })),
            traffic: None,
        }),
    }
}

/// Letters on `name`'s network: one letter a second from `from_ms` for `seconds`, each carrying one
/// event `delay_ms` old, the first preceded by the notice of the change.
fn letters_on(
    store: &mut Store,
    name: &str,
    first_seq: Seq,
    from_ms: u64,
    seconds: u64,
    delay_ms: u64,
) {
    let notice = network_notice(first_seq, from_ms, name);
    let span = store.new_span();
    store.apply(
        LaneId::Poll,
        from_ms as f64,
        Wire::EventReceived {
            span,
            event: notice,
            bytes_down: 100,
        },
    );
    for second in 1..seconds {
        let at_ms = from_ms + second * 1_000;
        let span = store.new_span();
        store.apply(
            LaneId::Poll,
            at_ms as f64,
            Wire::RequestSent {
                span,
                label: "GET /api/poll".into(),
            },
        );
        store.apply(
            LaneId::Poll,
            at_ms as f64,
            Wire::EventReceived {
                span,
                event: chat(first_seq + second, at_ms - delay_ms, "x"),
                bytes_down: 200,
            },
        );
    }
}

#[test]
fn a_change_of_network_starts_a_period_and_keeps_the_one_before_whole() {
    let mut store = Store::started_at(0.0);
    store.start_after(0);
    // 3g from the first second (too soon after the page opened for the page's own period to count),
    // then two minutes later a lossy line.
    letters_on(&mut store, "3g", 1, 500, 120, 900);
    assert!(
        store.previous().is_none(),
        "half a second of page taught nothing"
    );
    letters_on(&mut store, "lossy", 121, 120_500, 60, 40);

    let period = store.period();
    assert_eq!(period.start_ms, 120_500.0);
    assert_eq!(period.cause, PeriodCause::Network);
    let letters = store.lane(LaneId::Poll);
    // Only the lossy minute is counted: its slowest letter, not 3g's.
    assert_eq!(letters.delivered(), 60, "the notice and 59 letters");
    assert_eq!(letters.delay_max(), Some(40.0));
    assert_eq!(letters.requests, 59);
    assert_eq!(
        store.setting().networks[LaneId::Ws].as_deref(),
        Some("lossy")
    );

    let before = store.previous().expect("the 3g period is kept");
    assert_eq!(before.period.start_ms, 500.0);
    assert_eq!(before.end_ms, 120_500.0);
    assert_eq!(before.setting.words().as_deref(), Some("on 3g"));
    let letters_before = &before.scores[LaneId::Poll];
    assert_eq!(letters_before.requests, 119);
    assert_eq!(letters_before.delay_max(), Some(900.0));

    // The same notice heard again on another lane starts nothing.
    store.apply(
        LaneId::Sse,
        120_700.0,
        Wire::EventReceived {
            span: 0,
            event: network_notice(121, 120_500, "lossy"),
            bytes_down: 100,
        },
    );
    assert_eq!(store.period().start_ms, 120_500.0);
    assert_eq!(store.previous().unwrap().period.start_ms, 500.0);
    // A change the page hears of late, dated before this period began, starts nothing: all the
    // period counted ran under it already.
    let mut listed = switchboard_shared::network::LaneConditions::default();
    listed[LaneId::Ws] = switchboard_shared::network::preset("3g");
    store.network_known(&listed, 120_400.0);
    assert_eq!(store.setting().networks[LaneId::Ws].as_deref(), Some("3g"));
    assert_eq!(store.period().start_ms, 120_500.0);
}

#[test]
fn a_traffic_change_starts_a_period_and_a_fault_belongs_to_the_period_it_began_in() {
    use switchboard_shared::traffic::TrafficChange;
    use switchboard_shared::{FaultKind, Traffic};
    let mut store = Store::started_at(0.0);
    store.start_after(0);
    store.apply(
        LaneId::Ws,
        5_000.0,
        Wire::EventReceived {
            span: 0,
            event: fault_notice(1, FaultKind::Drop, 5_000, 0),
            bytes_down: 100,
        },
    );
    assert_eq!(store.last_fault().map(|span| span.start_ms), Some(5_000.0));
    let firehose = TrafficChange {
        pattern: Traffic::Firehose,
        previous: Traffic::Bursty,
        at_ms: 30_000,
    };
    store.traffic_change(&firehose, 30_000.0);
    assert_eq!(store.period().cause, PeriodCause::Traffic);
    assert_eq!(
        store.setting().words().as_deref(),
        Some("under firehose traffic")
    );
    assert!(
        store.last_fault().is_none(),
        "the drop was in the period before"
    );
    let before = store.previous().unwrap();
    assert_eq!(
        before.last_fault.as_ref().map(|span| span.start_ms),
        Some(5_000.0)
    );
    // The same pattern told again (every lane hears it) is no change.
    let again = TrafficChange {
        at_ms: 30_001,
        ..firehose
    };
    store.traffic_change(&again, 40_000.0);
    assert_eq!(store.period().start_ms, 30_000.0);
}

#[test]
fn the_slowest_delivery_is_the_periods_not_the_latest_samples() {
    let mut store = Store::new();
    store.start_after(0);
    store.apply(
        LaneId::Sse,
        1_000.0,
        Wire::EventReceived {
            span: 0,
            event: chat(1, 0, "slow"),
            bytes_down: 10,
        },
    );
    for seq in 2..=(DELAYS_KEPT as u64 + 50) {
        let at_ms = 1_000.0 + seq as f64;
        store.apply(
            LaneId::Sse,
            at_ms,
            Wire::EventReceived {
                span: 0,
                event: chat(seq, at_ms as u64 - 5, "x"),
                bytes_down: 10,
            },
        );
    }
    let sse = store.lane(LaneId::Sse);
    assert_eq!(
        sse.delay_summary().unwrap().max,
        5.0,
        "the kept samples forgot it"
    );
    assert_eq!(sse.delay_max(), Some(1_000.0));
}

#[test]
fn the_clock_offset_comes_from_the_fastest_trip_each_way() {
    // Fourteen probes recorded on the server's 3g (150 ± 50 ms each way) by a client sharing its clock
    // (the true offset is 0): each way's time, up and down. The probe with the shortest round trip
    // went up in 146.5 ms and down in 113.3: taken alone it makes the offset +16.6 ms, and every delay
    // read 11 % off.
    let ups = [
        137.4, 149.2, 152.6, 146.5, 126.5, 200.0, 149.9, 144.1, 200.3, 149.3, 130.5, 121.1, 162.9,
        112.1,
    ];
    let downs = [
        152.3, 195.0, 132.5, 113.3, 201.5, 126.3, 193.2, 162.6, 174.9, 115.5, 185.0, 141.6, 109.2,
        152.8,
    ];
    let mut store = Store::new();
    for (up_ms, down_ms) in ups.into_iter().zip(downs) {
        store.apply(LaneId::Ws, 0.0, Wire::ClockSync { up_ms, down_ms });
    }
    let offset = store.clock().offset_ms;
    assert!(offset.abs() < 3.0, "offset {offset} ms");
    assert_eq!(store.clock().round_trip_ms, Some(112.1 + 152.8));

    // The line's own events tell how fast its way down can be: the fastest of those recorded that run
    // came in 104.3 ms. Heard since the last probe, it counts at the next.
    let span = store.new_span();
    store.apply(
        LaneId::Ws,
        10_104.3,
        Wire::EventReceived {
            span,
            event: chat(1, 10_000, "x"),
            bytes_down: 10,
        },
    );
    store.apply(
        LaneId::Ws,
        0.0,
        Wire::ClockSync {
            up_ms: 150.0,
            down_ms: 150.0,
        },
    );
    let offset = store.clock().offset_ms;
    assert!(
        (offset - (112.1 - 104.3) / 2.0).abs() < 0.01,
        "offset {offset} ms"
    );
}

pub(crate) fn chat(seq: Seq, ts_ms: u64, text: &str) -> Event {
    Event {
        seq,
        ts_ms,
        body: EventBody::Chat(ChatMessage {
            author: "ada".into(),
            text: text.into(),
            via: ChatVia::Post,
            client_ref: None,
        }),
    }
}

fn hello_at(epoch: u64, head: Seq) -> Hello {
    Hello {
        epoch,
        head,
        oldest: None,
        resumed_after: None,
        heartbeat_ms: 200,
        instance: "one".into(),
        server_ms: 0,
        request_bytes: None,
        connection_request: None,
    }
}

fn fault_notice(seq: Seq, kind: switchboard_shared::FaultKind, started_ms: u64, ms: u64) -> Event {
    Event {
        seq,
        ts_ms: started_ms,
        body: EventBody::Notice(Notice {
            level: switchboard_shared::NoticeLevel::Warning,
            code: format!("fault_{kind}"),
            text: "fault".into(),
            fault: Some(Fault {
                id: seq,
                kind,
                lane: switchboard_shared::FaultTarget::Lane(LaneId::Ws),
                started_ms,
                until_ms: started_ms + ms,
                delay_ms: None,
            }),
            network: None,
            traffic: None,
        }),
    }
}

#[test]
fn an_outage_is_timed_from_the_fault_that_caused_it_to_the_lane_coming_back() {
    use switchboard_shared::FaultKind;
    let mut store = Store::new();
    let ws = LaneId::Ws;
    store.start_after(0);
    store.apply(
        ws,
        1_000.0,
        Wire::Dialing {
            span: 1,
            label: "dial".into(),
        },
    );
    store.apply(
        ws,
        1_010.0,
        Wire::Opened {
            span: 1,
            hello: hello_at(7, 0),
            bytes_up: 0,
            bytes_down: 0,
        },
    );
    // A half-open fault starts at 2,000 and is announced on the line at once.
    store.apply(
        ws,
        2_000.0,
        Wire::EventReceived {
            span: 1,
            event: fault_notice(1, FaultKind::HalfOpen, 2_000, 4_000),
            bytes_down: 0,
        },
    );
    assert_eq!(store.active_faults(3_000.0).count(), 1);
    assert_eq!(store.active_faults(6_500.0).count(), 0);
    // Silence; the watchdog gives up at 2,500 after 500 ms without anything.
    store.apply(
        ws,
        2_500.0,
        Wire::Dead {
            span: 1,
            silent_ms: 500.0,
        },
    );
    store.apply(
        ws,
        2_500.0,
        Wire::Closed {
            by: ClosedBy::Watchdog,
            span: 1,
            code: None,
            reason: "declared dead".into(),
        },
    );
    let outage = store.outage(ws);
    assert!(outage.in_outage());
    assert_eq!(
        (
            store.lane(ws).dead_lines,
            outage.last_detect_ms,
            outage.last_recover_ms
        ),
        (1, Some(500.0), None)
    );
    store.apply(
        ws,
        2_600.0,
        Wire::Dialing {
            span: 2,
            label: "dial".into(),
        },
    );
    store.apply(
        ws,
        2_650.0,
        Wire::Opened {
            span: 2,
            hello: hello_at(7, 1),
            bytes_up: 0,
            bytes_down: 0,
        },
    );
    let outage = store.outage(ws);
    assert!(!outage.in_outage());
    assert_eq!(outage.last_recover_ms, Some(150.0));
    assert_eq!(store.faults().len(), 1);
    // A person stopping the lane is not an outage.
    store.apply(
        ws,
        3_000.0,
        Wire::Closed {
            by: ClosedBy::Person,
            span: 2,
            code: Some(1000),
            reason: "stopped".into(),
        },
    );
    assert!(!store.outage(ws).in_outage());
}

#[test]
fn stopping_the_radio_is_no_outage_but_its_stream_breaking_is() {
    let mut store = Store::new();
    let sse = LaneId::Sse;
    store.start_after(0);
    for (span, at) in [(1, 0.0), (2, 2_000.0)] {
        store.apply(
            sse,
            at,
            Wire::Dialing {
                span,
                label: "GET /api/sse".into(),
            },
        );
        store.apply(
            sse,
            at + 10.0,
            Wire::Opened {
                span,
                hello: hello_at(7, 0),
                bytes_up: 0,
                bytes_down: 0,
            },
        );
    }
    store.apply(
        sse,
        500.0,
        Wire::Error {
            span: Some(1),
            message: "a frame was garbage".into(),
        },
    );
    assert!(store.lane(sse).last_error.is_some());
    // The radio's stop has no close code: who closed it is what counts.
    store.apply(
        sse,
        1_000.0,
        Wire::Closed {
            by: ClosedBy::Person,
            span: 1,
            code: None,
            reason: "stopped".into(),
        },
    );
    assert!(!store.outage(sse).in_outage());
    store.apply(
        sse,
        3_000.0,
        Wire::Closed {
            by: ClosedBy::Failure,
            span: 2,
            code: None,
            reason: "the stream broke".into(),
        },
    );
    assert!(store.outage(sse).in_outage());
    store.apply(
        sse,
        3_500.0,
        Wire::Opened {
            span: 2,
            hello: hello_at(7, 0),
            bytes_up: 0,
            bytes_down: 0,
        },
    );
    assert!(!store.outage(sse).in_outage());
    assert_eq!(
        store.lane(sse).last_error,
        None,
        "a lane that is back shows no old error"
    );
}

#[test]
fn a_drop_announced_after_it_struck_is_still_blamed_for_the_outage() {
    use switchboard_shared::FaultKind;
    let mut store = Store::new();
    let ws = LaneId::Ws;
    store.start_after(0);
    store.apply(
        ws,
        0.0,
        Wire::Dialing {
            span: 1,
            label: "dial".into(),
        },
    );
    store.apply(
        ws,
        10.0,
        Wire::Opened {
            span: 1,
            hello: hello_at(7, 0),
            bytes_up: 0,
            bytes_down: 0,
        },
    );
    store.apply(
        ws,
        5_020.0,
        Wire::Closed {
            by: ClosedBy::Server,
            span: 1,
            code: Some(1006),
            reason: "".into(),
        },
    );
    // Timed from the last sign of life until the fault is known…
    assert_eq!(store.outage(ws).last_detect_ms, Some(5_010.0));
    store.apply(
        ws,
        5_400.0,
        Wire::Opened {
            span: 2,
            hello: hello_at(7, 1),
            bytes_up: 0,
            bytes_down: 0,
        },
    );
    store.apply(
        ws,
        5_401.0,
        Wire::EventReceived {
            span: 2,
            event: fault_notice(1, FaultKind::Drop, 5_000, 0),
            bytes_down: 0,
        },
    );
    // …then from the fault's start.
    assert_eq!(store.outage(ws).last_detect_ms, Some(20.0));
    assert_eq!(store.outage(ws).last_recover_ms, Some(380.0));
}

#[test]
fn a_new_epoch_is_marked_on_the_timeline() {
    let mut store = Store::new();
    let poll = LaneId::Poll;
    store.start_after(0);
    let mut first = batch(vec![chat(1, 0, "a")]);
    first.epoch = 1;
    store.apply(
        poll,
        0.0,
        Wire::RequestSent {
            span: 1,
            label: "GET".into(),
        },
    );
    store.apply(
        poll,
        1.0,
        Wire::ReplyReceived {
            span: 1,
            cached: false,
            bytes_up: 0,
            bytes_down: 0,
            batch: first,
        },
    );
    let mut second = batch(vec![chat(5, 0, "b")]);
    second.epoch = 2;
    second.gap = Some(Gap { first: 2, last: 4 });
    store.apply(
        poll,
        2.0,
        Wire::RequestSent {
            span: 2,
            label: "GET".into(),
        },
    );
    store.apply(
        poll,
        3.0,
        Wire::ReplyReceived {
            span: 2,
            cached: false,
            bytes_up: 0,
            bytes_down: 0,
            batch: second,
        },
    );
    let score = store.lane(poll);
    assert_eq!(
        (
            score.tracker.counts().restarts,
            score.lost(),
            score.missed()
        ),
        (1, 3, 3)
    );
    assert!(
        store
            .marks()
            .iter()
            .any(|mark| matches!(mark.what, MarkKind::Restart { lost: 0 }))
    );
}

#[test]
fn a_letter_answered_by_another_instance_is_a_move_on_the_timeline() {
    let mut store = Store::new();
    let poll = LaneId::Poll;
    store.start_after(0);
    for (n, instance) in ["a", "a", "b"].into_iter().enumerate() {
        let span = store.new_span();
        let at = n as f64 * 10.0;
        store.apply(
            poll,
            at,
            Wire::RequestSent {
                span,
                label: "GET".into(),
            },
        );
        let mut reply = batch(vec![chat(n as u64 + 1, 0, "x")]);
        reply.instance = Some(instance.into());
        store.apply(
            poll,
            at + 1.0,
            Wire::ReplyReceived {
                span,
                bytes_up: 0,
                bytes_down: 0,
                batch: reply,
                cached: false,
            },
        );
    }
    let moves: Vec<_> = store
        .marks()
        .iter()
        .filter_map(|mark| match &mark.what {
            MarkKind::Moved { from, to } => Some((from.as_str(), to.as_str(), mark.at_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(
        moves,
        vec![("a", "b", 21.0)],
        "one move, when b first answered"
    );
    assert_eq!(store.lane(poll).instance.as_deref(), Some("b"));
    assert_eq!(store.lane(poll).missed(), 0, "the move lost nothing");
}

fn batch(events: Vec<Event>) -> Batch {
    let head = events.last().map_or(0, |event| event.seq);
    Batch {
        epoch: 1,
        head,
        gap: None,
        events,
        instance: None,
    }
}

fn letter(store: &mut Store, at: f64, events: Vec<Event>) {
    answered(store, at, events, false);
}

/// A letter sent at `at` and answered 5 ms later, by the server or by a proxy's cache.
fn answered(store: &mut Store, at: f64, events: Vec<Event>, cached: bool) {
    let span = store.new_span();
    store.apply(
        LaneId::Poll,
        at,
        Wire::RequestSent {
            span,
            label: "GET /api/poll".into(),
        },
    );
    store.apply(
        LaneId::Poll,
        at + 5.0,
        Wire::ReplyReceived {
            span,
            bytes_up: 100,
            bytes_down: 300,
            batch: batch(events),
            cached,
        },
    );
}

#[test]
fn letters_a_proxy_answered_from_its_cache_are_counted_and_marked() {
    let mut store = Store::new();
    store.start_after(10);
    answered(&mut store, 1000.0, vec![], false);
    answered(&mut store, 2000.0, vec![], true);
    answered(&mut store, 3000.0, vec![chat(11, 2900, "a")], true);
    let poll = store.lane(LaneId::Poll);
    // A cached letter is still a letter the page sent and paid for; the cache only spared the server.
    assert_eq!((poll.requests, poll.cache_hits), (3, 2));
    assert_eq!(poll.delivered(), 1);
    let cached: Vec<bool> = store.spans().map(|span| span.cached).collect();
    assert_eq!(cached, [false, true, true]);
}

#[test]
fn letters_count_requests_empty_replies_and_bytes() {
    let mut store = Store::new();
    store.start_after(10);
    letter(&mut store, 1000.0, vec![]);
    letter(
        &mut store,
        2000.0,
        vec![chat(11, 1500, "a"), chat(12, 1600, "b")],
    );
    letter(&mut store, 3000.0, vec![]);
    let poll = store.lane(LaneId::Poll);
    assert_eq!(poll.requests, 3);
    assert_eq!(poll.empty_replies, 2);
    assert_eq!(poll.delivered(), 2);
    assert_eq!((poll.bytes_up, poll.bytes_down), (300, 900));
    assert_eq!(poll.bytes_per_message(), Some(600.0));
    let outcomes: Vec<_> = store.spans().map(|span| span.outcome.clone()).collect();
    assert_eq!(outcomes, [Outcome::Empty, Outcome::News(2), Outcome::Empty]);
    assert_eq!(store.spans().nth(1).unwrap().end_ms, Some(2005.0));
    // Delay is from the server's stamp to the answer's arrival.
    assert_eq!(poll.delay_summary().unwrap().max, 2005.0 - 1500.0);
    assert_eq!(store.live(LaneId::Poll).chat.len(), 2);
}

#[test]
fn duplicates_gaps_and_recoveries_are_counted_per_lane() {
    let mut store = Store::new();
    store.start_after(0);
    let span = store.new_span();
    let ws = LaneId::Ws;
    for seq in [1, 2, 2, 5] {
        store.apply(
            ws,
            100.0,
            Wire::EventReceived {
                span,
                event: chat(seq, 90, "x"),
                bytes_down: 150,
            },
        );
    }
    assert_eq!(store.lane(ws).delivered(), 3);
    assert_eq!(store.lane(ws).duplicates(), 1);
    assert_eq!(store.lane(ws).missed(), 2, "3 and 4 are missing");
    store.apply(
        ws,
        200.0,
        Wire::EventReceived {
            span,
            event: chat(3, 95, "late"),
            bytes_down: 150,
        },
    );
    assert_eq!(store.lane(ws).recovered(), 1);
    assert_eq!(store.lane(ws).missed(), 1);
    store.apply(
        ws,
        300.0,
        Wire::GapNotice {
            span,
            gap: Gap { first: 4, last: 4 },
            bytes_down: 40,
        },
    );
    assert_eq!(
        store.lane(ws).missed(),
        1,
        "lost for good still counts as missed"
    );
    assert_eq!(store.lane(ws).tracker.counts().lost, 1);
    assert_eq!(store.lane(ws).tracker.missing_count(), 0);
    // The other lanes are untouched.
    assert_eq!(store.lane(LaneId::Sse).delivered(), 0);
    let receipts: Vec<_> = store
        .marks()
        .iter()
        .filter_map(|mark| match mark.what {
            MarkKind::Event { receipt, .. } => Some(receipt),
            _ => None,
        })
        .collect();
    assert_eq!(
        receipts,
        [
            Receipt::New,
            Receipt::New,
            Receipt::Duplicate,
            Receipt::AfterGap,
            Receipt::Recovered
        ]
    );
}

#[test]
fn lines_open_carry_frames_and_close_with_a_code() {
    let mut store = Store::new();
    let span = store.new_span();
    let ws = LaneId::Ws;
    store.apply(
        ws,
        0.0,
        Wire::Dialing {
            span,
            label: "GET /ws".into(),
        },
    );
    let hello = Hello {
        epoch: 1,
        head: 0,
        oldest: None,
        resumed_after: None,
        heartbeat_ms: 2000,
        instance: "one".into(),
        server_ms: 0,
        request_bytes: Some(400),
        connection_request: None,
    };
    store.apply(
        ws,
        3.0,
        Wire::Opened {
            span,
            hello,
            bytes_up: 400,
            bytes_down: 300,
        },
    );
    store.apply(
        ws,
        2000.0,
        Wire::Heartbeat {
            span,
            heartbeat: Heartbeat {
                server_ms: 2000,
                head: 0,
            },
            bytes_down: 40,
        },
    );
    store.apply(
        ws,
        2500.0,
        Wire::FrameSent {
            span,
            label: "ping".into(),
            detail: String::new(),
            bytes_up: 50,
        },
    );
    store.apply(
        ws,
        3000.0,
        Wire::Closed {
            by: ClosedBy::Server,
            span,
            code: Some(1001),
            reason: "server shutting down".into(),
        },
    );
    store.apply(ws, 3000.0, Wire::Reconnecting { after_ms: 500 });
    let score = store.lane(ws);
    assert_eq!(
        (score.connects, score.reconnects, score.heartbeats),
        (1, 1, 1)
    );
    assert_eq!((score.bytes_up, score.bytes_down), (450, 340));
    assert_eq!(score.instance.as_deref(), Some("one"));
    let line = store.span(span).unwrap();
    assert_eq!(line.shape, Shape::Duplex);
    assert_eq!(line.end_ms, Some(3000.0));
    assert_eq!((line.bytes_up, line.bytes_down), (450, 340));
    assert!(matches!(
        line.outcome,
        Outcome::Closed {
            code: Some(1001),
            ..
        }
    ));
    assert_eq!(store.marks_between(1000.0, 2600.0).count(), 2);
}

#[test]
fn delays_are_corrected_by_the_clock_offset() {
    let mut store = Store::new();
    store.apply(
        LaneId::Ws,
        0.0,
        // 1 ms each way; the server's clock reads 250 ms more than the browser's.
        Wire::ClockSync {
            up_ms: 251.0,
            down_ms: -249.0,
        },
    );
    let span = store.new_span();
    // The browser's clock is 250 ms behind the server's: received at browser 1000 = server 1250.
    store.apply(
        LaneId::Sse,
        1000.0,
        Wire::EventReceived {
            span,
            event: chat(1, 1240, "x"),
            bytes_down: 10,
        },
    );
    assert_eq!(store.lane(LaneId::Sse).delay_summary().unwrap().p50, 10.0);
}

#[test]
fn a_lane_is_behind_by_the_age_of_the_oldest_news_it_lacks() {
    let mut store = Store::new();
    store.start_after(0);
    let span = store.new_span();
    for (seq, ts) in [(1, 1000), (2, 2000)] {
        store.apply(
            LaneId::Ws,
            ts as f64,
            Wire::EventReceived {
                span,
                event: chat(seq, ts, "x"),
                bytes_down: 10,
            },
        );
    }
    letter(&mut store, 1500.0, vec![chat(1, 1000, "x")]);
    assert_eq!(store.behind_ms(LaneId::Ws, 2600.0), 0.0);
    assert_eq!(store.behind_ms(LaneId::Poll, 2600.0), 600.0);
    assert_eq!(store.behind_ms(LaneId::Sse, 2600.0), 1600.0);
}

#[test]
fn memory_is_bounded_and_a_firehose_thins_old_events_but_keeps_every_heartbeat() {
    let mut store = Store::new();
    store.start_after(0);
    let span = store.new_span();
    // Five times what the timeline holds, a heartbeat after every hundred events.
    let total = 5 * MARKS_HELD as u64;
    for seq in 1..=total {
        store.apply(
            LaneId::Sse,
            seq as f64,
            Wire::EventReceived {
                span,
                event: chat(seq, seq, "x"),
                bytes_down: 10,
            },
        );
        if seq % 100 == 0 {
            store.apply(
                LaneId::Sse,
                seq as f64 + 0.5,
                Wire::Heartbeat {
                    span,
                    heartbeat: Heartbeat {
                        server_ms: seq,
                        head: seq,
                    },
                    bytes_down: 10,
                },
            );
        }
    }
    assert!(store.marks().len() <= MARKS_HELD);
    assert_eq!(store.lane(LaneId::Sse).delivered(), total);
    let beats = store
        .marks()
        .iter()
        .filter(|mark| matches!(mark.what, MarkKind::Heartbeat { .. }))
        .count();
    assert_eq!(beats as u64, total / 100, "every heartbeat is kept");
    // The events reach back to the start, sparser with age; the newest are all there.
    let events: Vec<f64> = store
        .marks()
        .iter()
        .filter(|mark| matches!(mark.what, MarkKind::Event { .. }))
        .map(|mark| mark.at_ms)
        .collect();
    assert!(
        events[0] < total as f64 / 10.0,
        "oldest event at {}",
        events[0]
    );
    let newest: Vec<f64> = events[events.len() - 100..].to_vec();
    assert_eq!(
        newest,
        ((total - 99)..=total)
            .map(|seq| seq as f64)
            .collect::<Vec<_>>()
    );
    assert!(
        store
            .marks()
            .iter()
            .zip(store.marks().iter().skip(1))
            .all(|(a, b)| a.at_ms <= b.at_ms),
        "still in time order"
    );
    // A phone call dialled first and still open, then more letters than the timeline holds.
    let call = store.new_span();
    store.apply(
        LaneId::Ws,
        0.0,
        Wire::Dialing {
            span: call,
            label: "GET /ws".into(),
        },
    );
    for _ in 0..SPANS_HELD + 10 {
        letter(&mut store, 0.0, vec![]);
    }
    assert_eq!(store.spans().count(), SPANS_HELD);
    assert!(
        store.span(call).is_some(),
        "an open line is never dropped from the timeline"
    );
    assert!(
        store
            .spans()
            .zip(store.spans().skip(1))
            .all(|(a, b)| a.id < b.id)
    );
    // The sparkline and histogram keep fixed windows.
    assert_eq!(
        store.lane(LaneId::Sse).sparkline(10_000.0).len(),
        SPARK_SECONDS
    );
    let histogram: u32 = store.lane(LaneId::Sse).delay_histogram().iter().sum();
    assert_eq!(histogram as usize, DELAYS_KEPT);
}

#[test]
fn sparkline_counts_deliveries_per_second() {
    let mut store = Store::new();
    store.start_after(0);
    let span = store.new_span();
    for (seq, at) in [(1, 58_100.0), (2, 58_900.0), (3, 59_500.0)] {
        store.apply(
            LaneId::Ws,
            at,
            Wire::EventReceived {
                span,
                event: chat(seq, 0, "x"),
                bytes_down: 10,
            },
        );
    }
    let line = store.lane(LaneId::Ws).sparkline(59_999.0);
    assert_eq!(&line[SPARK_SECONDS - 2..], [2, 1]);
    assert_eq!(line.iter().sum::<u32>(), 3);
}

#[test]
fn replayed_old_events_do_not_overwrite_newer_live_data() {
    let mut copy = LiveCopy::default();
    copy.show(&chat(2, 2000, "new"));
    copy.show(&Event {
        seq: 1,
        ts_ms: 1000,
        body: EventBody::Notice(Notice {
            level: switchboard_shared::NoticeLevel::Info,
            code: "x".into(),
            text: "old".into(),
            fault: None,
            network: None,
            traffic: None,
        }),
    });
    assert_eq!(copy.newest_ts_ms, Some(2000));
    assert!(copy.notice.is_none());
}

#[test]
fn a_line_quiet_for_the_proxys_idle_timeout_was_cut_by_the_proxy_while_its_watchdog_stood_aside() {
    use switchboard_shared::FaultKind;
    let mut store = Store::new();
    let ws = LaneId::Ws;
    store.start_after(0);
    store.behind_proxy(Some(15_000.0));
    let open = |store: &mut Store, span: SpanId, at: f64| {
        store.apply(
            ws,
            at,
            Wire::Dialing {
                span,
                label: "dial".into(),
            },
        );
        store.apply(
            ws,
            at + 10.0,
            Wire::Opened {
                span,
                hello: hello_at(7, 0),
                bytes_up: 0,
                bytes_down: 0,
            },
        );
    };
    open(&mut store, 1, 1_000.0);
    // Heartbeats off on the phone call from 2,000 for 30 s, announced on the line.
    store.apply(
        ws,
        2_000.0,
        Wire::EventReceived {
            span: 1,
            event: fault_notice(1, FaultKind::NoHeartbeat, 2_000, 30_000),
            bytes_down: 0,
        },
    );
    assert!(store.heartbeats_off(ws, 10_000.0));
    assert!(!store.heartbeats_off(LaneId::Sse, 10_000.0));
    assert!(!store.heartbeats_off(ws, 40_000.0));
    // Fifteen seconds of silence later the connection closes under the line: the proxy hung up.
    store.apply(
        ws,
        17_100.0,
        Wire::Closed {
            by: ClosedBy::Failure,
            span: 1,
            code: Some(1006),
            reason: "the connection closed".into(),
        },
    );
    assert_eq!(store.lane(ws).proxy_cuts, 1);
    let (_, reason) = store.lane(ws).last_close.clone().unwrap();
    assert!(reason.starts_with("cut by the proxy after 15"), "{reason}");
    // A line the server hangs up on two seconds after it last spoke is not the proxy's doing.
    open(&mut store, 2, 18_000.0);
    store.apply(
        ws,
        20_000.0,
        Wire::Closed {
            by: ClosedBy::Server,
            span: 2,
            code: Some(1001),
            reason: "server shutting down".into(),
        },
    );
    assert_eq!(store.lane(ws).proxy_cuts, 1);
}

/// One definition of a new connection, counted in one place: the endless letter hears of its new
/// connection twice (its answer's header and its hello) and it counts once; a redial on a kept-alive
/// connection is a connect and a reconnect but no new connection.
#[test]
fn a_new_connection_is_counted_once_however_many_reports_tell_of_it() {
    let mut store = Store::new();
    let stream = LaneId::HttpStream;
    let line = store.new_span();
    store.apply(
        stream,
        0.0,
        Wire::Dialing {
            span: line,
            label: "GET /api/stream".into(),
        },
    );
    store.apply(stream, 5.0, Wire::NewConnection { span: line });
    store.apply(
        stream,
        10.0,
        Wire::Opened {
            span: line,
            hello: Hello {
                connection_request: Some(1),
                ..hello_at(1, 0)
            },
            bytes_up: 100,
            bytes_down: 100,
        },
    );
    let score = store.lane(stream);
    assert_eq!((score.connects, score.new_connections), (1, 1));
    // Dropped, it redials on a connection the browser kept alive.
    store.apply(stream, 2_000.0, Wire::Reconnecting { after_ms: 500 });
    let again = store.new_span();
    store.apply(
        stream,
        2_500.0,
        Wire::Opened {
            span: again,
            hello: Hello {
                connection_request: Some(3),
                ..hello_at(1, 0)
            },
            bytes_up: 100,
            bytes_down: 100,
        },
    );
    let score = store.lane(stream);
    assert_eq!(
        (score.connects, score.reconnects, score.new_connections),
        (2, 1, 1)
    );
}

/// A lane that learns the server's epoch only from its hello (the endless letter, the video call) still
/// counts the restart after a new period began: the period starts its counts afresh, not its epoch.
#[test]
fn a_restart_after_a_new_period_is_counted_on_a_lane_that_hears_the_epoch_only_at_dial() {
    let mut store = Store::new();
    store.start_after(0);
    let lane = LaneId::WebTransport;
    let dial = |store: &mut Store, at_ms: f64, epoch: u64| {
        let span = store.new_span();
        store.apply(
            lane,
            at_ms,
            Wire::Opened {
                span,
                hello: hello_at(epoch, 0),
                bytes_up: 0,
                bytes_down: 0,
            },
        );
    };
    dial(&mut store, 1_000.0, 1);
    store.reset_scores(5_000.0);
    dial(&mut store, 9_000.0, 2);
    assert_eq!(store.lane(lane).tracker.counts().restarts, 1);
}

/// A letter out when its lane is stopped ends there, withdrawn: not a failure, not an outage, and
/// never drawn as held until now.
#[test]
fn a_letter_the_person_stopped_is_withdrawn_not_failed() {
    let mut store = Store::new();
    store.start_after(0);
    let span = store.new_span();
    store.apply(
        LaneId::LongPoll,
        1_000.0,
        Wire::RequestSent {
            span,
            label: "GET /api/longpoll?after=0".into(),
        },
    );
    store.apply(LaneId::LongPoll, 4_000.0, Wire::Withdrawn { span });
    let withdrawn = store.span(span).unwrap();
    assert_eq!(withdrawn.end_ms, Some(4_000.0));
    assert_eq!(
        withdrawn.outcome,
        Outcome::Closed {
            code: None,
            reason: WITHDRAWN.into()
        }
    );
    assert_eq!(store.lane(LaneId::LongPoll).failed_requests, 0);
    assert_eq!(store.lane(LaneId::LongPoll).errors, 0);
    assert_eq!(
        crate::timeline::words::explain_span(withdrawn, 9_000.0),
        "This letter was withdrawn after 3.0 s: stopped before its answer."
    );
}
