//! The endless letter: `GET /api/stream`, one response of newline-delimited JSON, each line a
//! [`ServerMessage`] (hello, event, heartbeat, gap).

use bytes::{Buf, BytesMut};
use futures_util::{Stream, StreamExt};
use std::pin::Pin;
use switchboard_shared::ServerMessage;

use crate::ClientError;

type Chunks = Pin<Box<dyn Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Send>>;

/// One open endless letter.
pub struct StreamClient {
    chunks: Chunks,
    /// Bytes received and not yet ended by a newline.
    pending: BytesMut,
}

impl std::fmt::Debug for StreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamClient")
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl StreamClient {
    /// Opens the stream at `url` (`http://host:port/api/stream?after=N`).
    pub async fn open(http: &reqwest::Client, url: &str) -> Result<StreamClient, ClientError> {
        let response = http.get(url).send().await?;
        if !response.status().is_success() {
            return Err(ClientError::refused(response).await);
        }
        Ok(StreamClient::from_response(response))
    }

    /// Reads an answer already received (its status and headers are the caller's to check).
    pub fn from_response(response: reqwest::Response) -> StreamClient {
        StreamClient {
            chunks: Box::pin(response.bytes_stream()),
            pending: BytesMut::new(),
        }
    }

    /// The next line as it came (without its newline); `None` when the stream ended.
    pub async fn next_line(&mut self) -> Option<Result<String, ClientError>> {
        loop {
            if let Some(line) = take_line(&mut self.pending) {
                return Some(line);
            }
            match self.chunks.next().await? {
                Ok(chunk) => self.pending.extend_from_slice(&chunk),
                Err(err) => return Some(Err(err.into())),
            }
        }
    }

    /// The next message; `None` when the stream ended.
    pub async fn next_message(&mut self) -> Option<Result<ServerMessage, ClientError>> {
        let line = match self.next_line().await? {
            Ok(line) => line,
            Err(err) => return Some(Err(err)),
        };
        Some(
            serde_json::from_str(&line)
                .map_err(|err| ClientError::Protocol(format!("{err}: {line}"))),
        )
    }
}

/// The first whole line of `pending` (without its newline), taken out of it; `None` until one has
/// arrived. Shared by the clients that read JSON lines (the endless letter, the video call).
pub(crate) fn take_line(pending: &mut BytesMut) -> Option<Result<String, ClientError>> {
    let end = pending.iter().position(|&byte| byte == b'\n')?;
    let line = pending.split_to(end);
    pending.advance(1);
    Some(
        String::from_utf8(line.to_vec())
            .map_err(|err| ClientError::Protocol(format!("a line not UTF-8: {err}"))),
    )
}
