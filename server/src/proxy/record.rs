//! What the proxy keeps of the app's traffic, bounded: each exchange (a request and its answer, or a
//! socket) with its URL, headers, sizes and times, the first 64 KiB of each body, and the messages of a
//! stream or a socket with their arrival times. A day behind the proxy does not grow without limit: past
//! [`MAX_EXCHANGES`] or [`BUDGET_BYTES`] the oldest finished exchanges go, and past
//! [`MAX_MESSAGES`] on one exchange its oldest messages go; both are counted. The budget counts every
//! byte kept — URLs and headers as well as bodies and messages — and an exchange dropped while still
//! open keeps nothing more (its [`Track`] goes on counting its sizes, for nobody).
//!
//! The recording is written out as HAR 1.2 ([`Recording::to_har`]), which is also what the channels
//! are classified from, so the live view and the downloaded file always agree.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use switchboard_shared::app::route::aside;
use switchboard_shared::har::model::WebSocketMessage;
use switchboard_shared::har::write;

/// The most exchanges kept.
pub const MAX_EXCHANGES: usize = 2_000;
/// The most messages kept per exchange (a socket's frames, a stream's events).
pub const MAX_MESSAGES: usize = 2_000;
/// The first bytes of each body kept.
pub const BODY_PREFIX: usize = 64 * 1024;
/// The first bytes of each message's text kept.
pub const MESSAGE_PREFIX: usize = 256;
/// What the recording may hold, over all exchanges: URLs, headers, bodies and messages.
pub const BUDGET_BYTES: usize = 64 * 1024 * 1024;

/// One message of a stream or a socket.
#[derive(Debug, Clone)]
pub struct Message {
    /// Unix ms.
    pub at_ms: f64,
    /// From the browser.
    pub up: bool,
    /// The WebSocket opcode (1 text, 2 binary, 8 close, 9 ping, 10 pong); 1 for a stream's events.
    pub opcode: u8,
    /// Its size on the wire (a frame's payload; an event's bytes).
    pub size: u64,
    /// The first [`MESSAGE_PREFIX`] bytes of its text: shared with the messages before it that had the
    /// same text (see [`shared_text`]).
    pub text: Arc<str>,
    /// Dropped on the way by a fault: the browser never got it.
    pub swallowed: bool,
}

/// A message as the recorder hears it, its text borrowed: copied once, into what is kept.
#[derive(Debug, Clone, Copy)]
pub struct Heard<'a> {
    pub at_ms: f64,
    pub up: bool,
    pub opcode: u8,
    pub size: u64,
    /// At most [`MESSAGE_PREFIX`] bytes.
    pub text: &'a str,
    pub swallowed: bool,
}

/// One request and its answer, or one socket.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    /// The proxy's connection that carried it.
    pub connection: u64,
    /// The id of its channel.
    pub channel: String,
    /// Unix ms.
    pub started_ms: f64,
    pub method: String,
    /// As the browser asked it of the proxy: `http://127.0.0.1:4000/api/status?x=1`, `ws://…` for a socket.
    pub url: String,
    pub request_headers: Vec<(String, String)>,
    pub request_head_bytes: u64,
    pub request_body_bytes: u64,
    pub request_body: Vec<u8>,
    /// 0 until the answer's head came (and when none came).
    pub status: u16,
    pub status_text: String,
    pub response_headers: Vec<(String, String)>,
    pub response_head_bytes: u64,
    pub response_body_bytes: u64,
    pub response_body: Vec<u8>,
    pub mime: String,
    /// When the upstream's answer began, and when the exchange ended (Unix ms).
    pub first_byte_ms: Option<f64>,
    pub end_ms: Option<f64>,
    pub websocket: bool,
    pub event_stream: bool,
    pub messages: VecDeque<Message>,
    pub messages_dropped: u64,
    /// Why it did not end in order: the browser left (`cancelled`), the app's answer broke off.
    pub error: Option<String>,
    /// Bytes this exchange holds: URL, headers, bodies and messages.
    pub(super) weight: usize,
    /// Dropped from the recording: what it would keep is no longer counted, nor kept.
    pub(super) evicted: bool,
}

impl Exchange {
    pub fn ended(&self) -> bool {
        self.end_ms.is_some()
    }
}

/// What a list of headers holds.
fn headers_weight(pairs: &[(String, String)]) -> usize {
    pairs
        .iter()
        .map(|(name, value)| name.len() + value.len() + std::mem::size_of::<(String, String)>())
        .sum()
}

/// What an exchange holds, counted from what it keeps (its `weight` is kept equal to this as it
/// changes).
fn weight_of(exchange: &Exchange) -> usize {
    exchange.url.len()
        + exchange.method.len()
        + headers_weight(&exchange.request_headers)
        + exchange.request_body.len()
        + headers_weight(&exchange.response_headers)
        + exchange.status_text.len()
        + exchange.mime.len()
        + exchange.response_body.len()
        + exchange.messages.iter().map(message_weight).sum::<usize>()
        + exchange.error.as_ref().map_or(0, String::len)
}

/// What a message holds.
fn message_weight(message: &Message) -> usize {
    // Its text counted in full though it may be shared: the count never says less than is kept.
    message.text.len() + std::mem::size_of::<Message>()
}

thread_local! {
    /// The latest text this thread recorded.
    static LAST_TEXT: std::cell::RefCell<Arc<str>> = std::cell::RefCell::new(Arc::from(""));
}

/// `text`, as kept: the same allocation as the latest text this thread recorded when it is the same.
/// An app's broadcast reaches every socket with the same text, one after another: kept once, a thousand
/// sockets' copies cost no allocation and no new memory each (while the recording grows, its new memory
/// — the heap's growth and first touches of each page — was most of what recording a frame cost).
fn shared_text(text: &str) -> Arc<str> {
    LAST_TEXT.with(|last| {
        let mut last = last.borrow_mut();
        if **last != *text {
            *last = Arc::from(text);
        }
        last.clone()
    })
}

/// A handle on a recorded exchange: the recorder stage writes through it as the exchange goes on.
#[derive(Debug, Clone)]
pub struct Track {
    exchange: Arc<Mutex<Exchange>>,
    recording: Arc<Recording>,
}

impl Track {
    pub fn with<T>(&self, change: impl FnOnce(&mut Exchange) -> T) -> T {
        let mut exchange = self.exchange.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut exchange)
    }

    /// Changes the exchange and the recording's count together: `change` returns by how much what the
    /// exchange keeps grew (negative: shrank), having set its own weight. The count changes under the
    /// exchange's own lock, which is also where a drop marks it gone and takes its weight off: so the
    /// count always equals the sum of what the kept exchanges hold, whatever another thread drops
    /// meanwhile, and the recording's lock is taken only when it is over its budget (not once a message).
    fn kept(&self, change: impl FnOnce(&mut Exchange) -> isize) {
        let delta = {
            let mut exchange = self.exchange.lock().unwrap_or_else(|e| e.into_inner());
            if exchange.evicted {
                // Nothing of it is counted any more; its figures still change, for nobody.
                change(&mut exchange);
                return;
            }
            let delta = change(&mut exchange);
            if delta >= 0 {
                self.recording.weight.fetch_add(delta as usize, Relaxed);
            } else {
                self.recording
                    .weight
                    .fetch_sub(delta.unsigned_abs(), Relaxed);
            }
            delta
        };
        if delta > 0 && self.recording.weight.load(Relaxed) > BUDGET_BYTES {
            let mut kept = self.recording.lock();
            Recording::make_room(&mut kept, &self.recording.weight);
        }
    }

    /// Records the answer's head.
    pub fn response_head(&self, head: ResponseHead) {
        self.kept(|exchange| {
            let before = headers_weight(&exchange.response_headers)
                + exchange.status_text.len()
                + exchange.mime.len();
            let after = headers_weight(&head.headers) + head.status_text.len() + head.mime.len();
            exchange.status = head.status;
            exchange.status_text = head.status_text;
            exchange.response_headers = head.headers;
            exchange.response_head_bytes = head.head_bytes;
            exchange.first_byte_ms = Some(head.at_ms);
            exchange.mime = head.mime;
            exchange.event_stream = head.event_stream;
            let delta = after as isize - before as isize;
            exchange.weight = exchange.weight.saturating_add_signed(delta);
            delta
        });
    }

    /// Keeps the first bytes of a body, and counts all of them.
    pub fn body(&self, up: bool, chunk: &[u8]) {
        self.kept(|exchange| {
            let (kept, count) = if up {
                (&mut exchange.request_body, &mut exchange.request_body_bytes)
            } else {
                (
                    &mut exchange.response_body,
                    &mut exchange.response_body_bytes,
                )
            };
            *count += chunk.len() as u64;
            if exchange.evicted {
                return 0;
            }
            let room = BODY_PREFIX.saturating_sub(kept.len()).min(chunk.len());
            kept.extend_from_slice(&chunk[..room]);
            exchange.weight += room;
            room as isize
        });
    }

    /// Keeps an answer's body as the app wrote it, decoded, in place of its compressed first bytes (its
    /// size on the wire stays as counted).
    pub fn decoded_body(&self, decoded: Vec<u8>) {
        self.kept(|exchange| {
            if exchange.evicted {
                return 0;
            }
            let mut decoded = decoded;
            decoded.truncate(BODY_PREFIX);
            let delta = decoded.len() as isize - exchange.response_body.len() as isize;
            exchange.response_body = decoded;
            exchange.weight = exchange.weight.saturating_add_signed(delta);
            delta
        });
    }

    /// Records one message of a stream or a socket.
    pub fn message(&self, message: Heard<'_>) {
        self.kept(|exchange| {
            if exchange.evicted {
                return 0;
            }
            let text = shared_text(message.text);
            let mut freed = 0;
            if exchange.messages.len() >= MAX_MESSAGES
                && let Some(old) = exchange.messages.pop_front()
            {
                // At its bound the oldest message gives way.
                exchange.messages_dropped += 1;
                freed = message_weight(&old) as isize;
            }
            let kept = Message {
                at_ms: message.at_ms,
                up: message.up,
                opcode: message.opcode,
                size: message.size,
                text,
                swallowed: message.swallowed,
            };
            let weight = message_weight(&kept) as isize;
            exchange.messages.push_back(kept);
            exchange.weight = exchange.weight.saturating_add_signed(weight - freed);
            weight - freed
        });
    }

    /// Ends the exchange; `error` says why it did not end in order.
    pub fn end(&self, error: Option<String>) {
        self.kept(|exchange| {
            if exchange.end_ms.is_some() {
                return 0;
            }
            exchange.end_ms = Some(crate::hub::now_ms_f64());
            let weight = error.as_ref().map_or(0, String::len) as isize;
            exchange.error = error;
            if !exchange.evicted {
                exchange.weight += weight as usize;
            }
            weight
        });
    }
}

/// An answer's head, as recorded.
#[derive(Debug, Clone, Default)]
pub struct ResponseHead {
    pub status: u16,
    pub status_text: String,
    pub headers: Vec<(String, String)>,
    pub head_bytes: u64,
    /// When it came, Unix ms.
    pub at_ms: f64,
    pub mime: String,
    pub event_stream: bool,
}

/// Every exchange kept, oldest first.
#[derive(Debug, Default)]
pub struct Recording {
    inner: Mutex<Kept>,
    /// Bytes the kept exchanges hold (see [`Track::kept`] for why it is exact).
    weight: AtomicUsize,
}

#[derive(Debug, Default)]
struct Kept {
    exchanges: VecDeque<Arc<Mutex<Exchange>>>,
    recorded: u64,
    dropped: u64,
}

impl Recording {
    /// Starts recording an exchange, making room for it.
    pub fn start(self: &Arc<Self>, mut exchange: Exchange) -> Track {
        exchange.weight = weight_of(&exchange);
        let weight = exchange.weight;
        let exchange = Arc::new(Mutex::new(exchange));
        let mut kept = self.lock();
        kept.recorded += 1;
        self.weight.fetch_add(weight, Relaxed);
        kept.exchanges.push_back(exchange.clone());
        Self::make_room(&mut kept, &self.weight);
        drop(kept);
        Track {
            exchange,
            recording: self.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops the oldest exchanges (finished ones first) until the recording is within its bounds.
    fn make_room(kept: &mut Kept, weight: &AtomicUsize) {
        while kept.exchanges.len() > MAX_EXCHANGES
            || (weight.load(Relaxed) > BUDGET_BYTES && kept.exchanges.len() > 1)
        {
            let finished = kept
                .exchanges
                .iter()
                .position(|exchange| exchange.lock().is_ok_and(|e| e.ended()))
                .unwrap_or(0);
            let Some(gone) = kept.exchanges.remove(finished) else {
                break;
            };
            // Marked under the exchange's own lock, so a track adding to it now either counted its
            // bytes before (and they are taken off here) or sees the mark and adds nothing.
            {
                let mut gone = gone.lock().unwrap_or_else(|e| e.into_inner());
                gone.evicted = true;
                weight.fetch_sub(gone.weight, Relaxed);
            }
            kept.dropped += 1;
        }
    }

    /// Starts over: every exchange is dropped (marked so, as [`Recording::make_room`] does, so those
    /// still open add nothing more) and the counts begin again.
    pub fn clear(&self) {
        let mut kept = self.lock();
        for gone in kept.exchanges.drain(..) {
            let mut gone = gone.lock().unwrap_or_else(|e| e.into_inner());
            gone.evicted = true;
            self.weight.fetch_sub(gone.weight, Relaxed);
        }
        kept.recorded = 0;
        kept.dropped = 0;
    }

    /// Exchanges recorded since the start, and dropped to stay within bounds.
    pub fn counts(&self) -> (u64, u64) {
        let kept = self.lock();
        (kept.recorded, kept.dropped)
    }

    /// Bytes held now (URLs, headers, bodies, messages), as counted.
    pub fn weight(&self) -> usize {
        self.weight.load(Relaxed)
    }

    /// A copy of every exchange kept, oldest first (a HAR is written without one).
    #[cfg(test)]
    pub fn snapshot(&self) -> Vec<Exchange> {
        let exchanges: Vec<Arc<Mutex<Exchange>>> = self.lock().exchanges.iter().cloned().collect();
        exchanges
            .iter()
            .map(|exchange| exchange.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect()
    }

    /// The recording as HAR 1.2, written piece by piece as it is sent: sockets with
    /// `_webSocketMessages`, event streams with `_eventSourceMessages`, exchanges still open timed up to
    /// `now_ms`; only those that went on until `since_ms` or later when it is given (chosen before
    /// anything is written); each marked with its channel and, where `kinds` knows it, the channel's
    /// kind. One entry at a time is held as JSON, however large the recording.
    pub fn har_pieces(
        &self,
        now_ms: f64,
        since_ms: Option<f64>,
        kinds: std::collections::HashMap<String, switchboard_shared::har::ChannelKind>,
    ) -> impl Iterator<Item = Vec<u8>> + Send + use<> {
        let (recorded, dropped) = self.counts();
        let exchanges: Vec<Arc<Mutex<Exchange>>> = self.lock().exchanges.iter().cloned().collect();
        let mut comment = format!("{recorded} exchanges recorded through the proxy");
        if dropped > 0 {
            comment.push_str(&format!(
                "; the oldest {dropped} were dropped to keep the recording bounded"
            ));
        }
        // The file's shell, cut where its entries go.
        let shell =
            serde_json::to_string(&write::har("Switchboard proxy", Vec::new(), Some(comment)))
                .expect("a HAR serializes");
        let (head, tail) = shell
            .split_once("\"entries\":[]")
            .map(|(head, tail)| (format!("{head}\"entries\":["), format!("]{tail}")))
            .expect("the shell has its entries");
        let mut first = true;
        let entries = exchanges.into_iter().filter_map(move |exchange| {
            let exchange = exchange.lock().unwrap_or_else(|e| e.into_inner());
            let end = exchange.end_ms.unwrap_or(now_ms);
            if since_ms.is_some_and(|since| end < since) {
                return None;
            }
            let mut written = written(&exchange, now_ms, since_ms);
            drop(exchange);
            written.kind = written
                .channel
                .as_ref()
                .and_then(|channel| kinds.get(channel))
                .map(|kind| kind.as_str().to_owned());
            let mut piece = if first { Vec::new() } else { vec![b','] };
            first = false;
            serde_json::to_writer(&mut piece, &write::entry(written)).expect("an entry serializes");
            Some(piece)
        });
        std::iter::once(head.into_bytes())
            .chain(entries)
            .chain(std::iter::once(tail.into_bytes()))
    }
}

/// An exchange as the one HAR writer takes it; with `since_ms`, only its messages from then on (a line
/// open for an hour is not sent whole to a page drawing its last two minutes).
fn written(exchange: &Exchange, now_ms: f64, since_ms: Option<f64>) -> write::Exchange {
    let end = exchange.end_ms.unwrap_or(now_ms);
    let frames: u64 = exchange.messages.iter().map(|m| m.size).sum();
    let form = if exchange.websocket {
        write::Form::Socket
    } else if exchange.event_stream {
        write::Form::Stream {
            sse: exchange.mime.starts_with("text/event-stream"),
        }
    } else {
        write::Form::Request
    };
    let body = (!exchange.response_body.is_empty())
        .then(|| String::from_utf8_lossy(&exchange.response_body).into_owned());
    write::Exchange {
        started_ms: exchange.started_ms,
        // An exchange that got no answer waited all its time.
        first_byte_ms: Some(exchange.first_byte_ms.unwrap_or(end)),
        end_ms: end,
        method: exchange.method.clone(),
        url: exchange.url.clone(),
        request_headers: exchange.request_headers.clone(),
        request_head_bytes: exchange.request_head_bytes as i64,
        request_body_bytes: exchange.request_body_bytes as i64,
        status: exchange.status,
        status_text: exchange.status_text.clone(),
        response_headers: exchange.response_headers.clone(),
        response_head_bytes: exchange.response_head_bytes as i64,
        mime: exchange.mime.clone(),
        body,
        body_bytes: exchange.response_body_bytes as i64,
        text_bytes: None,
        transfer_bytes: (exchange.response_head_bytes
            + if exchange.websocket {
                0
            } else {
                exchange.response_body_bytes.max(frames)
            }) as i64,
        form: Some(form),
        messages: exchange
            .messages
            .iter()
            .filter(|m| since_ms.is_none_or(|since| m.at_ms >= since))
            .map(|m| WebSocketMessage {
                kind: if m.up { "send" } else { "receive" }.into(),
                time: m.at_ms / 1000.0,
                opcode: m.opcode,
                data: m.text.to_string(),
                size: (m.size != m.text.len() as u64).then_some(m.size),
                swallowed: m.swallowed,
            })
            .collect(),
        error: exchange.error.clone(),
        // The page's files, a framework's handshake, a session's uploads belong to no channel, as the
        // live figures count them (asides): a reader of the file sorts them as the report did.
        channel: (!matches!(form, write::Form::Request)
            || aside(&exchange.method, &exchange.url, &exchange.mime).is_none())
        .then(|| exchange.channel.clone()),
        kind: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn exchange(n: usize) -> Exchange {
        Exchange {
            method: "GET".into(),
            url: format!("http://127.0.0.1:4000/api/status?n={n}"),
            started_ms: 1_000.0 + n as f64,
            ..Exchange::default()
        }
    }

    #[test]
    fn the_recording_keeps_its_bounds_and_counts_what_it_dropped() {
        let recording = Arc::new(Recording::default());
        for n in 0..MAX_EXCHANGES + 10 {
            let recorder = recording.start(exchange(n));
            recorder.body(false, &[b'x'; 100]);
            recorder.end(None);
        }
        assert_eq!(recording.counts(), ((MAX_EXCHANGES + 10) as u64, 10));
        assert_eq!(recording.snapshot().len(), MAX_EXCHANGES);
        assert_eq!(
            recording.snapshot()[0].url,
            exchange(10).url,
            "the oldest went"
        );

        let socket = recording.start(Exchange {
            websocket: true,
            ..exchange(0)
        });
        for n in 0..MAX_MESSAGES + 5 {
            // Texts of changing length, the oldest giving way once full.
            socket.message(Heard {
                at_ms: n as f64,
                up: false,
                opcode: 1,
                size: 3,
                text: &"m".repeat(n % 7 + 1),
                swallowed: false,
            });
        }
        let kept = socket.with(|e| (e.messages.len(), e.messages_dropped));
        assert_eq!(kept, (MAX_MESSAGES, 5));
        socket.with(|e| {
            for (message, n) in e.messages.iter().zip(5..) {
                assert_eq!(message.at_ms, n as f64);
                assert_eq!(
                    &*message.text,
                    "m".repeat(n % 7 + 1).as_str(),
                    "message {n}"
                );
            }
        });
    }

    #[test]
    fn a_broadcast_reaching_many_sockets_keeps_its_text_once() {
        let recording = Arc::new(Recording::default());
        let sockets: Vec<Track> = (0..3).map(|n| recording.start(exchange(n))).collect();
        for text in ["{\"tick\":1}", "{\"tick\":2}"] {
            for socket in &sockets {
                socket.message(Heard {
                    at_ms: 1.0,
                    up: false,
                    opcode: 1,
                    size: text.len() as u64,
                    text,
                    swallowed: false,
                });
            }
        }
        let texts: Vec<Vec<Arc<str>>> = sockets
            .iter()
            .map(|socket| socket.with(|e| e.messages.iter().map(|m| m.text.clone()).collect()))
            .collect();
        for kept in &texts {
            assert_eq!(kept.len(), 2);
            assert_eq!(&*kept[0], "{\"tick\":1}");
            assert_eq!(&*kept[1], "{\"tick\":2}");
            assert!(
                Arc::ptr_eq(&kept[0], &texts[0][0]),
                "one allocation per text"
            );
            assert!(Arc::ptr_eq(&kept[1], &texts[0][1]));
        }
        // Counted for each message that keeps it all the same: the count never says less than is kept.
        let each = sockets[0].with(|e| e.weight);
        assert_eq!(recording.weight(), 3 * each);
        assert_eq!(each, sockets[0].with(|e| weight_of(e)));
    }

    /// A small deterministic generator (xorshift), so a failing sequence can be replayed.
    struct Dice(u64);

    impl Dice {
        fn next(&mut self, below: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % below
        }
    }

    /// The recording's count equals what its exchanges hold, each exchange's own weight equals what it
    /// keeps, and the bounds hold.
    fn check(recording: &Recording) {
        let kept = recording.lock();
        let mut sum = 0;
        for exchange in &kept.exchanges {
            let exchange = exchange.lock().unwrap();
            assert_eq!(exchange.weight, weight_of(&exchange), "{}", exchange.url);
            assert!(!exchange.evicted);
            sum += exchange.weight;
        }
        assert_eq!(recording.weight(), sum);
        assert!(kept.exchanges.len() <= MAX_EXCHANGES);
        assert!(recording.weight() <= BUDGET_BYTES || kept.exchanges.len() == 1);
    }

    /// Random heads, bodies, messages and ends on open exchanges, old ones dropped under them: after
    /// every step the count is exact.
    #[test]
    fn the_count_always_equals_what_is_kept() {
        for seed in 1..=20u64 {
            let mut dice = Dice(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let recording = Arc::new(Recording::default());
            let mut open: Vec<Track> = Vec::new();
            for step in 0..3_000 {
                match dice.next(6) {
                    0 | 1 => {
                        let headers = (0..dice.next(4))
                            .map(|n| (format!("x-{n}"), "v".repeat(dice.next(300_000) as usize)))
                            .collect();
                        open.push(recording.start(Exchange {
                            url: format!("http://app/{step}"),
                            method: "GET".into(),
                            request_headers: headers,
                            ..Exchange::default()
                        }));
                    }
                    _ if open.is_empty() => {}
                    2 => {
                        let track = &open[dice.next(open.len() as u64) as usize];
                        track.body(dice.next(2) == 0, &vec![b'b'; dice.next(200_000) as usize]);
                    }
                    3 => {
                        let track = &open[dice.next(open.len() as u64) as usize];
                        track.message(Heard {
                            at_ms: step as f64,
                            up: false,
                            opcode: 1,
                            size: 10,
                            text: &"m".repeat(dice.next(MESSAGE_PREFIX as u64) as usize),
                            swallowed: false,
                        });
                    }
                    4 => {
                        let track = &open[dice.next(open.len() as u64) as usize];
                        track.response_head(ResponseHead {
                            status: 200,
                            status_text: "OK".into(),
                            headers: vec![(
                                "set-cookie".into(),
                                "c".repeat(dice.next(100_000) as usize),
                            )],
                            mime: "text/plain".into(),
                            ..ResponseHead::default()
                        });
                    }
                    _ => {
                        let track = open.swap_remove(dice.next(open.len() as u64) as usize);
                        track.end((dice.next(2) == 0).then(|| "cancelled".to_owned()));
                    }
                }
                check(&recording);
            }
        }
    }

    /// The same from four threads at once: a track adding to an exchange while another thread drops it
    /// leaves the count exact.
    #[test]
    fn the_count_stays_exact_when_threads_race_the_drops() {
        let recording = Arc::new(Recording::default());
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let recording = recording.clone();
                std::thread::spawn(move || {
                    let mut dice = Dice((t + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
                    for step in 0..2_000 {
                        let track = recording.start(Exchange {
                            url: format!("http://app/{t}/{step}"),
                            ..Exchange::default()
                        });
                        for _ in 0..dice.next(4) {
                            track.body(false, &vec![b'x'; dice.next(64 * 1024) as usize]);
                        }
                        if dice.next(3) > 0 {
                            track.end(None);
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        check(&recording);
    }

    #[test]
    fn the_har_puts_a_handshake_and_an_upload_in_no_channel_as_the_report_counts_them() {
        let recording = Arc::new(Recording::default());
        let base = "http://127.0.0.1:4000/socket.io/?EIO=4&transport=polling";
        for (method, url) in [
            ("GET", format!("{base}&t=a1")),
            ("GET", format!("{base}&t=a2&sid=s1")),
            ("POST", format!("{base}&t=a3&sid=s1")),
        ] {
            let recorder = recording.start(Exchange {
                method: method.into(),
                url,
                channel: "c1".into(),
                mime: "text/plain; charset=UTF-8".into(),
                ..Exchange::default()
            });
            recorder.end(None);
        }
        let har: Vec<u8> = recording
            .har_pieces(5_000.0, None, HashMap::new())
            .flatten()
            .collect();
        let har = switchboard_shared::har::Har::parse(std::str::from_utf8(&har).unwrap()).unwrap();
        let channels: Vec<Option<&str>> = har
            .log
            .entries
            .iter()
            .map(|entry| entry.channel.as_deref())
            .collect();
        // The handshake (no sid) and the upload (a POST with one) are asides; the held poll is the
        // channel's.
        assert_eq!(channels, [None, Some("c1"), None]);
    }

    #[test]
    fn bodies_past_the_budget_make_room_whichever_threads_add_them() {
        let recording = Arc::new(Recording::default());
        // 4 threads × 400 answers of 64 KiB kept each: 100 MiB asked of a 64 MiB budget.
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let recording = recording.clone();
                scope.spawn(move || {
                    for n in 0..400 {
                        let recorder = recording.start(exchange(thread * 1_000 + n));
                        for _ in 0..16 {
                            recorder.body(false, &[b'z'; 4 * 1024]);
                        }
                        recorder.end(None);
                    }
                });
            }
        });
        let held = recording.weight();
        assert!(held <= BUDGET_BYTES, "{held} bytes held, over the budget");
        assert!(
            held > BUDGET_BYTES - 2 * BODY_PREFIX,
            "only {held} bytes kept"
        );
        check(&recording);
        let (recorded, dropped) = recording.counts();
        assert_eq!(recorded, 1_600);
        assert!(dropped >= 560, "{dropped} dropped");
    }

    #[test]
    fn a_large_body_keeps_its_first_64_kib_and_counts_the_rest() {
        let recording = Arc::new(Recording::default());
        let recorder = recording.start(exchange(0));
        for _ in 0..100 {
            recorder.body(false, &[b'y'; 10_000]);
        }
        let (kept, counted) = recorder.with(|e| (e.response_body.len(), e.response_body_bytes));
        assert_eq!((kept, counted), (BODY_PREFIX, 1_000_000));
        let head = recorder.with(|e| e.url.len() + e.method.len());
        assert_eq!(recording.weight(), BODY_PREFIX + head);
    }
}
