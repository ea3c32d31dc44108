//! The network panel: put one lane or all of them on an emulated network (a preset or custom figures)
//! and see what is in effect; and the browser's own conditions — a background tab, and HTTP/1.1's six
//! connections per host, which a person can fill with extra radio streams to watch letters queue.

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_shared::network::{
    Condition, NetworkChange, NetworkRequest, NetworkState, PRESET_NAMES, Preset,
};
use switchboard_shared::{FaultAuth, FaultTarget, LaneId};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

use crate::dashboard::Dashboard;
use crate::format::format_ms;
use crate::lanes::now_ms;

/// How many radio streams the "extra streams" control opens: as many as HTTP/1.1 browsers allow to one
/// host, so the letters must wait for a free connection.
pub const EXTRA_STREAMS: usize = 6;

/// What became of the last change.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Nothing,
    Sending,
    Set(String),
    Refused(String),
}

/// What the custom path's fields hold before a person changes them: a slow mobile line.
pub fn first_custom() -> Condition {
    Condition {
        name: "custom".into(),
        rtt_ms: 300,
        jitter_ms: 50,
        down_kbps: 1_600,
        up_kbps: 768,
        loss_pct: 0.0,
    }
}

#[component]
pub fn NetworkPanel() -> impl IntoView {
    let dashboard = expect_context::<Dashboard>();
    let target = RwSignal::new(FaultTarget::ALL);
    let presets = RwSignal::new(Vec::<Preset>::new());
    let auth = RwSignal::new(None::<FaultAuth>);
    let outcome = RwSignal::new(Outcome::Nothing);
    let custom = RwSignal::new(first_custom());
    spawn_local(async move {
        if let Ok(response) = gloo_net::http::Request::get("/api/network").send().await
            && let Ok(state) = response.json::<NetworkState>().await
        {
            auth.set(Some(state.auth));
            presets.set(state.presets);
            dashboard.touch(|store| store.network_known(&state.lanes, now_ms()));
        }
    });
    watch_visibility(dashboard);

    let token = dashboard.settings.admin_token;
    let send = move |body: serde_json::Value| {
        outcome.set(Outcome::Sending);
        let token = token.get_untracked();
        spawn_local(async move {
            let answer =
                super::control::post_json::<NetworkChange>("/api/network", &body, &token).await;
            if let Ok(change) = &answer {
                // The notice on the stream says the same; this shows it at once.
                dashboard.touch(|store| store.network_change(change, now_ms()));
            }
            outcome.set(match answer {
                Ok(change) => Outcome::Set(change.describe()),
                Err(why) => Outcome::Refused(why),
            });
        });
    };
    let choose_preset = move |name: String| {
        send(serde_json::json!({"lane": target.get_untracked().as_str(), "preset": name}));
    };
    let apply_custom = move || {
        let condition = custom.get_untracked();
        if let Err(why) = condition.validate() {
            outcome.set(Outcome::Refused(why.to_string()));
            return;
        }
        send(NetworkRequest::to_json(target.get_untracked(), &condition));
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
    // The preset the chosen lane runs over now (all lanes: the letters'), so the select tells the truth
    // after a change made elsewhere.
    let selected_preset = move || {
        dashboard.changed.track();
        let lane = match target.get() {
            FaultTarget::Lane(lane) => lane,
            FaultTarget::All(_) => LaneId::Poll,
        };
        dashboard.store.with_value(|store| {
            store
                .conditions()
                .current(lane)
                .map_or_else(|| "loopback".to_owned(), |condition| condition.name.clone())
        })
    };
    let preset_options = move || {
        let listed = presets.get();
        let presets = PRESET_NAMES
            .iter()
            .map(|&name| {
                let label = listed
                    .iter()
                    .find(|preset| preset.name == name)
                    .map_or_else(|| name.to_owned(), |preset| preset.label.clone());
                view! { <option value=name selected=move || selected_preset() == name>{label}</option> }
            })
            .collect_view();
        // A custom path is no preset: the menu says so, or it would read "This machine" while the lane
        // runs on the custom path, and choosing that would change nothing.
        let custom = move || {
            let current = selected_preset();
            (!PRESET_NAMES.contains(&current.as_str())).then(|| {
                view! { <option value="custom" disabled=true selected=true>"custom path"</option> }
            })
        };
        view! { {custom} {presets} }
    };
    let in_effect = move || {
        dashboard.changed.track();
        dashboard.store.with_value(|store| {
            LaneId::ALL
                .into_iter()
                .map(|lane| {
                    let condition = store.conditions().current(lane);
                    (
                        lane,
                        condition.map_or_else(|| "loopback".to_owned(), Condition::describe),
                        condition.is_some(),
                    )
                })
                .collect::<Vec<_>>()
        })
    };
    let disabled = move || auth.get() == Some(FaultAuth::Disabled);

    view! {
        <section class="network" aria-label="Network" data-testid="network-panel">
            <h2>"Network"</h2>
            <p class="hint">
                "Put the lanes on a real-world path: every letter pays its round trip, a new connection its handshake, a lost packet stalls what is behind it."
            </p>
            <div class="fault-controls">
                <label>
                    "lane "
                    <select
                        data-testid="network-lane"
                        on:change=move |event| {
                            let value = event_target_value(&event);
                            if let Ok(parsed) = serde_json::from_value::<FaultTarget>(serde_json::Value::String(value)) {
                                target.set(parsed);
                            }
                        }
                    >
                        {lane_options}
                    </select>
                </label>
                <label>
                    "network "
                    <select
                        data-testid="network-preset"
                        disabled=disabled
                        on:change=move |event| choose_preset(event_target_value(&event))
                    >
                        {preset_options}
                    </select>
                </label>
            </div>
            <CustomPath custom=custom prefix="network" disabled=Signal::derive(disabled) on_apply=apply_custom/>
            <p class="fault-status" data-testid="network-status" class:refused=move || matches!(outcome.get(), Outcome::Refused(_))>
                {move || match outcome.get() {
                    Outcome::Nothing if disabled() => {
                        "Network conditions are off: this server is reachable beyond loopback and has no admin token.".into()
                    }
                    Outcome::Nothing if auth.get() == Some(FaultAuth::Token) && token.get().is_empty() => {
                        "This server wants its admin token: enter it in the failure lab.".into()
                    }
                    Outcome::Nothing => String::new(),
                    Outcome::Sending => "changing the network…".into(),
                    Outcome::Set(what) | Outcome::Refused(what) => what,
                }}
            </p>
            <ul class="in-effect" data-testid="network-in-effect">
                {move || in_effect().into_iter().map(|(lane, text, shaped)| view! {
                    <li class:shaped=shaped data-testid=format!("network-{}", lane.as_str())>
                        <b>{lane.title()}</b>" "{text}
                    </li>
                }).collect_view()}
            </ul>
            <BrowserConditions/>
        </section>
    }
}

/// The browser's own habits: the background tab (recorded as it happens) and six connections per host.
#[component]
fn BrowserConditions() -> impl IntoView {
    let dashboard = expect_context::<Dashboard>();
    let extra = StoredValue::new_local(Vec::<web_sys::EventSource>::new());
    let open = RwSignal::new(0usize);
    let toggle = move |_| {
        if open.get_untracked() > 0 {
            extra.update_value(|streams| {
                for stream in streams.drain(..) {
                    stream.close();
                }
            });
            open.set(0);
        } else {
            extra.update_value(|streams| {
                streams.extend(
                    (0..EXTRA_STREAMS).filter_map(|_| web_sys::EventSource::new("/api/sse").ok()),
                );
                open.set(streams.len());
            });
        }
    };
    on_cleanup(move || {
        extra.update_value(|streams| {
            for stream in streams.drain(..) {
                stream.close();
            }
        });
    });
    let hidden = move || {
        dashboard.changed.track();
        let now = dashboard.now_ms.get();
        dashboard.store.with_value(|store| {
            let total = store.conditions().hidden_ms(now);
            if total <= 0.0 {
                return None;
            }
            let lanes = LaneId::ALL
                .into_iter()
                .map(|lane| {
                    let seen = store.while_hidden(lane);
                    let sent = if lane.shape().is_request() {
                        format!("{} letters", seen.requests)
                    } else {
                        format!("{} dials", seen.requests)
                    };
                    let dead = if seen.dead > 0 {
                        format!(", watchdog fired {}×", seen.dead)
                    } else {
                        String::new()
                    };
                    format!("{}: {sent}, {} arrivals{dead}", lane.title(), seen.arrivals)
                })
                .collect::<Vec<_>>();
            // Past tense once the page is back: "so far" would claim it is still hidden.
            let said = match store.conditions().back_since() {
                Some(back) => format!(
                    "In a background tab for {} in all, back {} ago. Meanwhile —",
                    format_ms(total),
                    format_ms((now - back).max(0.0))
                ),
                None => format!(
                    "In a background tab for {} so far. Meanwhile —",
                    format_ms(total)
                ),
            };
            Some((said, lanes))
        })
    };
    view! {
        <div class="browser-conditions">
            <h3>"The browser's own conditions"</h3>
            <p class="hint" data-testid="hidden-summary">
                {move || match hidden() {
                    None => "Put this tab in the background for a while: the timeline hatches the time and says what each lane did meanwhile (browsers slow hidden pages' timers).".to_owned(),
                    Some((said, _)) => said,
                }}
            </p>
            <ul class="while-hidden" data-testid="while-hidden">
                {move || hidden().map(|(_, lanes)| lanes.into_iter().map(|line| view! { <li>{line}</li> }).collect_view())}
            </ul>
            <button type="button" class="tool" data-testid="extra-streams" on:click=toggle>
                {move || if open.get() > 0 {
                    format!("Close the {} extra radio streams", open.get())
                } else {
                    format!("Open {EXTRA_STREAMS} extra radio streams")
                }}
            </button>
            <p class="hint" data-testid="extra-streams-note">
                {move || if open.get() > 0 {
                    format!("{} streams hold {} of the browser's 6 connections to this server: watch the letters wait for one (the phone call has its own).", open.get(), open.get().min(6))
                } else {
                    "HTTP/1.1 allows 6 connections per host: fill them and see who has to wait.".to_owned()
                }}
            </p>
        </div>
    }
}

/// Records every change of the page's visibility on the timeline.
fn watch_visibility(dashboard: Dashboard) {
    let Some(document) = web_sys::window().and_then(|window| window.document()) else {
        return;
    };
    let record = {
        let document = document.clone();
        move || {
            let hidden = document.visibility_state() == web_sys::VisibilityState::Hidden;
            dashboard.touch(|store| store.conditions_mut().visibility(hidden, now_ms()));
        }
    };
    record();
    let listener = Closure::<dyn Fn()>::new(record);
    let _ = document
        .add_event_listener_with_callback("visibilitychange", listener.as_ref().unchecked_ref());
    let function: js_sys::Function = listener.into_js_value().unchecked_into();
    on_cleanup(move || {
        let _ = document.remove_event_listener_with_callback("visibilitychange", &function);
    });
}

/// The "custom path" fields (round trip, jitter, bandwidth each way, loss) and their Apply button; the
/// network panel aims them at lanes, the "Your app" view at the app's channels. Test ids are
/// `{prefix}-rtt`, `-jitter`, `-down`, `-up`, `-loss` and `-apply`.
#[component]
pub fn CustomPath(
    custom: RwSignal<Condition>,
    prefix: &'static str,
    #[prop(into)] disabled: Signal<bool>,
    on_apply: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let field = move |label: &'static str,
                      key: &'static str,
                      unit: &'static str,
                      get: fn(&Condition) -> f64,
                      set: fn(&mut Condition, f64)| {
        view! {
            <label>
                {label}
                " "
                <input
                    type="number"
                    min="0"
                    data-testid=format!("{prefix}-{key}")
                    prop:value=move || get(&custom.get()).to_string()
                    on:change=move |event| {
                        if let Ok(value) = event_target_value(&event).parse::<f64>() {
                            custom.update(|condition| set(condition, value));
                        }
                    }
                />
                " "
                {unit}
            </label>
        }
    };
    view! {
        <details class="custom">
            <summary>"custom path"</summary>
            <div class="fault-controls">
                {field("round trip", "rtt", "ms", |c| f64::from(c.rtt_ms), |c, v| c.rtt_ms = v as u32)}
                {field("±", "jitter", "ms", |c| f64::from(c.jitter_ms), |c, v| c.jitter_ms = v as u32)}
                {field("down", "down", "kbit/s", |c| f64::from(c.down_kbps), |c, v| c.down_kbps = v as u32)}
                {field("up", "up", "kbit/s", |c| f64::from(c.up_kbps), |c, v| c.up_kbps = v as u32)}
                {field("loss", "loss", "%", |c| c.loss_pct, |c, v| c.loss_pct = v)}
                <button type="button" class="tool" data-testid=format!("{prefix}-apply") disabled=disabled
                    on:click=move |_| on_apply()>
                    "Apply"
                </button>
            </div>
        </details>
    }
}
