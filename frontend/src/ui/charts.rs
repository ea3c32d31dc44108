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

#[component]
pub fn Sparkline(values: Signal<Vec<u32>>) -> impl IntoView {
    view! {
        <svg class="sparkline" viewBox=format!("0 0 {WIDTH} {HEIGHT}") preserveAspectRatio="none" role="img">
            <polyline points=move || sparkline_points(&values.get())></polyline>
        </svg>
    }
}

#[component]
pub fn Histogram(counts: Signal<Vec<u32>>) -> impl IntoView {
    view! {
        <svg class="histogram" viewBox=format!("0 0 {WIDTH} {HEIGHT}") preserveAspectRatio="none" role="img">
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
    use super::sparkline_points;

    #[test]
    fn sparkline_spans_the_box_with_the_peak_at_the_top() {
        let points = sparkline_points(&[0, 5, 10]);
        assert_eq!(points, "0.0,27.0 60.0,14.0 120.0,1.0");
        assert_eq!(sparkline_points(&[0, 0]), "0.0,27.0 120.0,27.0");
    }
}
