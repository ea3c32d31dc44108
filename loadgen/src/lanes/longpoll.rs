//! A held-letters client: one request always waiting at the server.

use switchboard_client::letters;
use switchboard_shared::LaneId;

use super::{Client, absorb, fetch_batch};
use crate::ClientRecord;

pub async fn run(client: Client, wait_ms: u64) -> ClientRecord {
    let mut record = ClientRecord::default();
    let mut after: Option<u64> = None;
    let mut first = true;
    loop {
        // The first letter is a plain poll: its answer only says where "now" is.
        let url = match after {
            Some(_) => letters::url(&client.base, LaneId::LongPoll, after, wait_ms),
            None => letters::url(&client.base, LaneId::Poll, None, 0),
        };
        let batch = tokio::select! {
            () = client.stop.cancelled() => break,
            batch = fetch_batch(&client, &mut record, &url) => batch,
        };
        let Some(batch) = batch else {
            // Do not hammer a failing server.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            continue;
        };
        if first {
            first = false;
            client.connected();
        }
        after = Some(match after {
            // The first answer (a plain poll) only says where "now" is.
            None => {
                record.tracker = switchboard_shared::SeqTracker::resuming_after(batch.head);
                batch.head
            }
            Some(previous) => absorb(&mut record, &client.live, &batch, previous),
        });
    }
    record
}
