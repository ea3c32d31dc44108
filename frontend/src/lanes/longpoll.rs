//! Held letters: `GET /api/longpoll?after=SEQ&wait_ms=N`; the server holds the letter until there is
//! news or the wait runs out, and the next letter goes out as soon as the answer is in.

use leptos::prelude::*;
use switchboard_shared::LaneId;

use super::{Reporter, backoff_ms, send_letter, sleep};

/// Long-polls until the task is dropped (the lane is stopped).
pub async fn run(reporter: Reporter) {
    debug_assert_eq!(reporter.lane, LaneId::LongPoll);
    let mut failures = 0;
    loop {
        let wait_ms = reporter.dashboard.settings.wait_ms.get_untracked();
        let url = format!(
            "/api/longpoll?after={}&wait_ms={wait_ms}",
            reporter.resume_point()
        );
        match send_letter(&reporter, &url, true).await {
            Ok(_) => failures = 0,
            Err(()) => {
                failures += 1;
                sleep(backoff_ms(failures, 500, 15_000, js_sys::Math::random())).await;
            }
        }
    }
}
