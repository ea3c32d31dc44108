//! A held-letters client: one request always waiting at the server.

use super::{Client, absorb, fetch_batch};
use crate::ClientRecord;

pub async fn run(client: Client, wait_ms: u64) -> ClientRecord {
    let mut record = ClientRecord::default();
    let mut after: Option<u64> = None;
    let mut first = true;
    loop {
        let url = match after {
            Some(after) => format!(
                "{}/api/longpoll?after={after}&wait_ms={wait_ms}",
                client.base
            ),
            None => format!("{}/api/poll", client.base),
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
