//! The proxy's stages, one type each, registered once in [`standard`] in the order a request meets
//! them (see [`super::stage`] for the hooks). A fault kind of the lab is one stage here and one arm of
//! [`switchboard_shared::app::AppFaultKind`]; the forwarding code names none of them.

mod channels;
mod decode;
mod delay;
mod drop;
mod figures;
mod half_open;
mod idle_timeout;
mod network;
mod no_heartbeat;
mod observe;
mod recorder;
mod refuse;
mod unavailable;

pub use decode::decoded;

use super::stage::{Pipeline, Stage};

/// Every stage, in order: the channel is noted first (so a refused connection is still a channel the
/// lab can name) and told to the experiments as an attempt, the emulated path's head delay and a refusal come before the recording (a refused
/// connection carried no request), and the faults that answer or hold come after it (what the browser
/// asked is recorded even when the app never sees it).
pub fn standard() -> Pipeline {
    let stages: Vec<Box<dyn Stage>> = vec![
        Box::new(channels::Channels),
        Box::new(observe::Observe),
        Box::new(network::NetworkHead),
        Box::new(refuse::Refuse),
        Box::new(decode::Decode),
        Box::new(recorder::Recorder),
        Box::new(figures::Figures),
        Box::new(half_open::HalfOpen),
        Box::new(unavailable::Unavailable),
        Box::new(delay::Delay),
        Box::new(no_heartbeat::NoHeartbeat),
        Box::new(drop::Drop),
        Box::new(idle_timeout::IdleTimeout),
    ];
    Pipeline::new(stages)
}
