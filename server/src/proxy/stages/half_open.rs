//! The `half_open` fault: nothing passes either way and nothing is closed. The connections open when it
//! strikes go dead (their socket, [`crate::proxy::conn::ProxiedStream`], takes and drops every byte from
//! then on); a request that arrives on a dead connection, or opens a connection of the channel while the
//! fault lasts, is never answered.

use axum::http::request;
use std::sync::Arc;
use switchboard_shared::app::{AppFaultKind, AppFaultRequest};

use crate::proxy::conn::Conn;
use crate::proxy::lab::Lab;
use crate::proxy::stage::{Flow, Stage, Verdict};

#[derive(Debug)]
pub struct HalfOpen;

impl Stage for HalfOpen {
    fn on_request(&self, flow: &Flow, _head: &request::Parts) -> Verdict {
        if flow.conn.is_half_open() {
            return Verdict::NoAnswer;
        }
        let lab = flow.lab();
        if lab
            .active(AppFaultKind::HalfOpen, &flow.channel.id)
            .is_none()
        {
            return Verdict::Pass;
        }
        flow.conn.go_half_open();
        lab.half_opened(&flow.channel.id);
        Verdict::NoAnswer
    }

    fn on_inject(&self, _lab: &Lab, fault: &AppFaultRequest, hit: &[Arc<Conn>]) {
        if fault.kind == AppFaultKind::HalfOpen {
            for conn in hit {
                conn.go_half_open();
            }
        }
    }
}
