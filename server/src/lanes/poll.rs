//! Letters: `GET /api/poll?after=SEQ` answers at once with whatever is new (often nothing).

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use switchboard_shared::{LaneId, Seq};

use super::{ApiQuery, BATCH_LIMIT, batch_response};
use crate::AppState;

#[derive(Debug, Deserialize)]
pub struct PollQuery {
    /// The last seq the client has; without it the client starts from now (an empty batch telling it the
    /// head to ask after next time).
    pub after: Option<Seq>,
}

pub async fn poll(State(state): State<AppState>, ApiQuery(query): ApiQuery<PollQuery>) -> Response {
    let after = query.after.unwrap_or_else(|| state.hub.head());
    let replay = state.hub.since(after, BATCH_LIMIT);
    batch_response(&state, LaneId::Poll, replay)
}
