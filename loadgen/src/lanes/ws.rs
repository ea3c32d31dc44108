//! A phone-call client: one WebSocket, reading every frame.

use switchboard_client::WsClient;
use switchboard_shared::LaneId;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::{Client, take_message};
use crate::ClientRecord;

pub async fn run(client: Client) -> ClientRecord {
    let mut record = ClientRecord::default();
    record.requests += 1;
    let url = format!(
        "{}{}",
        client.base.replacen("http", "ws", 1),
        LaneId::Ws.path()
    );
    // tungstenite's default read buffer is 128 KiB and is zero-filled as it is read into: with
    // thousands of sockets each getting a 150-byte frame, that memset was half the load generator's CPU,
    // which it then took from the server it measures. The server's frames are small (130-200 bytes; a
    // bigger one takes a few reads); so is this: at 4 KiB the memset was still 3 % of its samples.
    let config = WebSocketConfig::default().read_buffer_size(512);
    let Ok((mut call, _)) = WsClient::dial_with(&url, config).await else {
        record.error(&client.live);
        return record;
    };
    client.connected();
    // Made once, as in `read_line`.
    let mut stopped = std::pin::pin!(client.stop.cancelled());
    loop {
        let next = tokio::select! {
            () = &mut stopped => break,
            next = call.next_frame() => next,
        };
        match next {
            None => break,
            Some(Err(_)) => {
                record.error(&client.live);
                break;
            }
            Some(Ok(Message::Text(text))) => {
                record.bytes += text.len() as u64;
                take_message(&mut record, &client.live, text.as_str());
            }
            // Protocol pings are answered by the library while we read.
            Some(Ok(_)) => {}
        }
    }
    call.close().await;
    record
}
