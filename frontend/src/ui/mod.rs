//! The page: a header, the timeline, the controls, the lanes compared and the lane panels.

pub mod app_view;
pub mod charts;
pub mod chat;
pub mod compare;
pub mod control;
pub mod faults;
pub mod har;
pub mod lane_panel;
pub mod network;
pub mod traffic;
pub mod watch;

use leptos::prelude::*;
use leptos::task::spawn_local;
use std::time::Duration;
use switchboard_shared::{LaneId, ServerStats};

use crate::dashboard::Dashboard;
use crate::format::format_ms;
use crate::lanes::{now_ms, sleep};
use crate::timeline::Timeline;
use app_view::AppPanel;
use chat::ChatComposer;
use compare::CompareTable;
use faults::FaultPanel;
use har::HarPanel;
use lane_panel::LanePanel;
use network::NetworkPanel;
use traffic::TrafficPanel;
use watch::WatchPanel;

/// How often the scoreboards look at the store again.
const REFRESH: Duration = Duration::from_millis(250);

/// The whole dashboard, started: every lane begins from the server's current head together, so
/// their delivered seqs can be compared one for one.
#[component]
pub fn App() -> impl IntoView {
    let dashboard = Dashboard::new();
    let problem = RwSignal::new(None::<String>);
    spawn_local(async move {
        let head = loop {
            match server_head().await {
                Ok((head, proxy, app_proxied)) => {
                    let idle_ms = proxy.as_deref().and_then(switchboard_shared::proxy_idle_ms);
                    dashboard.touch(|store| store.behind_proxy(idle_ms));
                    dashboard.proxy.set(proxy);
                    dashboard.app_proxied.set(Some(app_proxied));
                    break head;
                }
                Err(why) => {
                    problem.set(Some(format!(
                        "Cannot reach the server ({why}); trying again…"
                    )));
                    sleep(2_000).await;
                }
            }
        };
        problem.set(None);
        dashboard
            .store
            .update_value(|store| store.start_after(head));
        for lane in LaneId::ALL {
            dashboard.set_running(lane, true);
        }
    });
    view! { <Dashboard dashboard=dashboard problem=problem/> }
}

/// The layout around a given dashboard; tests mount it with a dashboard they feed themselves.
#[component]
pub fn Dashboard(
    dashboard: Dashboard,
    #[prop(optional)] problem: Option<RwSignal<Option<String>>>,
) -> impl IntoView {
    provide_context(dashboard);
    // Worked out once here for the comparison table and every lane panel.
    compare::live_scores();
    if let Ok(handle) = set_interval_with_handle(move || dashboard.refresh(now_ms()), REFRESH) {
        on_cleanup(move || handle.clear());
    }
    // What lies below the timeline and its controls is built after the first paint (in the second
    // animation frame after the mount): on a first load it was a third of the time from the
    // WebAssembly's start to a usable page (BENCHMARKS.md, "Frontend"), and nobody sees it before they
    // scroll. The mark a frame later tells `first-load.cjs` when the whole page was there.
    let below = RwSignal::new(false);
    request_animation_frame(move || {
        request_animation_frame(move || {
            below.set(true);
            request_animation_frame(|| {
                if let Some(performance) = web_sys::window().and_then(|w| w.performance()) {
                    let _ = performance.mark("switchboard-complete");
                }
            });
        });
    });
    view! {
        <header class="top">
            <div class="brand">
                <h1>"Switchboard"</h1>
                <p>"One live event stream, received six ways at once: by letters, held letters, an endless letter, radio, a phone call and a video call."</p>
            </div>
            <ClockBadge/>
        </header>
        {move || problem.and_then(|problem| problem.get()).map(|text| view! { <p class="banner">{text}</p> })}
        <main>
            <Timeline/>
            <div class="controls-row">
                <section class="chat-bar" aria-label="Chat">
                    <ChatComposer/>
                </section>
                <TrafficPanel/>
                <NetworkPanel/>
                <FaultPanel/>
            </div>
            <Show when=move || below.get()>
                <AppPanel/>
                <CompareTable/>
                <section class="lanes" aria-label="The lanes">
                    {LaneId::ALL.into_iter().map(|lane| view! { <LanePanel lane=lane/> }).collect_view()}
                </section>
                <HarPanel/>
                <WatchPanel/>
            </Show>
        </main>
        <footer>
            "HTTP is exchanging letters; a WebSocket is a phone call. Delays are from the server's timestamp to "
            "arrival in this page, corrected by the clock offset the phone line measures."
        </footer>
    }
}

/// The server this page talks to and the clock offset every delay is corrected by.
#[component]
fn ClockBadge() -> impl IntoView {
    let dashboard = expect_context::<Dashboard>();
    let text = move || {
        dashboard.changed.track();
        dashboard.store.with_value(|store| {
            let instance = LaneId::ALL
                .iter()
                .find_map(|&lane| store.lane(lane).instance.clone())
                .unwrap_or_else(|| "connecting…".into());
            let clock = store.clock();
            let clock = match clock.round_trip_ms {
                Some(rtt) => format!(
                    "server clock {:+.0} ms · round trip {}",
                    clock.offset_ms,
                    format_ms(rtt)
                ),
                None => "clock not measured yet".into(),
            };
            (instance, clock)
        })
    };
    view! {
        <div class="badge">
            <span class="instance">"server "<b>{move || text().0}</b></span>
            {move || dashboard.proxy.get().map(|said| view! {
                <span
                    class="proxy"
                    data-testid="proxy"
                    title="every letter, stream and call passes through this proxy; a line quiet for longer than its idle timeout is hung up on"
                >
                    {switchboard_shared::proxy_words(&said)}
                </span>
            })}
            <span class="clock">{move || text().1}</span>
        </div>
    }
}

/// The newest seq the server has published, from `/api/stats` (which counts against no lane), what a
/// proxy in front says of itself, and whether the server puts a person's app through the lab.
async fn server_head() -> Result<(u64, Option<String>, bool), String> {
    let response = gloo_net::http::Request::get("/api/stats")
        .send()
        .await
        .map_err(|err| err.to_string())?;
    if !response.ok() {
        return Err(format!("HTTP {}", response.status()));
    }
    let proxy = response.headers().get(switchboard_shared::PROXY_HEADER);
    let stats: ServerStats = response.json().await.map_err(|err| err.to_string())?;
    Ok((stats.head, proxy, stats.app_proxy))
}
