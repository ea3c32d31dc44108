//! The `no_heartbeat` fault: the app's heartbeats on their way to the browser are swallowed — exactly
//! the channel's recognised heartbeat and nothing else: ping frames, messages known by a framework's
//! signature (on a channel of that framework: Engine.IO's `2` only where Engine.IO runs, and never its
//! upgrade probes), or the small payload the channel was seen repeating at a steady pace (an unknown
//! protocol's beat). Data and handshakes pass. A letter whose whole answer is a heartbeat (an Engine.IO
//! ping answering a held poll) is held until the fault ends, the long-polling way to miss one: a dead
//! server would never answer it.

use switchboard_shared::app::AppFaultKind;
use switchboard_shared::app::heartbeat::payload_hash;

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
        let known = || super::figures::shaped(message.text, flow.dialect);
        // An unknown protocol's beat: the payload its channel repeats at a steady pace, this way.
        let learned = || {
            flow.proxy
                .figures
                .learned_beat(&flow.channel)
                .is_some_and(|(up, payload)| {
                    !up && payload == payload_hash(message.text, message.size as usize)
                })
        };
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
                if known() || learned() =>
            {
                Action::Swallow
            }
            Form::Chunk if message.size <= HEARTBEAT_MAX && known() => Action::Hold,
            _ => Action::Pass,
        }
    }
}
