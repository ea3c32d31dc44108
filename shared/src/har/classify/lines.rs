//! A line's channel from its HAR entry: a WebSocket's frames or an event stream's events, which of
//! them are heartbeats (by their shape, or by their pace), and the silences between them.

use super::super::model::Entry;
use super::{Channel, Item, bytes_down, bytes_up};
use crate::app::heartbeat::{Dialect, PAIR_MS, payload_hash, signature};
use crate::stats::median;

/// A WebSocket frame's bytes on the wire: its payload and header (and the mask a browser adds).
pub(super) fn frame_bytes(len: usize, up: bool) -> u64 {
    let header = match len {
        0..=125 => 2,
        126..=65_535 => 4,
        _ => 10,
    };
    (len + header + if up { 4 } else { 0 }) as u64
}

/// The heartbeat's period, if messages at `times` (small ones, in time order) come at a steady pace:
/// three or more, with most gaps within a quarter of the median gap. A silence (a missed beat, a dead
/// line) is one long gap and must not hide the rhythm around it. Used for imported sockets and for a
/// watched endpoint alike.
pub fn heartbeat_period(times: &[f64]) -> Option<f64> {
    let mut gaps: Vec<f64> = times.windows(2).map(|pair| pair[1] - pair[0]).collect();
    let period = median(&mut gaps)?;
    let on_beat = gaps
        .iter()
        .filter(|&&gap| (gap - period).abs() <= period * 0.25)
        .count();
    (times.len() >= 3 && period > 0.0 && on_beat * 10 >= gaps.len() * 6).then_some(period)
}

/// One frame or event of a line, as the heartbeat rule sees it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Beat {
    pub at_ms: f64,
    pub len: usize,
    pub up: bool,
    /// A heartbeat by its signature ([`signature`], or a ping or pong frame).
    pub shaped: bool,
    /// Its payload's [`payload_hash`] (`0` when too large to be a heartbeat).
    pub payload: u64,
    pub heartbeat: bool,
    /// The lab kept it from the browser (a recording's `_swallowed`).
    pub swallowed: bool,
    /// The connection it came on, where several of a channel's interleave (the live figures'); a
    /// heartbeat's pace is each connection's own.
    pub line: u64,
}

/// How many small messages the pace of an unknown protocol's beat is learned from.
const LEARN_FROM: usize = 512;

/// The small payload repeated at a steady pace, one way, among messages known by no signature: an
/// unknown protocol's heartbeat (the direction, `true` up, and the payload's hash). The payload
/// repeated most wins; data whose payloads change never repeats.
pub(super) fn learned_beat(frames: &[Beat]) -> Option<(bool, u64)> {
    // Grouped by looking (no map, no sort: the page's WebAssembly pays for each kind it holds); the
    // first small messages are enough to hear a rhythm.
    let small: Vec<&Beat> = frames
        .iter()
        .filter(|f| !f.shaped && f.payload != 0)
        .take(LEARN_FROM)
        .collect();
    let mut best: Option<((bool, u64), usize)> = None;
    for (at, first) in small.iter().enumerate() {
        let key = (first.up, first.payload);
        if small[..at].iter().any(|f| (f.up, f.payload) == key) {
            continue;
        }
        let times: Vec<f64> = small[at..]
            .iter()
            .filter(|f| (f.up, f.payload) == key)
            .map(|f| f.at_ms)
            .collect();
        let better = best.is_none_or(|(known, n)| (times.len(), !key.0) > (n, !known.0));
        if better && heartbeat_period(&times).is_some() {
            best = Some((key, times.len()));
        }
    }
    best.map(|(key, _)| key)
}

/// Marks the heartbeats of a line, reads their pace and counts the silences longer than 2.5 of them.
/// Messages known by their signature are the heartbeats when there are two or more beats of them;
/// otherwise a small payload repeated at a steady pace is ([`learned_beat`]). An answer in the other
/// direction within [`PAIR_MS`] of a beat (ping → pong) is part of that beat, not one of its own.
pub(super) fn heartbeats(channel: &mut Channel, frames: &mut [Beat]) {
    let paired = |frames: &mut [Beat], is_beat: &dyn Fn(&Beat) -> bool| {
        let mut beats: Vec<f64> = Vec::new();
        let mut last: Option<(f64, bool)> = None;
        for frame in frames.iter_mut().filter(|f| is_beat(f)) {
            frame.heartbeat = true;
            let answers = last.is_some_and(|(at, up)| up != frame.up && frame.at_ms - at < PAIR_MS);
            if answers {
                last = None;
            } else {
                beats.push(frame.at_ms);
                last = Some((frame.at_ms, frame.up));
            }
        }
        beats
    };
    let mut marks: Vec<Beat> = frames.to_vec();
    let shaped_beats = paired(&mut marks, &|f: &Beat| f.shaped);
    let (shaped, beats) = if shaped_beats.len() >= 2 {
        (true, shaped_beats)
    } else if let Some((up, payload)) = learned_beat(frames) {
        marks.copy_from_slice(frames);
        (
            false,
            paired(&mut marks, &|f: &Beat| f.payload == payload && f.up == up),
        )
    } else {
        // Fewer than three by their signature and none by their pace: counted, with no pace.
        channel.heartbeats += shaped_beats.len() as u64;
        frames.copy_from_slice(&marks);
        return;
    };
    // Two beats known by their signature tell their pace; learned ones need three to be a rhythm.
    let period = heartbeat_period(&beats)
        .or_else(|| (shaped && beats.len() == 2).then(|| beats[1] - beats[0]));
    let Some(period) = period else {
        channel.heartbeats += beats.len() as u64;
        frames.copy_from_slice(&marks);
        return;
    };
    frames.copy_from_slice(&marks);
    // Across reconnects, the connection whose beats say the most decides the pace: beats known by
    // their signature over learned ones, then the most beats (a line cut after two pings says little).
    let basis = (shaped, beats.len());
    if channel.heartbeat_basis.is_none_or(|known| basis > known) {
        channel.heartbeat_ms = Some(period);
        channel.heartbeat_basis = Some(basis);
    }
    channel.heartbeats += beats.len() as u64;
    let down: Vec<f64> = frames.iter().filter(|f| !f.up).map(|f| f.at_ms).collect();
    channel.silences += down
        .windows(2)
        .filter(|pair| pair[1] - pair[0] > 2.5 * period)
        .count() as u64;
}

/// A WebSocket entry: one connection and its frames.
pub(super) fn socket(channel: &mut Channel, entry: &Entry, start: f64, end: f64) {
    channel.requests += 1;
    channel.bytes_up += bytes_up(entry);
    channel.bytes_down += bytes_down(entry);
    let dialect = Dialect::of(&entry.request.url);
    let messages = entry.web_socket_messages.as_deref().unwrap_or_default();
    let mut frames: Vec<Beat> = messages
        .iter()
        .map(|message| Beat {
            at_ms: message.time * 1000.0,
            len: message.len(),
            up: message.kind == "send",
            shaped: matches!(message.opcode, 9 | 10)
                || (message.opcode == 1 && signature(&message.data, dialect).is_some()),
            payload: payload_hash(&message.data, message.len()),
            heartbeat: false,
            swallowed: message.swallowed,
            line: 0,
        })
        .collect();
    frames.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    heartbeats(channel, &mut frames);
    let last_frame = frames.last().map_or(end, |frame| frame.at_ms.max(end));
    channel.span(start, last_frame);
    channel.items.push(Item::Line {
        start_ms: start,
        end_ms: last_frame,
    });
    for frame in &frames {
        let bytes = frame_bytes(frame.len, frame.up);
        if frame.up {
            channel.bytes_up += bytes;
            channel.frames_up += 1;
        } else {
            channel.bytes_down += bytes;
        }
        channel.frames += 1;
        channel.items.push(Item::Frame {
            at_ms: frame.at_ms,
            up: frame.up,
            heartbeat: frame.heartbeat,
            swallowed: frame.swallowed,
            bytes,
        });
    }
    let seconds = (channel.end_ms - channel.start_ms) / 1000.0;
    channel.frames_per_second = (seconds > 0.0).then(|| channel.frames as f64 / seconds);
}

/// An event-stream entry: one connection and the events in its body, when the HAR kept it.
pub(super) fn stream(channel: &mut Channel, entry: &Entry, start: f64, end: f64) {
    let dialect = Dialect::of(&entry.request.url);
    channel.requests += 1;
    channel.bytes_up += bytes_up(entry);
    channel.bytes_down += bytes_down(entry);
    channel.span(start, end);
    channel.items.push(Item::Line {
        start_ms: start,
        end_ms: end,
    });
    // Events with their arrival times (the proxy's recording keeps them): drawn one by one, and the
    // heartbeat's pace known.
    if let Some(events) = entry.event_source_messages.as_deref() {
        let mut frames: Vec<Beat> = events
            .iter()
            .map(|event| Beat {
                at_ms: event.time * 1000.0,
                len: event.len(),
                up: false,
                shaped: signature(&event.data, dialect).is_some(),
                payload: payload_hash(&event.data, event.len()),
                heartbeat: false,
                swallowed: event.swallowed,
                line: 0,
            })
            .collect();
        frames.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
        heartbeats(channel, &mut frames);
        for frame in &frames {
            channel.frames += 1;
            let end = frame.at_ms.max(channel.end_ms);
            channel.span(frame.at_ms, end);
            channel.items.push(Item::Frame {
                at_ms: frame.at_ms,
                up: false,
                heartbeat: frame.heartbeat,
                swallowed: frame.swallowed,
                bytes: frame.len as u64,
            });
        }
        return;
    }
    let body = entry.response.content.text.as_deref().unwrap_or_default();
    // Server-Sent Events are separated by a blank line, NDJSON events by a newline. An event of only
    // comments (`: ping`) or named like a heartbeat is a heartbeat. The HAR has no time for each, so
    // they are counted, not drawn one by one.
    let separator = if entry
        .response
        .content
        .mime_type
        .starts_with("text/event-stream")
    {
        "\n\n"
    } else {
        "\n"
    };
    for block in body
        .split(separator)
        .filter(|block| !block.trim().is_empty())
    {
        channel.frames += 1;
        if signature(block, dialect).is_some() {
            channel.heartbeats += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::har::ChannelKind;

    fn beat(at_ms: f64, up: bool, text: &str, dialect: Dialect) -> Beat {
        Beat {
            at_ms,
            len: text.len(),
            up,
            shaped: signature(text, dialect).is_some(),
            payload: payload_hash(text, text.len()),
            heartbeat: false,
            swallowed: false,
            line: 0,
        }
    }

    fn read(frames: &mut [Beat]) -> Channel {
        let mut channel = Channel::new(ChannelKind::Phone, "ws://app/".into());
        heartbeats(&mut channel, frames);
        channel
    }

    const PLAIN: Dialect = Dialect {
        engine_io: false,
        sockjs: false,
    };

    #[test]
    fn a_ping_and_its_pong_are_one_beat_whichever_side_asks() {
        // graphql-ws: the client pings every 4 s, the server's pong comes 4–20 ms later; data every
        // second between them.
        let mut frames = Vec::new();
        for n in 0..8 {
            let at = 4_000.0 * f64::from(n);
            frames.push(beat(at, true, r#"{"type":"ping"}"#, PLAIN));
            frames.push(beat(
                at + 4.0 + f64::from(n * 2),
                false,
                r#"{"type":"pong"}"#,
                PLAIN,
            ));
            for s in 1..4 {
                let data = format!(
                    r#"{{"type":"next","id":"1","payload":{{"tick":{}}}}}"#,
                    n * 4 + s
                );
                frames.push(beat(at + 1_000.0 * f64::from(s), false, &data, PLAIN));
            }
        }
        let channel = read(&mut frames);
        assert_eq!(channel.heartbeat_ms.map(f64::round), Some(4_000.0));
        assert_eq!(channel.heartbeats, 8, "eight beats, not sixteen");
        assert_eq!(
            frames.iter().filter(|f| f.heartbeat).count(),
            16,
            "pings and pongs marked"
        );
    }

    #[test]
    fn data_at_a_steady_pace_is_no_heartbeat() {
        // An event every 5 s whose payload changes: however regular, it is news.
        let mut frames: Vec<Beat> = (0..10)
            .map(|n| {
                beat(
                    5_000.0 * f64::from(n),
                    false,
                    &format!(r#"{{"n":{n}}}"#),
                    PLAIN,
                )
            })
            .collect();
        let channel = read(&mut frames);
        assert_eq!((channel.heartbeat_ms, channel.heartbeats), (None, 0));
        assert!(frames.iter().all(|f| !f.heartbeat));
    }

    #[test]
    fn an_unknown_protocols_beat_is_found_by_its_pace() {
        // A repeated small frame every 3 s nobody has a signature for, data between.
        let mut frames = Vec::new();
        for n in 0..6 {
            let at = 3_000.0 * f64::from(n);
            frames.push(beat(at, false, "\u{2665}", PLAIN));
            frames.push(beat(
                at + 1_200.0,
                false,
                &format!(r#"{{"price":{}}}"#, 100 + n),
                PLAIN,
            ));
        }
        let channel = read(&mut frames);
        assert_eq!(channel.heartbeat_ms, Some(3_000.0));
        assert_eq!(channel.heartbeats, 6);
    }

    #[test]
    fn engine_ios_upgrade_probes_are_no_beat() {
        let eio = Dialect::of("ws://app/socket.io/?EIO=4&transport=websocket&sid=x");
        let mut frames = vec![
            beat(0.0, true, "2probe", eio),
            beat(3.0, false, "3probe", eio),
            beat(5.0, true, "5", eio),
        ];
        for n in 1..=4 {
            let at = 2_000.0 * f64::from(n);
            frames.push(beat(at, false, "2", eio));
            frames.push(beat(at + 2.0, true, "3", eio));
        }
        let channel = read(&mut frames);
        assert_eq!(channel.heartbeat_ms, Some(2_000.0));
        assert_eq!(channel.heartbeats, 4);
        assert!(!frames[0].heartbeat && !frames[1].heartbeat);
    }
}
