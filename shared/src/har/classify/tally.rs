//! One endpoint's traffic tallied as it flows — the proxy's live figures — and decided by the same
//! rules as a HAR file's ([`super::classify`]): a loop is letters or held letters by [`loop_kind`], a
//! line's heartbeat by the rule in [`super::lines`], an answer "nothing new" by [`empty_rule_of`].
//!
//! A tally keeps running counts and, for the rules that need a distribution (a median interval, a
//! heartbeat's pace), only the latest [`KEPT`] values: its size does not grow with the traffic, and
//! reading a channel from it costs the same after a minute as after a day.

use std::collections::VecDeque;

use super::lines::{Beat, frame_bytes, heartbeats};
use super::{Channel, ChannelKind, empty_rule_of, loop_kind};
use crate::app::route::Aside;
use crate::app::{Got, Reached};
use crate::stats::median;

/// How many of the latest waits, request times and messages a tally keeps for its rules.
pub const KEPT: usize = 256;
/// How much of each answer's body a tally keeps to tell a repeated answer.
const BODY_KEPT: usize = 4 * 1024;

/// What kind of connection an exchange is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// A WebSocket.
    Socket,
    /// An event stream: Server-Sent Events (`true`) or NDJSON.
    Stream { sse: bool },
}

/// One answered request of a loop, as it ended.
#[derive(Debug, Clone, Copy)]
pub struct Letter<'a> {
    pub start_ms: f64,
    pub end_ms: f64,
    /// Waiting for the answer's first byte.
    pub wait_ms: f64,
    /// 0 when no answer came.
    pub status: u16,
    /// The first bytes of the answer's body, when it is text.
    pub body: Option<&'a str>,
    /// Bytes on the wire each way, heads included.
    pub up: u64,
    pub down: u64,
    /// Its whole answer is a heartbeat by its signature (Engine.IO's `2` answering a held poll,
    /// SockJS's `h`).
    pub heartbeat: bool,
}

/// An endpoint's traffic so far.
#[derive(Debug, Clone)]
pub struct Tally {
    name: String,
    line: Option<Line>,
    requests: u64,
    connections: u64,
    /// Lines open now and alive, and the most at once (its clients). A line gone dead (a half-open)
    /// is no client: its tab redials, and that is a reconnect, not a second client.
    open: u64,
    most_open: u64,
    empty: u64,
    empty_by: std::collections::BTreeMap<super::EmptyRule, u64>,
    bytes_up: u64,
    bytes_down: u64,
    frames: u64,
    frames_up: u64,
    news_bytes: u64,
    news_answers: u64,
    start_ms: f64,
    end_ms: f64,
    /// The latest requests of a loop: start, end, wait.
    letters: VecDeque<(f64, f64, f64)>,
    /// When the latest answers that were heartbeats came.
    letter_beats: VecDeque<f64>,
    previous: Option<String>,
    /// The latest messages of the current connection (of a line).
    beats: VecDeque<Beat>,
    /// The heartbeat as read from earlier connections: period and what it rests on.
    earlier_beat: Option<(f64, (bool, usize))>,
    /// When the server last sent something on a line (its opening counts), and the longest silence.
    last_down_ms: Option<f64>,
    longest_silence_ms: Option<f64>,
    /// What the browser got of the messages the app sent.
    got: Got,
    /// Requests aside from the channel (see [`Aside`]): how many of each, and their bytes.
    asides: [(u64, u64); 3],
    /// How long the latest messages delivered waited between the app and the browser's socket.
    delivery: VecDeque<f64>,
}

/// The most of `spans` (start, end) that were out at the same moment.
pub(super) fn most_at_once(spans: impl Iterator<Item = (f64, f64)>) -> u64 {
    // Ends before starts at the same moment: a poll answered and the next sent at once is one client.
    let mut moments: Vec<(f64, i64)> = spans
        .flat_map(|(start, end)| [(start, 1), (end, -1)])
        .collect();
    moments.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut out, mut most) = (0i64, 0i64);
    for (_, change) in moments {
        out += change;
        most = most.max(out);
    }
    most as u64
}

fn push<T>(ring: &mut VecDeque<T>, value: T) {
    if ring.len() == KEPT {
        ring.pop_front();
    }
    ring.push_back(value);
}

impl Tally {
    /// Its endpoint is now called `name` (a route template was learned).
    pub fn rename(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    pub fn new(name: impl Into<String>) -> Tally {
        Tally {
            name: name.into(),
            line: None,
            requests: 0,
            connections: 0,
            open: 0,
            most_open: 0,
            empty: 0,
            empty_by: Default::default(),
            bytes_up: 0,
            bytes_down: 0,
            frames: 0,
            frames_up: 0,
            news_bytes: 0,
            news_answers: 0,
            start_ms: f64::INFINITY,
            end_ms: f64::NEG_INFINITY,
            letters: VecDeque::new(),
            letter_beats: VecDeque::new(),
            previous: None,
            beats: VecDeque::new(),
            earlier_beat: None,
            last_down_ms: None,
            longest_silence_ms: None,
            got: Got::default(),
            asides: [(0, 0); 3],
            delivery: VecDeque::new(),
        }
    }

    /// Requests (and connections) tallied.
    pub fn channel_requests(&self) -> u64 {
        self.requests
    }

    fn span(&mut self, start_ms: f64, end_ms: f64) {
        self.start_ms = self.start_ms.min(start_ms);
        self.end_ms = self.end_ms.max(end_ms);
    }

    fn silence_until(&mut self, at_ms: f64) {
        if let Some(last) = self.last_down_ms {
            let gap = at_ms - last;
            if gap > self.longest_silence_ms.unwrap_or(0.0) {
                self.longest_silence_ms = Some(gap);
            }
        }
        self.last_down_ms = Some(at_ms);
    }

    /// A request aside from the channels ended (a file of the page, a handshake, an upload).
    pub fn aside(&mut self, aside: Aside, bytes: u64) {
        let slot = &mut self.asides[aside as usize];
        slot.0 += 1;
        slot.1 += bytes;
    }

    /// The requests aside from the channels, by [`Aside`] (`Page`, `Handshake`, `Upload`): how many,
    /// and their bytes.
    pub fn asides(&self) -> [(u64, u64); 3] {
        self.asides
    }

    /// A request of a loop ended.
    pub fn letter(&mut self, letter: Letter<'_>) {
        self.requests += 1;
        self.bytes_up += letter.up;
        self.bytes_down += letter.down;
        let body = letter.body.map(str::trim);
        match empty_rule_of(letter.status, body, self.previous.as_deref()) {
            Some(rule) => {
                self.empty += 1;
                *self.empty_by.entry(rule).or_default() += 1;
            }
            None if letter.status == 0 || letter.status >= 400 => {}
            None => {
                self.news_answers += 1;
                self.news_bytes += letter.down;
            }
        }
        self.previous = body.map(|body| {
            let mut end = body.len().min(BODY_KEPT);
            while !body.is_char_boundary(end) {
                end -= 1;
            }
            body[..end].to_owned()
        });
        self.span(letter.start_ms, letter.end_ms);
        if self.line.is_none() {
            self.silence_until(letter.start_ms);
        }
        push(
            &mut self.letters,
            (letter.start_ms, letter.end_ms, letter.wait_ms),
        );
        if letter.heartbeat {
            push(&mut self.letter_beats, letter.end_ms);
        }
    }

    /// A connection of a line opened (a socket's `101`, a stream's answer head); `up` and `down` are its
    /// heads' bytes.
    pub fn line_opened(&mut self, line: Line, at_ms: f64, up: u64, down: u64) {
        self.open_line(line, at_ms, up, down, true);
    }

    /// A line open before this tally began (a start over found it open): a connection, and a client
    /// only if it is alive (not dead by a half-open).
    pub fn line_carried(&mut self, line: Line, at_ms: f64, alive: bool) {
        self.open_line(line, at_ms, 0, 0, alive);
    }

    fn open_line(&mut self, line: Line, at_ms: f64, up: u64, down: u64, alive: bool) {
        self.line = Some(line);
        self.requests += 1;
        self.connections += 1;
        self.open += u64::from(alive);
        self.most_open = self.most_open.max(self.open);
        self.bytes_up += up;
        self.bytes_down += down;
        self.span(at_ms, at_ms);
        // The rhythm of the connections so far is read before their messages make room for this one's
        // (several may be open at once: their messages are kept side by side, each told by its line).
        self.remember_beat();
        self.last_down_ms = Some(at_ms);
    }

    /// A message of a line: `line` names its connection (any number unique among the channel's),
    /// `len` its payload's bytes, `shaped` when it is a heartbeat by its signature, `payload` its
    /// [`crate::app::heartbeat::payload_hash`].
    pub fn message(
        &mut self,
        line: u64,
        at_ms: f64,
        up: bool,
        len: usize,
        shaped: bool,
        payload: u64,
    ) {
        let sse = matches!(self.line, Some(Line::Stream { .. }));
        let bytes = if sse {
            len as u64
        } else {
            frame_bytes(len, up)
        };
        if up {
            self.bytes_up += bytes;
            self.frames_up += 1;
        } else {
            self.bytes_down += bytes;
            self.silence_until(at_ms);
            self.got.sent(at_ms);
        }
        self.frames += 1;
        self.span(at_ms, at_ms);
        push(
            &mut self.beats,
            Beat {
                at_ms,
                len,
                up,
                shaped,
                payload,
                heartbeat: false,
                swallowed: false,
                line,
            },
        );
    }

    /// A close frame: on the wire and counted as a frame (as an imported HAR counts it), but no message
    /// the app sent the page — a browser's WebSocket hands it to no handler — nor a beat.
    pub fn close_frame(&mut self, at_ms: f64, up: bool, len: usize) {
        let bytes = frame_bytes(len, up);
        if up {
            self.bytes_up += bytes;
            self.frames_up += 1;
        } else {
            self.bytes_down += bytes;
        }
        self.frames += 1;
        self.span(at_ms, at_ms);
    }

    /// What became of `messages` the app sent (see [`Reached`]).
    pub fn reached(&mut self, reached: Reached, messages: u64, at_ms: f64) {
        // The oldest message not yet delivered is delivered now: its wait, for free.
        if reached == Reached::Delivered
            && messages > 0
            && let Some(since) = self.got.undelivered_since_ms
        {
            push(&mut self.delivery, (at_ms - since).max(0.0));
        }
        self.got.reached(reached, messages, at_ms);
    }

    /// The median time the latest delivered messages took from the app to the browser's socket, and
    /// of how many.
    pub fn delivery_ms(&self) -> Option<(f64, usize)> {
        if self.delivery.is_empty() {
            return None;
        }
        let mut sorted: Vec<f64> = self.delivery.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        Some((sorted[sorted.len() / 2], sorted.len()))
    }

    /// The heartbeat of the current connection learned by its pace, when no signature names it: its
    /// direction (`true` up) and payload hash (what the `no_heartbeat` fault swallows on an unknown
    /// protocol).
    pub fn learned_beat(&self) -> Option<(bool, u64)> {
        if self.beats.iter().filter(|b| b.shaped).count() >= 2 {
            return None;
        }
        // The connection with the most messages kept says it best.
        let mut lines = self.lines();
        lines.sort_by_key(|beats| std::cmp::Reverse(beats.len()));
        lines
            .iter()
            .find_map(|beats| super::lines::learned_beat(beats))
    }

    /// The messages kept, connection by connection, in order: a channel's connections interleave,
    /// and each beats at its own pace and phase — read together, three sockets pinged every 5 s
    /// looked like no rhythm at all.
    fn lines(&self) -> Vec<Vec<Beat>> {
        let mut lines: Vec<(u64, Vec<Beat>)> = Vec::new();
        for beat in &self.beats {
            match lines.iter_mut().find(|(line, _)| *line == beat.line) {
                Some((_, beats)) => beats.push(*beat),
                None => lines.push((beat.line, vec![*beat])),
            }
        }
        lines.into_iter().map(|(_, beats)| beats).collect()
    }

    /// What the browser got of what the app sent.
    pub fn got(&self) -> Got {
        self.got
    }

    /// A connection of a line ended; `dead` when it was counted dead before ([`Tally::line_died`]).
    pub fn line_ended(&mut self, at_ms: f64, dead: bool) {
        if !dead {
            self.open = self.open.saturating_sub(1);
        }
        self.span(at_ms, at_ms);
    }

    /// A connection of a line went dead while open (a half-open: nothing passes, nothing closes). It
    /// stays open until an end hears of it, but its tab is no longer there: the connection its tab
    /// opens next is a reconnect, not a second client. (Counted as open, three tabs whose lines died
    /// and redialed read as six clients and no reconnect.)
    pub fn line_died(&mut self) {
        self.open = self.open.saturating_sub(1);
    }

    fn remember_beat(&mut self) {
        let mut probe = Channel::new(ChannelKind::Phone, String::new());
        for mut beats in self.lines() {
            heartbeats(&mut probe, &mut beats);
        }
        if let (Some(period), Some(basis)) = (probe.heartbeat_ms, probe.heartbeat_basis)
            && self.earlier_beat.is_none_or(|(_, known)| basis > known)
        {
            self.earlier_beat = Some((period, basis));
        }
    }

    /// The latest requests' (start, end) times.
    fn times(&self) -> Vec<(f64, f64)> {
        self.letters
            .iter()
            .map(|&(start, end, _)| (start, end))
            .collect()
    }

    /// The waits of the loop's latest requests, for its own rule and the other loops'.
    pub fn waits(&self) -> impl Iterator<Item = f64> + '_ {
        self.letters.iter().map(|&(_, _, wait)| wait)
    }

    /// The longest the server was silent on the channel, as of `now_ms` for a line still open.
    pub fn longest_silence_ms(&self, now_ms: Option<f64>) -> Option<f64> {
        let open_gap = match (now_ms, self.last_down_ms, self.line) {
            (Some(now), Some(last), Some(_)) => Some(now - last),
            _ => None,
        };
        match (self.longest_silence_ms, open_gap) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// The channel as the rules read it now, or `None` when it is none (a loop too short or too
    /// irregular: its requests are "other traffic"). `others_wait` is the median wait of every other
    /// loop's requests.
    pub fn channel(&self, others_wait: Option<f64>) -> Option<Channel> {
        // A loop's kind and how long its letters were held, read once.
        let mut held = None;
        let kind = match self.line {
            Some(Line::Socket) => ChannelKind::Phone,
            Some(Line::Stream { .. }) => ChannelKind::Radio,
            None => {
                let waits: Vec<f64> = self.waits().collect();
                let (kind, held_ms) = loop_kind(&waits, &self.times(), others_wait)?;
                held = Some(held_ms);
                kind
            }
        };
        let mut channel = Channel::new(kind, self.name.clone());
        if let Some(Line::Stream { sse: false }) = self.line {
            channel.title = "Radio (an endless letter: JSON lines streamed)";
        }
        channel.requests = self.requests;
        channel.empty = self.empty;
        channel.empty_by = self.empty_by.clone();
        channel.bytes_up = self.bytes_up;
        channel.bytes_down = self.bytes_down;
        channel.frames = self.frames;
        channel.frames_up = self.frames_up;
        channel.news_bytes = self.news_bytes;
        channel.news_answers = self.news_answers;
        channel.start_ms = self.start_ms;
        channel.end_ms = self.end_ms;
        channel.clients = self.most_open.max(1);
        channel.reconnects = self.connections.saturating_sub(channel.clients);
        match kind {
            ChannelKind::Held => {
                channel.held_ms = held;
                // Each client keeps one letter held at a time: the most held at once (among the
                // latest kept) are its clients — three tabs polling were counted as one.
                channel.clients = most_at_once(self.times().into_iter()).max(1);
                let beats: Vec<f64> = self.letter_beats.iter().copied().collect();
                channel.heartbeats = beats.len() as u64;
                channel.heartbeat_ms = letters_heartbeat(&beats);
            }
            ChannelKind::Letters => {
                let mut intervals: Vec<f64> = self
                    .times()
                    .windows(2)
                    .map(|pair| pair[1].0 - pair[0].0)
                    .collect();
                channel.interval_ms = median(&mut intervals);
            }
            ChannelKind::Radio | ChannelKind::Phone => {
                // Each connection's beats on their own; the one whose beats say the most sets the
                // pace, as for a HAR's entries.
                for mut beats in self.lines() {
                    heartbeats(&mut channel, &mut beats);
                }
                if let Some((period, basis)) = self.earlier_beat
                    && channel.heartbeat_basis.is_none_or(|known| basis > known)
                {
                    channel.heartbeat_ms = Some(period);
                    channel.heartbeat_basis = Some(basis);
                }
                let seconds = (channel.end_ms - channel.start_ms) / 1000.0;
                if kind == ChannelKind::Phone {
                    channel.frames_per_second =
                        (seconds > 0.0).then(|| channel.frames as f64 / seconds);
                }
            }
        }
        Some(channel)
    }
}

/// The pace of a loop's answers that were heartbeats (two or more, known by their signature).
pub fn letters_heartbeat(beats: &[f64]) -> Option<f64> {
    super::heartbeat_period(beats).or_else(|| (beats.len() == 2).then(|| beats[1] - beats[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(start_ms: f64, wait_ms: f64, body: &str) -> Letter<'_> {
        Letter {
            start_ms,
            end_ms: start_ms + wait_ms,
            wait_ms,
            status: 200,
            body: Some(body),
            up: 100,
            down: 200,
            heartbeat: false,
        }
    }

    #[test]
    fn a_steady_loop_is_letters_with_its_interval_and_its_repeated_answers() {
        let mut tally = Tally::new("GET /api/state");
        for n in 0..10 {
            let body = if n % 5 == 0 { "{\"v\":1}" } else { "{\"v\":0}" };
            tally.letter(letter(1_000.0 * f64::from(n), 5.0, body));
        }
        let channel = tally.channel(Some(5.0)).unwrap();
        assert_eq!(channel.kind, ChannelKind::Letters);
        assert_eq!(channel.interval_ms, Some(1_000.0));
        assert_eq!(channel.requests, 10);
        // Repeated: every answer the same as the one before it.
        assert_eq!(channel.empty, 6);
    }

    #[test]
    fn a_loop_whose_letters_wait_long_is_held_letters() {
        let mut tally = Tally::new("GET /poll");
        for n in 0..6 {
            tally.letter(letter(25_000.0 * f64::from(n), 24_990.0, "[]"));
        }
        let channel = tally.channel(Some(3.0)).unwrap();
        assert_eq!(channel.kind, ChannelKind::Held);
        assert_eq!(channel.held_ms, Some(24_990.0));
        assert_eq!(channel.clients, 1, "one poll after the other is one client");
    }

    #[test]
    fn three_tabs_holding_letters_at_once_are_three_clients() {
        let mut tally = Tally::new("GET /socket.io/");
        // Each tab's poll is held up to 2 s and sent again as soon as it is answered; the tabs'
        // polls overlap.
        for n in 0..8u32 {
            for tab in 0..3u32 {
                let start = 2_000.0 * f64::from(n) + 300.0 * f64::from(tab);
                tally.letter(letter(start, 2_000.0, "2"));
            }
        }
        let channel = tally.channel(Some(3.0)).unwrap();
        assert_eq!(channel.kind, ChannelKind::Held);
        assert_eq!(channel.clients, 3);
    }

    #[test]
    fn two_requests_are_no_channel_yet() {
        let mut tally = Tally::new("GET /once");
        tally.letter(letter(0.0, 5.0, "{}"));
        tally.letter(letter(900.0, 5.0, "{}"));
        assert!(tally.channel(None).is_none());
    }

    #[test]
    fn a_sockets_heartbeat_is_read_from_its_messages_and_kept_across_a_reconnect() {
        let mut tally = Tally::new("ws://app/socket");
        tally.line_opened(Line::Socket, 0.0, 300, 150);
        for n in 1..=10 {
            let at = 2_000.0 * f64::from(n);
            tally.message(1, at, false, 1, true, 3);
            tally.message(1, at + 3.0, true, 1, true, 5);
            tally.message(1, at + 500.0, false, 40, false, 7 + 2 * n as u64);
        }
        let channel = tally.channel(None).unwrap();
        assert_eq!(channel.kind, ChannelKind::Phone);
        assert_eq!(channel.heartbeat_ms, Some(2_000.0));
        tally.line_ended(29_000.0, false);
        tally.line_opened(Line::Socket, 30_000.0, 300, 150);
        tally.message(2, 30_100.0, false, 40, false, 9);
        let channel = tally.channel(None).unwrap();
        assert_eq!((channel.reconnects, channel.clients), (1, 1));
        assert_eq!(
            channel.heartbeat_ms,
            Some(2_000.0),
            "the pace read before the reconnect"
        );
        assert_eq!(tally.longest_silence_ms(None), Some(2_000.0));
        assert_eq!(tally.longest_silence_ms(Some(40_100.0)), Some(10_000.0));
        // A second tab while the first is open is a second client, not a reconnect.
        tally.line_opened(Line::Socket, 30_200.0, 300, 150);
        let channel = tally.channel(None).unwrap();
        assert_eq!((channel.reconnects, channel.clients), (1, 2));
    }

    #[test]
    fn each_open_socket_beats_at_its_own_pace_and_together_they_keep_it() {
        // Three tabs on one channel, each pinged every 5 s (Socket.IO's "2", answered "3") at its own
        // phase, with chat between: merged, the pings come 1.6–1.8 s apart and irregularly; each
        // socket's own are 5 s apart.
        let mut tally = Tally::new("ws://app/socket.io/");
        for tab in 0..3u64 {
            tally.line_opened(Line::Socket, 100.0 * tab as f64, 300, 150);
        }
        let mut pings = 0;
        for n in 0..12u32 {
            for tab in 0..3u64 {
                let at = 5_000.0 * f64::from(n) + 1_700.0 * tab as f64 + 37.0 * f64::from(n % 3);
                tally.message(tab, at, false, 1, true, 2);
                tally.message(tab, at + 4.0, true, 1, true, 3);
                pings += 1;
                tally.message(tab, at + 900.0, false, 60, false, 100 + u64::from(n));
            }
        }
        let channel = tally.channel(None).unwrap();
        let pace = channel.heartbeat_ms.expect("a heartbeat");
        assert!((4_900.0..=5_100.0).contains(&pace), "{pace}");
        assert_eq!(channel.heartbeats, pings);
        assert_eq!(channel.clients, 3);
        assert!(
            channel.verdict().contains("on 3 connections"),
            "{}",
            channel.verdict()
        );
        // The first socket ends; a new one opens: the others' pace holds.
        tally.line_ended(60_000.0, false);
        tally.line_opened(Line::Socket, 60_100.0, 300, 150);
        tally.message(9, 60_200.0, false, 60, false, 7);
        let channel = tally.channel(None).unwrap();
        let pace = channel.heartbeat_ms.expect("still a heartbeat");
        assert!((4_900.0..=5_100.0).contains(&pace), "{pace}");
        assert!(
            channel.verdict().contains("on 4 connections"),
            "{}",
            channel.verdict()
        );
    }

    #[test]
    fn tabs_whose_lines_died_and_redialed_are_as_many_clients_each_with_a_reconnect() {
        let mut tally = Tally::new("ws://app/socket.io/");
        for tab in 0..3u64 {
            tally.line_opened(Line::Socket, 100.0 * tab as f64, 300, 150);
        }
        // A half-open: the three lines die, and stay open, silent; each tab redials.
        for _ in 0..3 {
            tally.line_died();
        }
        for tab in 0..3u64 {
            tally.line_opened(Line::Socket, 50_000.0 + 100.0 * tab as f64, 300, 150);
        }
        let channel = tally.channel(None).unwrap();
        assert_eq!((channel.clients, channel.reconnects), (3, 3));
        // The dead ones end at last (the app's timeout): the live ones are still counted open, so a
        // fourth tab now is a fourth client.
        for _ in 0..3 {
            tally.line_ended(90_000.0, true);
        }
        tally.line_opened(Line::Socket, 91_000.0, 300, 150);
        let channel = tally.channel(None).unwrap();
        assert_eq!((channel.clients, channel.reconnects), (4, 3));
        assert!(
            channel.verdict().contains("on 7 connections"),
            "{}",
            channel.verdict()
        );
    }

    #[test]
    fn a_tally_keeps_a_bounded_memory() {
        let mut tally = Tally::new("ws://app/socket");
        tally.line_opened(Line::Socket, 0.0, 0, 0);
        for n in 0..100_000 {
            tally.message(1, f64::from(n), false, 10, false, 11 + 2 * n as u64);
        }
        assert_eq!(tally.beats.len(), KEPT);
        assert_eq!(tally.channel(None).unwrap().frames, 100_000);
    }
}
