//! The `http_503` fault: the channel's requests are answered `503` by the proxy while it lasts; the app
//! never sees them.

use axum::http::{StatusCode, request};
use switchboard_shared::app::AppFaultKind;

use crate::proxy::stage::{Flow, Stage, Verdict};

#[derive(Debug)]
pub struct Unavailable;

impl Stage for Unavailable {
    fn on_request(&self, flow: &Flow, _head: &request::Parts) -> Verdict {
        if flow
            .lab()
            .active(AppFaultKind::Http503, &flow.channel.id)
            .is_none()
        {
            return Verdict::Pass;
        }
        Verdict::Answer {
            status: StatusCode::SERVICE_UNAVAILABLE,
            words: "Switchboard's lab answers this channel 503 for now (the http_503 fault)."
                .into(),
        }
    }
}
