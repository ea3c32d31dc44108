//! A line's channel from its HAR entry: a WebSocket's frames or an event stream's events, which of
//! them are heartbeats (by their shape, or by their pace), and the silences between them.

use super::super::model::Entry;
use super::{Channel, Item, bytes_down, bytes_up};
use crate::app::is_heartbeat_text;
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
    /// A heartbeat by its shape ([`is_heartbeat_text`], or a ping or pong frame).
    pub shaped: bool,
    pub heartbeat: bool,
}

/// Marks the heartbeats of a line and counts the silences longer than 2.5 of them. Frames shaped like
/// heartbeats (`{"type":"heartbeat"}`, Engine.IO's `2`, a ping) are the heartbeats when there are three
/// or more; otherwise the small, periodic frames from the server are.
pub(super) fn heartbeats(channel: &mut Channel, frames: &mut [Beat]) {
    let shaped = frames.iter().filter(|f| !f.up && f.shaped).count() >= 3;
    let is_beat = |f: &Beat| !f.up && if shaped { f.shaped } else { f.len <= 64 };
    let beats: Vec<f64> = frames
        .iter()
        .filter(|f| is_beat(f))
        .map(|f| f.at_ms)
        .collect();
    if let Some(period) = heartbeat_period(&beats) {
        // Across reconnects, the connection whose beats say the most decides the pace: beats known by
        // their shape over small frames, then the most beats (a line cut after two pings says little).
        let basis = (shaped, beats.len());
        if channel.heartbeat_basis.is_none_or(|known| basis > known) {
            channel.heartbeat_ms = Some(period);
            channel.heartbeat_basis = Some(basis);
        }
        for frame in frames.iter_mut().filter(|f| is_beat(f)) {
            frame.heartbeat = true;
        }
        channel.heartbeats += beats.len() as u64;
        let down: Vec<f64> = frames.iter().filter(|f| !f.up).map(|f| f.at_ms).collect();
        channel.silences += down
            .windows(2)
            .filter(|pair| pair[1] - pair[0] > 2.5 * period)
            .count() as u64;
    } else if shaped {
        channel.heartbeats += beats.len() as u64;
        for frame in frames.iter_mut().filter(|f| is_beat(f)) {
            frame.heartbeat = true;
        }
    }
}

/// A WebSocket entry: one connection and its frames.
pub(super) fn socket(channel: &mut Channel, entry: &Entry, start: f64, end: f64) {
    channel.requests += 1;
    channel.bytes_up += bytes_up(entry);
    channel.bytes_down += bytes_down(entry);
    let messages = entry.web_socket_messages.as_deref().unwrap_or_default();
    let mut frames: Vec<Beat> = messages
        .iter()
        .map(|message| Beat {
            at_ms: message.time * 1000.0,
            len: message.len(),
            up: message.kind == "send",
            shaped: matches!(message.opcode, 9 | 10) || is_heartbeat_text(&message.data),
            heartbeat: false,
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
            bytes,
        });
    }
    let seconds = (channel.end_ms - channel.start_ms) / 1000.0;
    channel.frames_per_second = (seconds > 0.0).then(|| channel.frames as f64 / seconds);
}

/// An event-stream entry: one connection and the events in its body, when the HAR kept it.
pub(super) fn stream(channel: &mut Channel, entry: &Entry, start: f64, end: f64) {
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
                shaped: is_heartbeat_text(&event.data),
                heartbeat: false,
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
        if is_heartbeat_text(block) {
            channel.heartbeats += 1;
        }
    }
}
