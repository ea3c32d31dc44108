//! "Your app": shown when Switchboard runs as a proxy in front of the person's own app
//! (`--upstream`). Its channels — found by the same classifier as an opened HAR — are drawn as the
//! same swimlanes, with a table of their live figures, the lab's faults and networks aimed at them, and
//! the findings in words. Switchboard's own lanes stay live above it.

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_shared::FaultTarget;
use switchboard_shared::app::experiment::{Experiment, ExperimentState};
use switchboard_shared::app::{AppChannel, AppFaultKind, AppReport, Finding, Got};
use switchboard_shared::har::{Har, Imported, classify};
use switchboard_shared::network::{NetworkRequest, PRESET_NAMES};
use switchboard_shared::stats::group_thousands;

use crate::dashboard::Dashboard;
use crate::format::{format_bytes, format_clock, format_ms};
use crate::lanes::sleep;
use crate::ui::control::post_json;
use crate::ui::har::ImportedView;
use crate::ui::network::{CustomPath, first_custom};

/// How often the figures are asked for again, and the swimlanes redrawn.
const REPORT_EVERY_MS: u32 = 1_000;
const TRAFFIC_EVERY_MS: u32 = 2_000;
/// The swimlanes show this much of the recent past.
const SHOWN_S: u32 = 120;

/// The fault kinds offered as buttons, in the order a person tries them.
const OFFERED: [AppFaultKind; 7] = [
    AppFaultKind::Drop,
    AppFaultKind::HalfOpen,
    AppFaultKind::IdleTimeout,
    AppFaultKind::NoHeartbeat,
    AppFaultKind::Delay,
    AppFaultKind::Http503,
    AppFaultKind::Hiccup,
];

/// A channel as a person reads it: `phone call (/socket.io/)`.
pub fn named(channel: &AppChannel) -> String {
    format!("{} ({})", channel.kind.called(), channel.path)
}

#[component]
pub fn AppPanel() -> impl IntoView {
    let report = RwSignal::new(None::<AppReport>);
    let traffic = RwSignal::new(None::<Imported>);
    let app_proxied = expect_context::<Dashboard>().app_proxied;
    spawn_local(async move {
        // Asked only of a server that proxies an app (it says so in `/api/stats`): asking every other
        // one would leave a 404 in every browser's console.
        loop {
            match app_proxied.get_untracked() {
                Some(true) => break,
                Some(false) => return,
                None => sleep(200).await,
            }
        }
        let mut since_traffic = u32::MAX;
        loop {
            match gloo_net::http::Request::get("/api/app").send().await {
                // Not a proxy: nothing to show, and nothing more to ask.
                Ok(response) if response.status() == 404 => return,
                Ok(response) if response.ok() => {
                    if let Ok(fresh) = response.json::<AppReport>().await {
                        report.set(Some(fresh));
                    }
                }
                _ => {}
            }
            since_traffic = since_traffic.saturating_add(REPORT_EVERY_MS);
            if since_traffic >= TRAFFIC_EVERY_MS {
                since_traffic = 0;
                let url = format!("/api/app/har?last_s={SHOWN_S}");
                if let Ok(response) = gloo_net::http::Request::get(&url).send().await
                    && let Ok(text) = response.text().await
                    && let Ok(har) = Har::parse(&text)
                {
                    traffic.set(Some(classify(&har)));
                }
            }
            sleep(REPORT_EVERY_MS).await;
        }
    });
    view! { <AppView report=report traffic=traffic/> }
}

/// The view of a proxied app from its report and its recent traffic (tests mount it with their own).
#[component]
pub fn AppView(
    report: RwSignal<Option<AppReport>>,
    traffic: RwSignal<Option<Imported>>,
) -> impl IntoView {
    let dashboard = expect_context::<Dashboard>();

    let channel = RwSignal::new(String::from("all"));
    let duration_ms = RwSignal::new(15_000u64);
    let delay_ms = RwSignal::new(1_000u64);
    let idle_ms = RwSignal::new(10_000u64);
    let said = RwSignal::new(None::<Result<String, String>>);
    // The fault the status line announces, and when: the line ends with its fault (an instant one's
    // after a few seconds), so it never speaks of a fault long over. Read as the report redraws; any
    // other line (a network, a refusal, Start over) forgets the fault.
    let announced = RwSignal::new(None::<(AppFaultKind, f64)>);
    let said_now = move || {
        let over = announced.get().is_some_and(|(kind, at)| {
            // A report asked before the fault was set may still come after it: a moment's grace.
            let age = crate::lanes::now_ms() - at;
            let in_effect = report.with(|r| {
                r.as_ref()
                    .is_some_and(|r| r.faults.iter().any(|fault| fault.kind == kind))
            });
            if kind.lasts() {
                !in_effect && age > 2_000.0
            } else {
                age > 5_000.0
            }
        });
        if over { None } else { said.get() }
    };
    let token = dashboard.settings.admin_token;
    // The channel chosen, in words.
    let aimed = move || {
        let id = channel.get_untracked();
        if id == "all" {
            return "every channel of your app".to_owned();
        }
        // Read in place: the whole report is never copied for a name.
        report.with_untracked(|r| {
            r.as_ref()
                .and_then(|r| r.channels.iter().find(|c| c.id == id))
                .map_or_else(
                    || "the channel".to_owned(),
                    |c| format!("your {}", named(c)),
                )
        })
    };
    let inject = move |kind: AppFaultKind| {
        let mut body =
            serde_json::json!({"kind": kind.as_str(), "channel": channel.get_untracked()});
        if kind.lasts() && kind != AppFaultKind::IdleTimeout {
            body["duration_ms"] = duration_ms.get_untracked().into();
        }
        if kind == AppFaultKind::Delay {
            body["delay_ms"] = delay_ms.get_untracked().into();
        }
        if kind == AppFaultKind::IdleTimeout {
            body["idle_ms"] = idle_ms.get_untracked().into();
        }
        let words = match kind {
            AppFaultKind::Drop => format!("Cut {} now.", aimed()),
            AppFaultKind::Clear => format!("Cleared every fault on {}.", aimed()),
            AppFaultKind::Release => format!(
                "Cut the connections of {} that a half-open left dead.",
                aimed()
            ),
            AppFaultKind::IdleTimeout => format!(
                "A proxy's {} idle timeout on {}, until cleared.",
                format_ms(idle_ms.get_untracked() as f64),
                aimed()
            ),
            _ => format!(
                "{} on {} for {}.",
                kind.title(),
                aimed(),
                format_ms(duration_ms.get_untracked() as f64)
            ),
        };
        let token = token.get_untracked();
        spawn_local(async move {
            let answer = post_json::<serde_json::Value>("/api/app/faults", &body, &token).await;
            if answer.is_ok() {
                announced.set(Some((kind, crate::lanes::now_ms())));
            }
            said.set(Some(answer.map(|_| words)));
        });
    };
    let start_over = move |_| {
        let token = token.get_untracked();
        spawn_local(async move {
            // The next report (within a second) shows the clean slate.
            let answer =
                post_json::<serde_json::Value>("/api/app/reset", &serde_json::json!({}), &token)
                    .await;
            announced.set(None);
            said.set(Some(
                answer.map(|_| "Started over: a clean slate.".to_owned()),
            ));
        });
    };
    let custom = RwSignal::new(first_custom());
    let send_network = move |body: serde_json::Value, words: String| {
        let token = token.get_untracked();
        spawn_local(async move {
            let answer = post_json::<serde_json::Value>("/api/app/network", &body, &token).await;
            announced.set(None);
            said.set(Some(answer.map(|_| crate::figures::sentence(&words))));
        });
    };
    let set_network = move |preset: String| {
        let body = serde_json::json!({"channel": channel.get_untracked(), "preset": preset});
        let words = if preset == "loopback" {
            format!("{} runs on this machine's own network again.", aimed())
        } else {
            format!("{} now runs over {preset}.", aimed())
        };
        send_network(body, words);
    };
    let apply_custom = move || {
        let condition = custom.get_untracked();
        if let Err(why) = condition.validate() {
            announced.set(None);
            said.set(Some(Err(why.to_string())));
            return;
        }
        let mut body = NetworkRequest::to_json(FaultTarget::ALL, &condition);
        if let Some(fields) = body.as_object_mut() {
            fields.remove("lane");
            fields.insert("channel".into(), channel.get_untracked().into());
        }
        let words = format!("{} now runs over {}.", aimed(), condition.describe());
        send_network(body, words);
    };

    // The channels offered to the lab, by name: changed only when a channel comes or goes, so the
    // select is not rebuilt under the person's hand every second.
    let offered = Memo::new(move |_| {
        report.with(|r| {
            r.as_ref().map_or_else(Vec::new, |r| {
                r.channels
                    .iter()
                    .map(|c| (c.id.clone(), crate::figures::sentence(&named(c))))
                    .collect::<Vec<_>>()
            })
        })
    });
    let in_effect = move || {
        report.with(|current| {
            let current = current.as_ref()?;
            let on = |channel: &str| {
                if channel == "all" {
                    "every channel".to_owned()
                } else {
                    current
                        .channels
                        .iter()
                        .find(|c| c.id == channel)
                        .map_or_else(|| "a channel".to_owned(), named)
                }
            };
            let words = current
                .faults
                .iter()
                .map(|fault| {
                    let left = fault.remaining_ms.map_or_else(
                        || "until cleared".to_owned(),
                        |ms| format!("{} left", format_ms(ms as f64)),
                    );
                    format!("{} on {} ({left})", fault.kind.title(), on(&fault.channel))
                })
                .chain(current.networks.iter().map(|network| {
                    format!("{} on {}", network.condition.describe(), on(&network.channel))
                }))
                .collect::<Vec<_>>()
                .join(" · ");
            (!words.is_empty()).then(|| view! { <p class="hint" data-testid="app-in-effect">{format!("In effect: {words}.")}</p> })
        })
    };
    let proxy_url =
        move || report.with(|r| r.as_ref().map(|r| r.proxy_url.clone()).unwrap_or_default());

    // Built once: only what the report says is redrawn each second, never the controls a person may be
    // typing in (a field rebuilt under the cursor took "1500" as "1200500").
    view! {
        <Show when=move || report.with(Option::is_some)>
            <section class="app-view" aria-label="Your app" data-testid="app-view">
                <div class="har-head">
                    <h2>"Your app through the lab"</h2>
                    <a class="tool" href=proxy_url target="_blank" rel="noopener">
                        {move || format!("Open your app at {}", proxy_url())}
                    </a>
                    // Your app's traffic, not Switchboard's own lanes (the export further down).
                    <a class="tool" href="/api/app/har" download="your-app.har" data-testid="app-har">
                        "Download your app's HAR"
                    </a>
                </div>
                <p class="hint">
                    {move || report.with(|current| current.as_ref().map(|current| format!(
                        "Switchboard forwards {} to your app at {} and records its traffic: {} exchanges so far{}. Its channels are sorted by the rules of the HAR import.",
                        current.proxy_url,
                        current.upstream,
                        group_thousands(current.recorded),
                        if current.dropped > 0 { format!(" (the oldest {} dropped to stay bounded)", group_thousands(current.dropped)) } else { String::new() }
                    )))}
                </p>
                {move || report.with(|current| current.as_ref().and_then(|c| c.upstream_error.clone())).map(|why| view! {
                    <p class="banner" data-testid="app-upstream-error">{format!("Your app did not answer: {why}.")}</p>
                })}
                <div class="app-lab">
                    <label>
                        "Aim at "
                        <select aria-label="Channel" data-testid="app-channel-select"
                            on:change=move |event| channel.set(event_target_value(&event))>
                            <option value="all" selected=move || channel.get() == "all">"All channels"</option>
                            {move || offered.get().into_iter().map(|(id, name)| {
                                let selected = {
                                    let id = id.clone();
                                    move || channel.get() == id
                                };
                                view! { <option value=id selected=selected>{name}</option> }
                            }).collect_view()}
                        </select>
                    </label>
                    <label>
                        "for "
                        <select aria-label="Duration" on:change=move |event| {
                            if let Ok(ms) = event_target_value(&event).parse() { duration_ms.set(ms) }
                        }>
                            {[5_000u64, 15_000, 30_000, 60_000].into_iter().map(|ms| view! {
                                <option value=ms.to_string() selected=move || duration_ms.get() == ms>{format_ms(ms as f64)}</option>
                            }).collect_view()}
                        </select>
                    </label>
                    <label>
                        "idle timeout "
                        <input type="number" min="100" step="500" class="ms" aria-label="Idle timeout in milliseconds"
                            data-testid="app-idle-ms"
                            prop:value=move || idle_ms.get().to_string()
                            on:change=move |event| if let Ok(ms) = event_target_value(&event).parse() { idle_ms.set(ms) }/>
                        " ms"
                    </label>
                    <label>
                        "delay "
                        <input type="number" min="1" step="100" class="ms" aria-label="Delay in milliseconds"
                            prop:value=move || delay_ms.get().to_string()
                            on:change=move |event| if let Ok(ms) = event_target_value(&event).parse() { delay_ms.set(ms) }/>
                        " ms"
                    </label>
                    <label>
                        "network "
                        <select aria-label="Network" data-testid="app-network" on:change=move |event| set_network(event_target_value(&event))>
                            <option value="" selected=true disabled=true>"choose…"</option>
                            {PRESET_NAMES.into_iter().map(|name| view! {
                                <option value=name>{if name == "loopback" { "this machine".to_owned() } else { name.to_owned() }}</option>
                            }).collect_view()}
                        </select>
                    </label>
                </div>
                <CustomPath custom=custom prefix="app-network" disabled=false on_apply=apply_custom/>
                <div class="app-faults">
                    {OFFERED.into_iter().map(|kind| view! {
                        <button type="button" class="tool" title=kind.explanation()
                            data-testid=format!("app-fault-{}", kind.as_str())
                            on:click=move |_| inject(kind)>{kind.title()}</button>
                    }).collect_view()}
                    <button type="button" class="tool" data-testid="app-fault-clear" on:click=move |_| inject(AppFaultKind::Clear)>"Clear faults"</button>
                    <button type="button" class="tool" data-testid="app-start-over"
                        title="Forget the recording, figures and experiments; end every fault"
                        on:click=start_over>"Start over"</button>
                    {move || {
                        // Offered only while a half-open holds connections dead: they stay dead
                        // after it ends, as a path's would, and a tab may never give up on them.
                        let dead: u64 = report.with(|r| r.as_ref().map_or(0, |r| r.channels.iter().map(|c| c.dead).sum()));
                        (dead > 0).then(|| view! {
                            <button type="button" class="tool" data-testid="app-fault-release"
                                title=AppFaultKind::Release.explanation()
                                on:click=move |_| inject(AppFaultKind::Release)>
                                {format!("Release {dead} dead connection{}", if dead == 1 { "" } else { "s" })}
                            </button>
                        })
                    }}
                </div>
                <p class="har-status" role="status" data-testid="app-said"
                    class:refused=move || matches!(said.get(), Some(Err(_)))>
                    {move || match said_now() {
                        Some(Ok(text)) | Some(Err(text)) => text,
                        None => String::new(),
                    }}
                </p>
                {in_effect}
                <div class="app-table">
                <table class="app-channels">
                    <caption>"Your app's channels, since the proxy started"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"channel"</th>
                            <th scope="col">"requests"</th>
                            <th scope="col">"empty"</th>
                            <th scope="col">"messages"</th>
                            <th scope="col" title="Of the messages your app sent, those written to the browser's socket: not those held by a half-open, swallowed by a fault or lost with a cut">"the browser got"</th>
                            <th scope="col">"bytes ↓ / ↑"</th>
                            <th scope="col" title="Connections carrying the channel now: a socket or a stream open, a letter awaiting its answer. A kept-alive connection between letters is not counted.">"open"</th>
                            <th scope="col">"reconnects"</th>
                            <th scope="col">"heartbeat"</th>
                            <th scope="col" title="The longest your app sent nothing on the channel: what it sent, not what the browser got (see 'last got')">"longest silence"</th>
                            <th scope="col" title="When the browser last got a message of it">"last got"</th>
                            <th scope="col" title="Connections cut by a fault, and by the idle timeout">"cut: fault / idle"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {move || report.with(|r| r.as_ref().map(|r| r.channels.clone()).unwrap_or_default())
                            .into_iter()
                            .map(|c| view! { <ChannelRow channel=c/> })
                            .collect_view()}
                    </tbody>
                </table>
                </div>
                {move || report.with(|r| r.as_ref().is_some_and(|r| r.channels.is_empty())).then(|| view! {
                    <p class="hint">{format!("No channel yet: open your app at {} and use it; its polling, streams and sockets appear here.", proxy_url())}</p>
                })}
                <h3 class="findings-title">"What the lab found"</h3>
                <ul class="findings" data-testid="app-findings">
                    {move || report.with(|r| r.as_ref().map(|r| r.findings.clone()).unwrap_or_default())
                        .into_iter()
                        .map(finding_item)
                        .collect_view()}
                </ul>
                <div data-testid="app-experiments">
                    // Read in place: an experiment's figures are never copied for the page.
                    {move || report.with(|r| r.as_ref().map(|r| r.experiments.iter().map(experiment_view).collect_view()))}
                </div>
                <p class="hint">"On the swimlanes below (the last two minutes): red shading is a fault, blue tint an emulated network, a red line a connection the lab cut, a red tick a heartbeat it swallowed; hover for which."</p>
                {move || traffic.get().map(|imported| {
                    let (faults, cuts, networks) = report.with_untracked(|r| r.as_ref().map(|r| (
                        r.history.clone(),
                        r.cuts.clone(),
                        r.network_history.clone(),
                    )).unwrap_or_default());
                    view! { <ImportedView imported=imported faults=faults cuts=cuts networks=networks until_ms=crate::lanes::now_ms()/> }
                })}
            </section>
        </Show>
    }
}

/// Unix ms as the person's clock reads it: `10:44:20`.
fn clock(at_ms: f64) -> String {
    let local = -js_sys::Date::new_0().get_timezone_offset() * 60_000.0;
    let mut text = format_clock(at_ms + local);
    text.truncate(8);
    text
}

/// A finding, with the clock time of what it says when it has one.
fn finding_item(finding: Finding) -> impl IntoView {
    let at = finding
        .at_ms
        .map_or_else(String::new, |at| format!("{} ", clock(at)));
    view! { <li><time class="at">{at}</time>{finding.text}</li> }
}

/// One experiment: what it was, where it stands, and what it found in its window.
fn experiment_view(experiment: &Experiment) -> impl IntoView + use<> {
    let now = crate::lanes::now_ms();
    let what = &experiment.title;
    let state_now = experiment.state_at(now);
    let state = match state_now {
        ExperimentState::Running => "running".to_owned(),
        ExperimentState::Observing => match experiment.window_closes_ms {
            Some(closes) => format!("observing {} more", format_ms((closes - now).max(0.0))),
            None => "observing".to_owned(),
        },
        ExperimentState::Done => match experiment.superseded_by {
            Some(next) => format!("done (the next experiment, #{next}, began)"),
            None => "done".to_owned(),
        },
    };
    let (class, state_name) = match state_now {
        ExperimentState::Running => ("experiment running", "running"),
        ExperimentState::Observing => ("experiment running", "observing"),
        ExperimentState::Done => ("experiment", "done"),
    };
    let mut findings = experiment.findings.clone();
    if findings.is_empty() {
        findings.push(Finding {
            channel: None,
            text: if state_name == "done" {
                "Nothing happened."
            } else {
                "Nothing yet."
            }
            .to_owned(),
            at_ms: None,
        });
    }
    view! {
        <section class=class data-testid="app-experiment" data-state=state_name>
            <h4>
                {format!("#{} {what}", experiment.id)}
                <span class="when">{format!(" · {} · {state}", clock(experiment.started_ms))}</span>
            </h4>
            <ul class="findings">{findings.into_iter().map(finding_item).collect_view()}</ul>
        </section>
    }
}

/// What the browser got of what the app sent, in the table's words: "48 of 75", with what the rest
/// became.
fn got_words(got: &Got) -> String {
    if got.sent == 0 {
        return "–".to_owned();
    }
    let mut words = format!(
        "{} of {}",
        group_thousands(got.delivered),
        group_thousands(got.sent)
    );
    let apart: Vec<String> = [
        (got.withheld, "withheld"),
        (got.swallowed, "swallowed"),
        (got.lost, "lost"),
    ]
    .into_iter()
    .filter(|(count, _)| *count > 0)
    .map(|(count, what)| format!("{} {what}", group_thousands(count)))
    .collect();
    if !apart.is_empty() {
        words.push_str(&format!(" ({})", apart.join(", ")));
    }
    words
}

/// One channel's live figures.
#[component]
fn ChannelRow(channel: AppChannel) -> impl IntoView {
    let kind = channel.kind;
    view! {
        <tr class=super::har::colour(kind) data-testid="app-channel" data-kind=kind.as_str() data-id=channel.id.clone()>
            <th scope="row">
                <i class="dot" aria-hidden="true"></i>
                {kind.title()}
                <br/>
                <code>{channel.name.clone()}</code>
            </th>
            <td>{group_thousands(channel.requests)}</td>
            <td>{group_thousands(channel.empty_answers)}</td>
            <td data-testid="app-messages">{group_thousands(channel.messages)}</td>
            <td data-testid="app-got">{got_words(&channel.got)}</td>
            <td>{format!("{} / {}", format_bytes(channel.bytes_down as f64), format_bytes(channel.bytes_up as f64))}</td>
            <td data-testid="app-open">{if channel.dead > 0 { format!("{} ({} dead)", channel.open, channel.dead) } else { channel.open.to_string() }}</td>
            <td data-testid="app-reconnects">{channel.reconnects}</td>
            <td data-testid="app-heartbeat">{channel.heartbeat_ms.map_or_else(|| "none".to_owned(), |ms| format!("every {}", format_ms(ms)))}</td>
            <td>{channel.longest_silence_ms.map_or_else(|| "–".to_owned(), format_ms)}</td>
            <td data-testid="app-last-got">{channel.got.last_delivered_ms.map_or_else(|| "–".to_owned(), clock)}</td>
            <td data-testid="app-cuts">{format!("{} / {}", channel.cut_by_fault, channel.cut_by_idle_timeout)}</td>
        </tr>
    }
}
