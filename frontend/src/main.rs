//! Mounts the dashboard on the page.

fn main() {
    leptos::mount::mount_to_body(switchboard_frontend::App);
    // When the page became usable, as a Performance mark: DevTools shows it on its timeline, and
    // `loadgen/bench/first-load.cjs` reads it to time the first load over an emulated network.
    if let Some(performance) = web_sys::window().and_then(|window| window.performance()) {
        let _ = performance.mark("switchboard-mounted");
    }
}
