//! What the timeline says beside its canvas: the line under the pointer, the legend, and the detail of
//! the picked message (its figures, its payload, the same seq on every lane).

use leptos::prelude::*;
use switchboard_shared::LaneId;

use super::layout::Picked;
use super::words;
use crate::dashboard::Dashboard;
use crate::format::{format_bytes, format_clock, format_ms};
use crate::lanes::now_ms;
use crate::store::{MarkKind, Outcome, Store};

pub(super) fn hover_text(picked: &Picked) -> String {
    match picked {
        Picked::Mark(mark) => mark.summary(),
        Picked::Span(span) => span_summary(span),
    }
}

fn span_summary(span: &crate::store::Span) -> String {
    let outcome = match &span.outcome {
        Outcome::Pending => "waiting…".to_owned(),
        Outcome::News(n) => format!("{n} event{}", if *n == 1 { "" } else { "s" }),
        Outcome::Empty => "nothing new (wasted postage)".to_owned(),
        Outcome::Failed(why) => format!("failed: {why}"),
        Outcome::Open => "open".to_owned(),
        Outcome::Closed { code, reason } => match code {
            Some(code) => format!("closed {code} {reason}"),
            None => format!("closed: {reason}"),
        },
    };
    let took = span
        .end_ms
        .map(|end| format!(" · {}", format_ms(end - span.start_ms)))
        .unwrap_or_default();
    let cache = if span.cached {
        " · answered by the proxy's cache"
    } else {
        ""
    };
    format!(
        "{} · {outcome}{took}{cache} · ↑{} ↓{}",
        span.label,
        format_bytes(span.bytes_up as f64),
        format_bytes(span.bytes_down as f64)
    )
}

#[component]
pub(super) fn Legend() -> impl IntoView {
    view! {
        <ul class="legend" aria-label="How to read the timeline">
            <li><i class="key key-letter"></i>"letter: request ▲ and answer ●, joined by its round trip"</li>
            <li><i class="key key-empty"></i>"empty answer: hollow and grey — wasted postage"</li>
            <li><i class="key key-failed"></i>"failed letter: hollow red — a 503, or no answer at all"</li>
            <li><i class="key key-cached"></i>"boxed answer: a proxy's cache answered the letter, not the server"</li>
            <li><i class="key key-held"></i>"held letter: the bar is the time the server held it"</li>
            <li><i class="key key-band"></i>"radio: one open stream, events as ticks below"</li>
            <li><i class="key key-line"></i>"phone call: one line; browser frames ■ above, server frames below"</li>
            <li><i class="glyph">"◇"</i>"heartbeat: the server saying \"still here\" — without it a quiet line and a dead one look the same"</li>
            <li><i class="glyph bad">"✱"</i>"the watchdog hung up: no heartbeat for too long"</li>
            <li><i class="glyph bad">"✕"</i>"trouble the server told of: events lost for good, an error, a restart"</li>
            <li><i class="key key-close"></i>"hang-up, with its close code; a dashed line is a call still dialling"</li>
            <li><i class="key key-fault"></i>"⚡ red shading: a fault from the failure lab, on the lanes it hits"</li>
            <li><i class="key key-network"></i>"≈ tinted row: the lane runs over an emulated network (round trip, bandwidth, loss)"</li>
            <li><i class="key key-hidden"></i>"hatched: the page was in a background tab"</li>
            <li><i class="key key-traffic"></i>"⇢ dashed: the traffic pattern changed here"</li>
            <li><i class="key key-trace"></i>"click an event: its seq is outlined on every lane, with how much later each got it"</li>
        </ul>
    }
}

/// The full message of the clicked mark, or the exchange or line under the pointer.
#[component]
pub(super) fn Detail(selected: RwSignal<Option<Picked>>, open: RwSignal<bool>) -> impl IntoView {
    let dashboard = expect_context::<Dashboard>();
    move || {
        if !open.get() {
            return None;
        }
        let picked = selected.get()?;
        let in_words = dashboard
            .store
            .with_value(|store| words::explain(store, &picked, now_ms()));
        let rows: Vec<(&'static str, String)> = match &picked {
            Picked::Mark(mark) => {
                let carrier = dashboard
                    .store
                    .with_value(|store: &Store| {
                        store.span(mark.span).map(|span| span.label.clone())
                    })
                    .unwrap_or_else(|| "(fallen off the timeline)".into());
                let mut rows = vec![("lane", mark.lane.title().to_owned())];
                match &mark.what {
                    MarkKind::Event {
                        seq,
                        kind,
                        delay_ms,
                        payload,
                        ..
                    } => {
                        rows.push(("seq", seq.to_string()));
                        rows.push(("kind", (*kind).to_owned()));
                        rows.push((
                            "delay",
                            format!("{} after the server stamped it", format_ms(*delay_ms)),
                        ));
                        let local = -js_sys::Date::new_0().get_timezone_offset() * 60_000.0;
                        rows.push((
                            "stamped",
                            format!(
                                "{} on this page's clock (the payload's ts_ms)",
                                format_clock(mark.at_ms - delay_ms + local)
                            ),
                        ));
                        // The same seq on every lane: when it came on each, and how much later.
                        let trace = dashboard.store.with_value(|store| store.trace(*seq));
                        for lane in LaneId::ALL {
                            rows.push((lane.title(), trace.describe(lane)));
                        }
                        rows.push((
                            "bytes on the wire",
                            format!(
                                "{} (headers and framing included)",
                                format_bytes(mark.bytes as f64)
                            ),
                        ));
                        rows.push(("carried by", format!("{carrier} (#{})", mark.span)));
                        rows.push(("payload", payload.clone()));
                    }
                    _ => {
                        rows.push(("what", mark.summary()));
                        rows.push(("carried by", format!("{carrier} (#{})", mark.span)));
                        if let MarkKind::Sent { detail, .. } | MarkKind::Received { detail, .. } =
                            &mark.what
                        {
                            rows.push(("payload", detail.clone()));
                        }
                    }
                }
                rows
            }
            Picked::Span(span) => {
                vec![
                    ("lane", span.lane.title().to_owned()),
                    ("what", words::span_kind(span.lane).to_owned()),
                    ("summary", span_summary(span)),
                    ("events carried", span.events.to_string()),
                ]
            }
        };
        Some(view! {
            <div class="detail" data-testid="timeline-detail" title="Esc closes" role="region" aria-label="The selected message">
                <button class="close" on:click=move |_| open.set(false) title="Close" aria-label="Close the detail">"×"</button>
                <p class="in-words" data-testid="detail-words">{in_words}</p>
                <dl>
                    {rows
                        .into_iter()
                        .map(|(name, value)| {
                            let pre = name == "payload";
                            // A lane's row of a traced seq can be found by its lane.
                            let testid = LaneId::ALL
                                .into_iter()
                                .find(|lane| lane.title() == name)
                                .map(|lane| format!("trace-{}", lane.as_str()));
                            view! {
                                <dt>{name}</dt>
                                <dd data-testid=testid>{if pre { view! { <pre>{value}</pre> }.into_any() } else { value.into_any() }}</dd>
                            }
                        })
                        .collect_view()}
                </dl>
            </div>
        })
    }
}
