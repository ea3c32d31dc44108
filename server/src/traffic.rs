//! The traffic pattern (`GET`/`POST /api/traffic`, `--traffic`): how often the server's own sources speak.
//! The sources ([`crate::sources`]) follow it through a watch channel, so a change takes effect at once,
//! and every change is announced on the stream so the page can mark it on its timeline.

use axum::Json;
use axum::extract::State;
use switchboard_shared::traffic::{TrafficChange, TrafficState};
use switchboard_shared::{EventBody, FaultAuth, Notice, NoticeLevel, Traffic};
use tokio::sync::watch;

use crate::AppState;
use crate::error::{AppError, AppJson};
use crate::hub::{Delivery, now_ms};

/// The stable code of the notice a change publishes.
pub const NOTICE_CODE: &str = "traffic_changed";

#[derive(Debug)]
pub struct TrafficControl {
    pattern: watch::Sender<Traffic>,
    pub auth: FaultAuth,
}

impl TrafficControl {
    pub fn new(auth: FaultAuth, start: Traffic) -> TrafficControl {
        TrafficControl {
            pattern: watch::Sender::new(start),
            auth,
        }
    }

    pub fn current(&self) -> Traffic {
        *self.pattern.borrow()
    }

    /// Follows the pattern: a source re-plans as soon as it changes.
    pub fn subscribe(&self) -> watch::Receiver<Traffic> {
        self.pattern.subscribe()
    }

    /// Sets the pattern and returns the one it replaced.
    pub fn set(&self, pattern: Traffic) -> Traffic {
        self.pattern.send_replace(pattern)
    }
}

/// `GET /api/traffic`: the pattern in effect, the patterns there are, and who may change it.
pub async fn get(State(state): State<AppState>) -> Json<TrafficState> {
    Json(TrafficState::new(
        state.traffic.auth,
        state.traffic.current(),
    ))
}

/// `POST /api/traffic` with `{"pattern": NAME}`: changes the pattern and announces it on the stream.
pub async fn post(
    State(state): State<AppState>,
    _admin: crate::admin::Admin,
    body: Result<AppJson<serde_json::Value>, AppError>,
) -> Result<Json<TrafficChange>, AppError> {
    let AppJson(json) = body?;
    let pattern = pattern_of(&json).map_err(|message| AppError::BadRequest {
        code: "invalid_traffic",
        message,
    })?;
    let change = TrafficChange {
        pattern,
        previous: state.traffic.set(pattern),
        at_ms: now_ms(),
    };
    tracing::info!("{}", change.describe());
    let notice = EventBody::Notice(Notice {
        level: NoticeLevel::Info,
        code: NOTICE_CODE.into(),
        text: change.describe(),
        fault: None,
        network: None,
        traffic: Some(change),
    });
    // The pattern is in effect either way; only its notice is missing if the stream is down.
    if let Err(err) = state.publish(notice).await {
        tracing::warn!("the traffic change's notice was not published: {err}");
    }
    Ok(Json(change))
}

/// Reads `{"pattern": NAME}`, naming the field in every refusal.
fn pattern_of(json: &serde_json::Value) -> Result<Traffic, String> {
    let names = || Traffic::ALL.map(Traffic::as_str).join(", ");
    let object = json.as_object().ok_or_else(|| {
        format!(
            "the body must be an object: {{\"pattern\": one of {}}}",
            names()
        )
    })?;
    if let Some(unknown) = object.keys().find(|key| *key != "pattern") {
        return Err(format!(
            "unknown field \"{unknown}\": the body is {{\"pattern\": NAME}}"
        ));
    }
    match object.get("pattern") {
        None => Err(format!("pattern is missing (want one of {})", names())),
        Some(serde_json::Value::String(name)) => Traffic::from_name(name)
            .ok_or_else(|| format!("pattern \"{name}\" is unknown (want one of {})", names())),
        Some(other) => Err(format!(
            "pattern must be a name (one of {}), not {other}",
            names()
        )),
    }
}

/// With several instances only one runs the sources, but a change may be posted to any of them: each
/// instance applies the changes it reads on the shared stream, so the one that leads follows too.
pub async fn follow_changes(state: AppState) {
    let mut subscription = state.hub.subscribe(None);
    loop {
        let delivery = tokio::select! {
            () = state.shutdown.cancelled() => return,
            delivery = subscription.next() => delivery,
        };
        let Some(delivery) = delivery else { return };
        let Delivery::Event(published) = delivery else {
            continue;
        };
        // Only a notice of a change is worth parsing.
        if !published
            .json
            .windows(NOTICE_CODE.len())
            .any(|window| window == NOTICE_CODE.as_bytes())
        {
            continue;
        }
        if let Ok(event) = serde_json::from_slice::<switchboard_shared::Event>(&published.json)
            && let EventBody::Notice(Notice {
                traffic: Some(change),
                ..
            }) = event.body
        {
            state.traffic.set(change.pattern);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refusals_name_the_field_and_the_choices() {
        assert_eq!(pattern_of(&json!({"pattern": "quiet"})), Ok(Traffic::Quiet));
        let why = pattern_of(&json!({"pattern": "loud"})).unwrap_err();
        assert!(
            why.contains("pattern \"loud\"") && why.contains("firehose"),
            "{why}"
        );
        let why = pattern_of(&json!({"pattern": "quiet", "rate": 2})).unwrap_err();
        assert!(why.contains("\"rate\""), "{why}");
        assert!(pattern_of(&json!({})).unwrap_err().contains("missing"));
        assert!(
            pattern_of(&json!({"pattern": 3}))
                .unwrap_err()
                .contains("not 3")
        );
        assert!(
            pattern_of(&json!(["quiet"]))
                .unwrap_err()
                .contains("object")
        );
    }
}
