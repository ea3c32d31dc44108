//! An endless-letter client: one HTTP response read line by line.

use switchboard_client::StreamClient;
use switchboard_shared::LaneId;

use super::{Client, read_line, take_message};
use crate::ClientRecord;

pub async fn run(client: Client) -> ClientRecord {
    let mut record = ClientRecord::default();
    record.requests += 1;
    let url = format!("{}{}", client.base, LaneId::HttpStream.path());
    let Ok(letter) = StreamClient::open(&client.http, &url).await else {
        record.error(&client.live);
        return record;
    };
    client.connected();
    let lines = futures_util::stream::unfold(letter, |mut letter| async move {
        letter.next_line().await.map(|line| (line, letter))
    });
    read_line(&client, &mut record, lines, |record, live, line| {
        record.bytes += line.len() as u64 + 1;
        take_message(record, live, &line);
    })
    .await;
    record
}
