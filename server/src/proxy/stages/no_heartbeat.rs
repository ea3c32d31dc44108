//! The `no_heartbeat` fault: the app's heartbeats on its way to the browser are swallowed — a socket's
//! ping frames and heartbeat messages, an event stream's heartbeat events — and a letter whose whole
//! answer is a heartbeat (an Engine.IO ping answering a held poll) is held until the fault ends, the
//! long-polling way to miss one: a dead server would never answer it.

use switchboard_shared::app::{AppFaultKind, is_heartbeat_text};

use crate::proxy::stage::{Action, Direction, Flow, Form, Message, Stage};

/// A letter's answer this short may be a heartbeat (an Engine.IO ping is one byte).
const HEARTBEAT_MAX: u64 = 256;

#[derive(Debug)]
pub struct NoHeartbeat;

impl Stage for NoHeartbeat {
    fn on_message(&self, flow: &Flow, message: &Message<'_>) -> Action {
        // The fault is asked first: reading a message as a heartbeat parses it, which every message
        // would pay while no fault asks for it.
        if message.direction != Direction::Down
            || flow
                .lab()
                .active(AppFaultKind::NoHeartbeat, &flow.channel.id)
                .is_none()
        {
            return Action::Pass;
        }
        match message.form {
            Form::Frame {
                opcode: 9,
                whole: true,
            } => Action::Swallow,
            Form::Frame {
                opcode: 1,
                whole: true,
            }
            | Form::Event
                if is_heartbeat_text(message.text) =>
            {
                Action::Swallow
            }
            Form::Chunk if message.size <= HEARTBEAT_MAX && is_heartbeat_text(message.text) => {
                Action::Hold
            }
            _ => Action::Pass,
        }
    }
}
