//! Small pictures for the scoreboard: a sparkline of deliveries per second and a delay histogram,
//! drawn as SVG so they stay crisp and cost no canvas.

use leptos::prelude::*;

const WIDTH: f64 = 120.0;
const HEIGHT: f64 = 28.0;

/// The polyline points of `values` scaled into the chart box (the top is the largest value).
pub fn sparkline_points(values: &[u32]) -> String {
    let top = f64::from(values.iter().copied().max().unwrap_or(0).max(1));
    let step = WIDTH / (values.len().max(2) - 1) as f64;
    values
        .iter()
        .enumerate()
        .map(|(i, &value)| {
            let x = i as f64 * step;
            let y = HEIGHT - 1.0 - f64::from(value) / top * (HEIGHT - 2.0);
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The sparkline in words, for a screen reader: the picture says "steady" or "bursty" at a glance,
/// the words give the numbers behind it.
pub fn sparkline_words(values: &[u32]) -> String {
    let total: u32 = values.iter().sum();
    let peak = values.iter().copied().max().unwrap_or(0);
    let now = values.last().copied().unwrap_or(0);
    format!(
        "Deliveries per second over the last minute: {total} in all, at most {peak} in a second, {now} in the last."
    )
}

/// The histogram in words: each bucket's bound and count.
pub fn histogram_words(counts: &[u32]) -> String {
    let buckets = crate::store::DELAY_BUCKETS
        .iter()
        .map(|&upper| format!("up to {}", crate::format::format_ms(upper)))
        .chain(std::iter::once("more".to_owned()));
    let parts: Vec<String> = buckets
        .zip(counts)
        .map(|(bucket, count)| format!("{bucket}: {count}"))
        .collect();
    format!("Delays of the recent events: {}.", parts.join(", "))
}

#[component]
pub fn Sparkline(values: Signal<Vec<u32>>) -> impl IntoView {
    view! {
        <svg
            class="sparkline"
            viewBox=format!("0 0 {WIDTH} {HEIGHT}")
            preserveAspectRatio="none"
            role="img"
            aria-label=move || sparkline_words(&values.get())
        >
            <polyline points=move || sparkline_points(&values.get())></polyline>
        </svg>
    }
}

#[component]
pub fn Histogram(counts: Signal<Vec<u32>>) -> impl IntoView {
    view! {
        <svg
            class="histogram"
            viewBox=format!("0 0 {WIDTH} {HEIGHT}")
            preserveAspectRatio="none"
            role="img"
            aria-label=move || histogram_words(&counts.get())
        >
            {move || {
                let counts = counts.get();
                let top = f64::from(counts.iter().copied().max().unwrap_or(0).max(1));
                let slot = WIDTH / counts.len().max(1) as f64;
                counts
                    .into_iter()
                    .enumerate()
                    .map(|(i, count)| {
                        let height = f64::from(count) / top * (HEIGHT - 2.0);
                        view! {
                            <rect
                                x=format!("{:.1}", i as f64 * slot + 1.0)
                                y=format!("{:.1}", HEIGHT - height)
                                width=format!("{:.1}", slot - 2.0)
                                height=format!("{height:.1}")
                            >
                                <title>{count.to_string()}</title>
                            </rect>
                        }
                    })
                    .collect_view()
            }}
        </svg>
    }
}

#[cfg(test)]
mod tests {
    use super::{histogram_words, sparkline_points, sparkline_words};

    #[test]
    fn sparkline_spans_the_box_with_the_peak_at_the_top() {
        let points = sparkline_points(&[0, 5, 10]);
        assert_eq!(points, "0.0,27.0 60.0,14.0 120.0,1.0");
        assert_eq!(sparkline_points(&[0, 0]), "0.0,27.0 120.0,27.0");
        assert_eq!(
            sparkline_words(&[0, 5, 10, 2]),
            "Deliveries per second over the last minute: 17 in all, at most 10 in a second, 2 in the last."
        );
        assert_eq!(
            histogram_words(&[4, 1, 0, 0, 0, 0, 0, 2]),
            "Delays of the recent events: up to 5 ms: 4, up to 20 ms: 1, up to 50 ms: 0, up to 100 ms: 0, \
             up to 250 ms: 0, up to 500 ms: 0, up to 1.0 s: 0, more: 2."
        );
    }
}
