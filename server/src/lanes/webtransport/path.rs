//! What travels on a WebTransport session once it is up: the server's frames through the lane's
//! emulated path (on the stream, or as datagrams the path may lose) with the TCP lanes' write
//! deadline, and the browser's talking streams, answered by the phone call's rules.

use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use switchboard_shared::network::{Condition, PathClock};
use switchboard_shared::ws::close_code;
use switchboard_shared::{ChatVia, LaneId};
use tokio::sync::mpsc;
use tokio::time::Instant;
use wtransport::{Connection, RecvStream, SendStream, VarInt};

use super::SEND_TIMEOUT;
use crate::AppState;
use crate::lanes::ws::{Answer, End, MESSAGE_LIMIT, Talk, publish_chat};
use crate::metering::Counters;
use crate::network::shaped::{Dice, instant_of, ms_of};

/// A frame and when the emulated path delivers it (`None`: no condition, at once).
pub(super) type Queued = (Bytes, Option<f64>);

/// A datagram the emulated path lost.
pub(super) struct Lost;

/// The emulated path of one session in one direction: each frame is stamped with the time it comes
/// out when it is written, as a send buffer takes it, so the delay of one does not add to the next.
#[derive(Default)]
pub(super) struct Path {
    stream: PathClock,
    datagrams: PathClock,
    dice: Dice,
    /// Browser to server (the talking stream), at `up_kbps`; otherwise at `down_kbps`.
    up: bool,
}

impl Path {
    pub(super) fn up() -> Path {
        Path {
            up: true,
            ..Path::default()
        }
    }

    fn kbps(&self, condition: &Condition) -> u32 {
        if self.up {
            condition.up_kbps
        } else {
            condition.down_kbps
        }
    }

    /// When a stream frame of `len` bytes comes out. A lost stream packet is sent again: the clock
    /// counts the retransmission's delay, and what follows on the stream waits for it.
    pub(super) fn stream(&mut self, state: &AppState, len: usize) -> Option<f64> {
        let condition = state.network.condition(LaneId::WebTransport)?;
        let (jitter, loss) = (self.dice.unit(), self.dice.unit());
        let now = ms_of(Instant::now());
        let kbps = self.kbps(&condition);
        Some(
            self.stream
                .send(now, len, &condition, kbps, jitter, loss)
                .out_ms,
        )
    }

    /// When a datagram of `len` bytes comes out, or that the path loses it (a loss holds nothing back).
    pub(super) fn datagram(&mut self, state: &AppState, len: usize) -> Result<Option<f64>, Lost> {
        let Some(condition) = state.network.condition(LaneId::WebTransport) else {
            return Ok(None);
        };
        let (jitter, loss) = (self.dice.unit(), self.dice.unit());
        let now = ms_of(Instant::now());
        let kbps = self.kbps(&condition);
        let delivery = self
            .datagrams
            .send_datagram(now, len, &condition, kbps, jitter, loss);
        if delivery.lost {
            return Err(Lost);
        }
        Ok(Some(delivery.out_ms))
    }
}

/// Writes what the session queues on its stream, each frame when it is due.
pub(super) async fn write_stream(
    mut queue: mpsc::Receiver<Queued>,
    mut send: SendStream,
    counters: Arc<Counters>,
    deadline: Duration,
) {
    while let Some((frame, due)) = queue.recv().await {
        if let Some(due) = due {
            tokio::time::sleep_until(instant_of(due)).await;
        }
        // The TCP lanes' deadline (--send-timeout-ms): one rule for a reader that takes nothing.
        let written = match tokio::time::timeout(deadline, send.write_all(&frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => {
                // Counted as the TCP lanes count theirs: a reader cut for not reading.
                counters.slow_readers_cut.fetch_add(1, Relaxed);
                Err(format!("the browser took nothing for {deadline:?}"))
            }
        };
        if let Err(err) = written {
            tracing::debug!("a WebTransport session's stream write failed: {err}");
            return;
        }
    }
}

/// Sends each queued event as a datagram when it is due.
pub(super) async fn write_datagrams(mut queue: mpsc::Receiver<Queued>, connection: Connection) {
    while let Some((frame, due)) = queue.recv().await {
        if let Some(due) = due {
            tokio::time::sleep_until(instant_of(due)).await;
        }
        if let Err(err) = connection.send_datagram(frame) {
            tracing::debug!("a WebTransport session's datagram failed: {err}");
            return;
        }
    }
}

/// One bidirectional stream the browser opened to talk: JSON lines of [`switchboard_shared::BrowserMessage`]
/// (chat and pings), each answered with one line on the same stream — the phone call's rules (size,
/// validation, rate, too many refusals hang the session up).
pub(super) async fn talk(
    state: AppState,
    connection: Connection,
    counters: Arc<Counters>,
    refusals: crate::lanes::ws::Refusals,
    (mut send, mut recv): (SendStream, RecvStream),
) {
    let mut talk = Talk::sharing(
        refusals,
        counters.clone(),
        Some(connection.remote_address().ip()),
        ChatVia::WebTransport,
    );
    let mut path = Path::up();
    let mut pending: Vec<u8> = Vec::new();
    let mut buffer = vec![0u8; 4 * 1024];
    loop {
        let read = match recv.read(&mut buffer).await {
            Ok(Some(read)) => read,
            Ok(None) | Err(_) => return,
        };
        pending.extend_from_slice(&buffer[..read]);
        if let Some(due) = path.stream(&state, read) {
            tokio::time::sleep_until(instant_of(due)).await;
        }
        while let Some(end) = pending.iter().position(|&byte| byte == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            counters.frames_in.fetch_add(1, Relaxed);
            let text = String::from_utf8_lossy(&line[..end]);
            let reply = match talk.answer_text(&text, &state, None) {
                Answer::Nothing => continue,
                Answer::Reply(reply) => reply,
                Answer::Publish(message) => publish_chat(&state, message).await,
                Answer::End(End::HangUp(code, reason)) => {
                    connection.close(VarInt::from_u32(u32::from(code)), reason.as_bytes());
                    return;
                }
                Answer::End(End::PeerGone) => return,
            };
            let mut line = reply.as_str().as_bytes().to_vec();
            line.push(b'\n');
            if tokio::time::timeout(SEND_TIMEOUT, send.write_all(&line))
                .await
                .map_or(true, |written| written.is_err())
            {
                return;
            }
        }
        if pending.len() > MESSAGE_LIMIT {
            let reply = talk.refuse_oversized(pending.len());
            pending.clear();
            if let Answer::End(_) = reply {
                connection.close(
                    VarInt::from_u32(u32::from(close_code::POLICY)),
                    b"too many refused messages",
                );
                return;
            }
            if let Answer::Reply(reply) = reply {
                let mut line = reply.as_str().as_bytes().to_vec();
                line.push(b'\n');
                // A client that grants no credit for the refusal must not hold this task for ever.
                if tokio::time::timeout(SEND_TIMEOUT, send.write_all(&line))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}
