//! Mounts the dashboard on the page.

fn main() {
    // When the WebAssembly started and when the page became usable, as Performance marks: DevTools
    // shows them on its timeline, and `loadgen/bench/first-load.cjs` reads them to split a first load
    // into fetching and compiling (until started) and building the page (started to mounted).
    let performance = web_sys::window().and_then(|window| window.performance());
    if let Some(performance) = &performance {
        let _ = performance.mark("switchboard-started");
    }
    leptos::mount::mount_to_body(switchboard_frontend::App);
    if let Some(performance) = &performance {
        let _ = performance.mark("switchboard-mounted");
    }
}
