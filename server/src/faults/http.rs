//! The failure lab over HTTP: `GET`/`POST /api/faults`, and the middleware that makes a lane's requests
//! meet the faults in effect.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use switchboard_shared::{Fault, FaultList, FaultRequest};

use crate::AppState;
use crate::error::{AppError, AppJson};
use crate::metering::lane_of_path;

/// `GET /api/faults`: the faults in effect and who may inject more.
pub async fn list(State(state): State<AppState>) -> Json<FaultList> {
    Json(state.faults.list())
}

/// `POST /api/faults`: injects one fault.
pub async fn inject(
    State(state): State<AppState>,
    _admin: crate::admin::Admin,
    body: Result<AppJson<FaultRequest>, AppError>,
) -> Result<(StatusCode, Json<Fault>), AppError> {
    let AppJson(request) = body?;
    let duration_ms = request.validate().map_err(|rejection| AppError::Invalid {
        code: "invalid_fault",
        message: rejection.to_string(),
    })?;
    let fault = state.faults.inject(&state, &request, duration_ms).await;
    Ok((StatusCode::CREATED, Json(fault)))
}

/// The faults that act on a lane's HTTP requests: `error` answers 503 before the handler runs; on the
/// letters lanes, `half_open` holds the letter unanswered and `delay` holds the answer.
pub async fn middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(lane) = lane_of_path(request.uri().path()) else {
        return next.run(request).await;
    };
    let letter = state.faults.letter(lane);
    if let Some(remaining) = letter.error_for {
        let mut response = AppError::Unavailable(format!(
            "the {lane} lane is failing on purpose (an error fault) for another {} ms",
            remaining.as_millis()
        ))
        .into_response();
        let retry_after = remaining.as_secs().max(1);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        return response;
    }
    // Streams and calls meet `half_open` and `delay` frame by frame (`ConnectionFaults::hold`), not here.
    if !lane.shape().is_request() {
        return next.run(request).await;
    }
    if let Some(until) = letter.unanswered_until {
        // A letter into a half-open line: nothing comes back until the line is torn down.
        tokio::select! {
            () = tokio::time::sleep_until(until) => {}
            () = state.shutdown.cancelled() => {}
        }
        return AppError::Unavailable("this letter was lost in a half-open connection".into())
            .into_response();
    }
    let response = next.run(request).await;
    if let Some(delay) = letter.delay {
        tokio::time::sleep(delay).await;
    }
    response
}
