//! Paints one frame of the timeline on a 2D canvas, in the page's visual language (the README's
//! "Reading the timeline"):
//! letters as round trips (empty answers hollow and grey), held letters as bars, the radio as a band,
//! the phone call as one line with frames above and below it and heartbeats on it.
//!
//! Only what is in the window is drawn, and marks of one colour go into one path, so a frame with
//! 10,000 messages held stays within a few milliseconds.

use std::f64::consts::TAU;

use switchboard_shared::{LaneId, PerLane, Shape};
use wasm_bindgen::JsValue;
use web_sys::CanvasRenderingContext2d;

use super::backdrop::{conditions, faults, grid, nothing_here, traffic};
use super::layout::{Layout, Side, side_of};
use super::view::View;
use crate::format::format_ms;
use crate::store::{MarkKind, Outcome, Receipt, Store, Trace, Traced};

/// The colours of one theme.
#[derive(Debug, Clone)]
pub struct Palette {
    pub background: &'static str,
    pub row_alt: &'static str,
    pub grid: &'static str,
    pub text: &'static str,
    pub muted: &'static str,
    pub wasted: &'static str,
    pub error: &'static str,
    /// The shading of a fault's span, and its edge and label.
    pub fault: &'static str,
    pub fault_edge: &'static str,
    /// The tint of a lane's row while it runs over an emulated network, and its label.
    pub network: &'static str,
    pub network_text: &'static str,
    /// The hatching of a time the page was hidden in a background tab.
    pub hidden: &'static str,
    /// Each lane's colour: defined once, in the page's style sheet (`--poll`, `--ws`, …), and read from
    /// it, so the panels and the timeline cannot disagree.
    pub lanes: PerLane<String>,
}

impl Palette {
    pub fn light(lanes: PerLane<String>) -> Palette {
        Palette {
            background: "#ffffff",
            row_alt: "#f6f7f9",
            grid: "#e3e6eb",
            text: "#1d2330",
            muted: "#6b7385",
            wasted: "#a3a9b5",
            error: "#d43d3d",
            fault: "rgba(212, 61, 61, 0.10)",
            fault_edge: "#c23b3b",
            network: "rgba(37, 99, 217, 0.07)",
            network_text: "#2f5fb3",
            hidden: "rgba(29, 35, 48, 0.10)",
            lanes,
        }
    }
    pub fn dark(lanes: PerLane<String>) -> Palette {
        Palette {
            background: "#151922",
            row_alt: "#1a1f2a",
            grid: "#2a303d",
            text: "#e6e9ef",
            muted: "#9aa3b5",
            wasted: "#5d6575",
            error: "#ff6b6b",
            fault: "rgba(255, 107, 107, 0.14)",
            fault_edge: "#ff8a8a",
            network: "rgba(107, 156, 255, 0.10)",
            network_text: "#8fb3ff",
            hidden: "rgba(230, 233, 239, 0.10)",
            lanes,
        }
    }

    pub fn lane(&self, lane: LaneId) -> &str {
        &self.lanes[lane]
    }
}

/// How much one frame drew.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drawn {
    /// The axis labels, left to right.
    pub axis: Vec<String>,
    pub spans: usize,
    pub marks: usize,
    /// Network conditions and hidden-tab times shaded.
    pub conditions: usize,
    /// Rows a fault shades whole (a row it only half touches has a strip, not counted).
    pub fault_rows: usize,
    /// Changes of the traffic pattern marked.
    pub traffic: usize,
    /// Holes in a lane's seqs marked (lost datagrams, mostly).
    pub missed: usize,
}

/// The present: Unix milliseconds, and how far local clock time is ahead of UTC.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Now {
    pub ms: f64,
    pub utc_offset_ms: f64,
}

/// The mark a person clicked, and for an event the same seq on every lane.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub lane: LaneId,
    pub at_ms: f64,
    pub trace: Option<Trace>,
}

/// Draws the frame for `view` at browser time `now_ms`; `selection` outlines the clicked mark and, for
/// an event, where the same seq arrived on every other lane.
pub fn draw(
    ctx: &CanvasRenderingContext2d,
    store: &Store,
    view: &View,
    layout: &Layout,
    palette: &Palette,
    now: Now,
    selection: Option<&Selection>,
) -> Drawn {
    let Now {
        ms: now_ms,
        utc_offset_ms,
    } = now;
    ctx.set_fill_style_str(palette.background);
    ctx.fill_rect(0.0, 0.0, layout.width, layout.height);
    for lane in LaneId::ALL {
        if lane.index() % 2 == 1 {
            ctx.set_fill_style_str(palette.row_alt);
            ctx.fill_rect(0.0, layout.row_top(lane), layout.width, layout.row_height());
        }
    }
    let shaded = conditions(ctx, store, view, layout, palette, now_ms);
    let axis = grid(ctx, view, layout, palette, now_ms, utc_offset_ms);
    let fault_rows = faults(ctx, store, view, layout, palette);
    let traffic = traffic(ctx, store, view, layout, palette);
    let spans = spans(ctx, store, view, layout, palette, now_ms);
    let (marks, missed) = marks(ctx, store, view, layout, palette);
    let drawn = Drawn {
        axis,
        spans,
        marks,
        conditions: shaded,
        fault_rows,
        traffic,
        missed,
    };
    if drawn.marks == 0 {
        nothing_here(ctx, view, layout, palette);
    }
    if let Some(selection) = selection {
        outline(ctx, view, layout, palette, selection);
    }
    drawn
}

/// Outlines the selected mark; for a traced seq also its arrival on each other lane, joined by a dashed
/// line and labelled with how much later than the first it came, so the lanes' difference is a length.
fn outline(
    ctx: &CanvasRenderingContext2d,
    view: &View,
    layout: &Layout,
    palette: &Palette,
    selection: &Selection,
) {
    let boxed = |lane: LaneId, at_ms: f64, width: f64| {
        let x = view.x_of(at_ms);
        ctx.set_line_width(width);
        ctx.stroke_rect(
            x - 6.0,
            layout.row_top(lane) + 3.0,
            12.0,
            layout.row_height() - 6.0,
        );
    };
    ctx.set_stroke_style_str(palette.text);
    if let Some(trace) = &selection.trace {
        let first = trace.first_ms().unwrap_or(selection.at_ms);
        let arrivals: Vec<(LaneId, f64)> = trace
            .lanes
            .iter()
            .filter_map(|(lane, traced)| match traced {
                Traced::Arrived { at_ms, .. } => Some((lane, *at_ms)),
                _ => None,
            })
            .collect();
        let _ = ctx.set_line_dash(&dash(&[3.0, 3.0]));
        ctx.set_line_width(1.0);
        ctx.begin_path();
        for (i, &(lane, at_ms)) in arrivals.iter().enumerate() {
            let (x, y) = (view.x_of(at_ms), layout.row_mid(lane));
            if i == 0 {
                ctx.move_to(x, y);
            } else {
                ctx.line_to(x, y);
            }
        }
        ctx.stroke();
        let _ = ctx.set_line_dash(&dash(&[]));
        ctx.set_font("600 10px system-ui, sans-serif");
        ctx.set_text_align("left");
        ctx.set_text_baseline("top");
        ctx.set_fill_style_str(palette.text);
        for &(lane, at_ms) in &arrivals {
            boxed(lane, at_ms, 1.0);
            let label = if at_ms - first < 0.5 {
                format!("#{} first", trace.seq)
            } else {
                format!("+{}", format_ms(at_ms - first))
            };
            let _ = ctx.fill_text(&label, view.x_of(at_ms) + 8.0, layout.row_top(lane) + 4.0);
        }
    }
    boxed(selection.lane, selection.at_ms, 2.0);
}

fn spans(
    ctx: &CanvasRenderingContext2d,
    store: &Store,
    view: &View,
    layout: &Layout,
    palette: &Palette,
    now_ms: f64,
) -> usize {
    let mut drawn = 0;
    ctx.set_font("10px system-ui, sans-serif");
    ctx.set_text_baseline("bottom");
    ctx.set_text_align("left");
    for span in store.spans() {
        let end = span.end_ms.unwrap_or(now_ms);
        if !view.shows(span.start_ms, end) {
            continue;
        }
        drawn += 1;
        let colour = palette.lane(span.lane);
        let mid = layout.row_mid(span.lane).round();
        let (x0, x1) = (view.x_of(span.start_ms), view.x_of(end));
        match span.shape {
            Shape::Request | Shape::HeldRequest => {
                let held = span.shape == Shape::HeldRequest;
                let (fill, hollow) = match &span.outcome {
                    Outcome::News(_) => (colour, false),
                    Outcome::Empty => (palette.wasted, true),
                    Outcome::Failed(_) => (palette.error, true),
                    _ => (palette.muted, true),
                };
                if held {
                    // The time the server held the letter: a bar.
                    ctx.set_global_alpha(0.35);
                    ctx.set_fill_style_str(if hollow { palette.wasted } else { colour });
                    ctx.fill_rect(x0, mid - 3.0, (x1 - x0).max(1.0), 6.0);
                    ctx.set_global_alpha(1.0);
                } else {
                    // The round trip: an arc from the request to the answer.
                    let rise = (x1 - x0).clamp(6.0, layout.row_height() * 0.35);
                    ctx.set_stroke_style_str(if hollow { palette.wasted } else { colour });
                    ctx.set_line_width(1.0);
                    ctx.begin_path();
                    ctx.move_to(x0, mid);
                    ctx.quadratic_curve_to((x0 + x1) / 2.0, mid - rise, x1, mid);
                    ctx.stroke();
                }
                // The request going out, above the line: on a fast path its answer comes back within a
                // pixel, and an answer drawn over it would hide it.
                ctx.set_fill_style_str(colour);
                ctx.begin_path();
                ctx.move_to(x0, mid - 13.0);
                ctx.line_to(x0 + 4.0, mid - 6.0);
                ctx.line_to(x0 - 4.0, mid - 6.0);
                ctx.close_path();
                ctx.fill();
                // Answered by a proxy's cache: the answer is boxed (the server never saw the letter).
                if span.cached && span.end_ms.is_some() {
                    ctx.set_stroke_style_str(colour);
                    ctx.set_line_width(1.0);
                    ctx.stroke_rect(x1 - 6.5, mid - 6.5, 13.0, 13.0);
                }
                // The answer coming back: filled with news, hollow and grey when empty.
                if span.end_ms.is_some() {
                    ctx.begin_path();
                    let _ = ctx.arc(x1, mid, 4.0, 0.0, TAU);
                    if hollow {
                        ctx.set_stroke_style_str(fill);
                        ctx.set_line_width(1.5);
                        ctx.stroke();
                    } else {
                        ctx.set_fill_style_str(fill);
                        ctx.fill();
                    }
                }
            }
            Shape::Stream | Shape::Duplex => {
                let open = !matches!(span.outcome, Outcome::Pending);
                if span.shape.is_two_way() {
                    // The phone call: one continuous line.
                    ctx.set_stroke_style_str(colour);
                    ctx.set_line_width(2.0);
                    if !open {
                        let _ = ctx.set_line_dash(&dash(&[3.0, 3.0]));
                    }
                    ctx.begin_path();
                    ctx.move_to(x0, mid);
                    ctx.line_to(x1, mid);
                    ctx.stroke();
                    let _ = ctx.set_line_dash(&dash(&[]));
                } else {
                    // The radio: a band the server keeps talking into.
                    ctx.set_global_alpha(if open { 0.22 } else { 0.1 });
                    ctx.set_fill_style_str(colour);
                    ctx.fill_rect(x0, mid - 6.0, (x1 - x0).max(1.0), 12.0);
                    ctx.set_global_alpha(1.0);
                }
                // The dial: the request (and its 101 or 200 answer) that opened the line.
                ctx.set_fill_style_str(colour);
                ctx.fill_rect(x0 - 1.5, mid - 10.0, 3.0, 20.0);
                if let (Some(_), Outcome::Closed { code, .. }) = (span.end_ms, &span.outcome) {
                    ctx.set_fill_style_str(palette.error);
                    ctx.fill_rect(x1 - 1.0, mid - 10.0, 2.0, 20.0);
                    let label = code.map_or_else(|| "closed".to_owned(), |code| code.to_string());
                    ctx.set_fill_style_str(palette.muted);
                    // Above the dial's height, so the next dial right after it does not cross it.
                    let _ = ctx.fill_text(&label, x1 + 3.0, mid - 11.0);
                }
            }
        }
    }
    drawn
}

pub(super) fn dash(pattern: &[f64]) -> JsValue {
    let array = js_sys::Array::new();
    for &step in pattern {
        array.push(&JsValue::from_f64(step));
    }
    array.into()
}

/// Draws every mark in view; how many, and how many of them are holes in a lane's seqs.
fn marks(
    ctx: &CanvasRenderingContext2d,
    store: &Store,
    view: &View,
    layout: &Layout,
    palette: &Palette,
) -> (usize, usize) {
    let mut drawn = 0;
    let mut missed = 0;
    // Pixels either side, so a mark half off the edge is still drawn.
    let margin = 8.0 * view.ms_per_px();
    for lane in LaneId::ALL {
        let mid = layout.row_mid(lane).round();
        let colour = palette.lane(lane);
        // One path per look: ordinary ticks, dropped duplicates, heartbeats, the line's own frames.
        ctx.begin_path();
        let mut wasted = Vec::new();
        let mut beats = Vec::new();
        let mut frames = Vec::new();
        let mut trouble = Vec::new();
        let mut hung_up = Vec::new();
        let mut moves = Vec::new();
        // Under a firehose several events share a pixel column: one tick says as much, and every
        // canvas call saved keeps a frame within its 16 ms.
        let mut last_tick = f64::NAN;
        for mark in store.marks_between(view.start_ms() - margin, view.end_ms + margin) {
            if mark.lane != lane {
                continue;
            }
            drawn += 1;
            let x = view.x_of(mark.at_ms).round() + 0.5;
            match &mark.what {
                MarkKind::Event { receipt, .. } => {
                    if *receipt == Receipt::Duplicate {
                        wasted.push(x);
                    } else if x != last_tick {
                        last_tick = x;
                        ctx.move_to(x, mid + 5.0);
                        ctx.line_to(x, mid + 15.0);
                    }
                }
                MarkKind::Heartbeat { .. } => beats.push(x),
                MarkKind::Sent { .. } | MarkKind::Received { .. } => {
                    frames.push((x, side_of(mark)));
                }
                MarkKind::Dead { .. } => hung_up.push(x),
                MarkKind::Missed { .. } => {
                    missed += 1;
                    trouble.push(x);
                }
                MarkKind::Gap { .. } | MarkKind::Error { .. } | MarkKind::Restart { .. } => {
                    trouble.push(x)
                }
                MarkKind::Moved { to, .. } => moves.push((x, to.as_str())),
            }
        }
        ctx.set_stroke_style_str(colour);
        ctx.set_line_width(1.5);
        ctx.stroke();

        if !wasted.is_empty() {
            ctx.begin_path();
            for x in wasted {
                ctx.move_to(x, mid + 5.0);
                ctx.line_to(x, mid + 15.0);
            }
            ctx.set_stroke_style_str(palette.wasted);
            ctx.stroke();
        }
        // Heartbeats: small diamonds on the line, in the background colour so they read as "proof of life".
        ctx.begin_path();
        for &x in &beats {
            ctx.move_to(x, mid - 4.0);
            ctx.line_to(x + 4.0, mid);
            ctx.line_to(x, mid + 4.0);
            ctx.line_to(x - 4.0, mid);
            ctx.close_path();
        }
        ctx.set_fill_style_str(palette.background);
        ctx.fill();
        ctx.set_stroke_style_str(colour);
        ctx.set_line_width(1.5);
        ctx.stroke();
        // Frames that are not events: small squares, browser → server above the line.
        ctx.set_fill_style_str(palette.text);
        for (x, side) in frames {
            let y = match side {
                Side::Above => mid - 14.0,
                Side::On => mid - 2.5,
                Side::Below => mid + 17.0,
            };
            ctx.fill_rect(x - 2.5, y, 5.0, 5.0);
        }
        ctx.set_stroke_style_str(palette.error);
        ctx.set_line_width(2.0);
        ctx.begin_path();
        for x in trouble {
            ctx.move_to(x - 4.0, mid - 4.0);
            ctx.line_to(x + 4.0, mid + 4.0);
            ctx.move_to(x + 4.0, mid - 4.0);
            ctx.line_to(x - 4.0, mid + 4.0);
        }
        ctx.stroke();
        // The watchdog hanging up a silent line: a star, so it is not mistaken for an error the server
        // reported.
        ctx.begin_path();
        for x in hung_up {
            for (dx, dy) in [(0.0, 6.0), (5.2, 3.0), (5.2, -3.0)] {
                ctx.move_to(x - dx, mid - dy);
                ctx.line_to(x + dx, mid + dy);
            }
        }
        ctx.stroke();
        // A move to another instance: a bar across the line, labelled with where the lane went.
        ctx.set_stroke_style_str(palette.text);
        ctx.set_fill_style_str(palette.text);
        ctx.set_line_width(2.0);
        ctx.begin_path();
        for &(x, to) in &moves {
            ctx.move_to(x, mid - 12.0);
            ctx.line_to(x, mid + 12.0);
            let _ = ctx.fill_text(&format!("→ {to}"), x + 3.0, mid - 14.0);
        }
        ctx.stroke();
    }
    (drawn, missed)
}
