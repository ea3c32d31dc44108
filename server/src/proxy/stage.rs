//! The proxy as a pipeline of stages. Forwarding ([`super::forward`], [`super::relay`]) moves bytes and
//! knows no fault, recorder or network by name: at each point of a request's life it asks the
//! [`Pipeline`], which asks every registered [`Stage`] in turn — as Toxiproxy's toxics and mitmproxy's
//! addons are asked. Each fault kind, the recorder and the emulated network's head delay is one stage
//! (see [`super::stages`]); adding a fault kind is one new stage and one enum arm.
//!
//! A request's life, and the hook each point calls:
//! 1. its head arrived — [`Stage::on_request`]: pass, wait, answer in the proxy's name, or give no
//!    answer at all (a half-open line, a refused connection);
//! 2. its body, and later the answer's, passes — [`Stage::on_body`];
//! 3. the answer's head came (from the app or the proxy) — [`Stage::on_response`];
//! 4. each message of a socket, an event stream, or a letter's answer — [`Stage::on_message`] decides
//!    its fate (pass, swallow, hold a while, delay), then [`Stage::after_message`] hears it;
//!    and once written (or not), [`Stage::on_delivered`] hears what reached the other side;
//! 5. it ended — [`Stage::on_end`], exactly once, with how: complete, failed, or cancelled because the
//!    browser left (a [`Flow`] that is dropped unended ends itself as cancelled).
//!
//! Outside any one request: a fault injected now ([`Stage::on_inject`]) and the proxy's tick every
//! 100 ms ([`Stage::on_tick`]), for what acts on every open connection (a drop, an idle timeout).

use axum::http::{Method, StatusCode, request, response};
use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use switchboard_shared::app::heartbeat::Dialect;
use switchboard_shared::app::{AppFaultRequest, Reached};

use super::AppProxy;
use super::conn::{ChannelKey, Conn};
use super::figures::Seat;
use super::lab::Lab;
use super::record::Track;

/// How often a held request asks its stage again.
const HOLD_LOOK: Duration = Duration::from_millis(100);

/// Which way bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the browser to the app.
    Up,
    /// From the app to the browser.
    Down,
}

/// What a stage says of a request whose head arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Let it go on to the next stage.
    Pass,
    /// Hold it this long, then go on (the head's way up an emulated path).
    Wait(Duration),
    /// Hold it, and ask this stage again a little later (a connection held while a fault lasts).
    Hold,
    /// Answer it in the proxy's name; the app never sees it.
    Answer { status: StatusCode, words: String },
    /// Answer nothing, ever: the stage has decided the connection's fate (cut it, or left it dead).
    NoAnswer,
}

/// How a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// A WebSocket frame; `whole` when it was read whole (frames over 16 KiB stream through as they come,
    /// and only their head is seen).
    Frame { opcode: u8, whole: bool },
    /// One event of an event stream (SSE or NDJSON).
    Event,
    /// A chunk of a plain answer (a letter's).
    Chunk,
}

/// One message on its way.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub direction: Direction,
    pub form: Form,
    /// Its size on the wire: a frame's payload, an event's bytes, a chunk's.
    pub size: u64,
    /// Its first bytes as text (a close frame as `CODE reason`; empty for a binary frame).
    pub text: &'a str,
    /// When it was read, Unix ms.
    pub at_ms: f64,
}

/// What a stage decides of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pass,
    /// Never forwarded: the browser does not get it.
    Swallow,
    /// Not yet: the pipeline asks again a little later (a letter's heartbeat held while a fault lasts).
    Hold,
    /// Forwarded this much later.
    Delay(Duration),
}

/// What became of a message, as the stages hear it after the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Forwarded (perhaps later).
    Passed,
    /// Dropped on the way.
    Swallowed,
    /// Held back for now; it is heard again with its final fate.
    Held,
}

/// The decision of every stage on one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub fate: Fate,
    pub delay: Duration,
}

/// How an exchange ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The answer went whole, or the socket closed in order.
    Complete,
    /// Something broke on the way (a truncated answer, a reset), in words.
    Failed(String),
    /// The browser left before the end.
    Cancelled,
}

/// One request (or socket) on its way through the proxy, as every stage sees it. Stages keep their own
/// state for it in its stash, by type.
///
/// In declared order, from a cache line's start: a socket's every message reads the fields up to
/// `ended` and nothing after them, and with a thousand sockets each message finds its flow cold — two
/// lines fetched rather than the three the compiler's own order spread them over.
#[repr(C, align(64))]
pub struct Flow {
    pub proxy: Arc<AppProxy>,
    pub conn: Arc<Conn>,
    /// The recorder's handle on the flow's exchange: asked for on every message a socket relays, so
    /// kept here in the flow (whose first lines every message reads anyway) rather than in the stash,
    /// where it was a lock, a list and a box away — three more cold cache lines a message.
    pub track: OnceLock<Track>,
    /// What its URL says of its protocol, for the heartbeat signatures that hold only on their own.
    pub dialect: Dialect,
    /// Whether it opens a connection of its channel: its connection's first request, or an upgrade.
    pub opens: bool,
    /// Its connection's first request.
    pub first: bool,
    pub websocket: bool,
    ended: AtomicBool,
    /// Where the figures stage counts the flow (its channel's tally, found once).
    pub seat: Seat,
    pub channel: ChannelKey,
    /// Unique in the process: what the lab's experiments tell one exchange by.
    pub id: u64,
    pub method: Method,
    /// As the browser asked it of the proxy: `http://HOST/path?query`, `ws://…` for a socket.
    pub url: String,
    /// Each stage's state for the flow, by type: a few entries, looked up on a stream's every piece (a
    /// list, not a hash map).
    stash: Mutex<Vec<(std::any::TypeId, Box<dyn Any + Send>)>>,
}

impl fmt::Debug for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flow")
            .field("id", &self.id)
            .field("connection", &self.conn.id)
            .field("channel", &self.channel)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Flow {
    pub fn new(
        proxy: Arc<AppProxy>,
        conn: Arc<Conn>,
        channel: ChannelKey,
        method: Method,
        url: String,
        first: bool,
        websocket: bool,
    ) -> Flow {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Flow {
            id: NEXT.fetch_add(1, Relaxed),
            proxy,
            conn,
            channel,
            method,
            dialect: Dialect::of(&url),
            url,
            opens: first || websocket,
            first,
            websocket,
            track: OnceLock::new(),
            seat: Seat::default(),
            stash: Mutex::default(),
            ended: AtomicBool::new(false),
        }
    }

    pub fn lab(&self) -> &Lab {
        &self.proxy.lab
    }

    /// Keeps a stage's state for this flow (one value per type).
    pub fn put<T: Any + Send>(&self, value: T) {
        let mut stash = self.stash.lock().unwrap_or_else(|e| e.into_inner());
        let id = std::any::TypeId::of::<T>();
        match stash.iter_mut().find(|(kept, _)| *kept == id) {
            Some((_, kept)) => *kept = Box::new(value),
            None => stash.push((id, Box::new(value))),
        }
    }

    /// Reads a stage's state for this flow in place, if it has one.
    pub fn peek<T: Any + Send, R>(&self, read: impl FnOnce(&T) -> R) -> Option<R> {
        let stash = self.stash.lock().unwrap_or_else(|e| e.into_inner());
        let id = std::any::TypeId::of::<T>();
        stash
            .iter()
            .find(|(kept, _)| *kept == id)
            .and_then(|(_, value)| value.downcast_ref::<T>())
            .map(read)
    }

    /// Changes a stage's state for this flow in place, if it has one.
    pub fn peek_mut<T: Any + Send, R>(&self, change: impl FnOnce(&mut T) -> R) -> Option<R> {
        let mut stash = self.stash.lock().unwrap_or_else(|e| e.into_inner());
        let id = std::any::TypeId::of::<T>();
        stash
            .iter_mut()
            .find(|(kept, _)| *kept == id)
            .and_then(|(_, value)| value.downcast_mut::<T>())
            .map(change)
    }

    /// Changes a stage's state for this flow in place (made from its default when there is none).
    pub fn with<T: Any + Send + Default, R>(&self, change: impl FnOnce(&mut T) -> R) -> R {
        let mut stash = self.stash.lock().unwrap_or_else(|e| e.into_inner());
        let id = std::any::TypeId::of::<T>();
        let at = match stash.iter().position(|(kept, _)| *kept == id) {
            Some(at) => at,
            None => {
                stash.push((id, Box::new(T::default())));
                stash.len() - 1
            }
        };
        change(
            stash[at]
                .1
                .downcast_mut::<T>()
                .expect("a stash entry holds the type it is keyed by"),
        )
    }

    /// Ends the flow (the first call only tells the stages).
    pub fn end(&self, how: End) {
        if !self.ended.swap(true, Relaxed) {
            self.proxy.pipeline.end(self, &how);
        }
    }
}

impl Drop for Flow {
    /// The guard that ends an exchange whose browser left before the end: nothing else would.
    fn drop(&mut self) {
        if !self.ended.swap(true, Relaxed) {
            self.proxy.pipeline.end(self, &End::Cancelled);
        }
    }
}

/// One stage of the proxy. Every hook has a default that does nothing, so a stage implements only the
/// points it acts on.
pub trait Stage: Send + Sync + fmt::Debug {
    /// The request's head arrived; `head` is as the browser sent it.
    fn on_request(&self, _flow: &Flow, _head: &request::Parts) -> Verdict {
        Verdict::Pass
    }

    /// Body bytes passed (the request's going up, the answer's coming down), as they came.
    fn on_body(&self, _flow: &Flow, _direction: Direction, _chunk: &[u8]) {}

    /// The answer's head, from the app or the proxy (`by_proxy`), before it goes to the browser; returns
    /// how much longer it waits.
    fn on_response(&self, _flow: &Flow, _head: &response::Parts, _by_proxy: bool) -> Duration {
        Duration::ZERO
    }

    /// Decides a message's fate.
    fn on_message(&self, _flow: &Flow, _message: &Message<'_>) -> Action {
        Action::Pass
    }

    /// Hears a message's fate once the stages decided it.
    fn after_message(&self, _flow: &Flow, _message: &Message<'_>, _fate: Fate) {}

    /// `messages` that passed the stages reached their end — or did not (see [`Reached`]): written to
    /// the other side's socket, held back by a half-open, or lost with a cut.
    fn on_delivered(&self, _flow: &Flow, _direction: Direction, _reached: Reached, _messages: u64) {
    }

    /// The exchange ended.
    fn on_end(&self, _flow: &Flow, _how: &End) {}

    /// A fault was injected; `hit` are the open connections it aims at.
    fn on_inject(&self, _lab: &Lab, _fault: &AppFaultRequest, _hit: &[Arc<Conn>]) {}

    /// The proxy's tick (every 100 ms), with every open connection.
    fn on_tick(&self, _lab: &Lab, _open: &[Arc<Conn>]) {}
}

/// The stages, in order, registered once ([`super::stages::standard`]).
#[derive(Debug)]
pub struct Pipeline {
    stages: Vec<Box<dyn Stage>>,
}

impl Pipeline {
    pub fn new(stages: Vec<Box<dyn Stage>>) -> Pipeline {
        Pipeline { stages }
    }

    /// Runs a request's head through the stages: waits and holds as they say, and stops at the first
    /// that answers or gives no answer.
    pub async fn request(&self, flow: &Flow, head: &request::Parts) -> Verdict {
        for stage in &self.stages {
            loop {
                match stage.on_request(flow, head) {
                    Verdict::Pass => break,
                    Verdict::Wait(time) => {
                        tokio::time::sleep(time).await;
                        break;
                    }
                    Verdict::Hold => tokio::time::sleep(HOLD_LOOK).await,
                    stop => return stop,
                }
            }
        }
        Verdict::Pass
    }

    pub fn body(&self, flow: &Flow, direction: Direction, chunk: &[u8]) {
        for stage in &self.stages {
            stage.on_body(flow, direction, chunk);
        }
    }

    /// Tells every stage of the answer's head; returns how long it waits before it goes on.
    pub fn response(&self, flow: &Flow, head: &response::Parts, by_proxy: bool) -> Duration {
        self.stages
            .iter()
            .map(|stage| stage.on_response(flow, head, by_proxy))
            .max()
            .unwrap_or_default()
    }

    /// Asks every stage about a message: swallowed if any swallows, held if any holds, delayed by the
    /// longest delay. The caller then tells its fate with [`Pipeline::heard`] (a held one twice: held,
    /// then what finally became of it).
    pub fn decide(&self, flow: &Flow, message: &Message<'_>) -> Decision {
        let mut decision = Decision {
            fate: Fate::Passed,
            delay: Duration::ZERO,
        };
        for stage in &self.stages {
            match stage.on_message(flow, message) {
                Action::Pass => {}
                Action::Swallow => decision.fate = Fate::Swallowed,
                Action::Hold if decision.fate == Fate::Passed => decision.fate = Fate::Held,
                Action::Hold => {}
                Action::Delay(time) => decision.delay = decision.delay.max(time),
            }
        }
        decision
    }

    /// Tells every stage what became of a message.
    pub fn heard(&self, flow: &Flow, message: &Message<'_>, fate: Fate) {
        for stage in &self.stages {
            stage.after_message(flow, message, fate);
        }
    }

    /// [`Pipeline::decide`] and [`Pipeline::heard`] at once, for a message that cannot be held.
    pub fn message(&self, flow: &Flow, message: &Message<'_>) -> Decision {
        let mut decision = self.decide(flow, message);
        if decision.fate == Fate::Held {
            decision.fate = Fate::Passed;
        }
        self.heard(flow, message, decision.fate);
        decision
    }

    /// Tells every stage what became of `messages` that passed.
    pub fn delivered(&self, flow: &Flow, direction: Direction, reached: Reached, messages: u64) {
        if messages == 0 {
            return;
        }
        for stage in &self.stages {
            stage.on_delivered(flow, direction, reached, messages);
        }
    }

    fn end(&self, flow: &Flow, how: &End) {
        for stage in &self.stages {
            stage.on_end(flow, how);
        }
    }

    pub fn inject(&self, lab: &Lab, fault: &AppFaultRequest, hit: &[Arc<Conn>]) {
        for stage in &self.stages {
            stage.on_inject(lab, fault, hit);
        }
    }

    pub fn tick(&self, lab: &Lab, open: &[Arc<Conn>]) {
        for stage in &self.stages {
            stage.on_tick(lab, open);
        }
    }
}
