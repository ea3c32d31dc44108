//! A letters client: asks every interval.

use std::time::Duration;
use tokio::time::MissedTickBehavior;

use switchboard_client::letters;
use switchboard_shared::LaneId;

use super::{Client, absorb, fetch_batch};
use crate::ClientRecord;

pub async fn run(client: Client, interval_ms: u64) -> ClientRecord {
    let mut record = ClientRecord::default();
    let mut interval = tokio::time::interval(Duration::from_millis(interval_ms.max(1)));
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut after: Option<u64> = None;
    loop {
        tokio::select! {
            () = client.stop.cancelled() => break,
            _ = interval.tick() => {}
        }
        let url = letters::url(&client.base, LaneId::Poll, after, 0);
        let Some(batch) = fetch_batch(&client, &mut record, &url).await else {
            continue;
        };
        match after {
            // The first answer only says where "now" is.
            None => {
                record.tracker = switchboard_shared::SeqTracker::resuming_after(batch.head);
                after = Some(batch.head);
                client.connected();
            }
            Some(previous) => after = Some(absorb(&mut record, &client.live, &batch, previous)),
        }
    }
    record
}
