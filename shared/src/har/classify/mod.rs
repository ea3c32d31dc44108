//! A HAR's traffic sorted into channels the timeline knows — letters, held letters, a radio, a phone
//! call — with the figures that can be known from the file and a verdict in words.
//!
//! The rules, in the order they are tried:
//! - a WebSocket entry (`_resourceType: websocket`, a `101`, or a `ws:`/`wss:` URL) is a phone call;
//!   entries to the same URL are one call that reconnected;
//! - a `text/event-stream` answer is a radio; again one per URL;
//! - three or more requests to the same method and path are a loop: held letters when a quarter of
//!   them waited long (a quarter of a second or more, and five times what the file's other requests
//!   waited) or when each leaves as soon as the one before came back (a long poll under a firehose);
//!   letters when most leave at a steady interval (a pause or a slower stretch does not break it);
//! - anything else is "other traffic", counted but not drawn.

use std::collections::BTreeMap;

mod lines;
pub mod tally;
pub use lines::heartbeat_period;
use lines::{socket, stream};

use super::model::{Entry, Har, parse_date_time};
use crate::app::heartbeat::{Dialect, signature};
use crate::app::route::{Routes, aside};
use crate::format::{format_bytes, format_ms};
use crate::stats::{group_thousands, median};

/// What a channel is, in the timeline's language. On the wire (`GET /api/app`, a HAR's `_kind`) as
/// [`ChannelKind::as_str`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Letters,
    Held,
    Radio,
    Phone,
}

impl ChannelKind {
    /// The `data-kind` of its panel.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Letters => "letters",
            ChannelKind::Held => "held",
            ChannelKind::Radio => "radio",
            ChannelKind::Phone => "phone",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ChannelKind::Letters => "Letters (polling)",
            ChannelKind::Held => "Held letters (long polling)",
            ChannelKind::Radio => "Radio (Server-Sent Events)",
            ChannelKind::Phone => "Phone call (WebSocket)",
        }
    }

    /// What a sentence calls it: "your held letters (/poll)".
    pub fn called(self) -> &'static str {
        match self {
            ChannelKind::Letters => "letters",
            ChannelKind::Held => "held letters",
            ChannelKind::Radio => "radio",
            ChannelKind::Phone => "phone call",
        }
    }
}

/// Why an answer counted as "nothing new".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EmptyRule {
    /// `204 No Content` or `304 Not Modified`.
    NoContent,
    /// An empty body, `[]`, `{}` or `null`.
    EmptyBody,
    /// A JSON object whose lists are all empty (`{"head": 12, "events": []}`).
    EmptyLists,
    /// The same body as the answer before it.
    Repeated,
}

impl EmptyRule {
    pub fn words(self) -> &'static str {
        match self {
            EmptyRule::NoContent => "204 No Content or 304 Not Modified",
            EmptyRule::EmptyBody => "an empty body, [], {} or null",
            EmptyRule::EmptyLists => "JSON with only empty lists",
            EmptyRule::Repeated => "identical to the answer before",
        }
    }
}

/// One thing on an imported channel's swimlane, in the file's time (ms since the Unix epoch).
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A request and its answer: empty or not, held for `wait_ms`.
    Letter {
        start_ms: f64,
        end_ms: f64,
        wait_ms: f64,
        status: u16,
        empty: Option<EmptyRule>,
        bytes: u64,
    },
    /// A connection (a stream or a socket) open from `start_ms` to `end_ms`.
    Line { start_ms: f64, end_ms: f64 },
    /// A frame or event: `up` from the browser, `heartbeat` when it looks like one, `swallowed` when
    /// the lab kept it from the browser (the recording says so).
    Frame {
        at_ms: f64,
        up: bool,
        heartbeat: bool,
        swallowed: bool,
        bytes: u64,
    },
}

/// One channel found in the file, with its figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub kind: ChannelKind,
    /// What it is in words (`Radio (Server-Sent Events)`).
    pub title: &'static str,
    /// `GET /api/poll` or the socket's URL.
    pub name: String,
    pub requests: u64,
    pub empty: u64,
    /// How many answers each rule called empty.
    pub empty_by: BTreeMap<EmptyRule, u64>,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Letters: the median time between requests; held letters: the median time held.
    pub interval_ms: Option<f64>,
    pub held_ms: Option<f64>,
    /// Events (radio) or frames (phone) both ways.
    pub frames: u64,
    pub frames_up: u64,
    pub frames_per_second: Option<f64>,
    /// Lines dialled again after one of the same client closed: connections beyond the most open at
    /// once (a second tab is a second client, never a reconnect).
    pub reconnects: u64,
    /// The most connections open at once: its clients.
    pub clients: u64,
    pub heartbeat_ms: Option<f64>,
    pub heartbeats: u64,
    /// Silences longer than 2.5 heartbeats.
    pub silences: u64,
    pub start_ms: f64,
    pub end_ms: f64,
    pub items: Vec<Item>,
    /// Bytes of the answers that carried news (bodies only), for what a stream would have cost.
    news_bytes: u64,
    /// What the heartbeat's pace was read from: beats known by their shape, and how many.
    heartbeat_basis: Option<(bool, usize)>,
    news_answers: u64,
}

/// What the file held.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Imported {
    pub channels: Vec<Channel>,
    /// Requests that belong to no channel (pages, scripts, one-off calls).
    pub other_requests: u64,
    pub creator: String,
    /// The file's own note (`log.comment`): Switchboard's export says there from when it is whole.
    pub comment: Option<String>,
}

impl Channel {
    fn new(kind: ChannelKind, name: String) -> Channel {
        Channel {
            kind,
            title: kind.title(),
            name,
            requests: 0,
            empty: 0,
            empty_by: BTreeMap::new(),
            bytes_up: 0,
            bytes_down: 0,
            interval_ms: None,
            held_ms: None,
            frames: 0,
            frames_up: 0,
            frames_per_second: None,
            reconnects: 0,
            clients: 0,
            heartbeat_ms: None,
            heartbeats: 0,
            silences: 0,
            start_ms: f64::INFINITY,
            end_ms: f64::NEG_INFINITY,
            items: Vec::new(),
            news_bytes: 0,
            news_answers: 0,
            heartbeat_basis: None,
        }
    }

    fn span(&mut self, start_ms: f64, end_ms: f64) {
        self.start_ms = self.start_ms.min(start_ms);
        self.end_ms = self.end_ms.max(end_ms);
    }

    /// Reads its clients from its connections' spans (a HAR's lines): the most open at once; the
    /// rest of its connections are reconnects.
    fn count_clients(&mut self) {
        // Starts and ends sorted apart (the same sort of times the figures use: the page's
        // WebAssembly pays for each kind of sort it holds), then swept.
        let (mut starts, mut ends) = (Vec::new(), Vec::new());
        for item in &self.items {
            if let Item::Line { start_ms, end_ms } = *item {
                starts.push(start_ms);
                ends.push(end_ms);
            }
        }
        starts.sort_by(f64::total_cmp);
        ends.sort_by(f64::total_cmp);
        let (mut open, mut most, mut ended) = (0i64, 0i64, 0);
        for start in &starts {
            // A line that ends as another begins (a redial at once) was not open beside it.
            while ended < ends.len() && ends[ended] <= *start {
                ended += 1;
                open -= 1;
            }
            open += 1;
            most = most.max(open);
        }
        self.clients = most.max(1) as u64;
        self.reconnects = (starts.len() as u64).saturating_sub(self.clients);
    }

    pub fn empty_percent(&self) -> Option<f64> {
        (self.requests > 0).then(|| 100.0 * self.empty as f64 / self.requests as f64)
    }

    /// The verdict in words, naming the figures it rests on.
    pub fn verdict(&self) -> String {
        let total = format_bytes((self.bytes_up + self.bytes_down) as f64);
        match self.kind {
            ChannelKind::Letters => {
                let every = self
                    .interval_ms
                    .map(|ms| format!(", every {}", format_ms(ms)))
                    .unwrap_or_default();
                format!(
                    "This polling loop ({}{every}) sent {} requests, {:.0} % empty, {total}: one stream would have carried the same news in ≈ {}.",
                    self.name,
                    group_thousands(self.requests),
                    self.empty_percent().unwrap_or(0.0),
                    format_bytes(self.stream_estimate() as f64)
                )
            }
            ChannelKind::Held => format!(
                "These held letters ({}) were held {} each (median) and {} of {} came back with news; {total} in all, of which a stream would have saved the headers of every request after the first (≈ {}).",
                self.name,
                self.held_ms.map_or("–".into(), format_ms),
                group_thousands(self.requests - self.empty),
                group_thousands(self.requests),
                format_bytes(
                    (self.bytes_up + self.bytes_down).saturating_sub(self.stream_estimate()) as f64
                )
            ),
            ChannelKind::Radio => format!(
                "This radio ({}) carried {} events on {} connection{}, {total}{}.",
                self.name,
                group_thousands(self.frames),
                self.connections(),
                if self.connections() == 1 { "" } else { "s" },
                self.heartbeat_words()
            ),
            ChannelKind::Phone => format!(
                "This phone call ({}) carried {} frames down and {} up{}, on {} connection{}, {total}{}.",
                self.name,
                group_thousands(self.frames - self.frames_up),
                group_thousands(self.frames_up),
                self.frames_per_second
                    .map(|rate| format!(" ({rate:.1} a second)"))
                    .unwrap_or_default(),
                self.connections(),
                if self.connections() == 1 { "" } else { "s" },
                self.heartbeat_words()
            ),
        }
    }

    /// Every connection it had: the most open at once (its clients), and each opened after one ended.
    /// (Counting only `reconnects + 1` said "on 1 connection" of three tabs open together.)
    fn connections(&self) -> u64 {
        self.clients.max(1) + self.reconnects
    }

    fn heartbeat_words(&self) -> String {
        match self.heartbeat_ms {
            Some(ms) => format!(
                "; heartbeats every {}, {} silence{} longer than 2.5 of them",
                format_ms(ms),
                self.silences,
                if self.silences == 1 { "" } else { "s" }
            ),
            None if self.heartbeats > 0 => format!(
                "; {} heartbeat{} seen (the file keeps no time for each event, so its pace is unknown)",
                self.heartbeats,
                if self.heartbeats == 1 { "" } else { "s" }
            ),
            None => "; no heartbeat: a quiet line and a dead one look the same".to_owned(),
        }
    }

    /// What one stream would have cost for the same news: one request and its answer's headers, then
    /// each answer's news with a few bytes of framing (`data: …\n\n`).
    pub fn stream_estimate(&self) -> u64 {
        const FRAMING: u64 = 8;
        let first = (self.bytes_up + self.bytes_down)
            .saturating_sub(self.news_bytes)
            .checked_div(self.requests)
            .unwrap_or(0);
        first + self.news_bytes + self.news_answers * FRAMING
    }
}

/// Whether letters leave at a steady pace: most intervals (three in five) within half the median one
/// of it. A median, not a mean: a pause (a fault's back-off, a hidden tab) or a slower stretch (3g)
/// is a few intervals off the pace and must not make a polling loop read as "other requests".
fn steady(intervals: &[f64]) -> bool {
    let mut sorted = intervals.to_vec();
    let Some(pace) = median(&mut sorted).filter(|&pace| pace > 0.0) else {
        return false;
    };
    let on_pace = intervals
        .iter()
        .filter(|&&interval| (interval - pace).abs() <= pace * 0.5)
        .count();
    on_pace * 5 >= intervals.len() * 3
}

fn non_negative(size: i64) -> u64 {
    u64::try_from(size).unwrap_or(0)
}

fn bytes_up(entry: &Entry) -> u64 {
    non_negative(entry.request.headers_size) + non_negative(entry.request.body_size)
}

fn bytes_down(entry: &Entry) -> u64 {
    match entry.response.transfer_size {
        Some(size) if size >= 0 => size as u64,
        _ => {
            let body = if entry.response.body_size >= 0 {
                entry.response.body_size
            } else {
                entry.response.content.size
            };
            non_negative(entry.response.headers_size) + non_negative(body)
        }
    }
}

/// The route templates of a file's paths, learned from all of them (so the first connection of an
/// endpoint is read by what its later ones teach).
fn routes_of(entries: &[(&Entry, f64, f64)]) -> Routes {
    let mut routes = Routes::default();
    for (entry, ..) in entries {
        routes.learn(
            &entry.request.method,
            path_of(&entry.request.url),
            is_socket(entry),
        );
    }
    routes
}

/// `GET /api/poll` for `GET https://host/api/poll?after=3` (the query changes every time), its path
/// read by its route template; a socket by its URL, likewise.
fn endpoint(routes: &mut Routes, entry: &Entry, socket: bool) -> String {
    let url = &entry.request.url;
    let path = path_of(url);
    let template = routes.learn(&entry.request.method, path, socket).template;
    if socket {
        let without_query = url.split(['?', '#']).next().unwrap_or(url);
        let origin = without_query
            .strip_suffix(path)
            .unwrap_or(without_query.trim_end_matches('/'));
        format!("{origin}{template}")
    } else {
        format!("{} {template}", entry.request.method)
    }
}

/// The path and query of a URL (`/poll?after=3` of `https://host/poll?after=3#x`).
fn path_and_query(url: &str) -> &str {
    let without_fragment = url.split('#').next().unwrap_or(url);
    match without_fragment.find("://") {
        Some(scheme) => {
            let rest = &without_fragment[scheme + 3..];
            rest.find('/').map_or("/", |slash| &rest[slash..])
        }
        None => without_fragment,
    }
}

fn path_of(url: &str) -> &str {
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    match without_query.find("://") {
        Some(scheme) => {
            let rest = &without_query[scheme + 3..];
            rest.find('/').map_or("/", |slash| &rest[slash..])
        }
        None => without_query,
    }
}

fn is_socket(entry: &Entry) -> bool {
    entry
        .resource_type
        .as_deref()
        .is_some_and(|kind| kind.eq_ignore_ascii_case("websocket"))
        || entry.response.status == 101
        || entry.request.url.starts_with("ws://")
        || entry.request.url.starts_with("wss://")
}

/// An answer that streams events: Server-Sent Events, or newline-delimited JSON read as it comes
/// (an endless letter).
fn is_event_stream(entry: &Entry) -> bool {
    let mime = entry.response.content.mime_type.to_ascii_lowercase();
    event_stream(&entry.request.url, &mime).is_some()
}

/// Whether an answer to `url` of type `mime` (lower case) is a stream of events, read one by one:
/// `Some(true)` for Server-Sent Events (events end at a blank line), `Some(false)` for lines (NDJSON,
/// or SockJS's `xhr_streaming`, whose `application/javascript` answer is one frame a line and never
/// ends). The proxy and the HAR import ask the same.
pub fn event_stream(url: &str, mime: &str) -> Option<bool> {
    if mime.starts_with("text/event-stream") {
        return Some(true);
    }
    let path = url.split(['?', '#']).next().unwrap_or(url);
    (mime.starts_with("application/x-ndjson")
        || (path.ends_with("/xhr_streaming") && crate::app::heartbeat::Dialect::of(path).sockjs))
        .then_some(false)
}

/// Why an answer said nothing new, if it did; `previous` is the body of the answer before it.
fn empty_rule(entry: &Entry, previous: Option<&str>) -> Option<EmptyRule> {
    empty_rule_of(
        entry.response.status,
        entry.response.content.text.as_deref(),
        previous,
    )
}

/// Why an answer with `status` and `body` said nothing new, if it did; `previous` is the body of the
/// answer before it. The rule for a HAR's letters and the proxy's live ones alike.
pub fn empty_rule_of(status: u16, body: Option<&str>, previous: Option<&str>) -> Option<EmptyRule> {
    if matches!(status, 204 | 304) {
        return Some(EmptyRule::NoContent);
    }
    if status >= 400 || status == 0 {
        return None;
    }
    let body = body?.trim();
    if matches!(body, "" | "[]" | "{}" | "null") {
        return Some(EmptyRule::EmptyBody);
    }
    if let Ok(serde_json::Value::Object(fields)) = serde_json::from_str::<serde_json::Value>(body) {
        let mut lists = fields.values().filter_map(serde_json::Value::as_array);
        if lists.clone().next().is_some() && lists.all(Vec::is_empty) {
            return Some(EmptyRule::EmptyLists);
        }
    }
    (previous == Some(body)).then_some(EmptyRule::Repeated)
}

/// What a loop of requests is, from its requests' waits and their (start, end) times in order, and the
/// median wait of every other loop's requests; with how long its letters were held. `None` when it is
/// no channel: fewer than three requests, or neither held nor steady.
///
/// Held: a quarter of a second or more, and five times what the other requests waited (a second or
/// more when there are no others to compare with). A long poll answers early when news comes, so a
/// loop is held letters when a quarter of its letters were held, or when each letter leaves as soon as
/// the one before it came back (under a firehose none is held at all).
pub fn loop_kind(
    waits: &[f64],
    times: &[(f64, f64)],
    others: Option<f64>,
) -> Option<(ChannelKind, f64)> {
    if waits.len() < 3 {
        return None;
    }
    let threshold = others.map_or(1_000.0, |others| (5.0 * others.max(1.0)).max(250.0));
    let mut held_waits: Vec<f64> = waits.iter().copied().filter(|&w| w >= threshold).collect();
    let mut gaps: Vec<f64> = times
        .windows(2)
        .map(|pair| (pair[1].0 - pair[0].1).max(0.0))
        .collect();
    let intervals: Vec<f64> = times.windows(2).map(|pair| pair[1].0 - pair[0].0).collect();
    let back_to_back = median(&mut gaps).is_some_and(|gap| gap < 50.0);
    let held_by_waits = held_waits.len() * 4 >= waits.len();
    let kind = if held_by_waits || back_to_back {
        ChannelKind::Held
    } else if steady(&intervals) {
        ChannelKind::Letters
    } else {
        return None;
    };
    // How long they were held: of the held ones when they are what made the loop held letters; of all
    // when it was asking again at once (a few held by chance say nothing of the rest).
    let held = if held_by_waits {
        median(&mut held_waits)
    } else {
        median(&mut waits.to_vec())
    }
    .unwrap_or(0.0);
    Some((kind, held))
}

/// When an entry started and ended, ms since the Unix epoch.
fn times(entry: &Entry) -> Option<(f64, f64)> {
    let start = parse_date_time(&entry.started_date_time)?;
    Some((start, start + entry.time.max(0.0)))
}

/// The kind an entry's `_kind` names (Switchboard's proxy writes it: the kind its live figures found).
fn hinted_kind(entry: &Entry) -> Option<ChannelKind> {
    match entry.kind.as_deref()? {
        "letters" => Some(ChannelKind::Letters),
        "held" => Some(ChannelKind::Held),
        "radio" => Some(ChannelKind::Radio),
        "phone" => Some(ChannelKind::Phone),
        _ => None,
    }
}

/// Sorts a HAR's entries into channels. A file from Switchboard's proxy says each entry's kind
/// (`_kind`): then the proxy's sorting is followed, and an entry it put in no channel is other traffic,
/// so a page drawing a few seconds of the file agrees with the proxy's table of the whole session.
pub fn classify(har: &Har) -> Imported {
    let hinted = har.log.entries.iter().any(|entry| entry.channel.is_some());
    let mut entries: Vec<(&Entry, f64, f64)> = har
        .log
        .entries
        .iter()
        .filter_map(|entry| times(entry).map(|(start, end)| (entry, start, end)))
        .collect();
    entries.sort_by(|a, b| a.1.total_cmp(&b.1));

    let mut routes = routes_of(&entries);
    let mut channels: BTreeMap<(ChannelKind, String), Channel> = BTreeMap::new();
    let mut loops: BTreeMap<String, Vec<(&Entry, f64, f64)>> = BTreeMap::new();
    let mut forced: BTreeMap<String, ChannelKind> = BTreeMap::new();
    let mut hinted_others = 0;
    for &(entry, start, end) in &entries {
        // The page's files, a framework's handshake, a session's uploads: never a channel.
        let mime = entry.response.content.mime_type.to_ascii_lowercase();
        if !is_socket(entry)
            && aside(
                &entry.request.method,
                path_and_query(&entry.request.url),
                &mime,
            )
            .is_some()
        {
            hinted_others += 1;
            continue;
        }
        let hint = hinted_kind(entry);
        if hinted && hint.is_none() {
            hinted_others += 1;
            continue;
        }
        if let Some(kind @ (ChannelKind::Letters | ChannelKind::Held)) = hint {
            let name = endpoint(&mut routes, entry, false);
            forced.insert(name.clone(), kind);
            loops.entry(name).or_default().push((entry, start, end));
        } else if hint == Some(ChannelKind::Phone) || (hint.is_none() && is_socket(entry)) {
            let name = endpoint(&mut routes, entry, true);
            let channel = channels
                .entry((ChannelKind::Phone, name.clone()))
                .or_insert_with(|| Channel::new(ChannelKind::Phone, name));
            socket(channel, entry, start, end);
        } else if hint == Some(ChannelKind::Radio) || is_event_stream(entry) {
            let name = endpoint(&mut routes, entry, false);
            let channel = channels
                .entry((ChannelKind::Radio, name.clone()))
                .or_insert_with(|| Channel::new(ChannelKind::Radio, name));
            if !entry
                .response
                .content
                .mime_type
                .starts_with("text/event-stream")
            {
                channel.title = "Radio (an endless letter: JSON lines streamed)";
            }
            stream(channel, entry, start, end);
        } else {
            loops
                .entry(endpoint(&mut routes, entry, false))
                .or_default()
                .push((entry, start, end));
        }
    }

    let mut other_requests = hinted_others;
    let all_waits: Vec<(String, f64)> = loops
        .iter()
        .flat_map(|(name, group)| {
            group
                .iter()
                .map(move |(entry, ..)| (name.clone(), entry.timings.wait.max(0.0)))
        })
        .collect();
    for (name, group) in loops {
        let waits: Vec<f64> = group
            .iter()
            .map(|(e, ..)| e.timings.wait.max(0.0))
            .collect();
        let mut others: Vec<f64> = all_waits
            .iter()
            .filter(|(other, _)| *other != name)
            .map(|&(_, wait)| wait)
            .collect();
        let others = median(&mut others);
        let times: Vec<(f64, f64)> = group.iter().map(|&(_, start, end)| (start, end)).collect();
        let intervals: Vec<f64> = times.windows(2).map(|pair| pair[1].0 - pair[0].0).collect();
        let found = loop_kind(&waits, &times, others);
        let (kind, held) = match (forced.get(&name), found) {
            (Some(&kind), found) => (
                kind,
                found.map_or_else(
                    || median(&mut waits.clone()).unwrap_or(0.0),
                    |(_, held)| held,
                ),
            ),
            (None, Some(found)) => found,
            (None, None) => {
                other_requests += group.len() as u64;
                continue;
            }
        };
        let mut channel = Channel::new(kind, name);
        let mut previous: Option<String> = None;
        let mut beats = Vec::new();
        for &(entry, start, end) in &group {
            if entry.response.status == 200
                && entry.response.content.text.as_deref().is_some_and(|body| {
                    signature(body, Dialect::of(path_and_query(&entry.request.url))).is_some()
                })
            {
                beats.push(end);
            }
            let body = entry.response.content.text.as_deref().map(str::trim);
            let empty = empty_rule(entry, previous.as_deref());
            previous = body.map(str::to_owned);
            let (up, down) = (bytes_up(entry), bytes_down(entry));
            channel.requests += 1;
            channel.bytes_up += up;
            channel.bytes_down += down;
            match empty {
                Some(rule) => {
                    channel.empty += 1;
                    *channel.empty_by.entry(rule).or_default() += 1;
                }
                // A letter that failed (an error status) or was never answered (status 0: still out,
                // or withdrawn when its lane stopped) brought no news, nor an empty answer.
                None if entry.response.status == 0 || entry.response.status >= 400 => {}
                None => {
                    channel.news_answers += 1;
                    channel.news_bytes += non_negative(entry.response.content.size);
                }
            }
            channel.span(start, end);
            channel.items.push(Item::Letter {
                start_ms: start,
                end_ms: end,
                wait_ms: entry.timings.wait.max(0.0),
                status: entry.response.status,
                empty,
                bytes: up + down,
            });
        }
        match kind {
            ChannelKind::Held => {
                channel.held_ms = Some(held);
                // The most held at once are its clients, as the live figures count them.
                channel.clients =
                    tally::most_at_once(channel.items.iter().filter_map(|item| match item {
                        Item::Letter {
                            start_ms, end_ms, ..
                        } => Some((*start_ms, *end_ms)),
                        _ => None,
                    }))
                    .max(1);
                channel.heartbeats = beats.len() as u64;
                channel.heartbeat_ms = tally::letters_heartbeat(&beats);
            }
            _ => channel.interval_ms = median(&mut intervals.clone()),
        }
        channels.insert((kind, channel.name.clone()), channel);
    }

    for channel in channels.values_mut() {
        if matches!(channel.kind, ChannelKind::Radio | ChannelKind::Phone) {
            channel.count_clients();
        }
    }
    Imported {
        channels: channels.into_values().collect(),
        other_requests,
        creator: format!("{} {}", har.log.creator.name, har.log.creator.version)
            .trim()
            .to_owned(),
        comment: har
            .log
            .comment
            .clone()
            .filter(|comment| !comment.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HARs in the shapes Chrome and Firefox export (see `tests/fixtures/README.md`).
    const CHROME: &str = include_str!("../../../tests/fixtures/chrome-app.har");
    const FIREFOX: &str = include_str!("../../../tests/fixtures/firefox-app.har");

    #[test]
    fn a_chrome_har_sorts_into_letters_held_letters_a_radio_and_a_phone_call() {
        let har = Har::parse(CHROME).unwrap();
        let imported = classify(&har);
        let kinds: Vec<(ChannelKind, &str)> = imported
            .channels
            .iter()
            .map(|channel| (channel.kind, channel.name.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (ChannelKind::Letters, "GET /api/poll"),
                (ChannelKind::Held, "GET /api/longpoll"),
                (ChannelKind::Radio, "GET /events"),
                (ChannelKind::Phone, "wss://app.test/socket"),
            ]
        );
        assert_eq!(imported.other_requests, 2);
        assert_eq!(imported.creator, "WebInspector 537.36");

        let letters = &imported.channels[0];
        assert_eq!((letters.requests, letters.empty), (10, 6));
        assert_eq!(letters.empty_by.get(&EmptyRule::EmptyLists), Some(&6));
        assert_eq!(letters.interval_ms, Some(1000.0));
        assert_eq!(letters.bytes_up, 3000);
        assert_eq!(letters.bytes_down, 4 * 240 + 6 * 175);
        assert_eq!(
            letters.verdict(),
            "This polling loop (GET /api/poll, every 1.0 s) sent 10 requests, 60 % empty, 5.0 kB: one stream would have carried the same news in ≈ 857 B."
        );

        let held = &imported.channels[1];
        assert_eq!((held.requests, held.empty), (4, 3));
        assert_eq!(held.empty_by.get(&EmptyRule::NoContent), Some(&3));
        assert_eq!(held.held_ms, Some(25_000.0));
        assert_eq!(held.clients, 1, "one tab's polls, one after the other");

        let radio = &imported.channels[2];
        assert_eq!(
            (radio.frames, radio.heartbeats, radio.reconnects),
            (3, 1, 0)
        );

        let phone = &imported.channels[3];
        assert_eq!((phone.frames, phone.frames_up), (10, 2));
        assert_eq!(phone.heartbeat_ms, Some(5_000.0));
        assert_eq!(phone.heartbeats, 7);
        assert_eq!(phone.silences, 1, "the 20 s silence, not the 10 s one");
        assert!(
            phone
                .verdict()
                .contains("heartbeats every 5.0 s, 1 silence longer than 2.5 of them"),
            "{}",
            phone.verdict()
        );
    }

    /// Recorded by the e2e test from Chromium's DevTools Network events while the dashboard ran on quiet
    /// traffic (see `tests/fixtures/README.md`).
    const RECORDED: &str = include_str!("../../../tests/fixtures/chromium-recorded.har");

    #[test]
    fn a_recording_of_chromium_sorts_into_the_lanes_it_recorded() {
        let imported = classify(&Har::parse(RECORDED).unwrap());
        let found: Vec<(ChannelKind, &str, u64, u64, u64)> = imported
            .channels
            .iter()
            .map(|c| (c.kind, c.name.as_str(), c.requests, c.empty, c.frames))
            .collect();
        assert_eq!(
            found,
            vec![
                (ChannelKind::Letters, "GET /api/poll", 7, 5, 0),
                (ChannelKind::Held, "GET /api/longpoll", 4, 0, 0),
                (ChannelKind::Radio, "GET /api/sse", 1, 0, 10),
                // The endless letter was still open: the recording has no body for it.
                (ChannelKind::Radio, "GET /api/stream", 1, 0, 0),
                (ChannelKind::Phone, "ws://127.0.0.1:38139/ws", 1, 0, 14),
            ]
        );
        assert_eq!(
            imported.other_requests, 9,
            "the page, its files and one-off API calls"
        );
        let held = &imported.channels[1];
        assert!(
            held.held_ms.is_some_and(|ms| ms > 2_000.0),
            "{:?}",
            held.held_ms
        );
        assert_eq!(
            imported.channels[4].heartbeat_ms.map(f64::round),
            Some(1_000.0)
        );
    }

    /// Recorded by the proxy in front of a real Socket.IO app (see `tests/fixtures/README.md`).
    const SOCKET_IO: &str = include_str!("../../../tests/fixtures/socketio-proxied.har");

    #[test]
    fn a_socket_io_app_reads_as_held_letters_then_a_phone_call_with_its_pings() {
        let imported = classify(&Har::parse(SOCKET_IO).unwrap());
        let found: Vec<(ChannelKind, &str)> = imported
            .channels
            .iter()
            .map(|c| (c.kind, c.name.as_str()))
            .collect();
        assert_eq!(
            found,
            vec![
                (ChannelKind::Held, "GET /socket.io/"),
                (ChannelKind::Phone, "ws://127.0.0.1:14000/socket.io/"),
            ]
        );
        let held = &imported.channels[0];
        assert!(
            held.held_ms.is_some_and(|ms| ms > 900.0),
            "the held ones' median: {:?}",
            held.held_ms
        );
        // The pings that answered its held polls are its heartbeat, as on the phone call after.
        assert_eq!(held.heartbeat_ms.map(|ms| (ms / 100.0).round()), Some(20.0));
        // Its posts (pongs, chat) leave at no steady pace: other traffic.
        let phone = &imported.channels[1];
        assert_eq!(
            phone.heartbeat_ms.map(|ms| (ms / 100.0).round()),
            Some(20.0)
        );
    }

    #[test]
    fn a_polling_loop_with_a_pause_and_a_slow_stretch_is_still_letters() {
        // Every second, then a 20 s pause (a fault's back-off), then on 3g every 1.3 s.
        let mut at = 1.8e12;
        let mut starts = Vec::new();
        for n in 0..30 {
            starts.push(at);
            at += match n {
                9 => 20_000.0,
                n if n > 19 => 1_300.0,
                _ => 1_000.0,
            };
        }
        let entries: Vec<serde_json::Value> = starts
            .iter()
            .enumerate()
            .map(|(n, &start)| {
                serde_json::json!({
                    "startedDateTime": crate::time::format_date_time(start),
                    "time": 8.0,
                    "timings": {"wait": 7.0, "receive": 1.0},
                    "request": {"method": "GET", "url": format!("http://x/api/poll?after={n}")},
                    "response": {"status": 200, "content": {"size": 12, "mimeType": "application/json", "text": "{\"events\":[]}"}},
                })
            })
            .collect();
        let har =
            Har::parse(&serde_json::json!({"log": {"entries": entries}}).to_string()).unwrap();
        let imported = classify(&har);
        assert_eq!(imported.other_requests, 0);
        assert_eq!(imported.channels[0].kind, ChannelKind::Letters);
        // A few calls at no pace at all stay "other".
        let entries: Vec<serde_json::Value> = [0.0, 150.0, 9_000.0, 9_400.0, 30_000.0]
            .iter()
            .map(|offset| {
                serde_json::json!({
                    "startedDateTime": crate::time::format_date_time(1.8e12 + offset),
                    "time": 8.0,
                    "timings": {"wait": 7.0, "receive": 1.0},
                    "request": {"method": "GET", "url": "http://x/api/stats"},
                    "response": {"status": 200, "content": {"size": 2, "mimeType": "application/json", "text": "{}"}},
                })
            })
            .collect();
        let har =
            Har::parse(&serde_json::json!({"log": {"entries": entries}}).to_string()).unwrap();
        assert_eq!(classify(&har).other_requests, 5);
    }

    #[test]
    fn a_loop_that_asks_again_at_once_is_held_letters_even_when_nothing_is_held() {
        // Under a firehose a long poll is answered at once, and asked again at once; the first was
        // held (the stream was quiet when it left).
        let entries: Vec<serde_json::Value> = (0..20)
            .map(|n| {
                let wait = if n == 0 { 4_000.0 } else { 9.0 };
                let start = 1.8e12 + f64::from(n) * 12.0 + if n == 0 { 0.0 } else { 4_000.0 };
                serde_json::json!({
                    "startedDateTime": crate::time::format_date_time(start),
                    "time": wait + 1.0,
                    "timings": {"wait": wait, "receive": 1.0},
                    "request": {"method": "GET", "url": format!("http://x/api/longpoll?after={n}")},
                    "response": {"status": 200, "content": {"size": 20, "mimeType": "application/json", "text": "{\"events\":[1]}"}},
                })
            })
            .collect();
        let har =
            Har::parse(&serde_json::json!({"log": {"entries": entries}}).to_string()).unwrap();
        let imported = classify(&har);
        assert_eq!(imported.channels[0].kind, ChannelKind::Held);
        // Held for as long as most were: the one held by chance says nothing of the rest.
        assert_eq!(imported.channels[0].held_ms, Some(9.0));
        let counts = |imported: &Imported| {
            let channel = &imported.channels[0];
            (channel.requests, channel.news_answers, channel.empty)
        };
        // The same body each time: the first is news, the rest repeat it.
        assert_eq!(counts(&imported), (20, 1, 19));
        // One more, never answered (its lane was stopped): a request, and no news.
        let mut entries = har.log.entries.clone();
        let mut withdrawn = entries[19].clone();
        withdrawn.started_date_time = crate::time::format_date_time(1.8e12 + 4_000.0 + 20.0 * 12.0);
        withdrawn.response.status = 0;
        withdrawn.response.content.text = None;
        entries.push(withdrawn);
        let mut har = har;
        har.log.entries = entries;
        let imported = classify(&har);
        assert_eq!(counts(&imported), (21, 1, 19));
    }

    #[test]
    fn a_firefox_har_reads_the_same_without_chromes_private_fields() {
        let imported = classify(&Har::parse(FIREFOX).unwrap());
        let chrome = classify(&Har::parse(CHROME).unwrap());
        assert_eq!(imported.creator, "Firefox 133.0");
        assert_eq!(imported.channels.len(), 4);
        for (firefox, chrome) in imported.channels.iter().zip(&chrome.channels) {
            assert_eq!((firefox.kind, &firefox.name), (chrome.kind, &chrome.name));
            assert_eq!(
                firefox.start_ms, chrome.start_ms,
                "the +01:00 times are the same instants"
            );
            if firefox.kind != ChannelKind::Phone {
                assert_eq!(
                    (
                        firefox.requests,
                        firefox.empty,
                        firefox.frames,
                        firefox.bytes_down
                    ),
                    (
                        chrome.requests,
                        chrome.empty,
                        chrome.frames,
                        chrome.bytes_down
                    ),
                    "{}",
                    firefox.name
                );
            }
        }
        // Firefox writes no WebSocket frames: the call is there, its frames are not.
        let phone = &imported.channels[3];
        assert_eq!(
            (phone.kind, phone.requests, phone.frames),
            (ChannelKind::Phone, 1, 0)
        );
    }

    #[test]
    fn a_proxy_files_kinds_are_followed_and_what_it_put_in_no_channel_is_other_traffic() {
        let entry = |at: &str, url: &str, kind: Option<&str>| -> Entry {
            let mut entry: Entry = serde_json::from_value(serde_json::json!({
                "startedDateTime": at,
                "time": 5.0,
                "request": {"method": "GET", "url": url},
                "response": {"status": 200, "content": {"size": 2, "mimeType": "application/json", "text": "{}"}},
            }))
            .unwrap();
            entry.channel = Some("c".into());
            entry.kind = kind.map(str::to_owned);
            entry
        };
        let har = Har {
            log: crate::har::model::Log {
                version: "1.2".into(),
                creator: Default::default(),
                pages: Vec::new(),
                // Two letters of a loop the proxy knows from the whole session (too few, and too
                // irregular, for the file alone to call it one), and three requests it called none.
                entries: vec![
                    entry(
                        "2026-11-28T16:04:05.000Z",
                        "http://x/state",
                        Some("letters"),
                    ),
                    entry(
                        "2026-11-28T16:04:09.300Z",
                        "http://x/state",
                        Some("letters"),
                    ),
                    entry("2026-11-28T16:04:05.000Z", "http://x/app.js", None),
                    entry("2026-11-28T16:04:06.000Z", "http://x/app.js", None),
                    entry("2026-11-28T16:04:07.000Z", "http://x/app.js", None),
                ],
                comment: None,
            },
        };
        let imported = classify(&har);
        let kinds: Vec<(ChannelKind, &str)> = imported
            .channels
            .iter()
            .map(|channel| (channel.kind, channel.name.as_str()))
            .collect();
        assert_eq!(kinds, vec![(ChannelKind::Letters, "GET /state")]);
        assert_eq!(imported.other_requests, 3);
    }

    #[test]
    fn empty_answers_say_which_rule_called_them_empty() {
        let entry = |status: u16, text: &str| -> Entry {
            serde_json::from_value(serde_json::json!({
                "startedDateTime": "2026-11-28T16:04:05.000Z",
                "request": {"method": "GET", "url": "http://x/"},
                "response": {"status": status, "content": {"size": text.len(), "mimeType": "application/json", "text": text}},
            }))
            .unwrap()
        };
        assert_eq!(
            empty_rule(&entry(304, "x"), None),
            Some(EmptyRule::NoContent)
        );
        assert_eq!(
            empty_rule(&entry(200, " [] "), None),
            Some(EmptyRule::EmptyBody)
        );
        assert_eq!(
            empty_rule(&entry(200, r#"{"items": [], "cursor": 5}"#), None),
            Some(EmptyRule::EmptyLists)
        );
        assert_eq!(
            empty_rule(&entry(200, r#"{"price": 5}"#), Some(r#"{"price": 5}"#)),
            Some(EmptyRule::Repeated)
        );
        assert_eq!(
            empty_rule(&entry(200, r#"{"price": 6}"#), Some(r#"{"price": 5}"#)),
            None
        );
        assert_eq!(
            empty_rule(&entry(503, "[]"), None),
            None,
            "a failure is not an empty answer"
        );
    }
}
