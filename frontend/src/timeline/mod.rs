//! The "phone call versus letters" timeline: one time axis, one swimlane per lane, every message.
//!
//! - [`view`] — the visible window of time and its mapping to pixels (live-follow, zoom, pan);
//! - [`layout`] — where swimlanes and marks sit, and what is under the pointer;
//! - [`draw`] — paints a frame on a canvas (spans, marks, the selection), over `backdrop` (conditions,
//!   faults, traffic changes, the grid and its axis);
//! - [`Timeline`] — the component: canvas, toolbar, hover summary and the message detail on click.

mod backdrop;
mod detail;
pub mod draw;
pub mod layout;
pub mod view;
pub mod words;

use leptos::html::Canvas;
use leptos::prelude::*;
use switchboard_shared::{LaneId, PerLane};
use wasm_bindgen::JsCast;
use web_sys::{
    CanvasRenderingContext2d, HtmlCanvasElement, KeyboardEvent, MouseEvent, PointerEvent,
    WheelEvent,
};

use crate::dashboard::Dashboard;
use crate::format::format_ms;
use crate::lanes::now_ms;
use crate::store::{MarkKind, Traced};
use detail::{Detail, Legend, hover_text};
use draw::{Now, Palette, Selection, draw};
use layout::{AXIS_PX, Layout, Picked, Step, pick};
use view::View;

/// Swimlane height in CSS pixels.
const ROW_PX: f64 = 62.0;

/// What the toolbar and the pointer change.
#[derive(Debug, Clone, Copy)]
struct TimelineState {
    view: StoredValue<View>,
    following: RwSignal<bool>,
    span_ms: RwSignal<f64>,
    hover: RwSignal<Option<(f64, f64, String)>>,
    /// What a click or the arrow keys selected: outlined on the canvas.
    selected: RwSignal<Option<Picked>>,
    /// Whether the selection's detail is open (a click opens it, Enter opens it, Esc closes it).
    open: RwSignal<bool>,
    /// Where a drag started (x) and the view then, while panning.
    drag: StoredValue<Option<f64>>,
    /// The pointer moved the view since it went down: the click that ends the drag is not a click.
    dragged: StoredValue<bool>,
    /// How far the right edge of a paused or panned view is from now, ms.
    behind_ms: RwSignal<f64>,
    /// How long the last frame took to draw, ms (`performance.now()`).
    frame_ms: RwSignal<f64>,
}

#[component]
pub fn Timeline() -> impl IntoView {
    let dashboard = expect_context::<Dashboard>();
    let canvas = NodeRef::<Canvas>::new();
    let state = TimelineState {
        view: StoredValue::new(View::new(now_ms(), 800.0)),
        following: RwSignal::new(true),
        span_ms: RwSignal::new(view::DEFAULT_SPAN_MS),
        hover: RwSignal::new(None),
        selected: RwSignal::new(None),
        open: RwSignal::new(false),
        drag: StoredValue::new(None),
        dragged: StoredValue::new(false),
        behind_ms: RwSignal::new(0.0),
        frame_ms: RwSignal::new(0.0),
    };
    let alive = StoredValue::new(true);
    // Esc closes the message's detail, as a person expects of any panel that opened on a click; a
    // second Esc lets go of the selection.
    let (selected, open) = (state.selected, state.open);
    let escape = window_event_listener(leptos::ev::keydown, move |event| {
        if event.key() == "Escape" {
            if open.get_untracked() {
                open.set(false);
            } else {
                selected.set(None);
            }
        }
    });
    on_cleanup(move || escape.remove());
    on_cleanup(move || alive.set_value(false));
    Effect::new(move |_| {
        if canvas.get().is_some() {
            animate(dashboard, state, canvas, alive);
        }
    });

    let toggle_follow = move |_| {
        let follow = !state.following.get_untracked();
        state.view.update_value(|view| {
            view.follow = follow;
            if follow {
                view.end_ms = now_ms();
            }
        });
        state.following.set(follow);
        if follow {
            // Back to live lets go of what was picked in the past: its words under the timeline
            // would describe something no longer in view.
            state.open.set(false);
            state.selected.set(None);
        }
    };
    let zoom = move |factor: f64| {
        state
            .view
            .update_value(|view| view.zoom_until(factor, view.width_px / 2.0, now_ms()));
        state
            .span_ms
            .set(state.view.with_value(|view| view.span_ms));
    };
    let on_wheel = move |event: WheelEvent| {
        event.prevent_default();
        let factor = if event.delta_y() > 0.0 { 1.25 } else { 0.8 };
        let x = event.offset_x();
        state
            .view
            .update_value(|view| view.zoom_until(factor, x, now_ms()));
        state
            .span_ms
            .set(state.view.with_value(|view| view.span_ms));
    };
    let on_down = move |event: PointerEvent| {
        state.drag.set_value(Some(event.offset_x()));
        state.dragged.set_value(false);
    };
    let on_move = move |event: PointerEvent| {
        let x = event.offset_x();
        let y = event.offset_y();
        if let Some(from) = state.drag.get_value() {
            if (x - from).abs() >= 1.0 {
                state.view.update_value(|view| view.pan(x - from, now_ms()));
                state.drag.set_value(Some(x));
                state.dragged.set_value(true);
                state.following.set(false);
                // The summary under a pointer that is dragging the view would describe what moved away.
                state.hover.set(None);
            }
            return;
        }
        let picked = picked_at(dashboard, state, canvas, x, y);
        state
            .hover
            .set(picked.map(|picked| (x, y, hover_text(&picked))));
    };
    let on_up = move |_: PointerEvent| state.drag.set_value(None);
    let on_leave = move |_: MouseEvent| {
        state.drag.set_value(None);
        state.hover.set(None);
    };
    let on_click = move |event: MouseEvent| {
        if state.dragged.get_value() {
            state.dragged.set_value(false);
            return;
        }
        let picked = picked_at(dashboard, state, canvas, event.offset_x(), event.offset_y());
        state.open.set(picked.is_some());
        state.selected.set(picked);
    };
    // The keyboard walks the marks: left and right in time on a lane, up and down across lanes. The
    // view stops following live, or the selection would scroll away under the person reading it.
    let on_key = move |event: KeyboardEvent| {
        let step = match event.key().as_str() {
            "ArrowLeft" => Step::Earlier,
            "ArrowRight" => Step::Later,
            "ArrowUp" => Step::LaneUp,
            "ArrowDown" => Step::LaneDown,
            "Enter" | " " => {
                event.prevent_default();
                if state.selected.get_untracked().is_some() {
                    state.open.set(true);
                }
                return;
            }
            _ => return,
        };
        event.prevent_default();
        if state.following.get_untracked() {
            state.view.update_value(|view| view.follow = false);
            state.following.set(false);
        }
        let view = state.view.get_value();
        let current = state.selected.get_untracked();
        let next = dashboard
            .store
            .with_value(|store| layout::step(&layout::stops(store, &view), current.as_ref(), step));
        state.hover.set(None);
        state.selected.set(next);
    };
    let said = move || {
        let picked = state.selected.get()?;
        let words = dashboard
            .store
            .with_value(|store| words::explain(store, &picked, now_ms()));
        Some(format!("{}: {words}", picked.lane().title()))
    };

    view! {
        <section class="timeline" aria-label="Timeline of every message">
            <div class="timeline-bar">
                <h2>"Every message, one time axis"</h2>
                <div class="timeline-tools">
                    <button
                        class="tool"
                        class:live=move || state.following.get()
                        data-testid="timeline-follow"
                        on:click=toggle_follow
                    >
                        {move || if state.following.get() {
                            "● Live".to_owned()
                        } else {
                            format!("❚❚ {} before now — back to live", format_ms(state.behind_ms.get()))
                        }}
                    </button>
                    <button class="tool" title="Zoom out" data-testid="zoom-out" on:click=move |_| zoom(1.5)>"−"</button>
                    <span class="window" data-testid="timeline-window">{move || format!("{} window", format_ms(state.span_ms.get()))}</span>
                    <button class="tool" title="Zoom in" data-testid="zoom-in" on:click=move |_| zoom(1.0 / 1.5)>"+"</button>
                    <span class="frame" data-testid="frame-ms" title="Time to draw the last frame">
                        {move || format!("draws in {}", format_ms(state.frame_ms.get()))}
                    </span>
                </div>
            </div>
            <div class="timeline-body">
                <ul class="swimlane-names" style=format!("--row: {ROW_PX}px")>
                    {LaneId::ALL
                        .into_iter()
                        .map(|lane| {
                            view! {
                                <li class=format!("lane-name lane-{}", lane.as_str())>
                                    <b>{lane.title()}</b>
                                    <small>{lane.as_str()}</small>
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
                <div class="canvas-wrap">
                    <canvas
                        node_ref=canvas
                        data-testid="timeline-canvas"
                        tabindex="0"
                        role="application"
                        aria-roledescription="timeline"
                        aria-label="Timeline of every message, one swimlane per lane. Arrow keys move between messages: left and right in time, up and down across lanes. Enter opens a message's detail, Escape closes it."
                        aria-describedby="timeline-said"
                        on:keydown=on_key
                        style=format!("height: {}px", ROW_PX * LaneId::COUNT as f64 + AXIS_PX)
                        on:wheel=on_wheel
                        on:pointerdown=on_down
                        on:pointermove=on_move
                        on:pointerup=on_up
                        on:mouseleave=on_leave
                        on:click=on_click
                    ></canvas>
                    {move || {
                        state
                            .hover
                            .get()
                            .map(|(x, y, text)| {
                                // Right of the pointer in the left half, left of it in the right half,
                                // below it in the top half and above it in the bottom half, and never
                                // wider than the room on its side: a summary stays inside the canvas.
                                let width = state.view.with_value(|view| view.width_px);
                                let height = canvas
                                    .get_untracked()
                                    .map_or(0.0, |element| f64::from(element.client_height()));
                                let (side, place, room) = if x > width / 2.0 {
                                    ("right", format!("right: {}px", width - x + 12.0), x - 16.0)
                                } else {
                                    ("left", format!("left: {}px", x + 12.0), width - x - 16.0)
                                };
                                let (vertical, above) = if y > height / 2.0 {
                                    (format!("bottom: {}px", height - y + 12.0), "above")
                                } else {
                                    (format!("top: {}px", y + 12.0), "below")
                                };
                                view! {
                                    <div
                                        class="hover"
                                        data-side=side
                                        data-place=above
                                        style=format!("{place}; {vertical}; max-width: {:.0}px", room.clamp(80.0, 420.0))
                                    >
                                        {text}
                                    </div>
                                }
                            })
                    }}
                </div>
            </div>
            // What the keyboard selected, for a screen reader (and anyone reading along).
            <p id="timeline-said" class="said" data-testid="timeline-said" aria-live="polite">
                {move || said().unwrap_or_else(|| "Tab to the timeline and use the arrow keys to step through its messages.".to_owned())}
            </p>
            <Legend/>
            <Detail selected=state.selected open=state.open/>
        </section>
    }
}

/// Draws a frame on every animation frame until the component is gone.
fn animate(
    dashboard: Dashboard,
    state: TimelineState,
    canvas: NodeRef<Canvas>,
    alive: StoredValue<bool>,
) {
    if !alive.try_get_value().unwrap_or(false) {
        return;
    }
    if let Some(element) = canvas.get_untracked() {
        let started = performance_now();
        let selection = selection_of(dashboard, state.selected.get_untracked());
        let reduced = prefers_reduced_motion();
        if reduced != element.has_attribute("data-motion") {
            let _ = if reduced {
                element.set_attribute("data-motion", "reduced")
            } else {
                element.remove_attribute("data-motion")
            };
        }
        paint(dashboard, state.view, &element, selection.as_ref());
        if !state.following.get_untracked() {
            let behind = state
                .view
                .with_value(|view| (now_ms() - view.end_ms).max(0.0));
            // Whole tenths of a second: enough for the button, and not a re-render every frame.
            let behind = (behind / 100.0).round() * 100.0;
            if behind != state.behind_ms.get_untracked() {
                state.behind_ms.set(behind);
            }
        }
        let took = performance_now() - started;
        // Smoothed, so the readout is legible.
        state
            .frame_ms
            .update(|frame| *frame = *frame * 0.9 + took * 0.1);
    }
    request_animation_frame(move || animate(dashboard, state, canvas, alive));
}

/// Paints one frame now (outlining the selected mark's place): sizes the canvas to its box at the device's pixel ratio, moves a live view to
/// the present, and draws.
pub fn paint(
    dashboard: Dashboard,
    view_store: StoredValue<View>,
    element: &HtmlCanvasElement,
    selection: Option<&Selection>,
) {
    let width = f64::from(element.client_width()).max(1.0);
    let height = f64::from(element.client_height()).max(1.0);
    let ratio = web_sys::window().map_or(1.0, |window| window.device_pixel_ratio());
    let (pixel_width, pixel_height) = ((width * ratio) as u32, (height * ratio) as u32);
    if element.width() != pixel_width || element.height() != pixel_height {
        element.set_width(pixel_width);
        element.set_height(pixel_height);
    }
    let Some(ctx) = context_2d(element) else {
        return;
    };
    let _ = ctx.set_transform(ratio, 0.0, 0.0, ratio, 0.0, 0.0);
    let now = now_ms();
    let view = view_store
        .try_update_value(|view| {
            view.width_px = width;
            if element.has_attribute("data-motion") {
                view.follow_in_steps(now, 1_000.0);
            } else {
                view.follow_to(now);
            }
            *view
        })
        .unwrap_or_else(|| View::new(now, width));
    let layout = Layout { width, height };
    let lanes = lane_colours(element);
    let palette = if prefers_dark() {
        Palette::dark(lanes)
    } else {
        Palette::light(lanes)
    };
    dashboard.store.with_value(|store| {
        // Local clock time for the axis of a view that is not live.
        let utc_offset_ms = -js_sys::Date::new_0().get_timezone_offset() * 60_000.0;
        let drawn = draw(
            &ctx,
            store,
            &view,
            &layout,
            &palette,
            Now {
                ms: now,
                utc_offset_ms,
            },
            selection,
        );
        let _ = element.set_attribute("data-marks", &drawn.marks.to_string());
        let _ = element.set_attribute("data-spans", &drawn.spans.to_string());
        let _ = element.set_attribute("data-conditions", &drawn.conditions.to_string());
        let _ = element.set_attribute("data-fault-rows", &drawn.fault_rows.to_string());
        let _ = element.set_attribute("data-traffic", &drawn.traffic.to_string());
        let _ = element.set_attribute("data-missed", &drawn.missed.to_string());
        let _ = element.set_attribute("data-axis", &drawn.axis.join(" | "));
        // Which lanes the traced seq is outlined on, for tests and for anyone inspecting the page.
        let traced = selection
            .and_then(|selection| selection.trace.as_ref())
            .map(|trace| {
                trace
                    .lanes
                    .iter()
                    .filter(|(_, traced)| matches!(traced, Traced::Arrived { .. }))
                    .map(|(lane, _)| lane.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let _ = element.set_attribute("data-traced", &traced);
    });
}

/// What the clicked mark is, and for an event the same seq traced on every lane (again each frame, so a
/// lane that receives it later joins the picture).
fn selection_of(dashboard: Dashboard, picked: Option<Picked>) -> Option<Selection> {
    let picked = picked?;
    let mark = match picked {
        Picked::Mark(mark) => mark,
        // A letter is outlined where its answer (or, while it waits, its request) is drawn.
        Picked::Span(_) => {
            return Some(Selection {
                lane: picked.lane(),
                at_ms: picked.at_ms(),
                trace: None,
            });
        }
    };
    let trace = match mark.what {
        MarkKind::Event { seq, .. } => dashboard.store.with_value(|store| Some(store.trace(seq))),
        _ => None,
    };
    Some(Selection {
        lane: mark.lane,
        at_ms: mark.at_ms,
        trace,
    })
}

fn context_2d(element: &HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
    element
        .get_context("2d")
        .ok()
        .flatten()
        .and_then(|ctx| ctx.dyn_into().ok())
}

/// Each lane's colour as the style sheet defines it (`--poll`, `--ws`, …, dark or light).
fn lane_colours(element: &web_sys::Element) -> PerLane<String> {
    let style =
        web_sys::window().and_then(|window| window.get_computed_style(element).ok().flatten());
    PerLane::from_fn(|lane| {
        style
            .as_ref()
            .and_then(|style| style.get_property_value(&format!("--{lane}")).ok())
            .map(|colour| colour.trim().to_owned())
            .filter(|colour| !colour.is_empty())
            // Before the style sheet has loaded: still a visible line.
            .unwrap_or_else(|| "gray".to_owned())
    })
}

fn prefers_reduced_motion() -> bool {
    web_sys::window()
        .and_then(|window| {
            window
                .match_media("(prefers-reduced-motion: reduce)")
                .ok()
                .flatten()
        })
        .is_some_and(|query| query.matches())
}

fn prefers_dark() -> bool {
    web_sys::window()
        .and_then(|window| {
            window
                .match_media("(prefers-color-scheme: dark)")
                .ok()
                .flatten()
        })
        .is_some_and(|query| query.matches())
}

fn performance_now() -> f64 {
    web_sys::window()
        .and_then(|window| window.performance())
        .map_or_else(now_ms, |performance| performance.now())
}

fn picked_at(
    dashboard: Dashboard,
    state: TimelineState,
    canvas: NodeRef<Canvas>,
    x: f64,
    y: f64,
) -> Option<Picked> {
    let element = canvas.get_untracked()?;
    let layout = Layout {
        width: f64::from(element.client_width()),
        height: f64::from(element.client_height()),
    };
    let view = state.view.get_value();
    dashboard
        .store
        .with_value(|store| pick(store, &view, &layout, x, y, now_ms()))
}
