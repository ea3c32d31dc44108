//! The `/api/app` endpoints on the dashboard's server: the app's report, its HAR, and the lab's faults
//! and networks aimed at its channels (changed by the same people who may inject faults).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use switchboard_shared::app::{
    AppFault, AppFaultKind, AppFaultRequest, AppNetwork, AppReport, channel_field,
};
use switchboard_shared::network::NetworkRequest;

use super::AppProxy;
use crate::AppState;
use crate::error::{AppError, AppJson};

/// The proxy, or a 404 that names the flag that starts it.
fn proxy(state: &AppState) -> Result<&Arc<AppProxy>, AppError> {
    state.app.as_ref().ok_or_else(|| {
        AppError::NotConfigured(
            "no app is proxied: start Switchboard with --upstream http://HOST:PORT (or SWITCHBOARD_UPSTREAM) to put your app through the lab".into(),
        )
    })
}

/// Refuses a channel id the proxy has never seen, naming the field.
fn known_channel(proxy: &AppProxy, channel: Option<&str>) -> Result<(), AppError> {
    let Some(id) = channel else { return Ok(()) };
    let seen = proxy.lab.has_seen(id);
    if seen {
        Ok(())
    } else {
        Err(AppError::ChannelNotFound(format!(
            "channel: no channel {id} has been seen through the proxy (GET /api/app lists them)"
        )))
    }
}

/// `GET /api/app`.
pub async fn get(State(state): State<AppState>) -> Result<Json<AppReport>, AppError> {
    Ok(Json(super::report::report(proxy(&state)?)))
}

/// What `GET /api/app/har` takes: `last_s`, to ask only for the exchanges of the last seconds (the
/// page's live swimlanes), or nothing for the whole recording.
#[derive(Debug, serde::Deserialize)]
pub struct HarQuery {
    last_s: Option<u32>,
}

/// `GET /api/app/har`: the recording as a HAR file to save.
pub async fn har(
    State(state): State<AppState>,
    admin: Result<crate::admin::Admin, AppError>,
    query: Result<axum::extract::Query<HarQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let proxy = proxy(&state)?;
    if proxy.settings.record_secrets {
        // Kept as they came, the app's cookies and credentials are for those who run the lab.
        admin?;
    }
    let axum::extract::Query(query) = query?;
    let now = crate::hub::now_ms_f64();
    let since = match query.last_s {
        Some(seconds) if seconds == 0 || seconds > 86_400 => {
            return Err(AppError::BadQuery(
                "last_s: a number of seconds from 1 to 86400".into(),
            ));
        }
        Some(seconds) => Some(now - f64::from(seconds) * 1000.0),
        None => None,
    };
    // Each exchange marked with its channel's kind as the figures read it, so the page's swimlanes sort
    // it as the table beside them does; written entry by entry as it is sent.
    let pieces = proxy
        .recording
        .har_pieces(now, since, proxy.figures.kinds(now))
        .map(|piece| Ok::<_, std::convert::Infallible>(bytes::Bytes::from(piece)));
    let mut response =
        axum::body::Body::from_stream(futures_util::stream::iter(pieces)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"your-app.har\""),
    );
    Ok(response)
}

/// `POST /api/app/faults`.
pub async fn faults(
    State(state): State<AppState>,
    _admin: crate::admin::Admin,
    body: Result<AppJson<serde_json::Value>, AppError>,
) -> Result<Json<Vec<AppFault>>, AppError> {
    let proxy = proxy(&state)?;
    let AppJson(json) = body?;
    let request = AppFaultRequest::from_json(&json).map_err(|why| AppError::BadRequest {
        code: "invalid_fault",
        message: why.to_string(),
    })?;
    if request.kind != AppFaultKind::Clear {
        known_channel(proxy, request.channel.as_deref())?;
    }
    proxy.inject(&request);
    tracing::info!(
        kind = request.kind.as_str(),
        channel = request.channel.as_deref().unwrap_or("all"),
        "proxy: fault on the app"
    );
    Ok(Json(proxy.lab.faults()))
}

/// `POST /api/app/reset`: starts over — the recording, the channels' figures, the experiments; every
/// fault and network ends. The app and its connections are untouched.
pub async fn reset(
    State(state): State<AppState>,
    _admin: crate::admin::Admin,
) -> Result<Json<AppReport>, AppError> {
    let proxy = proxy(&state)?;
    proxy.lab.reset();
    // The channels of connections still open are still there to aim at (their rows come back with
    // their next message): releasing a dead line after a start over must not be an unknown channel.
    for key in proxy
        .open_connections()
        .iter()
        .filter_map(|conn| conn.key())
    {
        proxy.lab.seen(&key.id, &key.name);
    }
    proxy.figures.clear();
    proxy.recording.clear();
    tracing::info!("proxy: the app's lab started over");
    Ok(Json(super::report::report(proxy)))
}

/// `POST /api/app/scenario`: a scenario file's text (TOML), run against the app through this proxy as
/// `switchboard-server scenario` runs it, while the page shows each step as an experiment and each
/// verdict as it lands (its `upstream` and `open` are not used: the app is this proxy's, the page is the
/// person's). One at a time.
pub async fn scenario(
    State(state): State<AppState>,
    _admin: crate::admin::Admin,
    body: String,
) -> Result<(axum::http::StatusCode, Json<serde_json::Value>), AppError> {
    use std::sync::atomic::Ordering::SeqCst;
    let proxy = proxy(&state)?.clone();
    let scenario =
        crate::scenario::file::Scenario::parse(&body).map_err(|why| AppError::BadRequest {
            code: "invalid_scenario",
            message: why.0,
        })?;
    if proxy.scenario_running.swap(true, SeqCst) {
        return Err(AppError::Busy(
            "a scenario is running: wait for it to end (GET /api/app says where it stands)".into(),
        ));
    }
    let answer = serde_json::json!({"name": scenario.name, "steps": scenario.steps.len()});
    tracing::info!(
        name = scenario.name,
        "proxy: a scenario runs against the app"
    );
    let runner = proxy.clone();
    proxy.tasks.spawn(async move {
        let name = scenario.name.clone();
        let tell = |text: String| {
            *runner.scenario.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(switchboard_shared::app::Finding {
                    channel: None,
                    text,
                    at_ms: Some(crate::hub::now_ms_f64()),
                });
        };
        tell(format!("Scenario “{name}”: waiting for its channels."));
        let say = |said: crate::scenario::Said<'_>| match said {
            crate::scenario::Said::Line(line) if !line.starts_with("  ") => {
                tell(format!("Scenario “{name}”: {}.", line.trim()))
            }
            crate::scenario::Said::Line(_) => {}
            crate::scenario::Said::Verdict {
                experiment,
                verdict,
                ..
            } => runner.lab.add_verdicts(
                experiment,
                verdict
                    .checks
                    .iter()
                    .map(|check| switchboard_shared::app::Finding {
                        channel: None,
                        text: format!("Expected: {}", check.text),
                        at_ms: Some(crate::hub::now_ms_f64()),
                    })
                    .collect(),
            ),
        };
        let outcome = crate::scenario::steps(&scenario, &runner, &say).await;
        tell(match outcome {
            Ok(verdicts) => {
                let held = verdicts.iter().filter(|v| v.held()).count();
                format!(
                    "Scenario “{name}”: {held} of {} step{} held {}",
                    verdicts.len(),
                    if verdicts.len() == 1 { "" } else { "s" },
                    if held == verdicts.len() { "✓" } else { "✗" }
                )
            }
            Err(why) => format!("Scenario “{name}” could not run: {}.", why.0),
        });
        runner.scenario_running.store(false, SeqCst);
    });
    Ok((axum::http::StatusCode::ACCEPTED, Json(answer)))
}

/// `POST /api/app/network`: a preset or an explicit path, on one channel or all; `"preset":
/// "loopback"` clears it.
pub async fn network(
    State(state): State<AppState>,
    _admin: crate::admin::Admin,
    body: Result<AppJson<serde_json::Value>, AppError>,
) -> Result<Json<Vec<AppNetwork>>, AppError> {
    let proxy = proxy(&state)?;
    let AppJson(mut json) = body?;
    let invalid = |message: String| AppError::BadRequest {
        code: "invalid_network",
        message,
    };
    let object = json
        .as_object_mut()
        .ok_or_else(|| invalid("body: must be a JSON object".into()))?;
    let channel = channel_field(object).map_err(|why| invalid(why.to_string()))?;
    known_channel(proxy, channel.as_deref())?;
    object.remove("channel");
    if object.contains_key("lane") {
        return Err(invalid(
            "lane: the app's network is set per channel (\"channel\"), not per lane".into(),
        ));
    }
    object.insert("lane".into(), "all".into());
    let request = NetworkRequest::from_json(&json).map_err(|why| invalid(why.to_string()))?;
    proxy.set_network(channel, request.condition);
    Ok(Json(proxy.lab.networks()))
}
