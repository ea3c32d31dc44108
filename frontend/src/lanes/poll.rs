//! Letters: ask `GET /api/poll?after=SEQ` every interval, whether or not there is news.

use leptos::prelude::*;
use switchboard_shared::LaneId;

use super::{Reporter, backoff_ms, send_letter, sleep};

/// Polls until the task is dropped (the lane is stopped). Failures back off instead of hammering a
/// server that is already in trouble.
pub async fn run(reporter: Reporter) {
    debug_assert_eq!(reporter.lane, LaneId::Poll);
    let mut failures = 0;
    loop {
        let url = format!("/api/poll?after={}", reporter.resume_point());
        let interval = reporter.dashboard.settings.poll_interval_ms.get_untracked();
        match send_letter(&reporter, &url, false).await {
            Ok(_) => {
                failures = 0;
                sleep(interval).await;
            }
            Err(()) => {
                failures += 1;
                sleep(interval.max(backoff_ms(failures, 500, 15_000, js_sys::Math::random())))
                    .await;
            }
        }
    }
}
