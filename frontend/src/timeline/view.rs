//! The timeline's window onto time: which span of browser time is visible, and how time maps to
//! pixels. Pure arithmetic, tested natively.

/// The shortest window a person can zoom into: a second still tells a letter's round trip from the
/// events around it, and narrower ones were mostly empty.
pub const MIN_SPAN_MS: f64 = 1_000.0;
/// The longest window (10 minutes): beyond it the marks held would not fill it anyway.
pub const MAX_SPAN_MS: f64 = 600_000.0;
/// The window the page opens with.
pub const DEFAULT_SPAN_MS: f64 = 20_000.0;

/// A visible window of time, `span_ms` wide and ending at `end_ms`, drawn `width_px` wide.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    pub end_ms: f64,
    pub span_ms: f64,
    pub width_px: f64,
    /// Live-follow: the window's right edge tracks the present.
    pub follow: bool,
}

impl View {
    pub fn new(now_ms: f64, width_px: f64) -> View {
        View {
            end_ms: now_ms,
            span_ms: DEFAULT_SPAN_MS,
            width_px: width_px.max(1.0),
            follow: true,
        }
    }

    pub fn start_ms(&self) -> f64 {
        self.end_ms - self.span_ms
    }

    /// The x coordinate of time `t` (may fall outside `0..width_px`).
    pub fn x_of(&self, t: f64) -> f64 {
        (t - self.start_ms()) / self.span_ms * self.width_px
    }

    /// The time under x coordinate `x`.
    pub fn time_at(&self, x: f64) -> f64 {
        self.start_ms() + x / self.width_px * self.span_ms
    }

    /// Milliseconds one pixel stands for.
    pub fn ms_per_px(&self) -> f64 {
        self.span_ms / self.width_px
    }

    /// Whether anything from `from` to `to` shows in the window.
    pub fn shows(&self, from: f64, to: f64) -> bool {
        to >= self.start_ms() && from <= self.end_ms
    }

    /// Moves the window to end at `now_ms` when following live.
    pub fn follow_to(&mut self, now_ms: f64) {
        if self.follow {
            self.end_ms = now_ms;
        }
    }

    /// Follows live in jumps of at least `step_ms` rather than gliding every frame, for a person who
    /// asked their system for less motion (`prefers-reduced-motion`).
    pub fn follow_in_steps(&mut self, now_ms: f64, step_ms: f64) {
        if self.follow && (now_ms - self.end_ms >= step_ms || now_ms < self.end_ms) {
            self.end_ms = now_ms;
        }
    }

    /// Zooms by `factor` (below 1 zooms in) keeping the time under `anchor_x` where it is on screen.
    /// While following live, the right edge stays at the present instead.
    pub fn zoom(&mut self, factor: f64, anchor_x: f64) {
        self.zoom_until(factor, anchor_x, f64::INFINITY);
    }

    /// [`View::zoom`], never showing time after `now_ms`: zooming out around a point near the present
    /// would otherwise show a stretch of empty future (and "0 ms before now").
    pub fn zoom_until(&mut self, factor: f64, anchor_x: f64, now_ms: f64) {
        let span = (self.span_ms * factor).clamp(MIN_SPAN_MS, MAX_SPAN_MS);
        if self.follow {
            self.span_ms = span;
            return;
        }
        let anchor = self.time_at(anchor_x);
        let fraction = anchor_x / self.width_px;
        self.span_ms = span;
        self.end_ms = (anchor + (1.0 - fraction) * span).min(now_ms);
    }

    /// Drags the window by `dx` pixels (positive shows earlier time) and stops following live.
    /// Panning cannot go past `now_ms`: there is nothing there yet.
    pub fn pan(&mut self, dx: f64, now_ms: f64) {
        self.follow = false;
        self.end_ms = (self.end_ms - dx * self.ms_per_px()).min(now_ms);
    }

    /// A round grid step for the axis, so labels stand at least `min_px` apart.
    pub fn grid_step_ms(&self, min_px: f64) -> f64 {
        const STEPS: [f64; 14] = [
            50.0, 100.0, 200.0, 500.0, 1_000.0, 2_000.0, 5_000.0, 10_000.0, 15_000.0, 30_000.0,
            60_000.0, 120_000.0, 300_000.0, 600_000.0,
        ];
        let wanted = min_px * self.ms_per_px();
        STEPS
            .iter()
            .copied()
            .find(|&step| step >= wanted)
            .unwrap_or(STEPS[STEPS.len() - 1])
    }

    /// The grid lines in the window: multiples of the step, oldest first.
    pub fn grid_lines(&self, min_px: f64) -> impl Iterator<Item = f64> {
        let step = self.grid_step_ms(min_px);
        let first = (self.start_ms() / step).ceil() as i64;
        let last = (self.end_ms / step).floor() as i64;
        (first..=last).map(move |n| n as f64 * step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> View {
        View {
            end_ms: 10_000.0,
            span_ms: 10_000.0,
            width_px: 1000.0,
            follow: false,
        }
    }

    #[test]
    fn time_and_x_map_both_ways() {
        let view = view();
        assert_eq!(view.x_of(0.0), 0.0);
        assert_eq!(view.x_of(10_000.0), 1000.0);
        assert_eq!(view.x_of(2_500.0), 250.0);
        assert_eq!(view.time_at(250.0), 2_500.0);
        assert_eq!(view.ms_per_px(), 10.0);
        assert!(
            view.x_of(-1.0) < 0.0,
            "before the window is off the left edge"
        );
    }

    #[test]
    fn only_what_overlaps_the_window_shows() {
        let view = view();
        assert!(view.shows(-500.0, 10.0), "a span reaching into the window");
        assert!(view.shows(9_999.0, 20_000.0));
        assert!(!view.shows(-500.0, -1.0));
        assert!(!view.shows(10_001.0, 10_002.0));
    }

    #[test]
    fn zoom_keeps_the_time_under_the_pointer_in_place() {
        let mut view = view();
        let before = view.time_at(750.0);
        view.zoom(0.5, 750.0);
        assert_eq!(view.span_ms, 5_000.0);
        assert!((view.time_at(750.0) - before).abs() < 1e-9);
        assert!((view.x_of(before) - 750.0).abs() < 1e-9);
    }

    /// Paused at the present, zoomed in 3× then out 8× around the middle: the window ends at now, never
    /// in an empty future.
    #[test]
    fn zooming_out_while_paused_never_shows_the_future() {
        let mut view = view();
        let now = view.end_ms;
        view.zoom_until(1.0 / 3.0, 500.0, now);
        view.zoom_until(8.0, 500.0, now);
        assert!(
            view.end_ms <= now,
            "ends {} ms in the future",
            view.end_ms - now
        );
        assert!((view.span_ms - 10_000.0 * 8.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn zoom_is_clamped_and_follows_live_at_the_right_edge() {
        let mut view = view();
        view.zoom(1e-6, 0.0);
        assert_eq!(view.span_ms, MIN_SPAN_MS);
        view.zoom(1e9, 0.0);
        assert_eq!(view.span_ms, MAX_SPAN_MS);
        let mut live = View::new(50_000.0, 800.0);
        live.zoom(2.0, 100.0);
        assert_eq!(live.end_ms, 50_000.0);
        assert_eq!(live.span_ms, 2.0 * DEFAULT_SPAN_MS);
        live.follow_to(51_000.0);
        assert_eq!(live.end_ms, 51_000.0);
    }

    #[test]
    fn panning_stops_following_and_never_passes_the_present() {
        let mut view = View::new(10_000.0, 1000.0);
        view.pan(100.0, 10_000.0);
        assert!(!view.follow);
        assert_eq!(view.end_ms, 10_000.0 - 100.0 * 20.0);
        view.follow_to(99_999.0);
        assert_eq!(view.end_ms, 8_000.0, "a paused view stays where it was put");
        view.pan(-10_000.0, 10_000.0);
        assert_eq!(view.end_ms, 10_000.0);
    }

    #[test]
    fn grid_lines_are_round_and_far_enough_apart() {
        let view = view();
        assert_eq!(view.grid_step_ms(80.0), 1_000.0);
        let lines: Vec<f64> = view.grid_lines(80.0).collect();
        assert_eq!(lines.len(), 11);
        assert_eq!(lines[1], 1_000.0);
        let wide = View {
            span_ms: 600_000.0,
            ..view
        };
        assert_eq!(wide.grid_step_ms(80.0), 60_000.0);
    }

    #[test]
    fn with_less_motion_the_live_view_moves_once_a_second() {
        let mut view = View::new(10_000.0, 800.0);
        view.follow_in_steps(10_400.0, 1_000.0);
        assert_eq!(view.end_ms, 10_000.0, "it holds still within the second");
        view.follow_in_steps(11_050.0, 1_000.0);
        assert_eq!(view.end_ms, 11_050.0, "then jumps to now");
        view.follow = false;
        view.follow_in_steps(13_000.0, 1_000.0);
        assert_eq!(view.end_ms, 11_050.0, "a paused view stays where it is");
    }
}
