//! A radio client: one event stream, parsed by a real SSE parser.

use serde::Deserialize;
use switchboard_client::SseClient;
use switchboard_shared::{Gap, LaneId, sse};

use super::{Client, read_line};
use crate::ClientRecord;

/// The two fields of an event the load generator needs; the rest of the JSON is skipped (the client's
/// typed messages would parse every event whole, and the load generator's CPU competes with the server).
#[derive(Deserialize)]
struct EventHead {
    seq: u64,
    ts_ms: u64,
}

pub async fn run(client: Client) -> ClientRecord {
    let mut record = ClientRecord::default();
    record.requests += 1;
    let url = format!("{}{}", client.base, LaneId::Sse.path());
    let Ok(events) = SseClient::open(&client.http, &url, None).await else {
        record.error(&client.live);
        return record;
    };
    client.connected();
    let events = futures_util::stream::unfold(events, |mut events| async move {
        events.next().await.map(|event| (event, events))
    });
    read_line(&client, &mut record, events, |record, live, event| {
        record.bytes += event.data.len() as u64;
        if event.event == "message" {
            match serde_json::from_str::<EventHead>(&event.data) {
                Ok(head) => record.event(live, head.seq, head.ts_ms),
                Err(_) => record.error(live),
            }
        } else if event.event == sse::GAP
            && let Ok(gap) = serde_json::from_str::<Gap>(&event.data)
        {
            record.tracker.declare_lost(gap);
        }
    })
    .await;
    record
}
