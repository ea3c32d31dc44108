//! Letters: ask `GET /api/poll?after=SEQ` every interval, whether or not there is news.

use leptos::prelude::*;
use switchboard_shared::{Backoff, LaneId};

use super::{LETTER_GRACE_MS, Reporter, back_off, now_ms, send_letter, sleep};

/// Polls until the task is dropped (the lane is stopped). Failures back off instead of hammering a
/// server that is already in trouble.
pub async fn run(reporter: Reporter) {
    debug_assert_eq!(reporter.lane, LaneId::Poll);
    let mut backoff = Backoff::standard();
    loop {
        let url = format!("/api/poll?after={}", reporter.resume_point());
        let interval = reporter.settings.poll_interval_ms.get_untracked();
        match send_letter(&reporter, &url, LETTER_GRACE_MS).await {
            Ok(_) => {
                backoff.up(now_ms());
                sleep(interval).await;
            }
            // Never faster than the interval, even when the backoff's jitter says sooner.
            Err(()) => {
                let started = now_ms();
                back_off(&reporter, &mut backoff).await;
                let waited = (now_ms() - started).max(0.0) as u32;
                sleep(interval.saturating_sub(waited)).await;
            }
        }
    }
}
