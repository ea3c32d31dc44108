//! The radio: `GET /api/sse`, read by a real SSE parser (`eventsource-stream`) over the response's bytes.

use eventsource_stream::Eventsource;
use futures_util::{Stream, StreamExt};
use std::pin::Pin;
use switchboard_shared::ws::{Heartbeat, Hello};
use switchboard_shared::{Event, Gap, ServerMessage, sse};

use crate::ClientError;

pub use eventsource_stream::Event as SseEvent;

type Events = Pin<Box<dyn Stream<Item = Result<SseEvent, ClientError>> + Send>>;

/// One open event stream.
pub struct SseClient {
    events: Events,
}

impl std::fmt::Debug for SseClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseClient").finish_non_exhaustive()
    }
}

/// What the radio says, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum RadioMessage {
    Hello(Hello),
    /// An event, with the `id:` the stream gave it (its seq, which `EventSource` resends on redial).
    Event {
        id: String,
        event: Event,
    },
    Heartbeat(Heartbeat),
    Gap(Gap),
}

impl From<RadioMessage> for ServerMessage {
    /// The same message as the phone call and the endless letter say it.
    fn from(message: RadioMessage) -> ServerMessage {
        match message {
            RadioMessage::Hello(hello) => ServerMessage::Hello(hello),
            RadioMessage::Event { event, .. } => ServerMessage::Event(event),
            RadioMessage::Heartbeat(beat) => ServerMessage::Heartbeat(beat),
            RadioMessage::Gap(gap) => ServerMessage::Gap(gap),
        }
    }
}

impl SseClient {
    /// Opens the stream at `url`, resuming after `last_event_id` as a redialling `EventSource` does.
    pub async fn open(
        http: &reqwest::Client,
        url: &str,
        last_event_id: Option<&str>,
    ) -> Result<SseClient, ClientError> {
        let mut request = http.get(url);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await?;
        if !response.status().is_success() {
            return Err(ClientError::refused(response).await);
        }
        Ok(SseClient::from_response(response))
    }

    /// Reads an answer already received (its status and headers are the caller's to check).
    pub fn from_response(response: reqwest::Response) -> SseClient {
        SseClient {
            events: Box::pin(
                response
                    .bytes_stream()
                    .eventsource()
                    .map(|item| item.map_err(|err| ClientError::Sse(err.to_string()))),
            ),
        }
    }

    /// The next SSE event of any name, as it came; `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Result<SseEvent, ClientError>> {
        self.events.next().await
    }

    /// The next message of the protocol; `None` when the stream ended.
    pub async fn next_message(&mut self) -> Option<Result<RadioMessage, ClientError>> {
        let item = match self.next().await? {
            Ok(item) => item,
            Err(err) => return Some(Err(err)),
        };
        Some(parse(&item))
    }
}

/// One SSE event as a protocol message (an unnamed message is an event).
pub fn parse(item: &SseEvent) -> Result<RadioMessage, ClientError> {
    let data = item.data.as_str();
    let bad = |err: serde_json::Error| {
        ClientError::Protocol(format!("a {} that is not one: {err}", item.event))
    };
    Ok(match item.event.as_str() {
        sse::HELLO => RadioMessage::Hello(serde_json::from_str(data).map_err(bad)?),
        sse::HEARTBEAT => RadioMessage::Heartbeat(serde_json::from_str(data).map_err(bad)?),
        sse::GAP => RadioMessage::Gap(serde_json::from_str(data).map_err(bad)?),
        "message" => RadioMessage::Event {
            id: item.id.clone(),
            event: serde_json::from_str(data).map_err(bad)?,
        },
        other => return Err(ClientError::Protocol(format!("an unknown event {other:?}"))),
    })
}
