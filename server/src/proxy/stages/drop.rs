//! The `drop` fault: every open connection it aims at is cut now, both legs.

use std::sync::Arc;
use switchboard_shared::app::{AppFaultKind, AppFaultRequest, CutCause};

use crate::proxy::conn::{Conn, CutBy};
use crate::proxy::lab::Lab;
use crate::proxy::stage::Stage;

#[derive(Debug)]
pub struct Drop;

impl Stage for Drop {
    fn on_inject(&self, lab: &Lab, fault: &AppFaultRequest, hit: &[Arc<Conn>]) {
        if fault.kind != AppFaultKind::Drop {
            return;
        }
        for conn in hit {
            // Told before the cut: once cut, what it carried ends (and is forgotten) at once.
            if let Some(key) = conn.key() {
                lab.cut_conn(conn, &key.id, CutCause::Drop);
            }
            conn.cut_by(CutBy::Fault);
        }
    }
}
