//! Mounts the dashboard on the page.

fn main() {
    leptos::mount::mount_to_body(switchboard_frontend::App);
}
