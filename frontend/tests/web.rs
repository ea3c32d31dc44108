//! Browser tests (headless Chromium through wasm-bindgen-test): components mounted on a real page, fed
//! scripted wire reports, then read back from the DOM and the canvas as a person would see them.
#![cfg(target_arch = "wasm32")]

use leptos::prelude::*;
use switchboard_frontend::Dashboard;
use switchboard_frontend::lanes::now_ms;
use switchboard_frontend::store::MarkKind;
use switchboard_frontend::timeline::Timeline;
use switchboard_frontend::ui::chat::ChatComposer;
use switchboard_frontend::ui::compare::CompareTable;
use switchboard_frontend::ui::lane_panel::LanePanel;
use switchboard_frontend::wire::Wire;
use switchboard_shared::ws::{Heartbeat, Hello};
use switchboard_shared::{Batch, ChatMessage, ChatVia, Event, EventBody, LaneId};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use web_sys::{HtmlCanvasElement, HtmlElement, HtmlInputElement};

wasm_bindgen_test_configure!(run_in_browser);

fn chat(seq: u64, text: &str) -> Event {
    Event {
        seq,
        ts_ms: now_ms() as u64 - 40,
        body: EventBody::Chat(ChatMessage {
            author: "ada".into(),
            text: text.into(),
            via: ChatVia::Post,
            client_ref: None,
        }),
    }
}

/// A fresh element on the page with `view` mounted in it, sharing `dashboard` as context.
fn mount<V: IntoView + 'static>(
    dashboard: Dashboard,
    view: impl FnOnce() -> V + 'static,
) -> HtmlElement {
    let document = web_sys::window().unwrap().document().unwrap();
    // The page's own style sheet, as the real page has it: the timeline takes its lane colours from it.
    if document.get_element_by_id("page-style").is_none() {
        let style = document.create_element("style").unwrap();
        style.set_id("page-style");
        style.set_text_content(Some(include_str!("../style.css")));
        document.head().unwrap().append_child(&style).unwrap();
    }
    let host: HtmlElement = document.create_element("div").unwrap().unchecked_into();
    document.body().unwrap().append_child(&host).unwrap();
    let handle = leptos::mount::mount_to(host.clone(), move || {
        provide_context(dashboard);
        view()
    });
    // The test page lives only as long as the test; keep the view mounted until then.
    handle.forget();
    host
}

fn text_of(host: &HtmlElement, testid: &str) -> String {
    host.query_selector(&format!("[data-testid='{testid}']"))
        .unwrap()
        .unwrap_or_else(|| panic!("no element with data-testid={testid}"))
        .text_content()
        .unwrap_or_default()
}

async fn tick(ms: u32) {
    gloo_timers::future::TimeoutFuture::new(ms).await;
}

fn letter(dashboard: &Dashboard, lane: LaneId, events: Vec<Event>) {
    letter_from(dashboard, lane, events, None);
}

/// A letter answered by `instance` (named when several share the stream).
fn letter_from(dashboard: &Dashboard, lane: LaneId, events: Vec<Event>, instance: Option<&str>) {
    let span = dashboard
        .store
        .try_update_value(|store| store.new_span())
        .unwrap();
    dashboard.report(
        lane,
        now_ms(),
        Wire::RequestSent {
            span,
            label: "GET /api/poll?after=0".into(),
        },
    );
    let head = events.last().map_or(0, |event| event.seq);
    dashboard.report(
        lane,
        now_ms() + 3.0,
        Wire::ReplyReceived {
            span,
            bytes_up: 120,
            bytes_down: 250,
            cached: false,
            batch: Batch {
                epoch: 1,
                head,
                gap: None,
                events,
                instance: instance.map(str::to_owned),
            },
        },
    );
}

#[wasm_bindgen_test]
async fn the_scoreboard_counts_a_scripted_sequence() {
    let dashboard = Dashboard::new();
    dashboard.store.update_value(|store| store.start_after(0));
    // The figures every lane has live in the comparison table, the rest in the lane's panel.
    let host = mount(
        dashboard,
        || view! { <CompareTable/><LanePanel lane=LaneId::Poll/> },
    );
    // An empty reply, news, then a duplicate of 2 and 5 after a gap (3 and 4 never came).
    letter(&dashboard, LaneId::Poll, vec![]);
    letter(
        &dashboard,
        LaneId::Poll,
        vec![chat(1, "one"), chat(2, "two")],
    );
    letter(
        &dashboard,
        LaneId::Poll,
        vec![chat(2, "two"), chat(5, "five")],
    );
    dashboard.refresh(now_ms());
    tick(20).await;

    assert!(
        host.query_selector("[data-testid='lane-poll']")
            .unwrap()
            .is_some()
    );
    // Not started: the copy is behind because the person stopped it, and it says so.
    assert_eq!(text_of(&host, "poll-freshness"), "stopped");
    dashboard.is_running(LaneId::Poll).set(true);
    tick(20).await;
    assert_ne!(text_of(&host, "poll-freshness"), "stopped");
    assert_eq!(text_of(&host, "poll-delivered"), "3");
    assert_eq!(text_of(&host, "poll-requests"), "3");
    assert_eq!(text_of(&host, "poll-empty"), "1");
    assert_eq!(text_of(&host, "poll-bytes-down"), "750 B");
    assert_eq!(text_of(&host, "poll-bytes-up"), "360 B");
    assert_eq!(text_of(&host, "poll-missed"), "2");
    assert_eq!(text_of(&host, "poll-duplicates"), "1");
    assert_eq!(text_of(&host, "poll-reconnects"), "0");
    assert_eq!(text_of(&host, "poll-last-seq"), "5");
    // The lane's own copy of the chat shows what it received, once each.
    let log = text_of(&host, "chat-log");
    assert!(log.contains("one") && log.contains("five"), "{log}");
    assert_eq!(log.matches("two").count(), 1, "{log}");

    // A late 3 is recovered; the server's gap notice declares 4 lost: still missed, for good.
    let span = dashboard
        .store
        .try_update_value(|store| store.new_span())
        .unwrap();
    dashboard.report(
        LaneId::Poll,
        now_ms(),
        Wire::EventReceived {
            span,
            event: chat(3, "three"),
            bytes_down: 10,
        },
    );
    dashboard.report(
        LaneId::Poll,
        now_ms(),
        Wire::GapNotice {
            span,
            gap: switchboard_shared::Gap { first: 4, last: 4 },
            bytes_down: 10,
        },
    );
    dashboard.refresh(now_ms());
    tick(20).await;
    assert_eq!(text_of(&host, "poll-delivered"), "4");
    assert_eq!(text_of(&host, "poll-recovered"), "1");
    assert_eq!(text_of(&host, "poll-missed"), "1");

    // Several instances behind a balancer: the panel says which one answered, and follows a move.
    letter_from(&dashboard, LaneId::Poll, vec![], Some("a"));
    dashboard.refresh(now_ms());
    tick(20).await;
    assert_eq!(text_of(&host, "poll-instance"), "via a");
    letter_from(&dashboard, LaneId::Poll, vec![chat(6, "six")], Some("b"));
    dashboard.refresh(now_ms());
    tick(20).await;
    assert_eq!(text_of(&host, "poll-instance"), "via b");
    assert_eq!(text_of(&host, "poll-last-seq"), "6");
    let moved = dashboard.store.with_value(|store| {
        store
            .marks()
            .iter()
            .filter(|mark| matches!(&mark.what, MarkKind::Moved { from, to } if from == "a" && to == "b"))
            .count()
    });
    assert_eq!(moved, 1, "the move is on the timeline");
}

#[wasm_bindgen_test]
async fn the_timeline_draws_marks_for_wire_events() {
    let dashboard = Dashboard::new();
    let host = mount(dashboard, || view! { <Timeline/> });
    let line = dashboard
        .store
        .try_update_value(|store| store.new_span())
        .unwrap();
    let start = now_ms() - 3_000.0;
    dashboard.report(
        LaneId::Ws,
        start,
        Wire::Dialing {
            span: line,
            label: "GET /ws".into(),
        },
    );
    dashboard.report(
        LaneId::Ws,
        start + 2.0,
        Wire::Opened {
            span: line,
            hello: Hello {
                epoch: 1,
                head: 0,
                oldest: None,
                resumed_after: None,
                heartbeat_ms: 2000,
                instance: "test".into(),
                server_ms: start as u64,
                request_bytes: Some(300),
                connection_request: None,
            },
            bytes_up: 300,
            bytes_down: 200,
        },
    );
    for seq in 1..=20 {
        dashboard.report(
            LaneId::Ws,
            start + 100.0 * seq as f64,
            Wire::EventReceived {
                span: line,
                event: chat(seq, "x"),
                bytes_down: 150,
            },
        );
    }
    dashboard.report(
        LaneId::Ws,
        start + 2_500.0,
        Wire::Heartbeat {
            span: line,
            heartbeat: Heartbeat {
                server_ms: start as u64,
                head: 20,
            },
            bytes_down: 40,
        },
    );
    letter(&dashboard, LaneId::Poll, vec![]);
    tick(150).await;

    let canvas: HtmlCanvasElement = host
        .query_selector("[data-testid='timeline-canvas']")
        .unwrap()
        .unwrap()
        .unchecked_into();
    // Each lane's name sits beside its row: one name per row, each as tall as a row of the canvas.
    let names = host
        .query_selector_all(".swimlane-names .lane-name")
        .unwrap();
    assert_eq!(names.length() as usize, LaneId::COUNT);
    let row_px = (f64::from(canvas.client_height()) - 22.0) / LaneId::COUNT as f64;
    for index in 0..names.length() {
        let name: HtmlElement = names.item(index).unwrap().unchecked_into();
        assert_eq!(f64::from(name.offset_height()), row_px, "row {index}");
    }
    // hello + 20 events + 1 heartbeat on the phone line; one letter (a span, no marks).
    assert_eq!(canvas.get_attribute("data-marks").as_deref(), Some("22"));
    assert_eq!(canvas.get_attribute("data-spans").as_deref(), Some("2"));
    // And they are really on the canvas: the phone call's blue in the phone call's swimlane.
    let ctx: web_sys::CanvasRenderingContext2d =
        canvas.get_context("2d").unwrap().unwrap().unchecked_into();
    let ratio = web_sys::window().unwrap().device_pixel_ratio();
    let rows = LaneId::COUNT as f64;
    let row_height = (f64::from(canvas.height()) / ratio - 22.0) / rows;
    let top = LaneId::Ws.index() as f64 * row_height * ratio;
    let pixels = ctx
        .get_image_data(
            0,
            top as i32,
            canvas.width() as i32,
            (row_height * ratio) as i32,
        )
        .unwrap()
        .data();
    let blue = pixels
        .chunks(4)
        .filter(|p| p[0] == 0x25 && p[1] == 0x63 && p[2] == 0xd9)
        .count();
    assert!(blue > 100, "phone-call pixels drawn: {blue}");
}

#[wasm_bindgen_test]
async fn the_chat_composer_refuses_an_empty_message_and_needs_a_call_up() {
    let dashboard = Dashboard::new();
    let host = mount(dashboard, || view! { <ChatComposer/> });
    let input: HtmlInputElement = host
        .query_selector("[data-testid='chat-input']")
        .unwrap()
        .unwrap()
        .unchecked_into();
    assert_eq!(input.value(), "");
    let click = |testid: &str| {
        host.query_selector(&format!("[data-testid='{testid}']"))
            .unwrap()
            .unwrap()
            .unchecked_into::<HtmlElement>()
            .click()
    };
    click("send-post");
    tick(10).await;
    assert!(
        text_of(&host, "chat-status").contains("empty"),
        "{}",
        text_of(&host, "chat-status")
    );
    input.set_value("hello");
    input
        .dispatch_event(&web_sys::Event::new("input").unwrap())
        .unwrap();
    click("send-ws");
    tick(10).await;
    assert!(
        text_of(&host, "chat-status").contains("no phone call is up"),
        "{}",
        text_of(&host, "chat-status")
    );
    click("send-webtransport");
    tick(10).await;
    assert!(
        text_of(&host, "chat-status").contains("no video call is up: start the Video call lane"),
        "{}",
        text_of(&host, "chat-status")
    );
    // Enter in the message field sends: with no call up, as a letter.
    key(&input, "Enter");
    tick(10).await;
    let status = text_of(&host, "chat-status");
    assert!(
        status.starts_with("sending as a letter")
            || status.starts_with("refused")
            || status.starts_with("no answer"),
        "Enter sent the message as a letter: {status}"
    );
}

/// With the timeline full (10,000 marks, all in the window) a frame still draws every mark; the time
/// per frame is printed for BENCHMARKS.md (not asserted: timing assertions flake on shared machines).
#[wasm_bindgen_test]
async fn a_full_timeline_draws_all_ten_thousand_marks() {
    use switchboard_frontend::store::MARKS_HELD;
    use switchboard_frontend::timeline::paint;
    use switchboard_frontend::timeline::view::View;

    let dashboard = Dashboard::new();
    let now = now_ms();
    let line = dashboard
        .store
        .try_update_value(|store| store.new_span())
        .unwrap();
    for seq in 0..MARKS_HELD as u64 {
        let lane = LaneId::ALL[(seq % 4) as usize];
        dashboard.report(
            lane,
            // 15 s of marks ending a second ago: the 20 s window still holds them all when filling
            // the store takes seconds on a busy machine.
            now - 16_000.0 + seq as f64 * 1.5,
            Wire::EventReceived {
                span: line,
                event: chat(seq + 1, "x"),
                bytes_down: 150,
            },
        );
    }
    let document = web_sys::window().unwrap().document().unwrap();
    let canvas: HtmlCanvasElement = document.create_element("canvas").unwrap().unchecked_into();
    canvas
        .set_attribute("style", "width: 1200px; height: 270px; display: block")
        .unwrap();
    document.body().unwrap().append_child(&canvas).unwrap();
    let view = StoredValue::new(View::new(now, 1200.0));
    let performance = web_sys::window().unwrap().performance().unwrap();
    let mut frames = Vec::new();
    for _ in 0..30 {
        let started = performance.now();
        paint(dashboard, view, &canvas, None);
        frames.push(performance.now() - started);
    }
    frames.sort_by(f64::total_cmp);
    // Every mark the timeline holds is drawn (a full timeline, thinned: the events and the holes the
    // letters' strides leave).
    let held = dashboard.store.with_value(|store| store.marks().len());
    assert!(held > MARKS_HELD * 3 / 4, "{held} marks held");
    assert_eq!(
        canvas.get_attribute("data-marks").as_deref(),
        Some(held.to_string().as_str())
    );
    console_log!(
        "timeline frame with {MARKS_HELD} marks: median {:.2} ms, worst {:.2} ms",
        frames[frames.len() / 2],
        frames[frames.len() - 1]
    );
}

/// A half-open fault on the phone call, as the page hears of it: the fault panel lists it, the lane's
/// scoreboard counts the dead line and times the outage, and the panel refuses a bad request itself.
#[wasm_bindgen_test]
async fn a_fault_is_listed_and_its_outage_is_timed() {
    use switchboard_frontend::ui::faults::FaultPanel;
    use switchboard_shared::{Fault, FaultKind, FaultTarget, Notice, NoticeLevel};

    let dashboard = Dashboard::new();
    let host = mount(dashboard, || {
        view! { <FaultPanel/> <CompareTable/> <LanePanel lane=LaneId::Ws/> }
    });
    dashboard.store.update_value(|store| store.start_after(0));
    let ws = LaneId::Ws;
    // Whole milliseconds, so the server-clock fields below hold it exactly.
    let now = now_ms().floor();
    let hello = |head| Hello {
        epoch: 1,
        head,
        oldest: None,
        resumed_after: None,
        heartbeat_ms: 200,
        instance: "test".into(),
        server_ms: now as u64,
        request_bytes: None,
        connection_request: None,
    };
    let opened = |span, at, head| {
        dashboard.report(
            ws,
            at,
            Wire::Dialing {
                span,
                label: "GET /ws".into(),
            },
        );
        dashboard.report(
            ws,
            at + 5.0,
            Wire::Opened {
                span,
                hello: hello(head),
                bytes_up: 0,
                bytes_down: 0,
            },
        );
    };
    opened(1, now - 2_000.0, 0);
    let notice = Event {
        seq: 1,
        ts_ms: now as u64 - 1_000,
        body: EventBody::Notice(Notice {
            level: NoticeLevel::Warning,
            code: "fault_half_open".into(),
            text: "fault injected".into(),
            fault: Some(Fault {
                id: 1,
                kind: FaultKind::HalfOpen,
                lane: FaultTarget::Lane(ws),
                started_ms: now as u64 - 1_000,
                until_ms: now as u64 + 9_000,
                delay_ms: None,
            }),
            network: None,
            traffic: None,
        }),
    };
    dashboard.report(
        ws,
        now - 1_000.0,
        Wire::EventReceived {
            span: 1,
            event: notice,
            bytes_down: 300,
        },
    );
    dashboard.report(
        ws,
        now - 500.0,
        Wire::Dead {
            span: 1,
            silent_ms: 500.0,
        },
    );
    dashboard.report(
        ws,
        now - 500.0,
        Wire::Closed {
            span: 1,
            by: switchboard_frontend::wire::ClosedBy::Watchdog,
            code: None,
            reason: "declared dead".into(),
        },
    );
    opened(2, now - 300.0, 1);
    dashboard.refresh(now);
    tick(50).await;

    assert!(
        text_of(&host, "active-faults").contains("Half-open on the phone call for 10000 ms"),
        "{}",
        text_of(&host, "active-faults")
    );
    assert_eq!(text_of(&host, "ws-dead"), "1");
    assert_eq!(text_of(&host, "ws-detect"), "500 ms");
    assert_eq!(text_of(&host, "ws-recover"), "205 ms");
    assert_eq!(text_of(&host, "ws-lost"), "0");

    // A delay of 0 ms is refused by the panel itself, with the server's own rule.
    let delay: HtmlInputElement = host
        .query_selector("[data-testid='fault-delay-ms']")
        .unwrap()
        .unwrap()
        .unchecked_into();
    delay.set_value("0");
    delay
        .dispatch_event(&web_sys::Event::new("change").unwrap())
        .unwrap();
    let button: HtmlElement = host
        .query_selector("[data-testid='fault-delay']")
        .unwrap()
        .unwrap()
        .unchecked_into();
    button.click();
    tick(50).await;
    assert!(
        text_of(&host, "fault-status").contains("delay_ms between 1 and"),
        "{}",
        text_of(&host, "fault-status")
    );
}

#[wasm_bindgen_test]
async fn a_network_condition_is_listed_shaded_and_its_delays_counted() {
    use switchboard_frontend::ui::network::NetworkPanel;
    use switchboard_shared::network::{LaneConditions, NetworkChange, preset};
    use switchboard_shared::{FaultTarget, Notice, NoticeLevel};

    let dashboard = Dashboard::new();
    dashboard.store.update_value(|store| store.start_after(0));
    let host = mount(dashboard, || {
        view! { <NetworkPanel/> <CompareTable/> <LanePanel lane=LaneId::Ws/> <Timeline/> }
    });
    let ws = LaneId::Ws;
    let now = now_ms();
    let line = dashboard
        .store
        .try_update_value(|store| store.new_span())
        .unwrap();
    dashboard.report(
        ws,
        now - 5_000.0,
        Wire::Dialing {
            span: line,
            label: "GET /ws".into(),
        },
    );
    dashboard.report(
        ws,
        now - 4_800.0,
        Wire::Opened {
            span: line,
            hello: Hello {
                epoch: 1,
                head: 0,
                oldest: None,
                resumed_after: None,
                heartbeat_ms: 2000,
                instance: "test".into(),
                server_ms: now as u64,
                request_bytes: Some(300),
                connection_request: Some(1),
            },
            bytes_up: 300,
            bytes_down: 200,
        },
    );
    // The phone line goes onto 3g: every lane hears the notice.
    let three_g = preset("3g").unwrap();
    let change = NetworkChange {
        lane: FaultTarget::Lane(ws),
        condition: Some(three_g.clone()),
        at_ms: now as u64 - 4_000,
        lanes: {
            let mut lanes = LaneConditions::default();
            lanes[ws] = Some(three_g);
            lanes
        },
    };
    dashboard.report(
        ws,
        now - 3_700.0,
        Wire::EventReceived {
            span: line,
            event: Event {
                seq: 1,
                ts_ms: now as u64 - 4_000,
                body: EventBody::Notice(Notice {
                    level: NoticeLevel::Info,
                    code: "network_changed".into(),
                    text: change.describe(),
                    fault: None,
                    network: Some(Box::new(change)),
                    traffic: None,
                }),
            },
            bytes_down: 400,
        },
    );
    // Two more events, each 300 ms and 400 ms after the server stamped it.
    for (seq, delay) in [(2u64, 300.0), (3, 400.0)] {
        let at = now - 3_000.0 + seq as f64 * 100.0;
        dashboard.report(
            ws,
            at,
            Wire::EventReceived {
                span: line,
                event: Event {
                    seq,
                    ts_ms: (at - delay) as u64,
                    ..chat(seq, "slow")
                },
                bytes_down: 150,
            },
        );
    }
    // The page spent a second and a half in a background tab.
    dashboard.touch(|store| store.conditions_mut().visibility(true, now - 2_000.0));
    dashboard.touch(|store| store.conditions_mut().visibility(false, now - 500.0));
    dashboard.refresh(now_ms());
    tick(150).await;

    let listed = text_of(&host, "network-ws");
    assert!(listed.contains("3g (300 ± 50 ms"), "{listed}");
    assert!(text_of(&host, "network-poll").contains("loopback"));
    assert_eq!(text_of(&host, "ws-new-connections"), "1");
    let p50: f64 = text_of(&host, "ws-delay-p50")
        .replace(',', "")
        .parse()
        .unwrap();
    let p95: f64 = text_of(&host, "ws-delay-p95")
        .replace(',', "")
        .parse()
        .unwrap();
    assert!((290.0..=410.0).contains(&p50), "p50 {p50}");
    assert!((390.0..=410.0).contains(&p95), "p95 {p95}");
    let hidden = text_of(&host, "hidden-summary");
    assert!(hidden.contains("background tab for 1.5 s"), "{hidden}");
    // Back in front: said in the past tense, not "so far".
    assert!(
        hidden.contains("in all, back") && !hidden.contains("so far"),
        "{hidden}"
    );
    assert!(text_of(&host, "while-hidden").contains("Phone call"));

    // On the canvas: the phone call's row is tinted for the condition, the tab's time hatched.
    let canvas: HtmlCanvasElement = host
        .query_selector("[data-testid='timeline-canvas']")
        .unwrap()
        .unwrap()
        .unchecked_into();
    assert_eq!(
        canvas.get_attribute("data-conditions").as_deref(),
        Some("2")
    );
    let ctx: web_sys::CanvasRenderingContext2d =
        canvas.get_context("2d").unwrap().unwrap().unchecked_into();
    let ratio = web_sys::window().unwrap().device_pixel_ratio();
    let row_height = (f64::from(canvas.height()) / ratio - 22.0) / LaneId::COUNT as f64;
    let tinted = |row: f64| {
        ctx.get_image_data(
            0,
            (row * row_height * ratio) as i32,
            canvas.width() as i32,
            (row_height * ratio) as i32,
        )
        .unwrap()
        .data()
        .chunks(4)
        // The tint is blue over the row's grey or white: blue clearly above red.
        .filter(|p| p[2] >= 240 && i32::from(p[2]) - i32::from(p[0]) >= 12)
        .count()
    };
    let (ws_row, poll_row) = (
        tinted(LaneId::Ws.index() as f64),
        tinted(LaneId::Poll.index() as f64),
    );
    assert!(
        ws_row > 2_000,
        "tinted pixels on the phone call's row: {ws_row}"
    );
    assert!(
        poll_row < ws_row / 10,
        "the letters' row is not tinted: {poll_row}"
    );
}

/// Opens a line on `lane` at `at` (a radio stream or a phone call) and returns its span.
fn open_line(dashboard: &Dashboard, lane: LaneId, at: f64) -> switchboard_frontend::wire::SpanId {
    let span = dashboard
        .store
        .try_update_value(|store| store.new_span())
        .unwrap();
    dashboard.report(
        lane,
        at,
        Wire::Dialing {
            span,
            label: "GET /line".into(),
        },
    );
    dashboard.report(
        lane,
        at + 2.0,
        Wire::Opened {
            span,
            hello: Hello {
                epoch: 1,
                head: 0,
                oldest: None,
                resumed_after: None,
                heartbeat_ms: 2000,
                instance: "test".into(),
                server_ms: at as u64,
                request_bytes: Some(300),
                connection_request: Some(1),
            },
            bytes_up: 300,
            bytes_down: 200,
        },
    );
    span
}

/// Where on the screen the timeline draws time `at` in `lane`'s row (the view is live, 20 s wide).
fn screen_point(canvas: &HtmlCanvasElement, lane: LaneId, at: f64) -> (i32, i32) {
    let rect = canvas.get_bounding_client_rect();
    let x = rect.left() + (at - (now_ms() - 20_000.0)) / 20_000.0 * rect.width();
    let row = (rect.height() - 22.0) / LaneId::COUNT as f64;
    let y = rect.top() + row * (lane.index() as f64 + 0.5);
    (x.round() as i32, y.round() as i32)
}

fn mouse(kind: &str, (x, y): (i32, i32)) -> web_sys::MouseEvent {
    let init = web_sys::MouseEventInit::new();
    init.set_bubbles(true);
    init.set_client_x(x);
    init.set_client_y(y);
    web_sys::MouseEvent::new_with_mouse_event_init_dict(kind, &init).unwrap()
}

fn pointer(kind: &str, (x, y): (i32, i32)) -> web_sys::PointerEvent {
    let init = web_sys::PointerEventInit::new();
    init.set_bubbles(true);
    init.set_client_x(x);
    init.set_client_y(y);
    web_sys::PointerEvent::new_with_event_init_dict(kind, &init).unwrap()
}

/// Clicking an event follows its seq across the lanes: every lane it reached is outlined on the canvas,
/// and the detail says when it came on each and how much later than the first, or why it did not. A
/// drag that ends over a mark opens nothing, and Esc closes the detail.
#[wasm_bindgen_test]
async fn one_message_is_traced_across_lanes_and_a_drag_is_not_a_click() {
    let dashboard = Dashboard::new();
    dashboard.store.update_value(|store| store.start_after(0));
    let host = mount(dashboard, || view! { <Timeline/> });
    let now = now_ms();
    let phone = open_line(&dashboard, LaneId::Ws, now - 9_000.0);
    let radio = open_line(&dashboard, LaneId::Sse, now - 9_000.0);
    let arrived = now - 5_000.0;
    let seq_one = |lane: LaneId, span, at: f64| {
        dashboard.report(
            lane,
            at,
            Wire::EventReceived {
                span,
                event: Event {
                    ts_ms: (arrived - 20.0) as u64,
                    ..chat(1, "traced")
                },
                bytes_down: 150,
            },
        );
    };
    seq_one(LaneId::Ws, phone, arrived);
    seq_one(LaneId::Sse, radio, arrived + 5.0);
    // The letters carry it 600 ms later; the held letters have not got it yet.
    let letter_span = dashboard
        .store
        .try_update_value(|store| store.new_span())
        .unwrap();
    dashboard.report(
        LaneId::Poll,
        arrived + 580.0,
        Wire::RequestSent {
            span: letter_span,
            label: "GET /api/poll?after=0".into(),
        },
    );
    dashboard.report(
        LaneId::Poll,
        arrived + 600.0,
        Wire::ReplyReceived {
            span: letter_span,
            bytes_up: 120,
            bytes_down: 250,
            cached: false,
            batch: Batch {
                epoch: 1,
                head: 1,
                gap: None,
                events: vec![Event {
                    ts_ms: (arrived - 20.0) as u64,
                    ..chat(1, "traced")
                }],
                instance: None,
            },
        },
    );
    tick(100).await;
    let canvas: HtmlCanvasElement = host
        .query_selector("[data-testid='timeline-canvas']")
        .unwrap()
        .unwrap()
        .unchecked_into();
    let detail = || {
        host.query_selector("[data-testid='timeline-detail']")
            .unwrap()
    };
    // The legend names every kind of mark the canvas draws.
    let legend = host
        .query_selector(".legend")
        .unwrap()
        .unwrap()
        .text_content()
        .unwrap_or_default();
    for needed in [
        "✱",
        "✕",
        "◇",
        "heartbeat",
        "failed letter",
        "fault",
        "traffic",
        "seq",
    ] {
        assert!(
            legend.contains(needed),
            "the legend lacks {needed:?}: {legend}"
        );
    }

    // A mark in the right half is summarised to the left of the pointer, inside the canvas.
    let on_mark = screen_point(&canvas, LaneId::Ws, arrived);
    canvas
        .dispatch_event(&pointer("pointermove", on_mark))
        .unwrap();
    tick(50).await;
    let hover: HtmlElement = host
        .query_selector(".timeline .hover")
        .unwrap()
        .expect("a summary under the pointer")
        .unchecked_into();
    assert_eq!(hover.get_attribute("data-side").as_deref(), Some("right"));
    let (hover_box, canvas_box) = (
        hover.get_bounding_client_rect(),
        canvas.get_bounding_client_rect(),
    );
    assert!(
        hover_box.right() <= canvas_box.right() + 1.0 && hover_box.left() >= canvas_box.left(),
        "the summary stays inside the canvas: {}..{} in {}..{}",
        hover_box.left(),
        hover_box.right(),
        canvas_box.left(),
        canvas_box.right()
    );
    // The phone call's row is in the lower half: the summary opens above the pointer, not below the
    // canvas's bottom edge.
    assert_eq!(hover.get_attribute("data-place").as_deref(), Some("above"));
    assert!(
        hover_box.bottom() <= canvas_box.bottom() + 1.0 && hover_box.top() >= canvas_box.top(),
        "the summary stays inside the canvas: {}..{} in {}..{}",
        hover_box.top(),
        hover_box.bottom(),
        canvas_box.top(),
        canvas_box.bottom()
    );

    // A drag that starts and ends on the phone call's mark pans the view and opens nothing.
    let beside = (on_mark.0 - 60, on_mark.1);
    canvas
        .dispatch_event(&pointer("pointerdown", beside))
        .unwrap();
    canvas
        .dispatch_event(&pointer("pointermove", on_mark))
        .unwrap();
    canvas
        .dispatch_event(&pointer("pointerup", on_mark))
        .unwrap();
    canvas.dispatch_event(&mouse("click", on_mark)).unwrap();
    tick(50).await;
    assert!(detail().is_none(), "the end of a drag opened the detail");
    // Panned away from now, the axis gives clock times, not ages counted from an edge that is not now.
    let axis = canvas.get_attribute("data-axis").unwrap_or_default();
    assert!(
        !axis.contains("now")
            && axis
                .split(" | ")
                .all(|label| label.matches(':').count() == 2),
        "{axis}"
    );
    let follow = host
        .query_selector("[data-testid='timeline-follow']")
        .unwrap()
        .unwrap()
        .unchecked_into::<HtmlElement>();
    assert!(
        follow
            .text_content()
            .unwrap()
            .contains("before now — back to live"),
        "{:?}",
        follow.text_content()
    );
    // Back to live, where the point on screen is where the test computes it.
    follow.click();
    tick(50).await;
    let axis = canvas.get_attribute("data-axis").unwrap_or_default();
    assert!(axis.ends_with("now") || axis.contains(" s"), "{axis}");

    canvas
        .dispatch_event(&mouse("click", screen_point(&canvas, LaneId::Ws, arrived)))
        .unwrap();
    tick(100).await;
    assert!(detail().is_some(), "a click on the mark opens its detail");
    assert!(
        text_of(&host, "trace-ws").contains("first"),
        "{}",
        text_of(&host, "trace-ws")
    );
    let radio_row = text_of(&host, "trace-sse");
    assert!(radio_row.contains("+5 ms after the first"), "{radio_row}");
    let letters_row = text_of(&host, "trace-poll");
    assert!(
        letters_row.contains("+600 ms after the first"),
        "{letters_row}"
    );
    assert!(text_of(&host, "trace-longpoll").starts_with("not yet"));
    assert_eq!(
        canvas.get_attribute("data-traced").as_deref(),
        Some("poll sse ws")
    );

    let init = web_sys::KeyboardEventInit::new();
    init.set_key("Escape");
    web_sys::window()
        .unwrap()
        .dispatch_event(
            &web_sys::KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &init).unwrap(),
        )
        .unwrap();
    tick(50).await;
    assert!(detail().is_none(), "Esc closes the detail");

    // Zoomed in as far as it goes: a second, with labels that can be told apart.
    let zoom_in = host
        .query_selector("[data-testid='zoom-in']")
        .unwrap()
        .unwrap()
        .unchecked_into::<HtmlElement>();
    for _ in 0..20 {
        zoom_in.click();
    }
    tick(100).await;
    assert_eq!(text_of(&host, "timeline-window"), "1.0 s window");
    let axis = canvas.get_attribute("data-axis").unwrap_or_default();
    let labels: Vec<&str> = axis.split(" | ").collect();
    let mut distinct = labels.clone();
    distinct.dedup();
    assert!(
        labels.len() >= 3 && distinct.len() == labels.len(),
        "{axis}"
    );
}

/// The traffic panel names the pattern in effect and the timeline marks a change of it, whichever lane
/// brought the notice.
#[wasm_bindgen_test]
async fn a_traffic_change_is_marked_on_the_timeline_and_named_in_its_panel() {
    use switchboard_frontend::ui::traffic::TrafficPanel;
    use switchboard_shared::traffic::TrafficChange;
    use switchboard_shared::{Notice, NoticeLevel, Traffic};

    let dashboard = Dashboard::new();
    dashboard.store.update_value(|store| store.start_after(0));
    let host = mount(dashboard, || view! { <TrafficPanel/> <Timeline/> });
    let now = now_ms();
    let change = TrafficChange {
        pattern: Traffic::Quiet,
        previous: Traffic::Bursty,
        at_ms: now as u64 - 3_000,
    };
    let notice = Event {
        seq: 1,
        ts_ms: now as u64 - 3_000,
        body: EventBody::Notice(Notice {
            level: NoticeLevel::Info,
            code: "traffic_changed".into(),
            text: change.describe(),
            fault: None,
            network: None,
            traffic: Some(change),
        }),
    };
    let phone = open_line(&dashboard, LaneId::Ws, now - 5_000.0);
    let radio = open_line(&dashboard, LaneId::Sse, now - 5_000.0);
    for (lane, span) in [(LaneId::Ws, phone), (LaneId::Sse, radio)] {
        dashboard.report(
            lane,
            now - 2_990.0,
            Wire::EventReceived {
                span,
                event: notice.clone(),
                bytes_down: 300,
            },
        );
    }
    dashboard.refresh(now_ms());
    tick(150).await;
    let canvas: HtmlCanvasElement = host
        .query_selector("[data-testid='timeline-canvas']")
        .unwrap()
        .unwrap()
        .unchecked_into();
    assert_eq!(canvas.get_attribute("data-traffic").as_deref(), Some("1"));
    let quiet = host
        .query_selector("[data-testid='traffic-quiet']")
        .unwrap()
        .unwrap();
    assert_eq!(quiet.get_attribute("aria-pressed").as_deref(), Some("true"));
    assert!(
        text_of(&host, "traffic-explanation").contains("most letters come back with nothing new")
    );
}

/// The video call's panel: where the browser has WebTransport (headless Chromium, on a loopback page) it
/// offers a reliable stream or datagrams, and the choice reaches the lane's settings; events that come
/// after a hole (lost datagrams) leave the hole counted missed and marked on the timeline.
#[wasm_bindgen_test]
async fn the_video_call_panel_offers_datagrams_and_counts_and_marks_what_they_lose() {
    let dashboard = Dashboard::new();
    dashboard.store.update_value(|store| store.start_after(0));
    let host = mount(dashboard, || {
        view! {
            <Timeline/>
            <CompareTable/>
            <LanePanel lane=LaneId::WebTransport/>
        }
    });
    assert!(
        host.query_selector("[data-testid='webtransport-unsupported']")
            .unwrap()
            .is_none(),
        "Chromium has WebTransport"
    );
    let select: web_sys::HtmlSelectElement = host
        .query_selector("[data-testid='webtransport-setting']")
        .unwrap()
        .expect("the datagram choice")
        .unchecked_into();
    assert_eq!(select.value(), "stream");
    select.set_value("datagram");
    select
        .dispatch_event(&web_sys::Event::new("change").unwrap())
        .unwrap();
    tick(10).await;
    assert_eq!(
        dashboard.settings.letters.webtransport_mode.get_untracked(),
        switchboard_shared::WebTransportMode::Datagram
    );

    let span = open_line(&dashboard, LaneId::WebTransport, now_ms() - 500.0);
    for seq in [1, 2, 5, 6, 9] {
        dashboard.report(
            LaneId::WebTransport,
            now_ms() - 400.0 + seq as f64 * 20.0,
            Wire::EventReceived {
                span,
                event: chat(seq, "over a datagram"),
                bytes_down: 150,
            },
        );
    }
    dashboard.refresh(now_ms());
    tick(400).await;
    assert_eq!(text_of(&host, "webtransport-delivered"), "5");
    assert_eq!(text_of(&host, "webtransport-missed"), "4", "3, 4, 7 and 8");
    let canvas: HtmlCanvasElement = host
        .query_selector("[data-testid='timeline-canvas']")
        .unwrap()
        .unwrap()
        .unchecked_into();
    assert_eq!(
        canvas.get_attribute("data-missed").as_deref(),
        Some("2"),
        "two holes marked"
    );
    let holes: Vec<String> = dashboard.store.with_value(|store| {
        store
            .marks_between(0.0, f64::MAX)
            .filter_map(|mark| match mark.what {
                MarkKind::Missed { first, last } => Some(format!("{first}-{last}")),
                _ => None,
            })
            .collect()
    });
    assert_eq!(holes, ["3-4", "7-8"]);
}

#[wasm_bindgen_test]
async fn letters_a_proxy_cache_answered_are_counted_on_their_panel() {
    let dashboard = Dashboard::new();
    dashboard.store.update_value(|store| store.start_after(0));
    let host = mount(
        dashboard,
        || view! { <CompareTable/><LanePanel lane=LaneId::Poll/> },
    );
    letter(&dashboard, LaneId::Poll, vec![chat(1, "from the server")]);
    for answered in 0..2 {
        let span = dashboard
            .store
            .try_update_value(|store| store.new_span())
            .unwrap();
        dashboard.report(
            LaneId::Poll,
            now_ms(),
            Wire::RequestSent {
                span,
                label: "GET /api/poll?after=1".into(),
            },
        );
        dashboard.report(
            LaneId::Poll,
            now_ms() + 2.0 + f64::from(answered),
            Wire::ReplyReceived {
                span,
                bytes_up: 120,
                bytes_down: 250,
                cached: true,
                batch: Batch {
                    epoch: 1,
                    head: 1,
                    gap: None,
                    events: vec![],
                    instance: None,
                },
            },
        );
    }
    dashboard.refresh(now_ms());
    tick(20).await;
    // Three letters sent, two of them answered by the cache: the page paid for all three.
    assert_eq!(text_of(&host, "poll-requests"), "3");
    assert_eq!(text_of(&host, "poll-cache-hits"), "2");
}

/// The comparison table holds what each lane's figures are, stars the best of each row among the
/// lanes that ran, and the verdict under it names the measured figures of a scripted sequence.
#[wasm_bindgen_test]
async fn the_table_compares_the_lanes_and_the_verdict_names_the_figures() {
    use switchboard_frontend::figures::Score;
    let dashboard = Dashboard::new();
    dashboard.store.update_value(|store| store.start_after(0));
    let host = mount(dashboard, || {
        view! { <CompareTable/><LanePanel lane=LaneId::Poll/><LanePanel lane=LaneId::Ws/> }
    });
    let table = host
        .query_selector("table[data-testid='compare-table']")
        .unwrap()
        .expect("a real <table>");
    // Real headers: a column per lane, a row header per figure.
    let columns = table.query_selector_all("thead th[scope='col']").unwrap();
    assert_eq!(columns.length() as usize, LaneId::COUNT + 1);
    let rows = table.query_selector_all("tbody th[scope='row']").unwrap();
    assert_eq!(rows.length(), 12);

    // Letters: four asked, three of them came back empty, the news 500 ms late. The phone call: the
    // same event 3 ms late, on one line.
    let late = |seq: u64, ms: f64| Event {
        ts_ms: (now_ms() - ms) as u64,
        ..chat(seq, "news")
    };
    for _ in 0..3 {
        letter(&dashboard, LaneId::Poll, vec![]);
    }
    letter(&dashboard, LaneId::Poll, vec![late(1, 500.0)]);
    let line = open_line(&dashboard, LaneId::Ws, now_ms());
    // Sent and received on one reading of the clock: read twice, a millisecond that ticked between the
    // two readings made the delay 2 ms or 4.
    let received_ms = now_ms();
    dashboard.report(
        LaneId::Ws,
        received_ms,
        Wire::EventReceived {
            span: line,
            event: Event {
                ts_ms: (received_ms - 3.0) as u64,
                ..chat(1, "news")
            },
            bytes_down: 90,
        },
    );
    dashboard.refresh(now_ms());
    tick(50).await;

    // Each cell holds the lane's own figure, and the table's bytes are the panel's ↓ plus ↑.
    let scores = dashboard
        .store
        .with_value(|store| LaneId::ALL.map(|lane| Score::of(store, lane, now_ms())));
    for lane in [LaneId::Poll, LaneId::Ws] {
        let score = &scores[lane.index()];
        for (key, expected) in [
            ("delivered", score.delivered.to_string()),
            ("requests", score.requests.to_string()),
            ("empty", score.empty.to_string()),
            ("missed", score.missed.to_string()),
        ] {
            assert_eq!(
                text_of(&host, &format!("{lane}-{key}")),
                expected,
                "{lane} {key}"
            );
        }
        let bytes = |testid: &str| -> f64 {
            let element = host
                .query_selector(&format!("[data-testid='{lane}-{testid}']"))
                .unwrap()
                .unwrap();
            let title = element.get_attribute("title").unwrap();
            title
                .trim_end_matches(" bytes")
                .replace(',', "")
                .parse()
                .unwrap()
        };
        assert_eq!(
            bytes("bytes-down") + bytes("bytes-up"),
            score.bytes_total() as f64,
            "{lane}: the table's total is the panel's two directions"
        );
        assert_eq!(
            text_of(&host, &format!("{lane}-bytes-total")),
            switchboard_frontend::format::format_bytes(score.bytes_total() as f64)
        );
    }
    assert_eq!(text_of(&host, "poll-requests"), "4");
    assert_eq!(text_of(&host, "poll-empty"), "3");
    // The best of a row is starred: the phone call is fresher and sent fewer requests; both delivered
    // one event, so that row stars nobody.
    let best = |row: &str| -> Vec<String> {
        let cells = table
            .query_selector_all(&format!("tr[data-row='{row}'] td.best"))
            .unwrap();
        (0..cells.length())
            .map(|i| {
                let cell: web_sys::Element = cells.item(i).unwrap().unchecked_into();
                cell.class_name()
            })
            .collect()
    };
    assert_eq!(best("delay-p50"), vec!["lane-ws best".to_owned()]);
    assert_eq!(best("requests"), vec!["lane-ws best".to_owned()]);
    assert!(best("delivered").is_empty(), "{:?}", best("delivered"));
    assert!(best("empty").iter().all(|class| class.contains("lane-ws")));

    let verdict = text_of(&host, "verdict");
    assert!(
        verdict.contains("the phone call delivered news")
            && verdict.contains("fresher than letters (p50 3 ms vs 50"),
        "{verdict}"
    );
    assert!(
        verdict.contains("75 % of letters came back empty (3 of 4)."),
        "{verdict}"
    );
    assert!(verdict.contains("No lane missed an event."), "{verdict}");

    // The server declares seq 2 lost to the letters: the verdict says so, and the star for "missed" goes
    // to the phone call.
    let span = dashboard
        .store
        .try_update_value(|store| store.new_span())
        .unwrap();
    dashboard.report(
        LaneId::Poll,
        now_ms(),
        Wire::GapNotice {
            span,
            gap: switchboard_shared::Gap { first: 2, last: 2 },
            bytes_down: 10,
        },
    );
    dashboard.refresh(now_ms());
    tick(50).await;
    let verdict = text_of(&host, "verdict");
    assert!(
        verdict.contains("Letters missed 1 (1 for good)."),
        "{verdict}"
    );
    assert_eq!(best("lost"), vec!["lane-ws best".to_owned()]);
}

/// 503s on every lane answer the letters and leave the open lines alone: the timeline shades the two
/// letters rows whole and gives the lines only a strip (a new dial would be refused); no heartbeats
/// shades the four lines and not the letters.
#[wasm_bindgen_test]
async fn a_fault_shades_only_what_it_acts_on() {
    use switchboard_shared::{Fault, FaultKind, FaultTarget, Notice, NoticeLevel};
    let dashboard = Dashboard::new();
    let host = mount(dashboard, || view! { <Timeline/> });
    let now = now_ms();
    let announce = |id: u64, kind: FaultKind, at: f64| {
        dashboard.report(
            LaneId::Ws,
            at,
            Wire::EventReceived {
                span: 0,
                event: Event {
                    seq: id,
                    ts_ms: at as u64,
                    body: EventBody::Notice(Notice {
                        level: NoticeLevel::Warning,
                        code: format!("fault_{kind}"),
                        text: "fault injected".into(),
                        fault: Some(Fault {
                            id,
                            kind,
                            lane: FaultTarget::ALL,
                            started_ms: at as u64,
                            until_ms: at as u64 + 2_000,
                            delay_ms: None,
                        }),
                        network: None,
                        traffic: None,
                    }),
                },
                bytes_down: 300,
            },
        );
    };
    let canvas = || {
        host.query_selector("[data-testid='timeline-canvas']")
            .unwrap()
            .unwrap()
    };
    announce(1, FaultKind::Error, now - 6_000.0);
    dashboard.refresh(now_ms());
    tick(100).await;
    assert_eq!(
        canvas().get_attribute("data-fault-rows").as_deref(),
        Some("2"),
        "503s shade the letters and the held letters only"
    );
    announce(2, FaultKind::NoHeartbeat, now - 3_000.0);
    dashboard.refresh(now_ms());
    tick(100).await;
    assert_eq!(
        canvas().get_attribute("data-fault-rows").as_deref(),
        Some("6"),
        "then no heartbeats on the four lines"
    );
}

/// A custom path is no preset: the menu reads "custom path" while one is on, so choosing "This
/// machine" is a change the menu can make.
#[wasm_bindgen_test]
async fn the_network_menu_says_custom_while_a_custom_path_is_on() {
    use switchboard_frontend::ui::network::NetworkPanel;
    use switchboard_shared::FaultTarget;
    use switchboard_shared::network::{Condition, LaneConditions, NetworkChange};
    let dashboard = Dashboard::new();
    let host = mount(dashboard, || view! { <NetworkPanel/> });
    let custom = Condition {
        name: "custom".into(),
        rtt_ms: 1_000,
        jitter_ms: 0,
        down_kbps: 0,
        up_kbps: 0,
        loss_pct: 10.0,
    };
    let mut lanes = LaneConditions::default();
    for lane in LaneId::ALL {
        lanes[lane] = Some(custom.clone());
    }
    let change = NetworkChange {
        lane: FaultTarget::ALL,
        condition: Some(custom),
        at_ms: now_ms() as u64,
        lanes,
    };
    dashboard.touch(|store| store.network_change(&change, now_ms()));
    dashboard.refresh(now_ms());
    tick(50).await;
    let menu: web_sys::HtmlSelectElement = host
        .query_selector("[data-testid='network-preset']")
        .unwrap()
        .unwrap()
        .unchecked_into();
    assert_eq!(menu.value(), "custom");
    let shown = host
        .query_selector("[data-testid='network-preset'] option[value='custom']")
        .unwrap()
        .unwrap()
        .text_content()
        .unwrap();
    assert_eq!(shown, "custom path");
}

/// A network notice for every lane, as the server sends it on the stream, taking effect at `at_ms`.
fn network_notice(seq: u64, at_ms: f64, name: &str) -> Event {
    use switchboard_shared::network::{LaneConditions, NetworkChange, preset};
    use switchboard_shared::{FaultTarget, Notice, NoticeLevel};
    let condition = preset(name);
    let mut lanes = LaneConditions::default();
    for lane in LaneId::ALL {
        lanes[lane] = condition.clone();
    }
    let change = NetworkChange {
        lane: FaultTarget::ALL,
        condition,
        at_ms: at_ms as u64,
        lanes,
    };
    Event {
        seq,
        ts_ms: at_ms as u64,
        body: EventBody::Notice(Notice {
            level: NoticeLevel::Info,
            code: "network_changed".into(),
            text: change.describe(),
            fault: None,
            network: Some(Box::new(change)),
            traffic: None,
        }),
    }
}

/// Two minutes on 3g, then a lossy line: the table and the verdict describe the lossy period only, say
/// so, and the 3g period is one click away, figure by figure beside the current one.
#[wasm_bindgen_test]
async fn a_network_change_starts_a_period_and_the_one_before_is_one_click_away() {
    let now = now_ms();
    let dashboard = Dashboard::new();
    // The page opened two and a half minutes ago.
    dashboard.store.update_value(|store| {
        *store = switchboard_frontend::store::Store::started_at(now - 150_000.0);
        store.start_after(0);
    });
    let host = mount(dashboard, || view! { <CompareTable/> });
    let line = open_line(&dashboard, LaneId::Ws, now - 131_000.0);
    // Every event on the phone call `delay` ms after the server stamped it, one a second.
    let events = |from_seq: u64, from_ms: f64, count: u64, delay: f64| {
        for i in 0..count {
            let at = from_ms + i as f64 * 1_000.0;
            dashboard.report(
                LaneId::Ws,
                at,
                Wire::EventReceived {
                    span: line,
                    event: Event {
                        ts_ms: (at - delay) as u64,
                        ..chat(from_seq + i, "news")
                    },
                    bytes_down: 90,
                },
            );
        }
    };
    let notice = |seq: u64, at: f64, name: &str| {
        dashboard.report(
            LaneId::Ws,
            at,
            Wire::EventReceived {
                span: line,
                event: network_notice(seq, at, name),
                bytes_down: 300,
            },
        );
    };
    notice(1, now - 130_000.0, "3g");
    events(2, now - 129_000.0, 110, 900.0);
    notice(112, now - 12_000.0, "lossy");
    events(113, now - 11_000.0, 10, 40.0);
    dashboard.refresh(now_ms());
    tick(50).await;

    let period = text_of(&host, "scores-since");
    assert!(
        period.starts_with("These figures: on lossy, for the last 12")
            && period.contains("since a network change"),
        "{period}"
    );
    // Only the lossy period is counted: its worst delay, not 3g's.
    assert_eq!(text_of(&host, "ws-delivered"), "11");
    assert_eq!(text_of(&host, "ws-delay-max"), "40");
    let verdict = text_of(&host, "verdict");
    assert!(
        verdict.starts_with("On lossy, for the last 12"),
        "{verdict}"
    );
    assert!(
        host.query_selector("[data-testid='ws-delay-max-before']")
            .unwrap()
            .is_none(),
        "the period before shows only when asked"
    );

    let before: HtmlElement = host
        .query_selector("[data-testid='compare-before']")
        .unwrap()
        .expect("the 3g period is one click away")
        .unchecked_into();
    let label = before.text_content().unwrap();
    assert!(label.starts_with("Before: on 3g, 1 min 58 s"), "{label}");
    before.click();
    tick(50).await;
    assert_eq!(
        before.get_attribute("aria-pressed").as_deref(),
        Some("true")
    );
    assert_eq!(text_of(&host, "ws-delay-max-before"), "before: 900");
    assert_eq!(text_of(&host, "ws-delivered-before"), "before: 111");
    let said_before = text_of(&host, "verdict-before");
    assert!(
        said_before.starts_with("Before — On 3g, for the last 1 min 58 s"),
        "{said_before}"
    );
}

fn key(target: &web_sys::EventTarget, key: &str) {
    let init = web_sys::KeyboardEventInit::new();
    init.set_key(key);
    init.set_bubbles(true);
    init.set_cancelable(true);
    target
        .dispatch_event(
            &web_sys::KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &init).unwrap(),
        )
        .unwrap();
}

/// The timeline is reachable by keyboard: it takes focus, the arrow keys step from mark to mark and
/// across lanes (said aloud through a live region), Enter opens the detail with the mark explained in
/// words, Esc closes it.
#[wasm_bindgen_test]
async fn the_keyboard_walks_the_timeline_and_the_detail_explains_a_mark() {
    let dashboard = Dashboard::new();
    dashboard.store.update_value(|store| store.start_after(0));
    let host = mount(dashboard, || view! { <Timeline/> });
    let now = now_ms();
    // An empty letter 6 s ago; a phone call with two heartbeats 2 s apart and an event.
    let letter_span = dashboard
        .store
        .try_update_value(|store| store.new_span())
        .unwrap();
    dashboard.report(
        LaneId::Poll,
        now - 6_000.0,
        Wire::RequestSent {
            span: letter_span,
            label: "GET /api/poll?after=0".into(),
        },
    );
    dashboard.report(
        LaneId::Poll,
        now - 5_996.0,
        Wire::ReplyReceived {
            span: letter_span,
            bytes_up: 120,
            bytes_down: 138,
            cached: false,
            batch: Batch {
                epoch: 1,
                head: 0,
                gap: None,
                events: vec![],
                instance: None,
            },
        },
    );
    let line = open_line(&dashboard, LaneId::Ws, now - 9_000.0);
    for at in [now - 7_000.0, now - 5_000.0] {
        dashboard.report(
            LaneId::Ws,
            at,
            Wire::Heartbeat {
                span: line,
                heartbeat: Heartbeat {
                    server_ms: at as u64,
                    head: 0,
                },
                bytes_down: 20,
            },
        );
    }
    dashboard.report(
        LaneId::Ws,
        now - 3_000.0,
        Wire::EventReceived {
            span: line,
            event: Event {
                ts_ms: (now - 3_004.0) as u64,
                ..chat(1, "hello")
            },
            bytes_down: 90,
        },
    );
    tick(100).await;
    let canvas: HtmlElement = host
        .query_selector("[data-testid='timeline-canvas']")
        .unwrap()
        .unwrap()
        .unchecked_into();
    assert_eq!(canvas.tab_index(), 0, "the timeline takes focus");
    assert!(
        canvas
            .get_attribute("aria-label")
            .unwrap()
            .contains("Arrow keys")
    );
    canvas.focus().unwrap();
    let document = web_sys::window().unwrap().document().unwrap();
    assert_eq!(
        document
            .active_element()
            .map(|element| element.get_attribute("data-testid")),
        Some(Some("timeline-canvas".to_owned()))
    );
    let detail = || {
        host.query_selector("[data-testid='timeline-detail']")
            .unwrap()
    };

    // The first arrow lands on the top lane's newest stop: the empty letter.
    key(&canvas, "ArrowRight");
    tick(50).await;
    let said = text_of(&host, "timeline-said");
    assert_eq!(
        said,
        "Letters: This letter came back empty: 258 B on the wire for nothing."
    );
    assert!(detail().is_none(), "moving the selection opens nothing");
    // Down skips the lanes with nothing in view to the phone call's stop nearest in time: the heartbeat
    // at -5 s.
    key(&canvas, "ArrowDown");
    tick(50).await;
    let said = text_of(&host, "timeline-said");
    assert!(
        said.starts_with(
            "Phone call: Heartbeat: the server's proof the line is alive, every 2.0 s."
        ),
        "{said}"
    );
    // Right: the event; Enter opens its detail, explained in words first.
    key(&canvas, "ArrowRight");
    tick(50).await;
    key(&canvas, "Enter");
    tick(50).await;
    assert!(detail().is_some(), "Enter opens the detail");
    let words = text_of(&host, "detail-words");
    assert!(
        words
            .starts_with("Event #1 (chat) reached the phone call 4 ms after the server stamped it"),
        "{words}"
    );
    // Left twice: the first heartbeat, and the detail follows the selection.
    key(&canvas, "ArrowLeft");
    key(&canvas, "ArrowLeft");
    tick(50).await;
    let words = text_of(&host, "detail-words");
    assert!(
        words.starts_with("Heartbeat: the server's proof the line is alive"),
        "{words}"
    );
    // Keyboard steps paused the live view, so the selection does not scroll away.
    assert!(
        text_of(&host, "timeline-follow").contains("back to live"),
        "{}",
        text_of(&host, "timeline-follow")
    );
    key(&web_sys::window().unwrap(), "Escape");
    tick(50).await;
    assert!(detail().is_none(), "Esc closes the detail");
    // Back to live: the caption lets go of the old selection's words.
    let follow: HtmlElement = host
        .query_selector("[data-testid='timeline-follow']")
        .unwrap()
        .unwrap()
        .unchecked_into();
    follow.click();
    tick(50).await;
    let said = text_of(&host, "timeline-said");
    assert!(said.starts_with("Tab to the timeline"), "{said}");
}

/// Puts `text` in the panel's file input as a file named `name`, as a person picking it would.
fn pick_file(host: &HtmlElement, name: &str, text: &str) {
    let input: HtmlInputElement = host
        .query_selector("[data-testid='open-har']")
        .unwrap()
        .unwrap()
        .unchecked_into();
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(text));
    let file = web_sys::File::new_with_str_sequence(&parts, name).unwrap();
    let transfer = web_sys::DataTransfer::new().unwrap();
    transfer.items().add_with_file(&file).unwrap();
    input.set_files(transfer.files().as_ref());
    input
        .dispatch_event(&web_sys::Event::new("change").unwrap())
        .unwrap();
}

/// Waits until the HAR panel's status line says something new, other than "reading…".
async fn har_status(host: &HtmlElement, before: &str) -> String {
    for _ in 0..400 {
        let status = text_of(host, "har-status");
        if !status.is_empty() && !status.starts_with("reading") && status != before {
            return status;
        }
        tick(25).await;
    }
    panic!("the HAR was not read: {}", text_of(host, "har-status"));
}

/// A HAR in Chrome's shape opens as four swimlanes — letters, held letters, a radio and a phone call —
/// with the figures the file tells and a verdict each; a broken file and a JSON that is no HAR each get
/// a clear message and leave the page whole.
#[wasm_bindgen_test]
async fn a_har_opens_as_swimlanes_with_figures_and_a_bad_file_is_refused_plainly() {
    use switchboard_frontend::ui::har::HarPanel;
    let dashboard = Dashboard::new();
    let host = mount(dashboard, || view! { <HarPanel/> });
    pick_file(
        &host,
        "app.har",
        include_str!("../../shared/tests/fixtures/chrome-app.har"),
    );
    let status = har_status(&host, "").await;
    assert!(
        status.starts_with("app.har: 18 entries, 4 channels found; 2 other requests"),
        "{status}"
    );
    let panels = host
        .query_selector_all("[data-testid='imported-channel']")
        .unwrap();
    let mut seen = Vec::new();
    for i in 0..panels.length() {
        let panel: web_sys::Element = panels.item(i).unwrap().unchecked_into();
        let figure = |testid: &str| {
            panel
                .query_selector(&format!("[data-testid='{testid}']"))
                .unwrap()
                .unwrap()
                .text_content()
                .unwrap()
        };
        seen.push((
            panel.get_attribute("data-kind").unwrap(),
            figure("imported-requests"),
            figure("imported-empty"),
            figure("imported-frames"),
        ));
        // Every channel is drawn: its swimlane has marks.
        let marks = panel.query_selector_all(".swimlane rect").unwrap().length();
        assert!(marks > 0, "{:?} has nothing drawn", seen.last());
        assert!(!figure("imported-verdict").is_empty());
    }
    let expected: Vec<(String, String, String, String)> = [
        ("letters", "10", "6", "0"),
        ("held", "4", "3", "0"),
        ("radio", "1", "0", "3"),
        ("phone", "1", "0", "10"),
    ]
    .iter()
    .map(|&(a, b, c, d)| (a.into(), b.into(), c.into(), d.into()))
    .collect();
    assert_eq!(seen, expected);
    let verdicts = host.text_content().unwrap();
    assert!(
        verdicts.contains(
            "This polling loop (GET /api/poll, every 1.0 s) sent 10 requests, 60 % empty"
        ),
        "{verdicts}"
    );

    // Dropped on the panel, a file opens the same way.
    let panel = host.query_selector(".har").unwrap().unwrap();
    let dropped = web_sys::DataTransfer::new().unwrap();
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(include_str!(
        "../../shared/tests/fixtures/firefox-app.har"
    )));
    dropped
        .items()
        .add_with_file(&web_sys::File::new_with_str_sequence(&parts, "firefox.har").unwrap())
        .unwrap();
    let init = web_sys::DragEventInit::new();
    init.set_bubbles(true);
    init.set_cancelable(true);
    init.set_data_transfer(Some(&dropped));
    panel
        .dispatch_event(&web_sys::DragEvent::new_with_event_init_dict("drop", &init).unwrap())
        .unwrap();
    let status = har_status(&host, &status).await;
    assert!(
        status.starts_with("firefox.har: 18 entries, 4 channels found"),
        "{status}"
    );

    pick_file(&host, "notes.txt", "{ this is not json");
    let status = har_status(&host, &status).await;
    assert!(
        status.starts_with("notes.txt: This file is not JSON"),
        "the refusal names its file: {status}"
    );
    let refused = host
        .query_selector("[data-testid='har-status'].refused")
        .unwrap();
    assert!(refused.is_some(), "the message reads as a refusal");
    pick_file(
        &host,
        "other.json",
        r#"{"name": "package", "version": "1.0.0"}"#,
    );
    let status = har_status(&host, &status).await;
    assert!(
        status.contains("not a HAR (it has no log.entries)") && status.contains("Save all as HAR"),
        "{status}"
    );
    // The previous file's channels are gone: under this refusal they would read as this file's.
    assert_eq!(
        host.query_selector_all("[data-testid='imported-channel']")
            .unwrap()
            .length(),
        0
    );
}

/// A big HAR is read in batches: the page keeps turning (a timer fires between batches) and the status
/// counts the entries as they are read.
#[wasm_bindgen_test]
async fn a_big_har_is_read_without_freezing_the_page() {
    use switchboard_frontend::ui::har::HarPanel;
    let dashboard = Dashboard::new();
    let host = mount(dashboard, || view! { <HarPanel/> });
    // 6,000 polls with 1 KB bodies: about 8 MB.
    let body = "x".repeat(1000);
    let entries: Vec<String> = (0..6_000u64)
        .map(|i| {
            format!(
                r#"{{"startedDateTime": "{}", "time": 10, "request": {{"method": "GET", "url": "https://a.test/poll?i={i}", "headersSize": 200, "bodySize": 0}}, "response": {{"status": 200, "headersSize": 100, "bodySize": 1000, "content": {{"size": 1000, "mimeType": "text/plain", "text": "{body}{}"}}}}, "timings": {{"wait": 9}}}}"#,
                switchboard_frontend::har::model::format_date_time(1_795_881_845_000.0 + i as f64 * 500.0),
                i
            )
        })
        .collect();
    let text = format!(r#"{{"log": {{"entries": [{}]}}}}"#, entries.join(","));
    let ticks = std::rc::Rc::new(std::cell::Cell::new(0u32));
    let counted = ticks.clone();
    let timer = gloo_timers::callback::Interval::new(20, move || counted.set(counted.get() + 1));
    let statuses = std::rc::Rc::new(std::cell::RefCell::new(Vec::<String>::new()));
    pick_file(&host, "big.har", &text);
    let ticks_at_start = ticks.get();
    let status = loop {
        let status = text_of(&host, "har-status");
        if statuses.borrow().last() != Some(&status) {
            statuses.borrow_mut().push(status.clone());
        }
        if status.starts_with("big.har") {
            break status;
        }
        tick(5).await;
    };
    drop(timer);
    assert!(
        status.starts_with("big.har: 6,000 entries, 1 channel found"),
        "{status}"
    );
    let progress: Vec<String> = statuses
        .borrow()
        .iter()
        .filter(|status| status.starts_with("reading entries"))
        .cloned()
        .collect();
    assert!(
        progress.len() >= 3,
        "progress was shown: {:?}",
        statuses.borrow()
    );
    assert!(
        ticks.get() - ticks_at_start >= 3,
        "the page's timers ran while the file was read ({} ticks)",
        ticks.get() - ticks_at_start
    );
}

/// The "Your app" view of a proxied Socket.IO app: a row per channel with its live figures, the
/// findings in words, the channels offered to the lab by name (never by id), the swimlanes of its
/// recent traffic, and a refusal in the server's words.
#[wasm_bindgen_test]
async fn your_app_shows_its_channels_findings_and_the_lab_aimed_at_them() {
    use switchboard_frontend::ui::app_view::AppView;
    use switchboard_shared::app::{AppChannel, AppReport, Finding};
    use switchboard_shared::har::ChannelKind;

    let channel = |id: &str, kind: ChannelKind, name: &str, path: &str| AppChannel {
        id: id.into(),
        kind,
        method: "GET".into(),
        path: path.into(),
        name: name.into(),
        requests: 4,
        empty_answers: 1,
        bytes_up: 1_200,
        bytes_down: 3_400,
        messages: 17,
        open: 1,
        dead: 0,
        got: Default::default(),
        reconnects: 2,
        clients: 1,
        uploads: 0,
        upload_bytes: 0,
        heartbeat_ms: (kind == ChannelKind::Phone).then_some(25_000.0),
        longest_silence_ms: Some(25_100.0),
        cut_by_fault: 1,
        cut_by_idle_timeout: 3,
        verdict: String::new(),
    };
    let report = AppReport {
        upstream: "http://127.0.0.1:8080".into(),
        proxy_url: "http://127.0.0.1:4000/".into(),
        upstream_up: Some(true),
        upstream_error: None,
        channels: vec![
            channel("0a0b0c0d", ChannelKind::Held, "GET /socket.io/", "/socket.io/"),
            channel("1a1b1c1d", ChannelKind::Phone, "ws://127.0.0.1:4000/socket.io/", "/socket.io/"),
        ],
        findings: vec![Finding {
            channel: Some("1a1b1c1d".into()),
            text: "Your phone call (/socket.io/) heartbeats every 25.0 s. A proxy with a 15.0 s idle timeout would hang up on it between heartbeats.".into(),
            at_ms: None,
        }],
        experiments: Vec::new(),
        faults: Vec::new(),
        networks: Vec::new(),
        history: Vec::new(),
        cuts: Vec::new(),
        network_history: Vec::new(),
        recorded: 42,
        dropped: 0,
        other_requests: 3,
    };
    let har = switchboard_shared::har::Har::parse(include_str!(
        "../../shared/tests/fixtures/chrome-app.har"
    ))
    .unwrap();
    let imported = switchboard_shared::har::classify(&har);
    // A half-open on every channel, a few seconds into the recording: shaded on each swimlane.
    let mut report = report;
    // It held 27 of the phone call's messages back, and left a held letter's connection dead.
    report.channels[1].got = switchboard_shared::app::Got {
        sent: 75,
        delivered: 48,
        withheld: 27,
        ..Default::default()
    };
    (report.channels[0].open, report.channels[0].dead) = (2, 1);
    report.history.push(switchboard_shared::app::AppFaultSpan {
        kind: switchboard_shared::app::AppFaultKind::HalfOpen,
        channel: "all".into(),
        started_ms: imported.channels[0].start_ms + 2_000.0,
        ended_ms: Some(imported.channels[0].start_ms + 7_000.0),
    });
    // 3g on every channel for a while, and one connection of the first channel hung up on.
    report
        .network_history
        .push(switchboard_shared::app::AppNetworkSpan {
            channel: "all".into(),
            name: "3g".into(),
            started_ms: imported.channels[0].start_ms + 1_000.0,
            ended_ms: Some(imported.channels[0].start_ms + 4_000.0),
        });
    report.cuts.push(switchboard_shared::app::AppCut {
        channel: switchboard_shared::app::channel_id(&imported.channels[0].name),
        at_ms: imported.channels[0].start_ms + 3_000.0,
        by: switchboard_shared::app::CutCause::IdleTimeout,
    });
    // Two experiments, newest first: a half-open observing after its end, and a drop it cut short.
    {
        use switchboard_shared::app::experiment::{
            Experiment, ExperimentKind, ExperimentState, Settings,
        };
        let now = now_ms();
        let said = |text: &str, at_ms: f64| Finding {
            channel: Some("1a1b1c1d".into()),
            text: text.into(),
            at_ms: Some(at_ms),
        };
        let experiment = |id, kind, state, findings| Experiment {
            id,
            kind: ExperimentKind::Fault(kind),
            settings: Settings {
                duration_ms: (kind == AppFaultKind::HalfOpen).then_some(30_000),
                ..Settings::default()
            },
            title: ExperimentKind::Fault(kind).titled(
                &Settings {
                    duration_ms: (kind == AppFaultKind::HalfOpen).then_some(30_000),
                    ..Settings::default()
                },
                "every channel",
            ),
            channels: vec!["all".into()],
            started_ms: now - 40_000.0,
            ended_ms: Some(now - 10_000.0),
            // The first closed early, when the second began.
            window_closes_ms: Some(if id == 1 {
                now - 5_000.0
            } else {
                now + 20_000.0
            }),
            state,
            superseded_by: (id == 1).then_some(2),
            findings,
            figures: Default::default(),
        };
        use switchboard_shared::app::AppFaultKind;
        report.experiments = vec![
            experiment(
                2,
                AppFaultKind::HalfOpen,
                ExperimentState::Observing,
                vec![said(
                    "During the 30.0 s half-open, your phone call (/socket.io/) noticed after 7.0 s: it gave up on a line that was open when the fault began.",
                    now - 33_000.0,
                )],
            ),
            experiment(1, AppFaultKind::Drop, ExperimentState::Done, Vec::new()),
        ];
        report.channels[1].got.last_delivered_ms = Some(now - 12_000.0);
    }
    let report = RwSignal::new(Some(report));
    let traffic = RwSignal::new(Some(imported));
    let host = mount(
        Dashboard::new(),
        move || view! { <AppView report=report traffic=traffic/> },
    );
    tick(20).await;

    let rows = host
        .query_selector_all("[data-testid='app-channel']")
        .unwrap();
    assert_eq!(rows.length(), 2);
    let phone: HtmlElement = host
        .query_selector("[data-testid='app-channel'][data-kind='phone']")
        .unwrap()
        .unwrap()
        .unchecked_into();
    let cell = |testid: &str| {
        phone
            .query_selector(&format!("[data-testid='{testid}']"))
            .unwrap()
            .unwrap()
            .text_content()
            .unwrap()
    };
    assert_eq!(cell("app-heartbeat"), "every 25.0 s");
    assert_eq!(cell("app-got"), "48 of 75 (27 withheld)");
    assert!(
        text_of(&host, "app-view").contains("2 (1 dead)"),
        "the dead connection counted in its row"
    );
    assert_eq!(
        text_of(&host, "app-fault-release"),
        "Release 1 dead connection"
    );
    let har: HtmlElement = host
        .query_selector("[data-testid='app-har']")
        .unwrap()
        .expect("the app's HAR offered in its own view")
        .unchecked_into();
    assert_eq!(har.get_attribute("href").as_deref(), Some("/api/app/har"));
    assert_eq!(cell("app-cuts"), "1 / 3");
    assert_eq!(cell("app-reconnects"), "2");
    assert!(text_of(&host, "app-findings").contains("would hang up on it between heartbeats"));

    // Each experiment under its own heading, newest first, with its state and its findings' times.
    let experiments = host
        .query_selector_all("[data-testid='app-experiment']")
        .unwrap();
    assert_eq!(experiments.length(), 2);
    let first: HtmlElement = experiments.item(0).unwrap().unchecked_into();
    let heading = first
        .query_selector("h4")
        .unwrap()
        .unwrap()
        .text_content()
        .unwrap();
    assert!(
        heading.starts_with("#2 Half-open on every channel for 30.0 s · ")
            && heading.contains(" · observing ")
            && heading.ends_with(" s more"),
        "{heading}"
    );
    assert_eq!(
        first.get_attribute("data-state").as_deref(),
        Some("observing")
    );
    let finding = first
        .query_selector("li")
        .unwrap()
        .unwrap()
        .text_content()
        .unwrap();
    let clock = |text: &str| {
        let time = text.split(' ').next().unwrap_or_default().to_owned();
        time.len() == 8 && time.chars().filter(|c| *c == ':').count() == 2
    };
    assert!(
        clock(&finding) && finding.contains("noticed after 7.0 s"),
        "{finding}"
    );
    let second = experiments.item(1).unwrap().text_content().unwrap();
    assert!(
        second.contains("#1 Drop on every channel")
            && second.contains("done (the next experiment, #2, began)")
            && second.contains("Nothing happened."),
        "{second}"
    );
    assert!(clock(&cell("app-last-got")), "{}", cell("app-last-got"));
    assert!(text_of(&host, "app-view").contains("Start over"));

    // The lab names channels as a person reads them.
    let options = text_of(&host, "app-channel-select");
    assert!(options.contains("Held letters (/socket.io/)"), "{options}");
    assert!(options.contains("Phone call (/socket.io/)"), "{options}");
    assert!(
        !options.contains("1a1b1c1d"),
        "an internal id shown: {options}"
    );

    // The recent traffic drawn as the HAR import draws it.
    assert_eq!(
        host.query_selector_all("[data-testid='imported-channel']")
            .unwrap()
            .length(),
        4
    );

    assert_eq!(
        host.query_selector_all(".app-view .swimlane .fault-span")
            .unwrap()
            .length(),
        4,
        "the fault shaded on every swimlane it hit"
    );
    assert_eq!(
        host.query_selector_all(".app-view .swimlane .network-tint")
            .unwrap()
            .length(),
        4,
        "the network tints every swimlane it was on"
    );
    let cuts = host.query_selector_all(".app-view .swimlane .cut").unwrap();
    assert_eq!(
        cuts.length(),
        1,
        "the cut is marked on its own channel only"
    );
    assert_eq!(
        cuts.item(0).unwrap().text_content().as_deref(),
        Some("hung up on by the idle timeout")
    );

    // No proxy behind the test runner: the refusal is said, in the server's words or the network's.
    let half_open: HtmlElement = host
        .query_selector("[data-testid='app-fault-half_open']")
        .unwrap()
        .unwrap()
        .unchecked_into();
    half_open.click();
    for _ in 0..50 {
        if !text_of(&host, "app-said").is_empty() {
            break;
        }
        tick(20).await;
    }
    let said = text_of(&host, "app-said");
    assert!(
        said.starts_with("refused")
            || said.starts_with("no answer")
            || said.starts_with("unreadable"),
        "{said}"
    );

    // A field a person is typing in is not rebuilt under them when the next report comes.
    let rtt: web_sys::HtmlInputElement = host
        .query_selector("[data-testid='app-network-rtt']")
        .unwrap()
        .expect("the custom path's round trip")
        .unchecked_into();
    rtt.set_value("1500");
    report.update(|r| {
        if let Some(r) = r.as_mut() {
            r.recorded += 1;
            r.channels[1].got.delivered += 1;
        }
    });
    tick(20).await;
    let again: web_sys::HtmlInputElement = host
        .query_selector("[data-testid='app-network-rtt']")
        .unwrap()
        .unwrap()
        .unchecked_into();
    assert!(again.is_same_node(Some(&rtt)), "the field was rebuilt");
    assert_eq!(again.value(), "1500");
    assert!(text_of(&host, "app-view").contains("43 exchanges so far"));

    // The custom path checks its figures before it asks, and says which one is wrong.
    let jitter: web_sys::HtmlInputElement = host
        .query_selector("[data-testid='app-network-jitter']")
        .unwrap()
        .expect("the custom path's fields")
        .unchecked_into();
    jitter.set_value("900");
    jitter
        .dispatch_event(&web_sys::Event::new("change").unwrap())
        .unwrap();
    let apply: HtmlElement = host
        .query_selector("[data-testid='app-network-apply']")
        .unwrap()
        .unwrap()
        .unchecked_into();
    apply.click();
    tick(20).await;
    assert_eq!(
        text_of(&host, "app-said"),
        "jitter_ms must not be above rtt_ms (300)"
    );
}

/// A heartbeat the lab swallowed is drawn where it would have come, apart from those that came: the
/// recording's `_swallowed` reaches the swimlane.
#[wasm_bindgen_test]
async fn a_swallowed_heartbeat_is_drawn_apart_on_its_swimlane() {
    use switchboard_frontend::ui::har::HarPanel;
    let dashboard = Dashboard::new();
    let host = mount(dashboard, || view! { <HarPanel/> });
    let message = |time: f64, kind: &str, data: &str, swallowed: bool| serde_json::json!({"type": kind, "time": time, "opcode": 1, "data": data, "_swallowed": swallowed});
    let mut messages = Vec::new();
    for n in 0..6 {
        let at = 1_796_000_000.0 + 2.0 * f64::from(n);
        // The fourth ping was kept from the browser, so no pong answered it.
        messages.push(message(at, "receive", "2", n == 3));
        if n != 3 {
            messages.push(message(at + 0.002, "send", "3", false));
        }
        messages.push(message(
            at + 0.5,
            "receive",
            &format!("42[\"chat\",\"{n}\"]"),
            false,
        ));
    }
    let har = serde_json::json!({"log": {"version": "1.2", "creator": {"name": "test", "version": "1"}, "entries": [{
        "startedDateTime": "2026-11-30T00:53:19.900Z",
        "time": 12_000.0,
        "request": {"method": "GET", "url": "ws://127.0.0.1:4000/socket.io/?EIO=4&transport=websocket", "headers": [], "headersSize": 300, "bodySize": 0},
        "response": {"status": 101, "statusText": "Switching Protocols", "headers": [], "content": {"size": 0, "mimeType": ""}, "headersSize": 150, "bodySize": 0},
        "timings": {"send": 0, "wait": 1, "receive": 0},
        "_resourceType": "websocket",
        "_webSocketMessages": messages,
    }]}});
    pick_file(&host, "swallowed.har", &har.to_string());
    let status = har_status(&host, "").await;
    assert!(status.contains("1 channel"), "{status}");
    let count = |selector: &str| host.query_selector_all(selector).unwrap().length();
    assert_eq!(count(".swimlane .frame.swallowed"), 1);
    assert_eq!(count(".swimlane .frame.beat"), 5, "the pings that came");
}
