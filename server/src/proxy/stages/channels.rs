//! Notes each request's channel for the lab: that it exists, so a fault may name it, even when its
//! connection is refused.

use axum::http::request;

use crate::proxy::stage::{Flow, Stage, Verdict};

#[derive(Debug)]
pub struct Channels;

impl Stage for Channels {
    fn on_request(&self, flow: &Flow, _head: &request::Parts) -> Verdict {
        flow.lab().seen(&flow.channel.id, &flow.channel.name);
        Verdict::Pass
    }
}
