//! The `idle_timeout` fault: a connection of the channel silent for `idle_ms` (no byte either way) is
//! cut, as a proxy or load balancer in front of the app does. A half-open connection is dead already:
//! a real proxy would cut it, but then the browser would hear of it, which a half-open never tells.

use std::sync::Arc;
use switchboard_shared::app::{AppFaultKind, CutCause};

use crate::proxy::conn::{Conn, CutBy};
use crate::proxy::lab::Lab;
use crate::proxy::stage::Stage;

#[derive(Debug)]
pub struct IdleTimeout;

impl Stage for IdleTimeout {
    fn on_tick(&self, lab: &Lab, open: &[Arc<Conn>]) {
        for fault in lab.all_active(AppFaultKind::IdleTimeout) {
            let limit = fault.idle_ms.unwrap_or(u64::MAX);
            for conn in open {
                let Some(key) = conn.key() else { continue };
                if fault.hits(&key.id)
                    && !conn.cut.is_cancelled()
                    && !conn.is_half_open()
                    && conn.silent_for_ms() >= limit
                {
                    // Told before the cut: once cut, what it carried ends (and is forgotten) at once.
                    lab.cut_conn(conn, &key.id, CutCause::IdleTimeout);
                    conn.cut_by(CutBy::IdleTimeout);
                }
            }
        }
    }
}
