//! Notes each request's channel for the lab: that it exists (so a fault may name it), and that a
//! connection of it opened (a redial, for the faults that hit it before).

use axum::http::request;

use crate::proxy::stage::{Flow, Stage, Verdict};

#[derive(Debug)]
pub struct Channels;

impl Stage for Channels {
    fn on_request(&self, flow: &Flow, _head: &request::Parts) -> Verdict {
        let lab = flow.lab();
        lab.seen(&flow.channel.id, &flow.channel.name);
        if flow.opens {
            lab.opened(&flow.channel.id);
        }
        Verdict::Pass
    }
}
