//! The `hiccup` fault: new connections of the channel are refused — closed before a word, as a full
//! listen queue or a restarting proxy does. Requests on a connection already open still pass.

use axum::http::request;
use switchboard_shared::app::AppFaultKind;

use crate::proxy::conn::CutBy;
use crate::proxy::stage::{Flow, Stage, Verdict};

#[derive(Debug)]
pub struct Refuse;

impl Stage for Refuse {
    fn on_request(&self, flow: &Flow, _head: &request::Parts) -> Verdict {
        let lab = flow.lab();
        if !flow.first || lab.active(AppFaultKind::Hiccup, &flow.channel.id).is_none() {
            return Verdict::Pass;
        }
        flow.conn.cut_by(CutBy::Fault);
        lab.refused(&flow.channel.id, flow.id);
        Verdict::NoAnswer
    }
}
