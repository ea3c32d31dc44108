use super::*;
use serde_json::json;

fn request(body: serde_json::Value) -> Result<NetworkRequest, NetworkRejection> {
    NetworkRequest::from_json(&body)
}

fn field_of(body: serde_json::Value) -> String {
    match request(body) {
        Err(NetworkRejection::Field { field, .. }) => field.to_owned(),
        other => panic!("expected a field rejection, got {other:?}"),
    }
}

#[test]
fn presets_are_the_documented_ones() {
    let listed: Vec<String> = presets().into_iter().map(|p| p.name).collect();
    assert_eq!(listed, PRESET_NAMES.map(String::from));
    assert_eq!(preset("loopback"), None, "loopback emulates nothing");
    let three_g = preset("3g").unwrap();
    assert_eq!(
        (
            three_g.rtt_ms,
            three_g.jitter_ms,
            three_g.down_kbps,
            three_g.up_kbps
        ),
        (300, 50, 1_600, 768)
    );
    assert_eq!(preset("lossy").unwrap().loss_pct, 3.0);
    for preset in presets() {
        assert!(
            super::preset(&preset.name)
                .map_or(Ok(()), |c| c.validate())
                .is_ok()
        );
    }
    assert_eq!(
        super::preset("3g").unwrap().describe(),
        "3g (300 ± 50 ms, 1,600 down / 768 up kbit/s)"
    );
}

#[test]
fn a_request_names_a_preset_or_gives_values() {
    let set = request(json!({"lane": "ws", "preset": "4g"})).unwrap();
    assert_eq!(set.lane, FaultTarget::Lane(LaneId::Ws));
    assert_eq!(set.condition.unwrap().rtt_ms, 60);
    let clear = request(json!({"lane": "all", "preset": "loopback"})).unwrap();
    assert_eq!((clear.lane, clear.condition), (FaultTarget::ALL, None));
    let custom = request(json!({"lane": "sse", "rtt_ms": 400, "loss_pct": 2.5})).unwrap();
    let condition = custom.condition.unwrap();
    assert_eq!((condition.name.as_str(), condition.rtt_ms), ("custom", 400));
    assert_eq!(condition.loss_pct, 2.5);
    // What the page sends comes back as the same request.
    let again = request(NetworkRequest::to_json(FaultTarget::ALL, &condition)).unwrap();
    assert_eq!(again.condition.unwrap(), condition);
    let by_name = NetworkRequest::to_json(FaultTarget::ALL, &preset("3g").unwrap());
    assert_eq!(by_name, json!({"lane": "all", "preset": "3g"}));
}

#[test]
fn every_bad_value_is_refused_naming_its_field() {
    assert_eq!(field_of(json!({"lane": "ws", "rtt_ms": 10_001})), "rtt_ms");
    assert_eq!(field_of(json!({"lane": "ws", "rtt_ms": -1})), "rtt_ms");
    assert_eq!(
        field_of(json!({"lane": "ws", "rtt_ms": 10, "jitter_ms": 11})),
        "jitter_ms"
    );
    assert_eq!(field_of(json!({"lane": "ws", "down_kbps": 7})), "down_kbps");
    assert_eq!(
        field_of(json!({"lane": "ws", "up_kbps": 1_000_001})),
        "up_kbps"
    );
    assert_eq!(
        field_of(json!({"lane": "ws", "loss_pct": 50.5})),
        "loss_pct"
    );
    assert_eq!(field_of(json!({"lane": "ws", "loss_pct": "x"})), "loss_pct");
    assert_eq!(field_of(json!({"lane": "pigeon", "preset": "3g"})), "lane");
    assert_eq!(field_of(json!({"preset": "3g"})), "lane");
    assert!(matches!(
        request(json!({"lane": "ws", "preset": "5g"})),
        Err(NetworkRejection::UnknownPreset(_))
    ));
    assert!(
        request(json!({"lane": "ws", "preset": "5g"}))
            .unwrap_err()
            .to_string()
            .starts_with("preset")
    );
    assert!(matches!(
        request(json!({"lane": "ws", "preset": "3g", "rtt_ms": 5})),
        Err(NetworkRejection::PresetAndFields)
    ));
    assert!(matches!(
        request(json!({"lane": "ws", "latency": 5})),
        Err(NetworkRejection::UnknownField(_))
    ));
    assert!(matches!(
        request(json!([1])),
        Err(NetworkRejection::NotAnObject)
    ));
    // The edges are allowed.
    assert!(request(json!({"lane": "ws", "rtt_ms": 10_000, "jitter_ms": 10_000})).is_ok());
    assert!(request(json!({"lane": "ws", "down_kbps": 8, "up_kbps": 1_000_000})).is_ok());
    assert!(request(json!({"lane": "ws", "down_kbps": 0, "loss_pct": 50})).is_ok());
}

fn condition(rtt_ms: u32, jitter_ms: u32, kbps: u32, loss_pct: f64) -> Condition {
    Condition {
        name: "custom".into(),
        rtt_ms,
        jitter_ms,
        down_kbps: kbps,
        up_kbps: kbps,
        loss_pct,
    }
}

#[test]
fn a_chunk_comes_out_one_one_way_delay_later() {
    let path = condition(400, 100, 0, 0.0);
    let mut clock = PathClock::default();
    assert_eq!(clock.send(1_000.0, 100, &path, 0, 0.5, 0.9).out_ms, 1_200.0);
    // The jitter moves it by up to its amount either way …
    assert_eq!(clock.send(2_000.0, 100, &path, 0, 0.0, 0.9).out_ms, 2_100.0);
    // … but never ahead of what went before it on the connection.
    let mut clock = PathClock::default();
    let first = clock.send(0.0, 100, &path, 0, 0.999, 0.9).out_ms;
    let second = clock.send(1.0, 100, &path, 0, 0.0, 0.9).out_ms;
    assert!(second >= first);
}

#[test]
fn a_burst_queues_behind_itself_at_the_bandwidth() {
    // 80 kbit/s is 10 bytes a millisecond.
    let path = condition(0, 0, 80, 0.0);
    let mut clock = PathClock::default();
    assert_eq!(clock.send(0.0, 10_000, &path, 80, 0.5, 0.9).out_ms, 1_000.0);
    assert_eq!(clock.send(0.0, 10_000, &path, 80, 0.5, 0.9).out_ms, 2_000.0);
    // An idle link starts afresh.
    assert_eq!(
        clock.send(5_000.0, 100, &path, 80, 0.5, 0.9).out_ms,
        5_010.0
    );
}

#[test]
fn a_lost_chunk_holds_back_everything_behind_it() {
    let path = condition(100, 0, 0, 10.0);
    assert_eq!(path.rto_ms(), 200.0);
    assert_eq!(condition(300, 50, 0, 1.0).rto_ms(), 500.0);
    let mut clock = PathClock::default();
    let lost = clock.send(0.0, 100, &path, 0, 0.5, 0.05);
    assert!(lost.lost);
    assert_eq!(lost.out_ms, 250.0);
    let behind = clock.send(10.0, 100, &path, 0, 0.5, 0.9);
    assert!(!behind.lost);
    assert_eq!(behind.out_ms, 250.0, "waits for the lost chunk");
}

#[test]
fn a_lost_datagram_is_gone_and_holds_nothing_back() {
    let path = condition(100, 0, 8, 10.0);
    let mut clock = PathClock::default();
    let lost = clock.send_datagram(0.0, 100, &path, 8, 0.5, 0.05);
    assert!(lost.lost);
    // 100 bytes at 8 kbit/s take 100 ms to send, then half the round trip.
    assert_eq!(lost.out_ms, 150.0);
    let next = clock.send_datagram(10.0, 100, &path, 8, 0.5, 0.9);
    assert!(!next.lost);
    assert_eq!(
        next.out_ms, 250.0,
        "queued behind the lost one's bandwidth, not its retransmission"
    );
}

#[test]
fn an_unknown_lane_is_refused_naming_all_six() {
    let refused = NetworkRequest::from_json(&serde_json::json!({"lane": "fax", "preset": "3g"}))
        .unwrap_err()
        .to_string();
    for lane in LaneId::ALL {
        assert!(refused.contains(lane.as_str()), "{refused}");
    }
    assert!(
        refused.contains("stream, sse, ws or webtransport"),
        "{refused}"
    );
}

#[test]
fn a_change_is_said_with_the_lanes_names_not_their_ids() {
    let change = |lane: LaneId, condition: Option<Condition>| NetworkChange {
        lane: FaultTarget::Lane(lane),
        condition,
        at_ms: 0,
        lanes: LaneConditions::from(&PerLane::default()),
    };
    assert_eq!(
        change(LaneId::Ws, super::preset("3g")).describe(),
        "the phone call now runs over 3g (300 ± 50 ms, 1,600 down / 768 up kbit/s)"
    );
    assert_eq!(
        change(LaneId::LongPoll, None).describe(),
        "the held letters are back on loopback"
    );
}
