//! The fault panel: break a lane on purpose with one click, and see which faults are in effect.
//! Every fault is announced on the stream, so its span is shaded on the timeline and each lane's
//! scoreboard times how long it took to notice and to recover.

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_shared::fault::DEFAULT_FAULT_MS;
use switchboard_shared::{
    Fault, FaultAuth, FaultKind, FaultList, FaultRequest, FaultTarget, LaneId,
};

use crate::dashboard::Dashboard;
use crate::format::format_ms;
use crate::ui::control::post_json;

/// What became of the last injection.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Nothing,
    Sending(FaultKind),
    Injected(String),
    Refused(String),
}

#[component]
pub fn FaultPanel() -> impl IntoView {
    let dashboard = expect_context::<Dashboard>();
    let target = RwSignal::new(FaultTarget::ALL);
    let duration_ms = RwSignal::new(DEFAULT_FAULT_MS);
    let delay_ms = RwSignal::new(1_000u64);
    let token = dashboard.settings.admin_token;
    let auth = RwSignal::new(None::<FaultAuth>);
    let outcome = RwSignal::new(Outcome::Nothing);
    spawn_local(async move {
        if let Ok(response) = gloo_net::http::Request::get("/api/faults").send().await
            && let Ok(list) = response.json::<FaultList>().await
        {
            auth.set(Some(list.auth));
        }
    });

    let inject = move |kind: FaultKind| {
        let request = FaultRequest {
            kind,
            // A hiccup or a restart is the whole stream's.
            lane: if kind.is_global() {
                FaultTarget::ALL
            } else {
                target.get_untracked()
            },
            duration_ms: kind.is_timed().then(|| duration_ms.get_untracked()),
            delay_ms: (kind == FaultKind::Delay).then(|| delay_ms.get_untracked()),
        };
        if let Err(why) = request.validate() {
            outcome.set(Outcome::Refused(why.to_string()));
            return;
        }
        outcome.set(Outcome::Sending(kind));
        let token = token.get_untracked();
        spawn_local(async move {
            outcome.set(send(request, &token).await);
        });
    };

    let lane_options = std::iter::once(FaultTarget::ALL)
        .chain(LaneId::ALL.map(FaultTarget::Lane))
        .map(|option| {
            let label = match option {
                FaultTarget::Lane(lane) => lane.title(),
                FaultTarget::All(_) => "All lanes",
            };
            view! { <option value=option.as_str() selected=move || target.get() == option>{label}</option> }
        })
        .collect_view();

    let active = move || {
        dashboard.changed.track();
        let now = dashboard.now_ms.get();
        dashboard.store.with_value(|store| {
            store
                .active_faults(now)
                .map(|span| {
                    format!(
                        "{} — {} left",
                        span.fault.describe(),
                        format_ms(span.end_ms - now)
                    )
                })
                .collect::<Vec<_>>()
        })
    };

    view! {
        <section class="faults" aria-label="Failure lab" data-testid="fault-panel">
            <h2>"Failure lab"</h2>
            <p class="hint">
                "Break a lane on purpose and watch it notice, redial, resume and count. Hiccup and Restart act on the whole stream, whatever lane is chosen."
            </p>
            <div class="fault-controls">
                <label>
                    "lane "
                    <select
                        data-testid="fault-lane"
                        on:change=move |event| {
                            let value = event_target_value(&event);
                            let parsed = serde_json::from_value::<FaultTarget>(serde_json::Value::String(value));
                            if let Ok(parsed) = parsed {
                                target.set(parsed);
                            }
                        }
                    >
                        {lane_options}
                    </select>
                </label>
                <label>
                    "for "
                    <input
                        type="number"
                        min="100"
                        step="500"
                        data-testid="fault-duration"
                        prop:value=move || duration_ms.get().to_string()
                        on:change=move |event| {
                            if let Ok(ms) = event_target_value(&event).parse() {
                                duration_ms.set(ms);
                            }
                        }
                    />
                    " ms"
                </label>
                <label>
                    "delay "
                    <input
                        type="number"
                        min="1"
                        step="100"
                        data-testid="fault-delay-ms"
                        prop:value=move || delay_ms.get().to_string()
                        on:change=move |event| {
                            if let Ok(ms) = event_target_value(&event).parse() {
                                delay_ms.set(ms);
                            }
                        }
                    />
                    " ms"
                </label>
                {move || (auth.get() == Some(FaultAuth::Token)).then(|| view! {
                    <label>
                        "admin token "
                        <input
                            type="password"
                            data-testid="fault-token"
                            prop:value=move || token.get()
                            on:input=move |event| token.set(event_target_value(&event))
                        />
                    </label>
                })}
            </div>
            <div class="fault-buttons">
                {FaultKind::ALL.into_iter().map(|kind| view! {
                    <button
                        type="button"
                        class=format!("fault fault-{kind}")
                        data-testid=format!("fault-{kind}")
                        title=if kind.is_global() {
                            format!("{} (the whole stream, whatever lane is chosen)", kind.explanation())
                        } else {
                            format!("{} {}", kind.explanation(), kind.reach_words())
                        }
                        disabled=move || auth.get() == Some(FaultAuth::Disabled)
                        on:click=move |_| inject(kind)
                    >
                        {kind.title()}
                    </button>
                }).collect_view()}
            </div>
            <p class="fault-status" data-testid="fault-status" class:refused=move || matches!(outcome.get(), Outcome::Refused(_))>
                {move || match outcome.get() {
                    Outcome::Nothing if auth.get() == Some(FaultAuth::Disabled) => {
                        "Fault injection is off: this server is reachable beyond loopback and has no admin token.".into()
                    }
                    Outcome::Nothing => String::new(),
                    Outcome::Sending(kind) => format!("injecting {kind}…"),
                    Outcome::Injected(what) | Outcome::Refused(what) => what,
                }}
            </p>
            <ul class="active-faults" data-testid="active-faults">
                {move || active().into_iter().map(|line| view! { <li>{line}</li> }).collect_view()}
            </ul>
        </section>
    }
}

async fn send(request: FaultRequest, token: &str) -> Outcome {
    match post_json::<Fault>("/api/faults", &request, token).await {
        // A kind that spares some lanes says which, so an untouched line is not read as a failure.
        Ok(fault) if matches!(fault.kind, FaultKind::Error | FaultKind::NoHeartbeat) => {
            Outcome::Injected(format!(
                "injected: {}. {}",
                fault.describe(),
                fault.kind.reach_words()
            ))
        }
        Ok(fault) => Outcome::Injected(format!("injected: {}", fault.describe())),
        Err(why) => Outcome::Refused(why),
    }
}
