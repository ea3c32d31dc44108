//! One lane's panel: its name in the letters/phone-call language, its controls, its own copy of the
//! live data (and how far behind that copy is), and its scoreboard with a sparkline and a delay
//! histogram.

use leptos::prelude::*;
use switchboard_shared::stats::group_thousands;
use switchboard_shared::{LaneId, Shape, WebTransportMode};

use super::charts::{Histogram, Sparkline};
use crate::dashboard::Dashboard;
use crate::format::{format_bytes, format_ms};
use crate::store::LiveCopy;

/// What the lane's wire looks like, in one line under its name.
fn wire_summary(lane: LaneId) -> &'static str {
    match lane {
        LaneId::Poll => "GET /api/poll?after=SEQ every interval",
        LaneId::LongPoll => "GET /api/longpoll?after=SEQ&wait_ms=N, held by the server",
        LaneId::HttpStream => "GET /api/stream — one answer that never ends, a JSON line per event",
        LaneId::Sse => "GET /api/sse — text/event-stream, server → browser",
        LaneId::Ws => "GET /ws → 101 Switching Protocols, frames both ways",
        LaneId::WebTransport => {
            "CONNECT /api/webtransport over HTTP/3 (QUIC, UDP): a stream or datagrams down, a stream up"
        }
    }
}

#[component]
pub fn LanePanel(lane: LaneId) -> impl IntoView {
    let dashboard = expect_context::<Dashboard>();
    let id = lane.as_str();
    // This lane's share of the figures the table works out too; a memo of its own, so the panel
    // re-renders only when its lane changed.
    let scores = super::compare::live_scores();
    let score = Memo::new(move |_| scores.with(|scores| scores[lane].clone()));
    let live = Memo::new(move |_| {
        dashboard.changed.track();
        dashboard.store.with_value(|store| store.live(lane).clone())
    });
    let running = dashboard.is_running(lane);
    let testid = move |name: &str| format!("{id}-{name}");

    view! {
        <article class=format!("lane lane-{id}") data-testid=format!("lane-{id}")>
            <header class="lane-head">
                <div class="lane-title">
                    <h3>
                        <i class="dot"></i>
                        {lane.title()}
                        <small>{id}</small>
                    </h3>
                    // Which server instance the lane reached: with several, each lane may be on another.
                    // On a line of its own, so a long instance name never crowds the title.
                    <small class="via" data-testid=testid("instance")>
                        {move || score.get().instance.map(|instance| format!("via {instance}")).unwrap_or_default()}
                    </small>
                </div>
                <button
                    class="toggle"
                    class:on=move || running.get()
                    data-testid=testid("toggle")
                    on:click=move |_| dashboard.set_running(lane, !running.get_untracked())
                >
                    {move || if running.get() { "Stop" } else { "Start" }}
                </button>
            </header>
            // Under the name and its button, the whole panel wide: narrow panels (six side by side) keep
            // the explanation readable.
            <p class="explain">{lane.explanation()}</p>
            <p class="wire"><code>{wire_summary(lane)}</code></p>
            <LaneSettings lane=lane/>
            <div
                class="freshness"
                data-testid=testid("freshness")
                class:stale={move || running.get() && score.get().behind_ms >= 500.0}
                class:stopped={move || !running.get()}
            >
                {move || {
                    let behind = score.get().behind_ms;
                    // A stopped lane is behind by choice: saying how far reads like a fault.
                    if !running.get() {
                        "stopped".to_owned()
                    } else if behind < 1.0 {
                        "up to date".to_owned()
                    } else {
                        format!("this copy is {} behind", format_ms(behind))
                    }
                }}
            </div>
            <LiveData live=live/>
            // The figures every lane has are in the comparison table above the panels; the panel keeps
            // what tells this lane's own story.
            <dl class="score">
                <div>
                    <dt>"bytes ↓"</dt>
                    <dd
                        data-testid=testid("bytes-down")
                        title=move || bytes_title(score.get().bytes_down, score.get().bytes_estimated)
                    >
                        {move || score.with(|s| s.bytes_shown(s.bytes_down as f64))}
                    </dd>
                </div>
                <div>
                    <dt>"bytes ↑"</dt>
                    <dd
                        data-testid=testid("bytes-up")
                        title=move || bytes_title(score.get().bytes_up, score.get().bytes_estimated)
                    >
                        {move || score.with(|s| s.bytes_shown(s.bytes_up as f64))}
                    </dd>
                </div>
                <div>
                    <dt>"duplicates · recovered"</dt>
                    <dd>
                        <span data-testid=testid("duplicates")>{move || score.get().duplicates}</span>
                        " · "
                        <span data-testid=testid("recovered")>{move || score.get().recovered}</span>
                    </dd>
                </div>
                <div class:bad={move || score.get().restarts > 0}>
                    <dt title="restarts: notices received on this lane that the server's history started over (a new epoch)">"restarts"</dt>
                    <dd data-testid=testid("restarts")>{move || score.get().restarts}</dd>
                </div>
                <div class:bad=move || score.get().in_outage>
                    <dt>"last outage: noticed · back"</dt>
                    <dd>
                        <span data-testid=testid("detect")>{move || score.get().detect_ms.map_or("–".into(), format_ms)}</span>
                        " · "
                        <span data-testid=testid("recover")>
                            {move || {
                                let s = score.get();
                                match (s.recover_ms, s.in_outage) {
                                    (_, true) => "down".to_owned(),
                                    (Some(ms), false) => format_ms(ms),
                                    (None, false) => "–".to_owned(),
                                }
                            }}
                        </span>
                    </dd>
                </div>
                <div>
                    <dt>"dead lines found"</dt>
                    <dd data-testid=testid("dead")>{move || score.get().dead_lines}</dd>
                </div>
                <div>
                    <dt title="connects: lines opened (or letters answered) by the server — whether on a new TCP connection or a kept-alive one; the table's new connections counts only the former">"connects"</dt>
                    <dd data-testid=testid("connects")>{move || group_thousands(score.get().connects)}</dd>
                </div>
                {lane.shape().is_request().then(|| view! {
                    <div>
                        <dt title="letters a proxy in front of the server answered from its cache: the server never saw them">"answered by a cache"</dt>
                        <dd data-testid=testid("cache-hits")>{move || group_thousands(score.get().cache_hits)}</dd>
                    </div>
                })}
                {move || (!lane.shape().is_request() && dashboard.proxy.get().is_some()).then(move || view! {
                    <div class:bad={move || score.get().proxy_cuts > 0}>
                        <dt title="lines the proxy in front of the server hung up on for being quiet longer than its idle timeout">"cut by the proxy"</dt>
                        <dd data-testid=testid("proxy-cuts")>{move || score.get().proxy_cuts}</dd>
                    </div>
                })}
                <div><dt>"last seq"</dt><dd data-testid=testid("last-seq")>{move || score.get().last_seq}</dd></div>
                <div>
                    <dt>"last sign of life"</dt>
                    <dd>{move || score.get().since_life_ms.map_or("–".into(), |ms| format!("{} ago", format_ms(ms)))}</dd>
                </div>
            </dl>
            <div class="charts">
                <figure>
                    <Sparkline values=Signal::derive(move || score.get().sparkline)/>
                    <figcaption>"deliveries per second, last minute"</figcaption>
                </figure>
                <figure>
                    <Histogram counts=Signal::derive(move || score.get().histogram)/>
                    <figcaption>"delay: ≤5 · 20 · 50 · 100 · 250 · 500 ms · 1 s · more"</figcaption>
                </figure>
            </div>
            {move || {
                score
                    .get()
                    .last_error
                    .map(|error| view! { <p class="lane-error" title="the last error on this lane">{error}</p> })
            }}
        </article>
    }
}

/// The controls that only some lanes have: the letters' interval, the held letters' wait, and how the
/// video call takes events.
#[component]
fn LaneSettings(lane: LaneId) -> impl IntoView {
    let settings = expect_context::<Dashboard>().settings;
    if lane == LaneId::WebTransport {
        return view! { <VideoCallSettings/> }.into_any();
    }
    let (label, signal, choices): (&str, RwSignal<u32>, &[u32]) = match lane.shape() {
        Shape::Request => (
            "ask every",
            settings.letters.poll_interval_ms,
            &[250, 500, 1_000, 2_000, 5_000],
        ),
        Shape::HeldRequest => (
            "server holds up to",
            settings.letters.wait_ms,
            &[2_000, 5_000, 10_000, 25_000, 60_000],
        ),
        Shape::Stream | Shape::Duplex => return ().into_any(),
    };
    view! {
        <label class="setting">
            {label}
            " "
            <select
                data-testid=format!("{}-setting", lane.as_str())
                on:change=move |event| {
                    if let Ok(value) = event_target_value(&event).parse() {
                        signal.set(value);
                    }
                }
            >
                {choices
                    .iter()
                    .map(|&ms| {
                        view! {
                            <option value=ms.to_string() selected=move || signal.get() == ms>
                                {format_ms(f64::from(ms))}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
        </label>
    }
    .into_any()
}

/// The video call's choice of a reliable stream or datagrams (a change redials), or — where the
/// browser has no WebTransport — a plain note that this lane cannot run here.
#[component]
fn VideoCallSettings() -> impl IntoView {
    let mode = expect_context::<Dashboard>()
        .settings
        .letters
        .webtransport_mode;
    if !crate::lanes::webtransport::supported() {
        return view! {
            <p class="setting unsupported" data-testid="webtransport-unsupported">
                "This browser has no WebTransport: the video call cannot run here (Chromium and Firefox have it; Safari does not yet)."
            </p>
        }
        .into_any();
    }
    view! {
        <label class="setting">
            "events as "
            <select
                data-testid="webtransport-setting"
                on:change=move |event| {
                    let word = event_target_value(&event);
                    if let Some(chosen) = [WebTransportMode::Stream, WebTransportMode::Datagram]
                        .into_iter()
                        .find(|choice| choice.as_str() == word)
                    {
                        mode.set(chosen);
                    }
                }
            >
                {[WebTransportMode::Stream, WebTransportMode::Datagram]
                    .into_iter()
                    .map(|choice| {
                        view! {
                            <option value=choice.as_str() selected=move || mode.get() == choice>
                                {choice.title()}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
        </label>
    }
    .into_any()
}

/// The lane's own copy of the host load, the ticker and the chat.
#[component]
fn LiveData(live: Memo<LiveCopy>) -> impl IntoView {
    view! {
        <div class="live">
            <div class="load">
                {move || match live.get().load {
                    Some(load) => {
                        let used = load.mem_used_bytes as f64 / load.mem_total_bytes.max(1) as f64 * 100.0;
                        view! {
                            <span title="server CPU"><b>{format!("{:.0}%", load.cpu_percent)}</b>" CPU"</span>
                            <span title="server memory in use"><b>{format!("{used:.0}%")}</b>" mem"</span>
                            <span title="1-minute load average"><b>{format!("{:.2}", load.load_avg[0])}</b>" load"</span>
                            <span title="network in / out per second">
                                <b>{format_bytes(load.net_rx_per_sec as f64)}</b>"/s ↓ "
                                <b>{format_bytes(load.net_tx_per_sec as f64)}</b>"/s ↑"
                            </span>
                        }
                            .into_any()
                    }
                    None => view! { <span class="waiting">"waiting for the server's load…"</span> }.into_any(),
                }}
            </div>
            <table class="ticker">
                <tbody>
                    {move || {
                        live.get()
                            .quotes
                            .into_values()
                            .map(|quote| {
                                let up = quote.change_pct >= 0.0;
                                view! {
                                    <tr>
                                        <th>{quote.symbol}</th>
                                        <td>{format!("{:.2}", quote.price)}</td>
                                        <td class:up=up class:down=!up>
                                            {format!("{}{:.2}%", if up { "▲" } else { "▼" }, quote.change_pct.abs())}
                                        </td>
                                    </tr>
                                }
                            })
                            .collect_view()
                    }}
                </tbody>
            </table>
            <ul class="chat" data-testid="chat-log">
                {move || {
                    live.get()
                        .chat
                        .into_iter()
                        .map(|message| {
                            let via = match message.via {
                                switchboard_shared::ChatVia::Post => "✉",
                                switchboard_shared::ChatVia::Ws => "☎",
                                switchboard_shared::ChatVia::WebTransport => "▶",
                            };
                            view! {
                                <li>
                                    <span class="via" title="how it was sent">{via}</span>
                                    <b>{message.author}</b>
                                    " "
                                    {message.text}
                                </li>
                            }
                        })
                        .collect_view()
                }}
            </ul>
        </div>
    }
}

/// A byte count's tooltip: the exact count, or what an estimate rests on.
fn bytes_title(bytes: u64, estimated: bool) -> String {
    if estimated {
        format!(
            "about {} bytes: an estimate (QUIC's packets are out of the page's sight, so each message is counted with a typical packet's overhead, and the handshake as a typical one)",
            group_thousands(bytes)
        )
    } else {
        format!("{} bytes", group_thousands(bytes))
    }
}
