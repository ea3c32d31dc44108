//! The lanes side by side: a table with a column per lane and a row per figure, the best of each row
//! starred, and the verdict in words under it. Comparing the lanes is the point of the page; this is
//! where it takes one glance instead of reading six panels.

use leptos::prelude::*;
use switchboard_shared::{LaneId, PerLane};

use crate::dashboard::Dashboard;
use crate::figures::{Context, ROWS, Row, Score, verdict};
use crate::format::format_ms;
use crate::lanes::now_ms;
use crate::store::Store;

/// Every lane's figures at the page's last refresh, worked out once for the table and all the panels.
#[derive(Debug, Clone, Copy)]
struct LiveScores(Memo<PerLane<Score>>);

/// The shared [`LiveScores`]: the page provides them once (in `Dashboard`); a component mounted on its
/// own (a test's lane panel) makes its own.
pub fn live_scores() -> Memo<PerLane<Score>> {
    if let Some(LiveScores(scores)) = use_context::<LiveScores>() {
        return scores;
    }
    let dashboard = expect_context::<Dashboard>();
    let scores = Memo::new(move |_| {
        dashboard.changed.track();
        let now = dashboard.now_ms.get();
        dashboard
            .store
            .with_value(|store| PerLane::from_fn(|lane| Score::of(store, lane, now)))
    });
    provide_context(LiveScores(scores));
    scores
}

/// The period before this one, as the table and the verdict show it beside the current one.
#[derive(Debug, Clone, PartialEq)]
struct Before {
    scores: PerLane<Score>,
    context: Context,
    /// "on 3g under bursty traffic, 2 min 0 s"
    label: String,
}

impl Before {
    fn of(store: &Store) -> Option<Before> {
        let closed = store.previous()?;
        let context = Context::closed(closed);
        let label = match &context.setting {
            Some(setting) => format!("{setting}, {}", format_ms(closed.duration_ms())),
            None => format_ms(closed.duration_ms()),
        };
        Some(Before {
            scores: PerLane::from_fn(|lane| Score::of_closed(closed, lane)),
            context,
            label,
        })
    }
}

#[component]
pub fn CompareTable() -> impl IntoView {
    let dashboard = expect_context::<Dashboard>();
    let scores = live_scores();
    let context = Memo::new(move |_| {
        dashboard.changed.track();
        let now = dashboard.now_ms.get();
        dashboard.store.with_value(|store| Context::now(store, now))
    });
    let said =
        Memo::new(move |_| scores.with(|scores| context.with(|context| verdict(scores, context))));
    let before = Memo::new(move |_| {
        dashboard.changed.track();
        dashboard.store.with_value(Before::of)
    });
    // Whether a person asked to see the period before beside this one.
    let comparing = RwSignal::new(false);
    let shown_before = Signal::derive(move || if comparing.get() { before.get() } else { None });
    let said_before = move || {
        shown_before.with(|before| {
            before
                .as_ref()
                .map(|before| verdict(&before.scores, &before.context))
        })
    };

    view! {
        <section class="compare" aria-label="The lanes compared">
            <PeriodBar before=before comparing=comparing/>
            <table data-testid="compare-table">
                <caption>"The lanes side by side: ★ marks the best of each row among the lanes that ran"</caption>
                <thead>
                    <tr>
                        <th scope="col" class="figure">"figure"</th>
                        {LaneId::ALL
                            .into_iter()
                            .map(|lane| view! {
                                <th scope="col" class=format!("lane-col lane-{lane}") title=lane.explanation()>
                                    <i class="dot" aria-hidden="true"></i>
                                    {lane.title()}
                                </th>
                            })
                            .collect_view()}
                    </tr>
                </thead>
                <tbody>
                    {ROWS
                        .iter()
                        .map(|&row| view! { <CompareRow row=row scores=scores before=shown_before/> })
                        .collect_view()}
                </tbody>
            </table>
            <p class="verdict" data-testid="verdict">{move || said.get()}</p>
            {move || said_before().map(|words| view! {
                <p class="verdict before" data-testid="verdict-before">
                    <b>"Before — "</b>{words}
                </p>
            })}
        </section>
    }
}

/// Which period the figures describe, what began it, the period before one click away, and a reset
/// that starts a period by hand.
#[component]
fn PeriodBar(before: Memo<Option<Before>>, comparing: RwSignal<bool>) -> impl IntoView {
    let dashboard = expect_context::<Dashboard>();
    let this_period = move || {
        dashboard.changed.track();
        let now = dashboard.now_ms.get();
        dashboard.store.with_value(|store| {
            let period = store.period();
            let lasted = format_ms((now - period.start_ms).max(0.0));
            let began = period.cause.words();
            match store.setting().words() {
                Some(setting) => {
                    format!("These figures: {setting}, for the last {lasted} (since {began}).")
                }
                None => format!("These figures: the last {lasted} (since {began})."),
            }
        })
    };
    let before_label = move || before.with(|before| before.as_ref().map(|b| b.label.clone()));
    view! {
        <div class="scores-bar">
            <span data-testid="scores-since">{this_period}</span>
            {move || before_label().map(|label| view! {
                <button
                    type="button"
                    class="tool"
                    data-testid="compare-before"
                    aria-pressed=move || comparing.get().to_string()
                    title="Show the period before this one beside it, figure by figure"
                    on:click=move |_| comparing.update(|on| *on = !*on)
                >
                    {format!("Before: {label}")}
                </button>
            })}
            <button
                type="button"
                class="tool"
                data-testid="reset-scores"
                title="Start a new period: every lane's figures afresh, the one before kept for comparison; the timeline keeps what it shows"
                on:click=move |_| {
                    dashboard.touch(|store| store.reset_scores(now_ms()));
                    dashboard.refresh(now_ms());
                }
            >
                "Reset scoreboards"
            </button>
        </div>
    }
}

#[component]
fn CompareRow(
    row: Row,
    scores: Memo<PerLane<Score>>,
    before: Signal<Option<Before>>,
) -> impl IntoView {
    let best = Memo::new(move |_| scores.with(|scores| row.best(scores)));
    view! {
        <tr data-row=row.key>
            <th scope="row" title=row.means>{row.name}</th>
            {LaneId::ALL
                .into_iter()
                .map(|lane| {
                    let is_best = move || best.with(|best| best.contains(&lane));
                    view! {
                        <td class=format!("lane-{lane}") class:best=is_best>
                            <span data-testid=format!("{lane}-{}", row.key)>
                                {move || scores.with(|scores| (row.shown)(&scores[lane]))}
                            </span>
                            {row.aside.map(|aside| view! {
                                <small>{move || scores.with(|scores| aside(&scores[lane]).unwrap_or_default())}</small>
                            })}
                            {move || is_best().then(|| view! {
                                <i class="star" aria-hidden="true">" ★"</i>
                                <span class="sr-only">" (best)"</span>
                            })}
                            {move || before.with(|before| before.as_ref().map(|before| view! {
                                <small class="before" data-testid=format!("{lane}-{}-before", row.key)>
                                    <span class="sr-only">"before: "</span>
                                    {(row.shown)(&before.scores[lane])}
                                </small>
                            }))}
                        </td>
                    }
                })
                .collect_view()}
        </tr>
    }
}
