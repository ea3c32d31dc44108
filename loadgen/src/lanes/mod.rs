//! One load client per lane, over `switchboard-client`'s transports without its recovery policy (a load
//! client that fails is counted, not redialled); each runs until stopped and returns what it saw.

pub mod longpoll;
pub mod poll;
pub mod sse;
pub mod stream;
pub mod webtransport;
pub mod ws;

use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use switchboard_shared::{Batch, LaneId};
use tokio_util::sync::CancellationToken;

use crate::{ClientRecord, Live, LoadConfig};

/// What every lane client needs.
#[derive(Debug, Clone)]
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
    pub live: Arc<Live>,
    pub stop: CancellationToken,
}

impl Client {
    fn connected(&self) {
        self.live.connected.fetch_add(1, Relaxed);
    }
}

pub async fn run(client: Client, config: LoadConfig) -> ClientRecord {
    match config.lane {
        LaneId::Poll => poll::run(client, config.poll_interval_ms).await,
        LaneId::LongPoll => longpoll::run(client, config.wait_ms).await,
        LaneId::HttpStream => stream::run(client).await,
        LaneId::Sse => sse::run(client).await,
        LaneId::Ws => ws::run(client).await,
        LaneId::WebTransport => webtransport::run(client, config.webtransport_mode).await,
    }
}

/// Reads a line's items until the run stops or the line ends, handing each to `take`; a failed item is
/// an error and ends it. The lanes that keep a line open give their client as a stream of items
/// (`futures_util::stream::unfold` over it), so this loop is written once.
async fn read_line<T, E>(
    client: &Client,
    record: &mut ClientRecord,
    items: impl futures_util::Stream<Item = Result<T, E>>,
    mut take: impl FnMut(&mut ClientRecord, &Live, T),
) {
    use futures_util::StreamExt;
    let mut items = std::pin::pin!(items);
    // Made once: a new `cancelled()` future per item registers with the run's one token (a lock every
    // client shares) and leaves it again, per message.
    let mut stopped = std::pin::pin!(client.stop.cancelled());
    loop {
        let next = tokio::select! {
            () = &mut stopped => break,
            next = items.next() => next,
        };
        match next {
            None => break,
            Some(Err(_)) => {
                record.error(&client.live);
                break;
            }
            Some(Ok(item)) => take(record, &client.live, item),
        }
    }
}

/// The fields of a server message (a phone call's frame, an endless letter's line) the load generator
/// needs; the rest of the JSON is skipped (parsing every message whole would take CPU from the server it
/// measures).
#[derive(Deserialize)]
struct MessageHead {
    #[serde(rename = "type")]
    kind: String,
    seq: Option<u64>,
    ts_ms: Option<u64>,
    first: Option<u64>,
    last: Option<u64>,
}

/// Takes in one server message: an event is counted, a gap notice declares its seqs lost, a garbled
/// message is an error; anything else (hello, heartbeat) only proves the line alive.
fn take_message(record: &mut ClientRecord, live: &Live, text: &str) {
    match serde_json::from_str::<MessageHead>(text) {
        Ok(MessageHead {
            kind,
            seq: Some(seq),
            ts_ms: Some(ts_ms),
            ..
        }) if kind == "event" => record.event(live, seq, ts_ms),
        Ok(MessageHead {
            kind,
            first: Some(first),
            last: Some(last),
            ..
        }) if kind == "gap" => {
            record
                .tracker
                .declare_lost(switchboard_shared::Gap { first, last });
        }
        Ok(_) => {}
        Err(_) => record.error(live),
    }
}

/// Takes in one poll or long-poll batch; returns the seq to ask after next.
fn absorb(record: &mut ClientRecord, live: &Live, batch: &Batch, after: u64) -> u64 {
    if let Some(gap) = batch.gap {
        record.tracker.declare_lost(gap);
    }
    for event in &batch.events {
        record.event(live, event.seq, event.ts_ms);
    }
    batch.next_after(after)
}

/// One letter; `None` (counted as an error) on any failure.
async fn fetch_batch(client: &Client, record: &mut ClientRecord, url: &str) -> Option<Batch> {
    record.requests += 1;
    match switchboard_client::letters::send(&client.http, url, None).await {
        Ok(answer) => {
            record.bytes += answer.body_bytes;
            Some(answer.batch)
        }
        Err(_) => {
            record.error(&client.live);
            None
        }
    }
}
