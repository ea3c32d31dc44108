//! Tells the lab's experiments what happens to each exchange, in the words of the shared definitions
//! ([`Happening`]): an attempt when it begins, its answer's head, what became of each message on its way
//! to the browser, a letter's answer delivered whole, a browser that left before the end. The lab keeps
//! it only while an experiment's window is open (one atomic load otherwise).

use axum::http::{header, request, response};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use switchboard_shared::app::Reached;
use switchboard_shared::app::experiment::Happening;
use switchboard_shared::app::route::session_of;

use crate::hub::now_ms_f64;
use crate::proxy::headers::is_event_stream;
use crate::proxy::stage::{Direction, End, Fate, Flow, Form, Message, Stage, Verdict};

#[derive(Debug)]
pub struct Observe;

/// A request's method and URL, hashed (FNV-1a; never 0): what a resend repeats exactly, cache-busting
/// query included.
fn asking(flow: &Flow) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in flow.method.as_str().bytes().chain(flow.url.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash | 1
}

/// What the stage keeps of one exchange: its answer's status, and whether the proxy made it.
#[derive(Debug, Default)]
struct Answer {
    status: u16,
    by_proxy: bool,
    line: bool,
}

/// When each message on its way to the browser was read from the app, oldest first: delivered in that
/// order, each tells how long it took. Bounded: a browser that takes nothing for long is cut anyway.
#[derive(Debug, Default)]
struct OnTheWay(std::collections::VecDeque<f64>);

const ON_THE_WAY: usize = 1_024;

impl Stage for Observe {
    fn on_request(&self, flow: &Flow, _head: &request::Parts) -> Verdict {
        let asking = asking(flow);
        // A browser resends a plain request cut in flight, never a WebSocket's handshake: a socket's
        // next dial, however alike its URL, is the app's.
        if !flow.websocket {
            flow.conn.asking.store(asking, Relaxed);
        }
        let lab = flow.lab();
        let what = if lab.observing() && lab.resent(&flow.channel.id, asking) {
            Happening::Resent { exchange: flow.id }
        } else {
            Happening::Attempt {
                exchange: flow.id,
                conn: flow.conn.id,
            }
        };
        lab.happen(&flow.channel.id, what);
        Verdict::Pass
    }

    fn on_response(&self, flow: &Flow, head: &response::Parts, by_proxy: bool) -> Duration {
        let status = head.status.as_u16();
        let line = status == 101
            || head
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|mime| is_event_stream(&flow.url, &mime.to_ascii_lowercase()));
        if line {
            // A stream that began is the browser's to redial (an EventSource asks the same URL
            // again): only a letter cut before its answer came is resent by the network stack.
            let _ = flow
                .conn
                .asking
                .compare_exchange(asking(flow), 0, Relaxed, Relaxed);
        }
        flow.put(Answer {
            status,
            by_proxy,
            line,
        });
        flow.lab().happen(
            &flow.channel.id,
            Happening::Answered {
                exchange: flow.id,
                status,
                by_proxy,
            },
        );
        Duration::ZERO
    }

    fn after_message(&self, flow: &Flow, message: &Message<'_>, fate: Fate) {
        // A close frame is no message the page gets: neither sent nor delivered, as the relay counts.
        if message.direction != Direction::Down
            || fate == Fate::Held
            || matches!(message.form, Form::Frame { opcode: 8, .. })
        {
            return;
        }
        let lab = flow.lab();
        lab.happen(&flow.channel.id, Happening::Sent { messages: 1 });
        if fate == Fate::Passed && lab.observing() {
            flow.with(|on_the_way: &mut OnTheWay| {
                if on_the_way.0.len() == ON_THE_WAY {
                    on_the_way.0.pop_front();
                }
                on_the_way.0.push_back(message.at_ms);
            });
        }
        if fate == Fate::Swallowed {
            lab.happen(
                &flow.channel.id,
                Happening::Reached {
                    exchange: flow.id,
                    reached: Reached::Swallowed,
                    messages: 1,
                },
            );
        }
    }

    fn on_delivered(&self, flow: &Flow, direction: Direction, reached: Reached, messages: u64) {
        if direction != Direction::Down {
            return;
        }
        if reached == Reached::Withheld {
            // The browser awaits what the half-open holds: closing the line now is giving up on it.
            flow.conn.awaiting.store(true, Relaxed);
        }
        let lab = flow.lab();
        if !lab.observing() {
            return;
        }
        lab.happen_in(
            &flow.channel.id,
            Happening::Reached {
                exchange: flow.id,
                reached,
                messages,
            },
            // (Read only for what was delivered: nothing else is a way back.)
            if reached == Reached::Delivered {
                session(flow)
            } else {
                0
            },
        );
        if messages == 0 {
            return;
        }
        let now = now_ms_f64();
        let read: Vec<f64> = flow
            .peek_mut(|on_the_way: &mut OnTheWay| {
                let n = (messages as usize).min(on_the_way.0.len());
                on_the_way.0.drain(..n).collect()
            })
            .unwrap_or_default();
        if reached == Reached::Delivered {
            for at in read {
                lab.happen(&flow.channel.id, Happening::Took { ms: now - at });
            }
        }
    }

    fn on_end(&self, flow: &Flow, how: &End) {
        let _ = flow
            .conn
            .asking
            .compare_exchange(asking(flow), 0, Relaxed, Relaxed);
        let answer = flow.with(std::mem::take::<Answer>);
        match how {
            End::Cancelled => {
                // The browser left before the end: it gave up on what it awaited.
                flow.conn.awaiting.store(true, Relaxed);
                flow.lab().left(&flow.conn);
            }
            // A letter's answer from the app, not an error, delivered whole — unless a half-open took it.
            End::Complete
                if !answer.line
                    && !answer.by_proxy
                    && (200..400).contains(&answer.status)
                    && !flow.conn.is_half_open() =>
            {
                flow.lab().happen_in(
                    &flow.channel.id,
                    Happening::Whole { exchange: flow.id },
                    session(flow),
                );
            }
            _ => {}
        }
    }
}

/// The session `flow` belongs to, as the lab tells clients on a socket's fallback transport apart: the
/// hash of the id its URL names, 0 for none (a socket is nobody's fallback).
fn session(flow: &Flow) -> u64 {
    if flow.websocket {
        return 0;
    }
    session_of(&flow.url).map_or(0, |id| {
        let mut hasher = DefaultHasher::new();
        id.hash(&mut hasher);
        hasher.finish()
    })
}
