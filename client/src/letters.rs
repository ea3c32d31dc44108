//! Letters and held letters: one GET of `/api/poll` or `/api/longpoll`, answered with a batch.

use std::time::Duration;
use switchboard_shared::{Batch, LaneId, Seq, Shape};

use crate::ClientError;

/// The URL of a letter on `lane` (poll or long poll) to the server at `base` (`http://host:port`),
/// asking after `after` (from now when `None`), held up to `wait_ms` on the held-letters lane.
pub fn url(base: &str, lane: LaneId, after: Option<Seq>, wait_ms: u64) -> String {
    let path = lane.path();
    match after {
        Some(after) if lane.shape() == Shape::HeldRequest => {
            format!("{base}{path}?after={after}&wait_ms={wait_ms}")
        }
        Some(after) => format!("{base}{path}?after={after}"),
        None => format!("{base}{path}"),
    }
}

/// An answered letter: its batch and the size of its body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub batch: Batch,
    pub body_bytes: u64,
}

/// Sends one letter; a letter not answered within `patience` (when given) is given up.
pub async fn send(
    http: &reqwest::Client,
    url: &str,
    patience: Option<Duration>,
) -> Result<Answer, ClientError> {
    let mut request = http.get(url);
    if let Some(patience) = patience {
        request = request.timeout(patience);
    }
    let response = request.send().await?;
    if !response.status().is_success() {
        return Err(ClientError::refused(response).await);
    }
    let body = response.bytes().await?;
    let batch = serde_json::from_slice(&body)
        .map_err(|err| ClientError::Protocol(format!("a batch that is not one: {err}")))?;
    Ok(Answer {
        batch,
        body_bytes: body.len() as u64,
    })
}
