//! Per-lane accounting, bytes on the wire included.
//!
//! Counting bytes from parsed requests would miss what the user actually pays for: request and response
//! heads, chunked framing, WebSocket frame headers, close frames. So every accepted TCP connection is
//! wrapped in a stream ([`crate::listener`]) that counts the bytes really read and written into its
//! [`ConnMeter`], and each request tells the meter which lane it belongs to:
//!
//! - bytes *written* go to the lane of the request being answered;
//! - bytes *read* wait until the request they belong to is identified (its head must be read before its
//!   path is known), then go to that request's lane; after a WebSocket upgrade, every frame read goes to
//!   the WebSocket lane.
//!
//! A browser does not pipeline HTTP/1.1 requests, so one connection serves one request at a time and this
//! attribution is exact.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use switchboard_shared::{ConnectionCounts, LaneCounters, LaneId, PerLane};

/// Counters of one lane (or of the "other" requests), updated lock-free from any task.
#[derive(Debug, Default)]
pub struct Counters {
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    pub requests: AtomicU64,
    pub empty_replies: AtomicU64,
    pub messages: AtomicU64,
    pub frames_in: AtomicU64,
    pub errors: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub slow_readers_cut: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> LaneCounters {
        LaneCounters {
            connections_open: self.connections_open.load(Relaxed),
            connections_total: self.connections_total.load(Relaxed),
            requests: self.requests.load(Relaxed),
            empty_replies: self.empty_replies.load(Relaxed),
            messages: self.messages.load(Relaxed),
            frames_in: self.frames_in.load(Relaxed),
            errors: self.errors.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            slow_readers_cut: self.slow_readers_cut.load(Relaxed),
        }
    }

    /// Counts a stream or held request as open until the guard is dropped.
    pub fn open(self: &Arc<Self>) -> OpenGuard {
        self.connections_open.fetch_add(1, Relaxed);
        self.connections_total.fetch_add(1, Relaxed);
        OpenGuard(self.clone())
    }
}

/// Keeps `connections_open` counted while alive.
#[derive(Debug)]
pub struct OpenGuard(Arc<Counters>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Relaxed);
    }
}

/// One open connection counted in [`Meters::tcp_open`] (see [`Meters::hold_file`]).
#[derive(Debug)]
pub struct FileHold(Arc<Meters>);

impl Drop for FileHold {
    fn drop(&mut self) {
        self.0.tcp_open.fetch_sub(1, Relaxed);
    }
}

/// The counters of every lane, plus those of requests that belong to no lane.
#[derive(Debug, Default)]
pub struct Meters {
    lanes: PerLane<Arc<Counters>>,
    other: Arc<Counters>,
    /// TCP connections open now (every accepted one, whatever it serves).
    tcp_open: AtomicU64,
    pub cuts: Cuts,
}

/// Connections closed or refused to protect the others, per reason (slow readers are counted on their
/// lane's [`Counters`]).
#[derive(Debug, Default)]
pub struct Cuts {
    pub head_timeout: AtomicU64,
    pub idle_timeout: AtomicU64,
    pub head_too_large: AtomicU64,
    pub over_client_limit: AtomicU64,
    pub over_file_limit: AtomicU64,
}

impl Meters {
    /// TCP connections open now.
    pub fn tcp_open(&self) -> u64 {
        self.tcp_open.load(Relaxed)
    }

    /// Counts one more open connection that belongs to no lane (the app proxy's, either side), until
    /// the hold is dropped: the open-file guard sees every socket the process holds.
    pub fn hold_file(self: &Arc<Self>) -> FileHold {
        self.tcp_open.fetch_add(1, Relaxed);
        FileHold(self.clone())
    }

    pub fn connections(&self) -> ConnectionCounts {
        let cuts = &self.cuts;
        ConnectionCounts {
            tcp_open: self.tcp_open(),
            head_timeout: cuts.head_timeout.load(Relaxed),
            idle_timeout: cuts.idle_timeout.load(Relaxed),
            head_too_large: cuts.head_too_large.load(Relaxed),
            over_client_limit: cuts.over_client_limit.load(Relaxed),
            over_file_limit: cuts.over_file_limit.load(Relaxed),
        }
    }

    pub fn lane(&self, lane: LaneId) -> &Arc<Counters> {
        &self.lanes[lane]
    }

    pub fn other(&self) -> &Arc<Counters> {
        &self.other
    }

    fn of(&self, lane: Option<LaneId>) -> &Counters {
        lane.map_or(&self.other, |lane| &self.lanes[lane])
    }
}

/// The lane a request path belongs to (the paths are [`LaneId::path`]'s, which the router serves).
pub fn lane_of_path(path: &str) -> Option<LaneId> {
    LaneId::from_path(path)
}

/// The lane of a request, kept in one atomic word: its place in [`LaneId::ALL`], or one past the end
/// for a request that belongs to no lane.
fn slot_of(lane: Option<LaneId>) -> usize {
    lane.map_or(LaneId::COUNT, LaneId::index)
}

fn lane_in(slot: usize) -> Option<LaneId> {
    LaneId::ALL.get(slot).copied()
}

impl Drop for ConnMeter {
    fn drop(&mut self) {
        self.meters.tcp_open.fetch_sub(1, Relaxed);
    }
}

/// Byte accounting of one TCP connection (counted open from its making to its drop).
#[derive(Debug)]
pub struct ConnMeter {
    meters: Arc<Meters>,
    /// The lane of the request this connection is serving ([`slot_of`]).
    slot: AtomicUsize,
    /// Bytes read that are not yet attributed to a request.
    unattributed_in: AtomicU64,
    /// Requests begun on this connection.
    requests: AtomicU64,
    /// Counts the starts and ends of requests: while it stays the same, no request began or ended (the
    /// listener times a request head by it).
    turns: AtomicU64,
    /// Set when the server cuts the connection (a timeout): it is then reset rather than closed.
    reset: AtomicBool,
}

impl ConnMeter {
    pub(crate) fn new(meters: Arc<Meters>) -> ConnMeter {
        meters.tcp_open.fetch_add(1, Relaxed);
        ConnMeter {
            meters,
            slot: AtomicUsize::new(slot_of(None)),
            unattributed_in: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            turns: AtomicU64::new(0),
            reset: AtomicBool::new(false),
        }
    }

    /// A request for `lane` starts on this connection: the bytes read so far are its head, and their
    /// count is returned with the request's number on the connection (the browser can see neither its
    /// own request headers nor whether it opened a connection, so the server tells it).
    pub fn begin(&self, lane: Option<LaneId>) -> RequestHead {
        let on_connection = self.requests.fetch_add(1, Relaxed) + 1;
        self.turns.fetch_add(1, Relaxed);
        self.slot.store(slot_of(lane), Relaxed);
        RequestHead {
            bytes: self.flush_in(),
            on_connection,
        }
    }

    /// The request's handler is done: a body it read belongs to the request, and what is read next
    /// starts the next request's head.
    pub fn end(&self) {
        self.flush_in();
        self.turns.fetch_add(1, Relaxed);
    }

    /// Changes whenever a request begins or ends.
    pub(crate) fn turn(&self) -> u64 {
        self.turns.load(Relaxed)
    }

    /// Counts this connection as cut for not reading, on the lane it serves.
    pub(crate) fn cut_slow_reader(&self) {
        self.current().slow_readers_cut.fetch_add(1, Relaxed);
        self.reset_on_close();
    }

    /// The connection is being cut on a timeout: close it with a reset, so that what is still queued
    /// for a peer that is not reading is dropped at once instead of lingering (nginx's
    /// `reset_timedout_connection`).
    pub fn reset_on_close(&self) {
        self.reset.store(true, Relaxed);
    }

    pub(crate) fn resets_on_close(&self) -> bool {
        self.reset.load(Relaxed)
    }

    pub(crate) fn cuts(&self) -> &Cuts {
        &self.meters.cuts
    }

    /// The lane of the request this connection serves, if it belongs to one.
    pub fn lane(&self) -> Option<LaneId> {
        lane_in(self.slot.load(Relaxed))
    }

    /// Attributes the bytes read so far to the current request's lane and returns how many there were.
    pub fn flush_in(&self) -> u64 {
        let bytes = self.unattributed_in.swap(0, Relaxed);
        if bytes > 0 {
            self.current().bytes_in.fetch_add(bytes, Relaxed);
        }
        bytes
    }

    fn current(&self) -> &Counters {
        self.meters.of(self.lane())
    }

    pub(crate) fn read(&self, bytes: usize) {
        self.unattributed_in.fetch_add(bytes as u64, Relaxed);
    }

    pub(crate) fn wrote(&self, bytes: usize) {
        self.current().bytes_out.fetch_add(bytes as u64, Relaxed);
    }
}

/// What the server knows of a request before its body: its head's size as read off the wire (request
/// line, headers, blank line) and which request on its connection it is (1: a new connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead {
    pub bytes: u64,
    pub on_connection: u64,
}

/// What every request knows about its connection (installed by [`crate::listener::MeteredListener`]).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    /// Whom the per-client limits count this request against: the peer's address, or behind a trusted
    /// proxy (`--trust-proxy`) the address it forwarded.
    pub client: IpAddr,
    pub meter: Arc<ConnMeter>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wait_for_their_request_and_writes_follow_the_current_one() {
        let meters = Arc::new(Meters::default());
        let meter = ConnMeter::new(meters.clone());
        meter.read(100); // the head of a poll request
        meter.begin(Some(LaneId::Poll));
        meter.wrote(250);
        meter.read(80); // the next request's head, read before its path is known
        meter.begin(None);
        meter.wrote(40);
        let poll = meters.lane(LaneId::Poll).snapshot();
        let other = meters.other().snapshot();
        assert_eq!((poll.bytes_in, poll.bytes_out), (100, 250));
        assert_eq!((other.bytes_in, other.bytes_out), (80, 40));
    }

    #[test]
    fn open_guards_count_while_alive() {
        let meters = Meters::default();
        let guard = meters.lane(LaneId::Sse).open();
        let _second = meters.lane(LaneId::Sse).open();
        drop(guard);
        let sse = meters.lane(LaneId::Sse).snapshot();
        assert_eq!((sse.connections_open, sse.connections_total), (1, 2));
    }

    #[test]
    fn paths_map_to_lanes() {
        assert_eq!(lane_of_path("/api/longpoll"), Some(LaneId::LongPoll));
        assert_eq!(lane_of_path("/ws"), Some(LaneId::Ws));
        assert_eq!(lane_of_path("/api/messages"), None);
    }
}
