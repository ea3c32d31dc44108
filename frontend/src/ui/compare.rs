//! The lanes side by side: a table with a column per lane and a row per figure, the best of each row
//! starred, and the verdict in words under it. Comparing the lanes is the point of the page; this is
//! where it takes one glance instead of reading six panels.

use leptos::prelude::*;
use switchboard_shared::{LaneId, PerLane};

use crate::dashboard::Dashboard;
use crate::figures::{Context, LastFault, ROWS, Row, Score, verdict};
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

/// What the verdict needs besides the scores.
fn context(store: &Store, now_ms: f64, started_ms: f64) -> Context {
    let last_fault = store.faults().back().map(|span| LastFault {
        kind: span.fault.kind,
        lanes: LaneId::ALL
            .into_iter()
            .filter(|&lane| span.covers(lane))
            .collect(),
        start_ms: span.start_ms,
    });
    let networks = PerLane::from_fn(|lane| {
        store
            .conditions()
            .current(lane)
            .filter(|condition| !condition.is_perfect())
            .map(|condition| condition.name.clone())
    });
    let since = store.scores_since_ms().unwrap_or(started_ms);
    Context {
        counted_ms: (now_ms - since).max(0.0),
        last_fault,
        networks,
    }
}

#[component]
pub fn CompareTable() -> impl IntoView {
    let dashboard = expect_context::<Dashboard>();
    let scores = live_scores();
    let context = Memo::new(move |_| {
        dashboard.changed.track();
        let now = dashboard.now_ms.get();
        dashboard
            .store
            .with_value(|store| context(store, now, dashboard.started_ms))
    });
    let said =
        Memo::new(move |_| scores.with(|scores| context.with(|context| verdict(scores, context))));

    view! {
        <section class="compare" aria-label="The lanes compared">
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
                    {ROWS.iter().map(|&row| view! { <CompareRow row=row scores=scores/> }).collect_view()}
                </tbody>
            </table>
            <p class="verdict" data-testid="verdict">{move || said.get()}</p>
        </section>
    }
}

#[component]
fn CompareRow(row: Row, scores: Memo<PerLane<Score>>) -> impl IntoView {
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
                            // The share of empty answers beside their count: the figure people quote.
                            {(row.key == "empty").then(|| view! {
                                <small>
                                    {move || scores.with(|scores| {
                                        let score = &scores[lane];
                                        // Only where there were some: "0 %" on every line would be noise.
                                        score
                                            .empty_percent
                                            .filter(|_| score.empty > 0)
                                            .map(|p| format!(" {p:.0} %"))
                                            .unwrap_or_default()
                                    })}
                                </small>
                            })}
                            {move || is_best().then(|| view! {
                                <i class="star" aria-hidden="true">" ★"</i>
                                <span class="sr-only">" (best)"</span>
                            })}
                        </td>
                    }
                })
                .collect_view()}
        </tr>
    }
}
