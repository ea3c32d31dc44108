//! A radio client: one event stream, parsed by a real SSE parser.

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde::Deserialize;
use switchboard_shared::{Gap, sse};

use super::Client;
use crate::ClientRecord;

/// The two fields of an event the load generator needs; the rest of the JSON is skipped.
#[derive(Deserialize)]
struct EventHead {
    seq: u64,
    ts_ms: u64,
}

pub async fn run(client: Client) -> ClientRecord {
    let mut record = ClientRecord::default();
    record.requests += 1;
    let response = match client
        .http
        .get(format!("{}/api/sse", client.base))
        .send()
        .await
    {
        Ok(response) if response.status().is_success() => response,
        _ => {
            record.error(&client.live);
            return record;
        }
    };
    client.connected();
    let mut events = response.bytes_stream().eventsource();
    loop {
        let next = tokio::select! {
            () = client.stop.cancelled() => break,
            next = events.next() => next,
        };
        match next {
            None => break,
            Some(Err(_)) => {
                record.error(&client.live);
                break;
            }
            Some(Ok(event)) => {
                record.bytes += event.data.len() as u64;
                if event.event == "message" {
                    match serde_json::from_str::<EventHead>(&event.data) {
                        Ok(head) => record.event(&client.live, head.seq, head.ts_ms),
                        Err(_) => record.error(&client.live),
                    }
                } else if event.event == sse::GAP
                    && let Ok(gap) = serde_json::from_str::<Gap>(&event.data)
                {
                    record.tracker.declare_lost(gap);
                }
            }
        }
    }
    record
}
