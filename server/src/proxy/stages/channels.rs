//! Notes each request's channel for the lab: that it exists (so a fault may name it, even when its
//! connection is refused), and that a connection of it *succeeded* — a redial, for the faults that hit
//! it before. By the lab's definition an attempt is no redial: a refused connection, a `503`, a request
//! held unanswered or one that got a `502` opened nothing; a `101`, or an answer from the app that is
//! not an error, did.

use axum::http::{request, response};
use std::time::Duration;

use crate::proxy::stage::{Flow, Stage, Verdict};

#[derive(Debug)]
pub struct Channels;

impl Stage for Channels {
    fn on_request(&self, flow: &Flow, _head: &request::Parts) -> Verdict {
        flow.lab().seen(&flow.channel.id, &flow.channel.name);
        Verdict::Pass
    }

    fn on_response(&self, flow: &Flow, head: &response::Parts, by_proxy: bool) -> Duration {
        let succeeded = head.status.is_informational() || head.status.as_u16() < 400;
        if flow.opens && !by_proxy && succeeded {
            flow.lab().opened(&flow.channel.id);
        }
        Duration::ZERO
    }
}
