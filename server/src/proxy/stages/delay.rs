//! The `delay` fault: every answer's head and every message after it waits `delay_ms` longer.

use axum::http::response;
use std::time::Duration;
use switchboard_shared::app::AppFaultKind;

use crate::proxy::stage::{Action, Flow, Message, Stage};

#[derive(Debug)]
pub struct Delay;

impl Delay {
    fn delay(flow: &Flow) -> Option<Duration> {
        flow.lab()
            .active(AppFaultKind::Delay, &flow.channel.id)
            .and_then(|fault| fault.delay_ms)
            .map(Duration::from_millis)
    }
}

impl Stage for Delay {
    fn on_response(&self, flow: &Flow, _head: &response::Parts, by_proxy: bool) -> Duration {
        if by_proxy {
            return Duration::ZERO;
        }
        Self::delay(flow).unwrap_or_default()
    }

    fn on_message(&self, flow: &Flow, _message: &Message<'_>) -> Action {
        Self::delay(flow).map_or(Action::Pass, Action::Delay)
    }
}
