//! The `half_open` fault, as a real path that drops every packet does it: the connections open when
//! it strikes go dead — nothing passes either way, nothing closes (their socket,
//! [`crate::proxy::conn::ProxiedStream`], takes and drops every byte from then on) — and stay dead after
//! it ends, as connections a NAT forgot: only the app's own heartbeat or a timeout finds that out. A
//! connection the browser opens while it lasts is not completed: its first request is held unanswered
//! until the fault ends (as a SYN is retransmitted until the path comes back) and then served as usual,
//! so the app can recover by redialing — a tab is never wedged by the lab itself. `release` cuts the
//! dead ones, for a tab that never gives up on them.

use axum::http::request;
use std::sync::Arc;
use switchboard_shared::app::{AppFaultKind, AppFaultRequest};

use crate::proxy::conn::{Conn, CutBy};
use crate::proxy::lab::Lab;
use crate::proxy::stage::{Flow, Stage, Verdict};

#[derive(Debug)]
pub struct HalfOpen;

impl Stage for HalfOpen {
    fn on_request(&self, flow: &Flow, _head: &request::Parts) -> Verdict {
        if flow.conn.is_half_open() {
            return Verdict::NoAnswer;
        }
        if !flow.first
            || flow
                .lab()
                .active(AppFaultKind::HalfOpen, &flow.channel.id)
                .is_none()
        {
            return Verdict::Pass;
        }
        Verdict::Hold
    }

    fn on_inject(&self, _lab: &Lab, fault: &AppFaultRequest, hit: &[Arc<Conn>]) {
        match fault.kind {
            AppFaultKind::HalfOpen => {
                for conn in hit {
                    conn.go_half_open();
                }
            }
            AppFaultKind::Release => {
                // Cut, a dead connection's socket is closed: the browser hears it is gone.
                for conn in hit.iter().filter(|conn| conn.is_half_open()) {
                    conn.cut_by(CutBy::Fault);
                }
            }
            _ => {}
        }
    }
}
