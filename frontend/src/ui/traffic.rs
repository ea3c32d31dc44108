//! The traffic panel: how often the stream speaks. The same lanes teach different lessons under
//! different traffic — rare news wastes letters, bursts make them late, a firehose shows every lane's
//! cost — so a person can switch and watch the timeline and the scoreboards change.

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_shared::traffic::{TrafficChange, TrafficRequest, TrafficState};
use switchboard_shared::{FaultAuth, Traffic};

use crate::dashboard::Dashboard;

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Nothing,
    Sending(Traffic),
    Refused(String),
}

#[component]
pub fn TrafficPanel() -> impl IntoView {
    let dashboard = expect_context::<Dashboard>();
    let auth = RwSignal::new(None::<FaultAuth>);
    let outcome = RwSignal::new(Outcome::Nothing);
    spawn_local(async move {
        if let Ok(response) = gloo_net::http::Request::get("/api/traffic").send().await
            && let Ok(state) = response.json::<TrafficState>().await
        {
            auth.set(Some(state.auth));
            dashboard.touch(|store| store.conditions_mut().traffic_known(state.pattern));
        }
    });
    let token = dashboard.settings.admin_token;
    let choose = move |pattern: Traffic| {
        outcome.set(Outcome::Sending(pattern));
        let token = token.get_untracked();
        spawn_local(async move {
            let answer = super::control::post_json::<TrafficChange>(
                "/api/traffic",
                &TrafficRequest { pattern },
                &token,
            )
            .await;
            match answer {
                Ok(change) => {
                    // The notice on the stream says the same; this marks it at once.
                    let at_ms = change.at_ms as f64
                        - dashboard.store.with_value(|store| store.clock().offset_ms);
                    dashboard.touch(|store| store.traffic_change(&change, at_ms));
                    outcome.set(Outcome::Nothing);
                }
                Err(why) => outcome.set(Outcome::Refused(why)),
            }
        });
    };
    let current = move || {
        dashboard.changed.track();
        dashboard
            .store
            .with_value(|store| store.conditions().traffic())
    };
    let disabled = move || auth.get() == Some(FaultAuth::Disabled);
    let buttons = Traffic::ALL
        .into_iter()
        .map(|pattern| {
            view! {
                <button
                    type="button"
                    class="tool pattern"
                    class:chosen=move || current() == Some(pattern)
                    aria-pressed=move || (current() == Some(pattern)).to_string()
                    data-testid=format!("traffic-{}", pattern.as_str())
                    title=pattern.explanation()
                    disabled=disabled
                    on:click=move |_| choose(pattern)
                >
                    {pattern.title()}
                </button>
            }
        })
        .collect_view();
    view! {
        <section class="traffic" aria-label="Traffic" data-testid="traffic-panel">
            <h2>"Traffic"</h2>
            <div class="patterns" role="group" aria-label="Traffic pattern">{buttons}</div>
            <p class="hint" data-testid="traffic-explanation">
                {move || current().map_or("…", Traffic::explanation)}
            </p>
            <p class="fault-status" data-testid="traffic-status" class:refused=move || matches!(outcome.get(), Outcome::Refused(_))>
                {move || match outcome.get() {
                    Outcome::Nothing if disabled() => {
                        "The traffic is fixed: this server is reachable beyond loopback and has no admin token.".to_owned()
                    }
                    Outcome::Nothing => String::new(),
                    Outcome::Sending(pattern) => format!("switching to {}…", pattern.as_str()),
                    Outcome::Refused(why) => why,
                }}
            </p>
        </section>
    }
}
