//! Your own traffic: open a HAR from the browser's developer tools (a file input, or dropped on the
//! panel) and see its polling, long polling, streams and sockets as swimlanes with their figures and a
//! verdict; export this session as a HAR. Everything happens in the page: nothing is uploaded.

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_shared::stats::group_thousands;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::dashboard::Dashboard;
use crate::format::{format_bytes, format_clock, format_ms};
use crate::har::model::{Entry, split_entries};
use crate::har::{Channel, ChannelKind, Har, HarError, Imported, Item, classify};
use crate::lanes::sleep;

/// Bytes read from the file between two progress updates.
const READ_CHUNK: f64 = 4.0 * 1024.0 * 1024.0;
/// Entries parsed between two turns of the page's event loop.
const PARSE_BATCH: usize = 250;
/// Items drawn per swimlane: beyond this an SVG costs more than it shows.
const DRAWN: usize = 3_000;

/// How the import is going, for the status line.
#[derive(Debug, Clone, PartialEq)]
enum Status {
    Idle,
    Busy(String),
    Done(String),
    Refused(String),
}

/// Reads a file in chunks, saying how far it got.
async fn read_file(file: &web_sys::File, status: RwSignal<Status>) -> Result<String, String> {
    let size = file.size();
    let mut bytes = Vec::with_capacity(size as usize);
    let mut at = 0.0;
    while at < size {
        let end = (at + READ_CHUNK).min(size);
        let chunk = file
            .slice_with_f64_and_f64(at, end)
            .map_err(|err| format!("{err:?}"))?;
        let buffer = JsFuture::from(chunk.array_buffer())
            .await
            .map_err(|err| format!("the browser could not read the file: {err:?}"))?;
        bytes.extend(js_sys::Uint8Array::new(&buffer).to_vec());
        at = end;
        status.set(Status::Busy(format!(
            "reading {} of {}…",
            format_bytes(at),
            format_bytes(size)
        )));
    }
    String::from_utf8(bytes).map_err(|_| "This file is not text (UTF-8): not a HAR.".to_owned())
}

/// Parses a HAR an entry batch at a time, letting the page breathe between batches, so a 50 MB file
/// does not freeze it.
pub async fn parse_in_batches(
    text: &str,
    progress: impl Fn(usize, usize),
) -> Result<Har, HarError> {
    let Some((rest, items)) = split_entries(text) else {
        // Not the shape of a HAR: say whether it was JSON at all.
        return Err(Har::parse(text)
            .err()
            .unwrap_or_else(|| HarError::NotHar("it has no log.entries".to_owned())));
    };
    let mut har = Har::parse(&rest)?;
    let total = items.len();
    for (batch_index, batch) in items.chunks(PARSE_BATCH).enumerate() {
        for &(from, to) in batch {
            let entry: Entry = serde_json::from_str(&text[from..to]).map_err(|err| {
                HarError::NotHar(format!(
                    "entry {} is not a HAR entry: {err}",
                    har.log.entries.len() + 1
                ))
            })?;
            har.log.entries.push(entry);
        }
        progress((batch_index * PARSE_BATCH + batch.len()).min(total), total);
        sleep(0).await;
    }
    Ok(har)
}

#[component]
pub fn HarPanel() -> impl IntoView {
    let dashboard = expect_context::<Dashboard>();
    let imported = RwSignal::new(None::<Imported>);
    let status = RwSignal::new(Status::Idle);
    let dragging = RwSignal::new(false);
    let open = move |file: web_sys::File| {
        spawn_local(async move {
            let name = file.name();
            status.set(Status::Busy(format!("reading {name}…")));
            // A refused file names itself, and the channels of the previous file go: they would read
            // as this one's.
            let refused = name.clone();
            let refuse = move |why: String| {
                imported.set(None);
                status.set(Status::Refused(format!("{refused}: {why}")));
            };
            let text = match read_file(&file, status).await {
                Ok(text) => text,
                Err(why) => return refuse(why),
            };
            let progress = move |done: usize, total: usize| {
                status.set(Status::Busy(format!(
                    "reading entries: {} of {}…",
                    group_thousands(done as u64),
                    group_thousands(total as u64)
                )));
            };
            match parse_in_batches(&text, progress).await {
                Ok(har) => {
                    let found = classify(&har);
                    status.set(Status::Done(format!(
                        "{name}: {} entries, {} channel{} found{}.",
                        group_thousands(har.log.entries.len() as u64),
                        found.channels.len(),
                        if found.channels.len() == 1 { "" } else { "s" },
                        if found.other_requests > 0 {
                            format!(
                                "; {} other requests (pages, scripts, one-off calls) left out",
                                group_thousands(found.other_requests)
                            )
                        } else {
                            String::new()
                        }
                    )));
                    imported.set(Some(found));
                }
                Err(why) => refuse(why.to_string()),
            }
        });
    };
    let on_pick = move |event: web_sys::Event| {
        let input: Option<web_sys::HtmlInputElement> =
            event.target().and_then(|target| target.dyn_into().ok());
        if let Some(file) = input
            .and_then(|input| input.files())
            .and_then(|files| files.get(0))
        {
            open(file);
        }
    };
    let on_drop = move |event: web_sys::DragEvent| {
        event.prevent_default();
        dragging.set(false);
        if let Some(file) = event
            .data_transfer()
            .and_then(|transfer| transfer.files())
            .and_then(|files| files.get(0))
        {
            open(file);
        }
    };
    let export = move |_| {
        let origin = web_sys::window()
            .and_then(|window| window.location().origin().ok())
            .unwrap_or_default();
        let (har, whole_since) = dashboard.store.with_value(|store| {
            (
                crate::har::export::session(store, &origin),
                store.recording().whole_since_ms(),
            )
        });
        match serde_json::to_string_pretty(&har) {
            Ok(text) => {
                let name = format!(
                    "switchboard-{}.har",
                    crate::har::model::format_date_time(crate::lanes::now_ms())
                        .replace([':', '.'], "-")
                );
                match download(&name, &text) {
                    Ok(()) => status.set(Status::Done(match whole_since {
                        None => format!(
                            "Exported {} entries as {name}: the whole session.",
                            har.log.entries.len()
                        ),
                        Some(since) => {
                            let local = -js_sys::Date::new_0().get_timezone_offset() * 60_000.0;
                            format!(
                                "Exported {} entries as {name}: the session from {} on (older exchanges were let go of to stay bounded; the file says so too).",
                                har.log.entries.len(),
                                format_clock(since + local)
                            )
                        }
                    })),
                    Err(why) => status.set(Status::Refused(why)),
                }
            }
            Err(err) => status.set(Status::Refused(err.to_string())),
        }
    };

    view! {
        <section
            class="har"
            class:dragging=move || dragging.get()
            aria-label="Your own traffic"
            on:dragover=move |event: web_sys::DragEvent| {
                event.prevent_default();
                dragging.set(true);
            }
            on:dragleave=move |_| dragging.set(false)
            on:drop=on_drop
        >
            <div class="har-head">
                <h2>"Your own traffic"</h2>
                <label class="tool open-har">
                    "Open a HAR…"
                    <input
                        type="file"
                        accept=".har,.json,application/json"
                        data-testid="open-har"
                        on:change=on_pick
                    />
                </label>
                <button type="button" class="tool" data-testid="export-har" on:click=export>
                    "Export this session as HAR"
                </button>
            </div>
            <p class="hint">
                "Save your own app's traffic from the browser's developer tools (Network tab, \"Save all as HAR\") and open it here, or drop it on this panel: its polling, long polling, streams and sockets appear as swimlanes with their figures. It is read in this page; nothing is uploaded."
            </p>
            <p
                class="har-status"
                class:refused=move || matches!(status.get(), Status::Refused(_))
                data-testid="har-status"
                role="status"
            >
                {move || match status.get() {
                    Status::Idle => String::new(),
                    Status::Busy(text) | Status::Done(text) | Status::Refused(text) => text,
                }}
            </p>
            {move || imported.get().map(|imported| view! { <ImportedView imported=imported/> })}
        </section>
    }
}

/// Offers `text` as a file download named `name`.
fn download(name: &str, text: &str) -> Result<(), String> {
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("application/json");
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)
        .map_err(|err| format!("{err:?}"))?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|err| format!("{err:?}"))?;
    let document = web_sys::window()
        .and_then(|window| window.document())
        .ok_or("no document")?;
    let link: web_sys::HtmlAnchorElement = document
        .create_element("a")
        .map_err(|err| format!("{err:?}"))?
        .unchecked_into();
    link.set_href(&url);
    link.set_download(name);
    link.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}

/// The file's channels, each a swimlane on one shared time axis with its figures and verdict.
#[component]
pub fn ImportedView(
    imported: Imported,
    /// Faults to shade on the swimlanes they hit (the app proxy's lab); none for a file.
    #[prop(optional)]
    faults: Vec<switchboard_shared::app::AppFaultSpan>,
    /// Connections the lab cut, marked on their channels' swimlanes.
    #[prop(optional)]
    cuts: Vec<switchboard_shared::app::AppCut>,
    /// Emulated networks, tinting the swimlanes of the channels they were on.
    #[prop(optional)]
    networks: Vec<switchboard_shared::app::AppNetworkSpan>,
    /// Where the axis ends, when the traffic is live (now); otherwise the file's last moment.
    #[prop(optional)]
    until_ms: Option<f64>,
) -> impl IntoView {
    let from = imported
        .channels
        .iter()
        .map(|channel| channel.start_ms)
        .fold(f64::INFINITY, f64::min);
    let to = imported
        .channels
        .iter()
        .map(|channel| channel.end_ms)
        .fold(f64::NEG_INFINITY, f64::max)
        .max(until_ms.unwrap_or(f64::NEG_INFINITY));
    if imported.channels.is_empty() {
        return view! {
            <p class="imported-none" data-testid="imported-none">
                "No polling loop, long poll, event stream or WebSocket in this file: its requests were each made once or twice, or at no steady pace."
            </p>
        }
        .into_any();
    }
    let local = -js_sys::Date::new_0().get_timezone_offset() * 60_000.0;
    view! {
        <div class="imported-view">
            <p class="imported-axis">
                {format!(
                    "From {} to {} ({}){}",
                    format_clock(from + local),
                    format_clock(to + local),
                    format_ms(to - from),
                    if imported.creator.is_empty() { String::new() } else { format!(", recorded by {}", imported.creator) }
                )}
            </p>
            {imported.comment.clone().map(|comment| view! {
                <p class="imported-axis" data-testid="imported-comment">{format!("The file says: {comment}")}</p>
            })}
            {imported
                .channels
                .into_iter()
                .map(|channel| {
                    let id = switchboard_shared::app::channel_id(&channel.name);
                    let shaded: Vec<(f64, f64, &'static str)> = faults
                        .iter()
                        .filter(|fault| fault.hits(&id))
                        .map(|fault| (
                            fault.started_ms,
                            fault.ended_ms.unwrap_or(to),
                            fault.kind.title(),
                        ))
                        .collect();
                    let cut: Vec<(f64, &'static str)> = cuts
                        .iter()
                        .filter(|cut| cut.channel == id)
                        .map(|cut| (cut.at_ms, cut.by.words()))
                        .collect();
                    let tinted: Vec<(f64, f64, String)> = networks
                        .iter()
                        .filter(|network| network.covers(&id))
                        .map(|network| (
                            network.started_ms,
                            network.ended_ms.unwrap_or(to),
                            format!("on {}", network.name),
                        ))
                        .collect();
                    view! { <ImportedChannel channel=channel from=from to=to shaded=shaded cuts=cut tinted=tinted/> }
                })
                .collect_view()}
        </div>
    }
    .into_any()
}

/// The lane colour a channel borrows from the live lane of its kind.
/// A channel's lane colour (its class), imported or live.
pub fn colour(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Letters => "lane-poll",
        ChannelKind::Held => "lane-longpoll",
        ChannelKind::Radio => "lane-sse",
        ChannelKind::Phone => "lane-ws",
    }
}

#[component]
fn ImportedChannel(
    channel: Channel,
    from: f64,
    to: f64,
    /// Faults that hit the channel: from, to, what.
    #[prop(optional)]
    shaded: Vec<(f64, f64, &'static str)>,
    /// Connections the lab cut: when, and how.
    #[prop(optional)]
    cuts: Vec<(f64, &'static str)>,
    /// Emulated networks on the channel: from, to, which.
    #[prop(optional)]
    tinted: Vec<(f64, f64, String)>,
) -> impl IntoView {
    let span = (to - from).max(1.0);
    let x = move |t: f64| (t - from) / span * 1000.0;
    // A span of time over the swimlane (a network's tint, a fault's shade, a cut's line), clipped to
    // what the swimlane shows, at least `min_width` wide, named on hover.
    let band = move |class: &'static str, start: f64, end: f64, min_width: f64, what: String| {
        (end >= from && start <= to).then(|| {
            let left = x(start.max(from));
            let width = (x(end.min(to)) - left).max(min_width);
            view! {
                <rect class=class x=format!("{left:.1}") y="0" width=format!("{width:.1}") height="44">
                    <title>{what}</title>
                </rect>
            }
        })
    };
    let tint = tinted
        .into_iter()
        .filter_map(|(start, end, what)| band("network-tint", start, end, 1.0, what))
        .collect_view();
    let cut_marks = cuts
        .into_iter()
        .filter_map(|(at, what)| {
            band(
                "cut",
                at - span / 1000.0,
                at + span / 1000.0,
                2.0,
                what.to_owned(),
            )
        })
        .collect_view();
    // A drop is an instant: shown as a thin band.
    let shading = shaded
        .into_iter()
        .filter_map(|(start, end, what)| band("fault-span", start, end, 2.0, what.to_owned()))
        .collect_view();
    let drawn: Vec<_> = channel.items.iter().take(DRAWN).cloned().collect();
    let more = channel.items.len().saturating_sub(DRAWN);
    let shapes = drawn
        .into_iter()
        .map(|item| match item {
            Item::Letter {
                start_ms,
                end_ms,
                status,
                empty,
                wait_ms,
                ..
            } => {
                let class = if status == 0 || status >= 400 {
                    "answer failed"
                } else if empty.is_some() {
                    "answer empty"
                } else {
                    "answer news"
                };
                let held = (channel.kind == ChannelKind::Held).then(|| {
                    view! {
                        <rect class="held-bar" x=format!("{:.1}", x(end_ms - wait_ms)) y="17"
                            width=format!("{:.1}", (x(end_ms) - x(end_ms - wait_ms)).max(0.5)) height="8"></rect>
                    }
                });
                view! {
                    <g>
                        <rect class="ask" x=format!("{:.1}", x(start_ms) - 0.6) y="6" width="1.2" height="8"></rect>
                        {held}
                        <rect class=class x=format!("{:.1}", x(end_ms) - 1.2) y="28" width="2.4" height="10"></rect>
                    </g>
                }
                .into_any()
            }
            Item::Line { start_ms, end_ms } => {
                let (y, height) = if channel.kind == ChannelKind::Radio { ("15", "12") } else { ("20", "2") };
                view! {
                    <rect class="line" x=format!("{:.1}", x(start_ms)) y=y
                        width=format!("{:.1}", (x(end_ms) - x(start_ms)).max(0.5)) height=height></rect>
                }
                .into_any()
            }
            Item::Frame { at_ms, up, heartbeat, swallowed, .. } => {
                let (class, y, height) = match (up, heartbeat, swallowed) {
                    (true, ..) => ("frame up", "6", "8"),
                    // What the lab kept from the browser: drawn where it would have come, in red.
                    (false, _, true) => ("frame swallowed", "17", "8"),
                    (false, true, false) => ("frame beat", "17", "8"),
                    (false, false, false) => ("frame down", "26", "10"),
                };
                view! {
                    <rect class=class x=format!("{:.1}", x(at_ms) - 0.6) y=y width="1.2" height=height></rect>
                }
                .into_any()
            }
        })
        .collect_view();
    let empty_rules = channel
        .empty_by
        .iter()
        .map(|(rule, count)| format!("{} × {}", group_thousands(*count), rule.words()))
        .collect::<Vec<_>>()
        .join(", ");
    let figure =
        |name: &'static str, value: String| view! { <div><dt>{name}</dt><dd>{value}</dd></div> };
    view! {
        <article
            class=format!("imported {}", colour(channel.kind))
            data-testid="imported-channel"
            data-kind=channel.kind.as_str()
        >
            <header>
                <h3><i class="dot" aria-hidden="true"></i>{channel.title}</h3>
                <code>{channel.name.clone()}</code>
            </header>
            <svg
                class="swimlane"
                viewBox="0 0 1000 44"
                preserveAspectRatio="none"
                role="img"
                aria-label=format!("{} on the file's time axis: {}", channel.title, channel.verdict())
            >
                {tint}
                {shading}
                {shapes}
                {cut_marks}
            </svg>
            {(more > 0).then(|| view! {
                <p class="hint">{format!("The first {} of {} marks are drawn.", group_thousands(DRAWN as u64), group_thousands(channel.items.len() as u64))}</p>
            })}
            <dl class="score">
                <div><dt>"requests"</dt><dd data-testid="imported-requests">{group_thousands(channel.requests)}</dd></div>
                <div>
                    <dt>"empty answers"</dt>
                    <dd>
                        <span data-testid="imported-empty">{group_thousands(channel.empty)}</span>
                        <small>{channel.empty_percent().filter(|_| channel.empty > 0).map(|p| format!(" {p:.0} %")).unwrap_or_default()}</small>
                    </dd>
                </div>
                <div><dt>"frames · events"</dt><dd data-testid="imported-frames">{group_thousands(channel.frames)}</dd></div>
                {figure("bytes ↓", format_bytes(channel.bytes_down as f64))}
                {figure("bytes ↑", format_bytes(channel.bytes_up as f64))}
                {figure("reconnects", group_thousands(channel.reconnects))}
                {channel.interval_ms.map(|ms| figure("asks every", format_ms(ms)))}
                {channel.held_ms.map(|ms| figure("held (median)", format_ms(ms)))}
                {channel.frames_per_second.map(|rate| figure("frames a second", format!("{rate:.2}")))}
                {matches!(channel.kind, ChannelKind::Radio | ChannelKind::Phone).then(|| figure(
                    "heartbeat",
                    channel.heartbeat_ms.map_or_else(
                        || if channel.heartbeats > 0 { format!("{} seen", channel.heartbeats) } else { "none".to_owned() },
                        |ms| format!("every {}", format_ms(ms)),
                    ),
                ))}
                {channel.heartbeat_ms.map(|_| figure("silences > 2.5 beats", channel.silences.to_string()))}
            </dl>
            {(!empty_rules.is_empty()).then(|| view! { <p class="hint">{format!("Counted empty: {empty_rules}.")}</p> })}
            <p class="verdict" data-testid="imported-verdict">{channel.verdict()}</p>
        </article>
    }
}
