//! The endpoints that are not lanes: health, chat posts, the server's own stats and its metrics.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;
use std::fmt::Write;
use switchboard_shared::{
    ChatAccepted, ChatPost, ChatVia, EventBody, LaneCounters, LaneId, ServerStats,
};

use crate::AppState;
use crate::backplane::LinkState;
use crate::error::{AppError, AppJson};
use crate::metering::ConnInfo;

/// The largest chat post body accepted (the text limit is far below it; this bounds what is read).
pub const MAX_POST_BYTES: usize = 4 * 1024;

/// `GET /healthz`: `200 ok` when ready. With a backplane, `503 degraded` and why while Redis cannot be
/// reached: open connections are still served, but nothing new can be published, so a load balancer
/// should send new clients elsewhere.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let backplane = state.backplane.as_ref().map(|backplane| backplane.status());
    let healthy = backplane
        .as_ref()
        .is_none_or(|status| status.state == LinkState::Ok);
    let body = Json(json!({
        "status": if healthy { "ok" } else { "degraded" },
        "why": backplane.as_ref().and_then(|status| status.why.clone()),
        "instance": &*state.instance,
        "epoch": state.hub.epoch(),
        "head": state.hub.head(),
        "backplane": backplane,
    }));
    if healthy {
        body.into_response()
    } else {
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

/// `POST /api/messages`: publishes a chat message to every lane and answers with its seq.
pub async fn post_message(
    State(state): State<AppState>,
    conn: Option<Extension<ConnInfo>>,
    body: Result<AppJson<ChatPost>, AppError>,
) -> Result<Json<ChatAccepted>, Response> {
    let AppJson(post) = body.map_err(IntoResponse::into_response)?;
    let message = post
        .validate(ChatVia::Post)
        .map_err(|err| AppError::from(err).into_response())?;
    if state.faults.paused() {
        return Err(AppError::Unavailable(
            "the server is paused (a pause fault): nothing is published; try again shortly".into(),
        )
        .into_response());
    }
    let client = conn.map(|Extension(conn)| conn.client);
    if let Err(wait) = state.limits.chat(client) {
        let mut refused = AppError::TooMany(format!(
            "too many chat messages: at most {} per second from one client",
            state.config.chat_per_second
        ))
        .into_response();
        refused.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(wait.as_secs_f64().ceil().max(1.0) as u64),
        );
        return Err(refused);
    }
    let client_ref = message.client_ref.clone();
    let published = state
        .publish(EventBody::Chat(message))
        .await
        .map_err(IntoResponse::into_response)?;
    Ok(Json(ChatAccepted {
        seq: published.seq,
        ts_ms: published.ts_ms,
        client_ref,
    }))
}

pub fn snapshot(state: &AppState) -> ServerStats {
    if let Some(dialing) = state.webtransport.get() {
        dialing.count_bytes();
    }
    ServerStats {
        instance: state.instance.to_string(),
        epoch: state.hub.epoch(),
        uptime_ms: state.started.elapsed().as_millis() as u64,
        head: state.hub.head(),
        oldest: state.hub.oldest(),
        history_len: state.hub.len(),
        history_capacity: state.hub.capacity(),
        lanes: LaneId::ALL
            .into_iter()
            .map(|lane| (lane, state.meters.lane(lane).snapshot()))
            .collect(),
        other: state.meters.other().snapshot(),
        connections: state.meters.connections(),
        app_proxy: state.app.is_some(),
    }
}

pub async fn stats(State(state): State<AppState>) -> Json<ServerStats> {
    Json(snapshot(&state))
}

/// `GET /metrics`: the same counters in the Prometheus text exposition format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let body = prometheus_text(&snapshot(&state));
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

fn prometheus_text(stats: &ServerStats) -> String {
    type Field = fn(&LaneCounters) -> u64;
    let per_lane: [(&str, &str, &str, Field); 10] = [
        (
            "connections_open",
            "gauge",
            "Streams or held requests open now.",
            |c| c.connections_open,
        ),
        (
            "connections_total",
            "counter",
            "Streams or held requests opened.",
            |c| c.connections_total,
        ),
        (
            "requests_total",
            "counter",
            "HTTP requests answered.",
            |c| c.requests,
        ),
        (
            "empty_replies_total",
            "counter",
            "Poll and long-poll replies without an event.",
            |c| c.empty_replies,
        ),
        (
            "messages_total",
            "counter",
            "Events delivered to clients.",
            |c| c.messages,
        ),
        (
            "frames_in_total",
            "counter",
            "WebSocket frames received from clients.",
            |c| c.frames_in,
        ),
        (
            "errors_total",
            "counter",
            "Requests or frames refused with an error.",
            |c| c.errors,
        ),
        (
            "bytes_in_total",
            "counter",
            "Bytes received on the wire, headers and framing included.",
            |c| c.bytes_in,
        ),
        (
            "bytes_out_total",
            "counter",
            "Bytes sent on the wire, headers and framing included.",
            |c| c.bytes_out,
        ),
        (
            "slow_readers_cut_total",
            "counter",
            "Connections cut because their reader took nothing for the send timeout.",
            |c| c.slow_readers_cut,
        ),
    ];
    let mut out = String::with_capacity(4096);
    for (name, kind, help, field) in per_lane {
        let _ = writeln!(out, "# HELP switchboard_lane_{name} {help}");
        let _ = writeln!(out, "# TYPE switchboard_lane_{name} {kind}");
        for (lane, counters) in &stats.lanes {
            let _ = writeln!(
                out,
                "switchboard_lane_{name}{{lane=\"{lane}\"}} {}",
                field(counters)
            );
        }
        let _ = writeln!(
            out,
            "switchboard_lane_{name}{{lane=\"other\"}} {}",
            field(&stats.other)
        );
    }
    let connections = &stats.connections;
    let _ = writeln!(
        out,
        "# HELP switchboard_connections_cut_total TCP connections closed or refused to protect the others, per reason."
    );
    let _ = writeln!(out, "# TYPE switchboard_connections_cut_total counter");
    let slow_readers: u64 = stats
        .lanes
        .values()
        .chain([&stats.other])
        .map(|c| c.slow_readers_cut)
        .sum();
    for (reason, count) in [
        ("head_timeout", connections.head_timeout),
        ("idle_timeout", connections.idle_timeout),
        ("head_too_large", connections.head_too_large),
        ("over_client_limit", connections.over_client_limit),
        ("over_file_limit", connections.over_file_limit),
        ("slow_reader", slow_readers),
    ] {
        let _ = writeln!(
            out,
            "switchboard_connections_cut_total{{reason=\"{reason}\"}} {count}"
        );
    }
    let gauges = [
        (
            "tcp_connections_open",
            "TCP connections open now.",
            connections.tcp_open,
        ),
        ("head_seq", "The newest seq published.", stats.head),
        (
            "history_events",
            "Events held for resumes.",
            stats.history_len as u64,
        ),
        (
            "history_capacity",
            "The most events held for resumes.",
            stats.history_capacity as u64,
        ),
        (
            "uptime_seconds",
            "Seconds since the server started.",
            stats.uptime_ms / 1000,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP switchboard_{name} {help}");
        let _ = writeln!(out, "# TYPE switchboard_{name} gauge");
        let _ = writeln!(out, "switchboard_{name} {value}");
    }
    out
}

/// `/` when no built frontend is configured: what the server is and what it sees, so the printed URL
/// never leads to an error page.
pub async fn index() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("index.html"))
}

/// Any path the server does not know.
pub async fn not_found() -> AppError {
    AppError::NotFound
}
