//! Emulated network conditions per lane (`GET`/`POST /api/network`, `--network PRESET`): round trips,
//! jitter, bandwidth and loss applied by the server itself, with no root and on any machine, the same
//! way on every lane. What each means on the wire is in docs/PROTOCOL.md ("Network conditions").
//!
//! - a request of a lane is handled one one-way delay after it arrives (plus its bytes at the upload
//!   bandwidth), and the first request of a new connection one round trip later still: its TCP
//!   handshake ([`middleware`]);
//! - everything written to a connection comes out one one-way delay later, at the download bandwidth, in
//!   order, with loss as TCP suffers it: a retransmission timeout for the lost chunk and everything
//!   behind it ([`shaped`], applied by the connection's stream, [`crate::listener`]);
//! - frames from the browser on the phone line are held one one-way delay after they arrive.
//!
//! While no condition is set a connection pays one relaxed atomic load per read or write.

pub mod shaped;

use axum::Json;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::Response;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use switchboard_shared::network::{
    Condition, LaneConditions, NetworkChange, NetworkRequest, NetworkState, presets,
};
use switchboard_shared::{EventBody, FaultAuth, LaneId, Notice, NoticeLevel, PerLane};

use crate::AppState;
use crate::error::{AppError, AppJson};
use crate::hub::now_ms;
use crate::metering::{RequestHead, lane_of_path};
use shaped::Dice;

/// The condition of every lane.
#[derive(Debug)]
pub struct Network {
    conditions: RwLock<PerLane<Option<Arc<Condition>>>>,
    /// Whether a lane has a condition: the only thing a connection reads while none is set.
    armed: PerLane<AtomicBool>,
    pub auth: FaultAuth,
}

impl Network {
    pub fn new(auth: FaultAuth, start: Option<Condition>) -> Network {
        let network = Network {
            conditions: RwLock::default(),
            armed: PerLane::default(),
            auth,
        };
        for lane in LaneId::ALL {
            network.set(lane, start.clone());
        }
        network
    }

    /// The condition `lane` runs over, or `None` (one atomic load) when it has none.
    pub fn condition(&self, lane: LaneId) -> Option<Arc<Condition>> {
        if !self.armed[lane].load(Relaxed) {
            return None;
        }
        self.conditions.read().unwrap_or_else(|p| p.into_inner())[lane].clone()
    }

    /// Whether `lane` has a condition (one atomic load).
    pub fn is_armed(&self, lane: LaneId) -> bool {
        self.armed[lane].load(Relaxed)
    }

    fn set(&self, lane: LaneId, condition: Option<Condition>) {
        let mut conditions = self.conditions.write().unwrap_or_else(|p| p.into_inner());
        self.armed[lane].store(condition.is_some(), Relaxed);
        conditions[lane] = condition.map(Arc::new);
    }

    /// Every lane's condition, as the API lists them.
    pub fn lanes(&self) -> LaneConditions {
        let conditions = self.conditions.read().unwrap_or_else(|p| p.into_inner());
        LaneConditions::from(&PerLane::from_fn(|lane| {
            conditions[lane].as_deref().cloned()
        }))
    }

    pub fn state(&self) -> NetworkState {
        NetworkState {
            auth: self.auth,
            presets: presets(),
            lanes: self.lanes(),
        }
    }

    /// Applies a checked request and says what changed.
    pub fn apply(&self, request: &NetworkRequest) -> NetworkChange {
        for lane in LaneId::ALL
            .into_iter()
            .filter(|&lane| request.lane.covers(lane))
        {
            self.set(lane, request.condition.clone());
        }
        NetworkChange {
            lane: request.lane,
            condition: request.condition.clone(),
            at_ms: now_ms(),
            lanes: self.lanes(),
        }
    }
}

/// `GET /api/network`: the presets, who may change conditions, and every lane's condition.
pub async fn get(State(state): State<AppState>) -> Json<NetworkState> {
    Json(state.network.state())
}

/// `POST /api/network`: sets one lane's condition or every lane's, and announces it on the stream.
pub async fn post(
    State(state): State<AppState>,
    _admin: crate::admin::Admin,
    body: Result<AppJson<serde_json::Value>, AppError>,
) -> Result<Json<NetworkChange>, AppError> {
    let AppJson(json) = body?;
    let request = NetworkRequest::from_json(&json).map_err(|why| AppError::BadRequest {
        code: "invalid_network",
        message: why.to_string(),
    })?;
    let change = state.network.apply(&request);
    tracing::info!("network: {}", change.describe());
    let notice = EventBody::Notice(Notice {
        level: NoticeLevel::Info,
        code: "network_changed".into(),
        text: change.describe(),
        fault: None,
        network: Some(Box::new(change.clone())),
        traffic: None,
    });
    // The condition is in effect either way; only its notice is missing if the stream is down.
    if let Err(err) = state.publish(notice).await {
        tracing::warn!("the network change's notice was not published: {err}");
    }
    Ok(Json(change))
}

/// Holds a lane's request until its head has crossed the emulated path: one one-way delay and the head's
/// bytes at the upload bandwidth, and for the first request of a connection the handshake's round trip
/// before that. Its body pays its bytes at the upload bandwidth as they are read — only bytes that
/// really came, never a claimed `Content-Length` — inside the handler, so the request's deadline
/// covers it. The wait before the handler is held within `--request-timeout-ms` too, so no request
/// sits on the emulated path for longer than any request may take (a client that left is let go by
/// then). Runs inside the accounting middleware, which has told the connection which request this is.
pub async fn middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let condition =
        lane_of_path(request.uri().path()).and_then(|lane| state.network.condition(lane));
    let Some(condition) = condition else {
        return next.run(request).await;
    };
    let head = request.extensions().get::<RequestHead>().copied();
    let mut dice = Dice::new();
    let mut wait_ms = condition.one_way_ms(dice.unit());
    if condition.up_kbps > 0 {
        wait_ms += head.map_or(0, |head| head.bytes) as f64 * 8.0 / f64::from(condition.up_kbps);
    }
    if head.is_some_and(|head| head.on_connection == 1) {
        // SYN, SYN-ACK: a round trip before the browser may send its request at all.
        wait_ms += condition.one_way_ms(dice.unit()) + condition.one_way_ms(dice.unit());
    }
    let allowance = Duration::from_millis(state.config.request_timeout_ms);
    let wait = Duration::from_secs_f64(wait_ms / 1000.0);
    if wait > allowance {
        return AppError::Timeout(allowance).into_response();
    }
    tokio::select! {
        () = tokio::time::sleep(wait) => {}
        () = state.shutdown.cancelled() => {}
    }
    let request = if condition.up_kbps > 0 {
        let (parts, body) = request.into_parts();
        Request::from_parts(parts, upload_paced(body, condition.up_kbps))
    } else {
        request
    };
    next.run(request).await
}

/// A request body that arrives at `up_kbps`: each chunk is handed on once its bytes would have crossed
/// the emulated path.
fn upload_paced(body: axum::body::Body, up_kbps: u32) -> axum::body::Body {
    use futures_util::StreamExt;
    let paced = body.into_data_stream().then(move |chunk| async move {
        if let Ok(bytes) = &chunk {
            let ms = bytes.len() as f64 * 8.0 / f64::from(up_kbps);
            tokio::time::sleep(Duration::from_secs_f64(ms / 1000.0)).await;
        }
        chunk
    });
    axum::body::Body::from_stream(paced)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_shared::FaultTarget;
    use switchboard_shared::network::preset;

    #[test]
    fn a_lane_without_a_condition_is_not_armed() {
        let network = Network::new(FaultAuth::Loopback, None);
        assert!(
            LaneId::ALL
                .iter()
                .all(|&lane| network.condition(lane).is_none())
        );
        let change = network.apply(&NetworkRequest {
            lane: FaultTarget::Lane(LaneId::Ws),
            condition: preset("3g"),
        });
        assert_eq!(change.lanes.get(LaneId::Ws).map(|c| c.rtt_ms), Some(300));
        assert!(network.is_armed(LaneId::Ws));
        assert!(!network.is_armed(LaneId::Sse), "other lanes untouched");
        network.apply(&NetworkRequest {
            lane: FaultTarget::ALL,
            condition: None,
        });
        assert!(!network.is_armed(LaneId::Ws));
        assert_eq!(network.lanes(), LaneConditions::default());
    }

    #[test]
    fn a_start_condition_covers_every_lane() {
        let network = Network::new(FaultAuth::Loopback, preset("4g"));
        assert!(LaneId::ALL.iter().all(|&lane| network.is_armed(lane)));
    }
}
