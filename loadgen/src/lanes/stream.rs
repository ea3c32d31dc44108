//! An endless-letter client: one HTTP response read line by line.

use switchboard_client::StreamClient;
use switchboard_shared::LaneId;

use super::{Client, take_message};
use crate::ClientRecord;

pub async fn run(client: Client) -> ClientRecord {
    let mut record = ClientRecord::default();
    record.requests += 1;
    let url = format!("{}{}", client.base, LaneId::HttpStream.path());
    let Ok(mut letter) = StreamClient::open(&client.http, &url).await else {
        record.error(&client.live);
        return record;
    };
    client.connected();
    loop {
        let next = tokio::select! {
            () = client.stop.cancelled() => break,
            next = letter.next_line() => next,
        };
        match next {
            None => break,
            Some(Err(_)) => {
                record.error(&client.live);
                break;
            }
            Some(Ok(line)) => {
                record.bytes += line.len() as u64 + 1;
                take_message(&mut record, &client.live, &line);
            }
        }
    }
    record
}
