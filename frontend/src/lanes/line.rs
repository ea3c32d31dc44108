//! The one browser engine of the lanes that keep a line open (the endless letter, the radio, the phone
//! call and the video call): dial, watch the line for silence, say who closed it, back off and dial
//! again, resuming after the last seq. Each lane supplies only how it talks on one line
//! ([`keep_dialling`]'s `talk`); a two-way line lends the page its [`Phone`].

use futures_channel::mpsc;
use leptos::prelude::*;
use switchboard_shared::{Backoff, BrowserMessage, ChatAccepted, LaneId, ServerMessage, Watchdog};

use super::{DIAL_PATIENCE_MS, Reporter, back_off, now_ms};
use crate::wire::{ClosedBy, SpanId, Wire};

/// A two-way line as the page sees it (the phone call's, the video call's): where to put chat while a
/// call is up, and the server's last answer to one (accepted with its seq, or refused and why), so the
/// composer can confirm it.
#[derive(Debug, Clone, Copy)]
pub struct Phone {
    lane: LaneId,
    outbox: StoredValue<Option<mpsc::UnboundedSender<BrowserMessage>>, LocalStorage>,
    pub reply: RwSignal<Option<Result<ChatAccepted, String>>>,
}

impl Phone {
    pub fn new(lane: LaneId) -> Phone {
        Phone {
            lane,
            outbox: StoredValue::new_local(None),
            reply: RwSignal::new(None),
        }
    }

    pub(super) fn set_outbox(&self, outbox: Option<mpsc::UnboundedSender<BrowserMessage>>) {
        self.outbox.set_value(outbox);
    }

    /// Whether a call is up to say things on.
    pub fn is_up(&self) -> bool {
        self.outbox.with_value(Option::is_some)
    }

    /// Says `message` on the line; an error when no call is up.
    pub fn say(&self, message: BrowserMessage) -> Result<(), String> {
        let title = self.lane.title();
        self.outbox.with_value(|outbox| match outbox {
            Some(outbox) => outbox
                .unbounded_send(message)
                .map_err(|_| format!("the {} just hung up", title.to_ascii_lowercase())),
            None => Err(format!(
                "no {} is up: start the {title} lane",
                title.to_ascii_lowercase()
            )),
        })
    }
}

/// One line: reported `Dialing` when made and `Closed` exactly once — by whoever ended it, or by the
/// person when the lane is stopped (the task, and the line with it, is dropped).
#[derive(Debug)]
pub struct Line {
    reporter: Reporter,
    span: SpanId,
    open: bool,
    /// Whether the line gave the page its outbox (a two-way lane, once its hello came): taken back
    /// when it closes.
    lent_phone: bool,
    /// The close code the browser sends when the person stops the lane (the phone call's 1000; the
    /// radio's `EventSource` has none).
    stop_code: Option<u16>,
}

impl Line {
    pub fn dial(reporter: Reporter, label: String, stop_code: Option<u16>) -> Line {
        let span = reporter.new_span();
        reporter.report(Wire::Dialing { span, label });
        Line {
            reporter,
            span,
            open: true,
            lent_phone: false,
            stop_code,
        }
    }

    pub fn span(&self) -> SpanId {
        self.span
    }

    /// Lets the page say things on this line (through the lane's [`super::Phone`]) until it closes.
    pub fn lend_phone(
        &mut self,
        outbox: futures_channel::mpsc::UnboundedSender<switchboard_shared::BrowserMessage>,
    ) {
        self.reporter.phone.set_outbox(Some(outbox));
        self.lent_phone = true;
    }

    /// Reports the line closed, once. Nothing more can be said on a closed line.
    pub fn close(&mut self, by: ClosedBy, code: Option<u16>, reason: &str) {
        if std::mem::take(&mut self.open) {
            if std::mem::take(&mut self.lent_phone) {
                self.reporter.phone.set_outbox(None);
            }
            self.reporter.report(Wire::Closed {
                span: self.span,
                by,
                code,
                reason: reason.into(),
            });
        }
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        self.close(ClosedBy::Person, self.stop_code, "stopped");
    }
}

/// How a line ended, when its lane did not close it itself.
#[derive(Debug, Clone, PartialEq)]
pub enum LineEnd {
    /// The watchdog found it silent too long (already reported as `Dead`).
    Silent,
    /// The server hung up, with its close code when the protocol has one.
    HungUp { code: Option<u16>, reason: String },
    /// It failed, or could not be opened (the lane reported any error it met itself).
    Failed(String),
    /// The person changed how the line should be dialled (the video call's stream or datagrams): it is
    /// closed by them and dialled again.
    Switched(String),
}

/// A line's watchdog: a fixed patience until the hello says how often heartbeats come, then 2.5
/// heartbeat intervals of silence (a half-open line says nothing at all, so nothing else notices).
#[derive(Debug)]
pub struct LineWatch {
    watchdog: Watchdog,
    heartbeat_ms: u64,
}

impl Default for LineWatch {
    fn default() -> Self {
        LineWatch {
            watchdog: Watchdog::new(DIAL_PATIENCE_MS, now_ms()),
            heartbeat_ms: DIAL_PATIENCE_MS,
        }
    }
}

impl LineWatch {
    /// Anything heard on the line.
    pub fn heard(&mut self) {
        self.watchdog.sign_of_life(now_ms());
    }

    /// The hello: the line is up, watched from now at the interval it promises.
    pub fn hello(&mut self, heartbeat_ms: u64, backoff: &mut Backoff) {
        self.heartbeat_ms = heartbeat_ms;
        self.watchdog = Watchdog::new(heartbeat_ms, now_ms());
        backoff.up(now_ms());
    }

    /// The line is being dialled again (the browser redials the radio by itself): watched with the
    /// dial's patience, or the heartbeat's if longer, until its hello.
    pub fn redialling(&mut self) {
        self.watchdog = Watchdog::new(DIAL_PATIENCE_MS.max(self.heartbeat_ms), now_ms());
    }

    /// Looks at the line; when it has been silent too long, reports it dead and says so. While the
    /// server has the lane's heartbeats off, silence proves nothing: the watchdog stands aside (as an
    /// app without heartbeats has none) and counts again from the fault's end.
    pub fn check(&mut self, reporter: &Reporter, span: SpanId) -> Result<(), LineEnd> {
        let now = now_ms();
        if reporter.sink.heartbeats_off(reporter.lane) {
            self.watchdog.sign_of_life(now);
            return Ok(());
        }
        if !self.watchdog.is_dead(now) {
            return Ok(());
        }
        reporter.report(Wire::Dead {
            span,
            silent_ms: self.watchdog.silent_ms(now),
        });
        Err(LineEnd::Silent)
    }
}

/// Dials, talks until the line ends, closes it saying who ended it, backs off (with full jitter, back
/// to short waits once a line has stayed up a while) and dials again, resuming after the lane's last
/// seq — until the task is dropped (the lane is stopped). `dial_to` gives the URL path to dial and the
/// label it is shown with, from the resume point; `talk` runs one line.
pub async fn keep_dialling(
    reporter: Reporter,
    stop_code: Option<u16>,
    dial_to: impl Fn(u64) -> (String, String),
    mut talk: impl AsyncFnMut(&mut Line, &str, &mut Backoff) -> LineEnd,
) {
    let mut backoff = Backoff::standard();
    loop {
        let (path, label) = dial_to(reporter.resume_point());
        let mut line = Line::dial(reporter, label, stop_code);
        let end = talk(&mut line, &path, &mut backoff).await;
        match end {
            LineEnd::Silent => {
                line.close(ClosedBy::Watchdog, None, "declared dead by the watchdog")
            }
            LineEnd::HungUp { code, reason } => line.close(ClosedBy::Server, code, &reason),
            LineEnd::Failed(why) => line.close(ClosedBy::Failure, None, &why),
            LineEnd::Switched(why) => {
                line.close(ClosedBy::Person, stop_code, &why);
                // Not a failure: dial again at once.
                continue;
            }
        }
        // Dropping the line's socket or EventSource (in `talk`) stopped any redial of the browser's own.
        drop(line);
        back_off(&reporter, &mut backoff).await;
    }
}

/// The first whole line of what a line has received (without its newline), taken out of `pending`;
/// `None` until one has arrived. The endless letter and the video call's streams come in pieces that
/// cut lines anywhere.
pub fn next_line(pending: &mut Vec<u8>) -> Option<String> {
    let end = pending.iter().position(|&byte| byte == b'\n')?;
    let line: Vec<u8> = pending.drain(..=end).collect();
    Some(String::from_utf8_lossy(&line[..end]).into_owned())
}

/// Parses one server message a line carried (a phone call's frame, an endless letter's line), reporting
/// an unreadable one; `None` then.
pub fn parse_message(reporter: &Reporter, span: SpanId, text: &str) -> Option<ServerMessage> {
    match ServerMessage::from_json(text) {
        Ok(message) => Some(message),
        Err(err) => {
            reporter.report(Wire::Error {
                span: Some(span),
                message: format!("unreadable message: {err}"),
            });
            None
        }
    }
}

/// What a line's message was, once the messages every line carries are reported.
#[derive(Debug)]
pub enum Heard {
    /// The hello that opens the line, promising heartbeats this often.
    Hello { heartbeat_ms: u64 },
    /// An event, heartbeat or gap notice: reported.
    Reported,
    /// A message of the lane's own (a pong, a chat answer), for it to report.
    Other(ServerMessage),
}

/// Reports the messages every line carries — hello (with `answer_bytes` of the answer's head counted,
/// and `request_bytes` when the hello does not tell it), events, heartbeats, gap notices — `bytes_down`
/// each, and hands back any other.
pub fn report_message(
    reporter: &Reporter,
    span: SpanId,
    message: ServerMessage,
    bytes_down: u64,
    answer_bytes: u64,
    request_bytes: u64,
) -> Heard {
    match message {
        ServerMessage::Hello(hello) => {
            let heartbeat_ms = hello.heartbeat_ms;
            reporter.report(Wire::Opened {
                span,
                bytes_up: hello.request_bytes.unwrap_or(request_bytes),
                bytes_down: bytes_down + answer_bytes,
                hello,
            });
            return Heard::Hello { heartbeat_ms };
        }
        ServerMessage::Event(event) => reporter.report(Wire::EventReceived {
            span,
            event,
            bytes_down,
        }),
        ServerMessage::Heartbeat(heartbeat) => reporter.report(Wire::Heartbeat {
            span,
            heartbeat,
            bytes_down,
        }),
        ServerMessage::Gap(gap) => reporter.report(Wire::GapNotice {
            span,
            gap,
            bytes_down,
        }),
        other => return Heard::Other(other),
    }
    Heard::Reported
}

#[cfg(test)]
mod tests {
    use super::next_line;

    #[test]
    fn lines_are_cut_wherever_the_pieces_end() {
        let mut pending = b"{\"a\":1}\n{\"b\"".to_vec();
        assert_eq!(next_line(&mut pending).as_deref(), Some("{\"a\":1}"));
        assert_eq!(next_line(&mut pending), None, "half a line waits");
        pending.extend_from_slice(b":2}\n");
        assert_eq!(next_line(&mut pending).as_deref(), Some("{\"b\":2}"));
        assert!(pending.is_empty());
    }
}
