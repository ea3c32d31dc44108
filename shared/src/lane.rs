//! The lanes: the ways of receiving the same stream, and each one's facts in one table.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One way of talking to the server. The serialized form (`poll`, `longpoll`, `stream`, `sse`, `ws`,
/// `webtransport`) is
/// the lane id used in URLs, stats, metrics labels and the page's test hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LaneId {
    /// Short polling: a letter every interval, most answers say "nothing new".
    Poll,
    /// Long polling: the server holds the letter until there is news or the wait runs out.
    LongPoll,
    /// HTTP streaming: one `fetch` whose answer keeps coming, a JSON line per event, read with a
    /// `ReadableStream`.
    #[serde(rename = "stream")]
    HttpStream,
    /// Server-Sent Events: a one-way radio over one HTTP response.
    Sse,
    /// WebSocket: one open two-way line.
    Ws,
    /// WebTransport: HTTP/3 over QUIC — a stream (or datagrams) down, a stream up, on UDP.
    #[serde(rename = "webtransport")]
    WebTransport,
}

impl LaneId {
    /// Every lane, in the order the page shows them (letters first, phone call last). Built from
    /// [`LaneId::after`], whose match names every variant, so a new lane cannot be left out.
    pub const ALL: [LaneId; LaneId::COUNT] = {
        let mut all = [LaneId::Poll; LaneId::COUNT];
        let mut next = LaneId::after(None);
        let mut index = 0;
        while let Some(lane) = next {
            // `index()` is the declaration order: the page's order must be the same.
            assert!(
                lane as usize == index,
                "LaneId::after must follow declaration order"
            );
            all[index] = lane;
            index += 1;
            next = LaneId::after(Some(lane));
        }
        all
    };
    /// How many lanes there are.
    pub const COUNT: usize = {
        let mut count = 0;
        let mut next = LaneId::after(None);
        while let Some(lane) = next {
            count += 1;
            next = LaneId::after(Some(lane));
        }
        count
    };

    /// The lane after `lane` in the page's order (the first after `None`; `None` after the last).
    const fn after(lane: Option<LaneId>) -> Option<LaneId> {
        match lane {
            None => Some(LaneId::Poll),
            Some(LaneId::Poll) => Some(LaneId::LongPoll),
            Some(LaneId::LongPoll) => Some(LaneId::HttpStream),
            Some(LaneId::HttpStream) => Some(LaneId::Sse),
            Some(LaneId::Sse) => Some(LaneId::Ws),
            Some(LaneId::Ws) => Some(LaneId::WebTransport),
            Some(LaneId::WebTransport) => None,
        }
    }

    /// The id as it appears on the wire and in test hooks.
    pub const fn as_str(self) -> &'static str {
        match self {
            LaneId::Poll => "poll",
            LaneId::LongPoll => "longpoll",
            LaneId::HttpStream => "stream",
            LaneId::Sse => "sse",
            LaneId::Ws => "ws",
            LaneId::WebTransport => "webtransport",
        }
    }

    /// The lane's name in the letters/phone-call language of the product.
    pub const fn title(self) -> &'static str {
        match self {
            LaneId::Poll => "Letters",
            LaneId::LongPoll => "Held letters",
            LaneId::HttpStream => "Endless letter",
            LaneId::Sse => "Radio",
            LaneId::Ws => "Phone call",
            LaneId::WebTransport => "Video call",
        }
    }

    /// A one-line explanation of what happens on the wire.
    pub const fn explanation(self) -> &'static str {
        match self {
            LaneId::Poll => {
                "HTTP short polling: ask every interval; most answers say \"nothing new\"."
            }
            LaneId::LongPoll => {
                "HTTP long polling: the server holds each request until there is news."
            }
            LaneId::HttpStream => {
                "HTTP streaming: one fetch whose answer never ends, a JSON line per event."
            }
            LaneId::Sse => {
                "Server-Sent Events: one request opens a one-way stream from the server."
            }
            LaneId::Ws => {
                "WebSocket: one upgraded connection; both sides talk whenever they need to."
            }
            LaneId::WebTransport => {
                "WebTransport: HTTP/3 over QUIC on UDP; streams both ways, or datagrams that may be lost."
            }
        }
    }

    /// The path the lane is served on; the router and metering both take it from here.
    pub const fn path(self) -> &'static str {
        match self {
            LaneId::Poll => "/api/poll",
            LaneId::LongPoll => "/api/longpoll",
            LaneId::HttpStream => "/api/stream",
            LaneId::Sse => "/api/sse",
            LaneId::Ws => "/ws",
            LaneId::WebTransport => "/api/webtransport",
        }
    }

    /// How the lane carries the stream: what a request, a connection and an answer are on it.
    pub const fn shape(self) -> Shape {
        match self {
            LaneId::Poll => Shape::Request,
            LaneId::LongPoll => Shape::HeldRequest,
            LaneId::HttpStream => Shape::Stream,
            LaneId::Sse => Shape::Stream,
            LaneId::Ws => Shape::Duplex,
            LaneId::WebTransport => Shape::Duplex,
        }
    }

    /// The lane served on `path`, if any.
    pub fn from_path(path: &str) -> Option<LaneId> {
        LaneId::ALL.into_iter().find(|lane| lane.path() == path)
    }

    /// The lane's place in [`LaneId::ALL`]: its row on the page, its slot in a [`PerLane`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// The four shapes a lane's traffic takes on the wire. Code that must treat lanes differently matches
/// on the shape, so a new lane of a known shape needs no new case, and a new shape makes the compiler
/// point at every place that must decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// A request answered at once with whatever is new (short polling).
    Request,
    /// A request the server holds until there is news or the wait runs out (long polling).
    HeldRequest,
    /// One response that stays open, server to browser only (Server-Sent Events, HTTP streaming).
    Stream,
    /// One connection that stays open, both ways (WebSocket, WebTransport).
    Duplex,
}

impl Shape {
    /// Whether each answer costs a request of its own (rather than riding on a connection that lasts).
    pub const fn is_request(self) -> bool {
        matches!(self, Shape::Request | Shape::HeldRequest)
    }

    /// Whether the browser talks on the connection too.
    pub const fn is_two_way(self) -> bool {
        matches!(self, Shape::Duplex)
    }
}

impl fmt::Display for LaneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One value per lane, indexed by [`LaneId`] rather than by a number, so per-lane state cannot be read
/// with another lane's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PerLane<T>([T; LaneId::COUNT]);

impl<T> PerLane<T> {
    /// Builds each lane's value from the lane.
    pub fn from_fn(mut make: impl FnMut(LaneId) -> T) -> PerLane<T> {
        PerLane(LaneId::ALL.map(&mut make))
    }

    /// Each lane with its value, in [`LaneId::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (LaneId, &T)> {
        LaneId::ALL.into_iter().zip(self.0.iter())
    }

    /// Each lane with its value to change, in [`LaneId::ALL`] order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (LaneId, &mut T)> {
        LaneId::ALL.into_iter().zip(self.0.iter_mut())
    }
}

impl<T> std::ops::Index<LaneId> for PerLane<T> {
    type Output = T;

    fn index(&self, lane: LaneId) -> &T {
        &self.0[lane as usize]
    }
}

impl<T> std::ops::IndexMut<LaneId> for PerLane<T> {
    fn index_mut(&mut self, lane: LaneId) -> &mut T {
        &mut self.0[lane as usize]
    }
}

/// The error for a string that names no lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownLane(pub String);

impl fmt::Display for UnknownLane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown lane {:?}: expected one of {}",
            self.0,
            LaneId::ALL.map(LaneId::as_str).join(", ")
        )
    }
}

impl std::error::Error for UnknownLane {}

impl FromStr for LaneId {
    type Err = UnknownLane;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LaneId::ALL
            .into_iter()
            .find(|lane| lane.as_str() == s)
            .ok_or_else(|| UnknownLane(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_serde_and_from_str() {
        for lane in LaneId::ALL {
            let json = serde_json::to_string(&lane).unwrap();
            assert_eq!(json, format!("\"{}\"", lane.as_str()));
            assert_eq!(serde_json::from_str::<LaneId>(&json).unwrap(), lane);
            assert_eq!(lane.as_str().parse::<LaneId>().unwrap(), lane);
            assert_eq!(LaneId::ALL[lane.index()], lane);
            assert_eq!(LaneId::from_path(lane.path()), Some(lane));
        }
        assert!("carrier-pigeon".parse::<LaneId>().is_err());
        assert_eq!(LaneId::from_path("/api/messages"), None);
    }
}
