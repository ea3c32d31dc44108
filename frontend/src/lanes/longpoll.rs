//! Held letters: `GET /api/longpoll?after=SEQ&wait_ms=N`; the server holds the letter until there is
//! news or the wait runs out, and the next letter goes out as soon as the answer is in.

use leptos::prelude::*;
use switchboard_shared::{Backoff, LaneId};

use super::{LETTER_GRACE_MS, Reporter, back_off, now_ms, send_letter};

/// Long-polls until the task is dropped (the lane is stopped). Failures back off (full jitter) instead
/// of hammering a server that is already in trouble.
pub async fn run(reporter: Reporter) {
    debug_assert_eq!(reporter.lane, LaneId::LongPoll);
    let mut backoff = Backoff::standard();
    loop {
        let wait_ms = reporter.settings.wait_ms.get_untracked();
        let url = format!(
            "/api/longpoll?after={}&wait_ms={wait_ms}",
            reporter.resume_point()
        );
        match send_letter(&reporter, &url, wait_ms + LETTER_GRACE_MS).await {
            Ok(_) => backoff.up(now_ms()),
            Err(()) => back_off(&reporter, &mut backoff).await,
        }
    }
}
