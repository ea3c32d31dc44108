//! Held letters: `GET /api/longpoll?after=SEQ&wait_ms=N` answers at once when something is new, and
//! otherwise holds the request until the next event, the wait running out, or shutdown.
//!
//! A held request is a parked future waiting on a `watch` of the head seq: thousands of them cost
//! memory for their sockets and no CPU.

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use std::time::Duration;
use switchboard_shared::{LaneId, Seq};

use super::{ApiQuery, BATCH_LIMIT, batch_response};
use crate::AppState;
use crate::error::AppError;
use crate::faults::ConnectionFaults;
use crate::metering::ConnInfo;

/// How long a request is held when it does not say.
pub const DEFAULT_WAIT_MS: u64 = 25_000;

#[derive(Debug, Deserialize)]
pub struct LongPollQuery {
    /// The last seq the client has; without it, the client waits for the next event.
    pub after: Option<Seq>,
    /// How long to hold the request at most, in ms (up to the server's `--max-wait-ms`).
    pub wait_ms: Option<u64>,
}

pub async fn longpoll(
    State(state): State<AppState>,
    conn: Option<Extension<ConnInfo>>,
    ApiQuery(query): ApiQuery<LongPollQuery>,
) -> Result<Response, AppError> {
    let wait_ms = query.wait_ms.unwrap_or(DEFAULT_WAIT_MS);
    if wait_ms > state.config.max_wait_ms {
        return Err(AppError::BadQuery(format!(
            "wait_ms must be at most {}",
            state.config.max_wait_ms
        )));
    }
    // Watch before looking, so an event published in between still wakes this request.
    let mut head = state.hub.watch_head();
    let after = query.after.unwrap_or_else(|| *head.borrow());
    let replay = state.hub.since(after, BATCH_LIMIT);
    if !replay.events.is_empty() || replay.gap.is_some() {
        return Ok(batch_response(&state, LaneId::LongPoll, replay));
    }
    // Only a held letter occupies the server, so only holding is limited.
    let _permit = state
        .limits
        .admit(LaneId::LongPoll, conn.map(|Extension(conn)| conn.client))?;
    let mut conn_faults = ConnectionFaults::new(&state.faults, LaneId::LongPoll);
    let _held = state.meters.lane(LaneId::LongPoll).open();
    tokio::select! {
        // A cut comes first: the drop's own notice, published right after it, must not answer the
        // letter it dropped.
        biased;
        _ = conn_faults.cut() => {
            return Err(AppError::Unavailable(
                "the held letter was dropped (a drop or restart fault); ask again".into(),
            ));
        }
        // Shutting down: answer with what there is rather than cutting the connection.
        () = state.shutdown.cancelled() => {}
        _ = head.wait_for(|&head| head > after) => {}
        () = tokio::time::sleep(Duration::from_millis(wait_ms)) => {}
    }
    Ok(batch_response(
        &state,
        LaneId::LongPoll,
        state.hub.since(after, BATCH_LIMIT),
    ))
}
