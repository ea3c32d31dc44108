//! Switchboard's live dashboard: a Leptos app, compiled to WebAssembly with trunk, that receives the
//! server's one event stream over all six lanes at once and draws every message on one timeline.
//!
//! Layout:
//! - [`wire`] — the one interface every lane client reports through ([`wire::Wire`]);
//! - [`store`] — turns reports into timeline spans and marks, per-lane scores, outages and live copies;
//!   bounded, split by concern;
//! - [`format`] — durations, clock times and sizes as a person reads them;
//! - [`har`] — HAR files read, sorted into channels, and written;
//! - [`lanes`] — the lane clients, one module each (`poll`, `longpoll`, `stream`, `sse`, `ws`, `webtransport`);
//! - [`conditions`] — the network condition each lane ran over and the times the page was hidden;
//! - [`dashboard`] — the shared page state and lane start/stop;
//! - [`figures`] — a lane's scoreboard at a moment, the comparison table's rows and the verdict in words;
//! - [`timeline`] — the canvas timeline (view math, layout and picking, drawing, component);
//! - [`ui`] — the page: header, chat composer, lane panels with scoreboards.
//!
//! `main.rs` only mounts [`ui::App`]; every component lives here so browser tests can mount it.
//! Build and serve: `./dev run` (or `trunk serve` beside a running server, see the README).

pub mod conditions;
pub mod dashboard;
pub mod figures;
pub mod format;
pub mod har;
pub mod lanes;
pub mod store;
pub mod timeline;
pub mod ui;
pub mod wire;

pub use dashboard::Dashboard;
pub use ui::App;
