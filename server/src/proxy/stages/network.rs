//! The emulated network's part in a request: its head's way up the path — half a round trip, and its
//! bytes at the path's upload rate. Everything after the head (a body, a socket's frames, the answer)
//! is carried by the browser's socket, which runs over the same path ([`crate::proxy::conn`]).

use axum::http::request;
use std::time::Duration;

use crate::network::shaped::Dice;
use crate::proxy::headers::head_bytes;
use crate::proxy::stage::{Flow, Stage, Verdict};

#[derive(Debug)]
pub struct NetworkHead;

impl Stage for NetworkHead {
    fn on_request(&self, flow: &Flow, head: &request::Parts) -> Verdict {
        let Some(path) = flow.lab().network_for(&flow.channel.id) else {
            return Verdict::Pass;
        };
        let target = head.uri.path_and_query().map_or(1, |pq| pq.as_str().len());
        let bytes = head_bytes(head.method.as_str().len() + target + 10, &head.headers);
        let sending = if path.up_kbps > 0 {
            bytes as f64 * 8.0 / f64::from(path.up_kbps)
        } else {
            0.0
        };
        let way_up = path.one_way_ms(Dice::new().unit()) + sending;
        Verdict::Wait(Duration::from_secs_f64(way_up.max(0.0) / 1000.0))
    }
}
