//! The timeline's backdrop, drawn under the spans and marks: network conditions and hidden-tab times
//! shaded per lane, faults shaded with their edges, traffic-pattern changes marked, the time grid and its
//! axis labels, and a hint when the window holds nothing.

use switchboard_shared::{LaneId, PerLane, Reach};

/// Lines a row's fault labels may take, and their height.
const LABEL_LINES: usize = 3;
const LABEL_LINE_PX: f64 = 11.0;
use web_sys::CanvasRenderingContext2d;

use super::draw::{Palette, dash};
use super::layout::{AXIS_PX, Layout};
use super::view::View;
use crate::store::Store;

/// Tints each lane's row for as long as it ran over an emulated network, named at the bottom of the
/// row where it began (or at the window's left edge, so a condition in effect stays named), and hatches
/// the times the page was hidden across every row.
/// How far above a row's middle line its marks reach (a browser's frame, 14 px up, 5 px tall).
const MARKS_RISE_PX: f64 = 15.0;

pub(super) fn conditions(
    ctx: &CanvasRenderingContext2d,
    store: &Store,
    view: &View,
    layout: &Layout,
    palette: &Palette,
    now_ms: f64,
) -> usize {
    let mut shaded = 0;
    ctx.set_font("600 10px system-ui, sans-serif");
    ctx.set_text_align("left");
    ctx.set_text_baseline("bottom");
    for span in store.conditions().spans() {
        let end = span.end_ms.unwrap_or(now_ms);
        if !view.shows(span.start_ms, end) {
            continue;
        }
        shaded += 1;
        let left = view.x_of(span.start_ms).max(0.0).round();
        let right = view.x_of(end).min(layout.width).round();
        let top = layout.row_top(span.lane);
        ctx.set_fill_style_str(palette.network);
        ctx.fill_rect(left, top, (right - left).max(1.0), layout.row_height());
        // In the row's top band, above everything a mark draws (the highest, a browser's frame, sits
        // 14 px over the middle line): at the bottom the words sat on the event ticks. On a plate of
        // the background, so a letter's arc that rises high does not cross them.
        let label = format!("≈ {}", span.condition.describe());
        let width = ctx
            .measure_text(&label)
            .map_or(label.len() as f64 * 5.5, |metrics| metrics.width());
        let band = (layout.row_mid(span.lane) - MARKS_RISE_PX - top).max(10.0);
        let baseline = top + band.min(12.0);
        ctx.set_global_alpha(0.85);
        ctx.set_fill_style_str(palette.background);
        ctx.fill_rect(left + 2.0, baseline - 10.0, width + 4.0, 10.0);
        ctx.set_global_alpha(1.0);
        ctx.set_fill_style_str(palette.network_text);
        let _ = ctx.fill_text(&label, left + 4.0, baseline);
    }
    let axis_top = layout.height - AXIS_PX;
    for span in store.conditions().hidden() {
        let end = span.end_ms.unwrap_or(now_ms);
        if !view.shows(span.start_ms, end) {
            continue;
        }
        shaded += 1;
        let left = view.x_of(span.start_ms).max(0.0).round();
        let right = view.x_of(end).min(layout.width).round();
        ctx.save();
        ctx.begin_path();
        ctx.rect(left, 0.0, (right - left).max(1.0), axis_top);
        ctx.clip();
        // Diagonal hatching across every row: the page was not looking.
        ctx.set_stroke_style_str(palette.hidden);
        ctx.set_line_width(5.0);
        ctx.begin_path();
        let mut x = left - axis_top;
        while x < right {
            ctx.move_to(x, axis_top);
            ctx.line_to(x + axis_top, 0.0);
            x += 16.0;
        }
        ctx.stroke();
        ctx.restore();
        ctx.set_fill_style_str(palette.muted);
        ctx.set_text_baseline("top");
        let _ = ctx.fill_text("tab in background", left + 4.0, 2.0);
        ctx.set_text_baseline("bottom");
    }
    shaded
}

/// Shades each fault over the lanes it hit, from its start to its end (an instant fault is a bar a few
/// pixels wide), labelled with its kind on its first lane, so a person sees what broke and when. A lane
/// the kind only half touches (503s on an open line: only a new dial would be refused) gets a thin
/// strip along its foot, and one it does not touch nothing. Returns the rows shaded whole.
pub(super) fn faults(
    ctx: &CanvasRenderingContext2d,
    store: &Store,
    view: &View,
    layout: &Layout,
    palette: &Palette,
) -> usize {
    ctx.set_font("600 10px system-ui, sans-serif");
    ctx.set_text_align("left");
    ctx.set_text_baseline("top");
    // Where each row's label lines end, so a fault begun just after another is named on the next line
    // instead of over it ("⚡ Drop" and "⚡ Half-open" a moment apart stay readable).
    let mut line_ends: PerLane<[f64; LABEL_LINES]> = PerLane::from_fn(|_| [f64::MIN; LABEL_LINES]);
    let mut shaded = 0;
    for span in store.faults() {
        if span.end_ms < view.start_ms() || span.start_ms > view.end_ms {
            continue;
        }
        let left = view.x_of(span.start_ms).round();
        let width = (view.x_of(span.end_ms).round() - left).max(3.0);
        let mut labelled = false;
        for lane in LaneId::ALL.into_iter().filter(|&lane| span.covers(lane)) {
            let top = layout.row_top(lane);
            match span.fault.kind.reach(lane) {
                Reach::Whole => shaded += 1,
                Reach::NewDials => {
                    ctx.set_fill_style_str(palette.fault_edge);
                    ctx.fill_rect(left, top + layout.row_height() - 3.0, width, 3.0);
                    continue;
                }
                Reach::Nothing => continue,
            }
            ctx.set_fill_style_str(palette.fault);
            ctx.fill_rect(left, top, width, layout.row_height());
            ctx.set_fill_style_str(palette.fault_edge);
            ctx.fill_rect(left, top, 2.0, layout.row_height());
            if !labelled {
                labelled = true;
                let label = format!("⚡ {}", span.fault.kind.title());
                let x = left + 4.0;
                let ends = &mut line_ends[lane];
                let line = ends.iter().position(|&end| x >= end + 4.0).unwrap_or(0);
                let _ = ctx.fill_text(&label, x, top + 2.0 + line as f64 * LABEL_LINE_PX);
                let label_width = ctx.measure_text(&label).map_or(60.0, |m| m.width());
                ends[line] = x + label_width;
            }
        }
    }
    shaded
}

/// Marks each change of the traffic pattern with a dashed line across every row, named at the top, so
/// a person sees where the pace of the stream changed (and the lanes' behaviour with it).
pub(super) fn traffic(
    ctx: &CanvasRenderingContext2d,
    store: &Store,
    view: &View,
    layout: &Layout,
    palette: &Palette,
) -> usize {
    let axis_top = layout.height - AXIS_PX;
    let mut marked = 0;
    ctx.set_font("600 10px system-ui, sans-serif");
    ctx.set_text_align("left");
    ctx.set_text_baseline("top");
    for mark in store.conditions().traffic_marks() {
        if !view.shows(mark.at_ms, mark.at_ms) {
            continue;
        }
        marked += 1;
        let x = view.x_of(mark.at_ms).round() + 0.5;
        ctx.set_stroke_style_str(palette.text);
        ctx.set_line_width(1.0);
        let _ = ctx.set_line_dash(&dash(&[2.0, 3.0]));
        ctx.begin_path();
        ctx.move_to(x, 0.0);
        ctx.line_to(x, axis_top);
        ctx.stroke();
        let _ = ctx.set_line_dash(&dash(&[]));
        let label = format!("⇢ {} traffic", mark.pattern.as_str());
        let width = ctx
            .measure_text(&label)
            .map_or(label.len() as f64 * 5.5, |metrics| metrics.width());
        ctx.set_fill_style_str(palette.background);
        ctx.fill_rect(x + 2.0, 1.0, width + 4.0, 13.0);
        ctx.set_fill_style_str(palette.text);
        let _ = ctx.fill_text(&label, x + 4.0, 2.0);
    }
    marked
}

/// The grid and its axis. While the view follows live, labels count back from now ("-12 s"); once a
/// person has panned or paused, the right edge is no longer now, so labels give the clock time instead
/// ("07:45:12") and cannot be mistaken for an age. `utc_offset_ms` turns Unix time into local time.
pub(super) fn grid(
    ctx: &CanvasRenderingContext2d,
    view: &View,
    layout: &Layout,
    palette: &Palette,
    now_ms: f64,
    utc_offset_ms: f64,
) -> Vec<String> {
    let axis_top = layout.height - AXIS_PX;
    ctx.set_stroke_style_str(palette.grid);
    ctx.set_line_width(1.0);
    ctx.begin_path();
    let lines: Vec<f64> = view.grid_lines(90.0).collect();
    for &t in &lines {
        let x = view.x_of(t).round() + 0.5;
        ctx.move_to(x, 0.0);
        ctx.line_to(x, axis_top);
    }
    ctx.move_to(0.0, axis_top + 0.5);
    ctx.line_to(layout.width, axis_top + 0.5);
    ctx.stroke();
    ctx.set_fill_style_str(palette.muted);
    ctx.set_font("11px system-ui, sans-serif");
    ctx.set_text_align("center");
    ctx.set_text_baseline("middle");
    let step = view.grid_step_ms(90.0);
    let mut labels = Vec::new();
    for t in lines {
        let x = view.x_of(t);
        // A label cut by the canvas edge reads as a different number: leave it out.
        if x < 26.0 || x > layout.width - 26.0 {
            continue;
        }
        let label = if view.follow {
            axis_label(t - now_ms, step)
        } else {
            clock_label(t + utc_offset_ms, step)
        };
        let _ = ctx.fill_text(&label, x, axis_top + AXIS_PX / 2.0);
        labels.push(label);
    }
    labels
}

/// `-12 s`, `-1.5 s`, `-2 min`, `now`: an offset from now, as precise as the grid step.
fn axis_label(offset_ms: f64, step_ms: f64) -> String {
    let seconds = offset_ms / 1000.0;
    // Within half a label's precision of now reads as "now", not "-0 s".
    let precision = if step_ms >= 1000.0 { 0.5 } else { 0.05 };
    if seconds.abs() < precision {
        "now".into()
    } else if step_ms >= 60_000.0 {
        format!("{:.0} min", seconds / 60.0)
    } else if step_ms >= 1000.0 {
        format!("{seconds:.0} s")
    } else {
        format!("{seconds:.1} s")
    }
}

/// `07:45:12`, or `07:45:12.4` when the grid is finer than a second: local clock time.
fn clock_label(local_ms: f64, step_ms: f64) -> String {
    let day_ms = local_ms.rem_euclid(86_400_000.0);
    let seconds = day_ms / 1000.0;
    let (h, m) = ((seconds / 3600.0) as u32, (seconds / 60.0) as u32 % 60);
    if step_ms >= 1000.0 {
        format!("{h:02}:{m:02}:{:02}", seconds as u32 % 60)
    } else {
        format!("{h:02}:{m:02}:{:04.1}", seconds % 60.0)
    }
}

/// Says so when the window holds no message at all (zoomed into a quiet moment), instead of an empty
/// canvas that looks broken.
pub(super) fn nothing_here(
    ctx: &CanvasRenderingContext2d,
    view: &View,
    layout: &Layout,
    palette: &Palette,
) {
    ctx.set_fill_style_str(palette.muted);
    ctx.set_font("12px system-ui, sans-serif");
    ctx.set_text_align("center");
    ctx.set_text_baseline("middle");
    let _ = ctx.fill_text(
        &format!(
            "No message in these {} — zoom out (−) to see more",
            crate::format::format_ms(view.span_ms)
        ),
        layout.width / 2.0,
        (layout.height - AXIS_PX) / 2.0,
    );
}

#[cfg(test)]
mod tests {
    use super::{axis_label, clock_label};

    #[test]
    fn a_view_away_from_now_is_labelled_in_clock_time() {
        let at = ((7.0 * 60.0 + 45.0) * 60.0 + 12.4) * 1000.0 + 20.0 * 86_400_000.0;
        assert_eq!(clock_label(at, 5_000.0), "07:45:12");
        assert_eq!(clock_label(at, 200.0), "07:45:12.4");
        assert_eq!(clock_label(9.0 * 1000.0, 1_000.0), "00:00:09");
    }

    #[test]
    fn axis_labels_count_back_from_now() {
        assert_eq!(axis_label(0.0, 1000.0), "now");
        assert_eq!(axis_label(-300.0, 2000.0), "now");
        assert_eq!(axis_label(-12_000.0, 2000.0), "-12 s");
        assert_eq!(axis_label(-1_500.0, 500.0), "-1.5 s");
        assert_eq!(axis_label(-120_000.0, 60_000.0), "-2 min");
    }
}
