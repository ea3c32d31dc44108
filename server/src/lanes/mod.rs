//! One module per lane, each served on its [`LaneId::path`] by [`routes`], plus what the two letters
//! lanes share: the batch reply.

pub mod longpoll;
pub mod poll;
pub mod push;
pub mod sse;
pub mod stream;
pub mod webtransport;
pub mod ws;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use bytes::{BufMut, Bytes, BytesMut};
use std::sync::atomic::Ordering::Relaxed;
use switchboard_shared::LaneId;

use crate::AppState;
use crate::error::AppError;
use crate::hub::Replay;

/// The most events one poll or long-poll reply carries; a client that is further behind gets the rest on
/// its next request (it asks after the last seq it got).
pub const BATCH_LIMIT: usize = 500;

/// Every lane on its path ([`LaneId::path`]).
pub fn routes() -> Router<AppState> {
    LaneId::ALL.into_iter().fold(Router::new(), |router, lane| {
        router.route(lane.path(), handler(lane))
    })
}

/// The module that serves each lane: a new lane is one module and one arm here.
fn handler(lane: LaneId) -> MethodRouter<AppState> {
    match lane {
        LaneId::Poll => get(poll::poll),
        LaneId::LongPoll => get(longpoll::longpoll),
        LaneId::HttpStream => get(stream::stream),
        LaneId::Sse => get(sse::sse),
        LaneId::Ws => get(ws::ws),
        // The page asks here where to dial; the session itself is on the QUIC endpoint.
        LaneId::WebTransport => get(webtransport::info),
    }
}

/// `Query<T>` whose refusal is an [`AppError`] (a JSON 400), not axum's plain-text one.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct ApiQuery<T>(pub T);

/// Answers a poll or long poll with the replay as a [`switchboard_shared::Batch`], assembled from the
/// events' pre-serialized JSON so no event is serialized again per client.
pub fn batch_response(state: &AppState, lane: LaneId, replay: Replay) -> Response {
    let counters = state.meters.lane(lane);
    if replay.events.is_empty() {
        counters.empty_replies.fetch_add(1, Relaxed);
    }
    counters
        .messages
        .fetch_add(replay.events.len() as u64, Relaxed);
    // Letters name the instance that answered only when there are several (with a backplane).
    let instance = state
        .backplane
        .is_some()
        .then(|| serde_json::to_string(&*state.instance).expect("a string serializes"));
    let body = batch_json(state.hub.epoch(), instance.as_deref(), &replay);
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// `instance_json` is the instance's name as a JSON string, when the batch should carry it.
fn batch_json(epoch: u64, instance_json: Option<&str>, replay: &Replay) -> Bytes {
    let events_len: usize = replay.events.iter().map(|event| event.json.len() + 1).sum();
    let mut out = BytesMut::with_capacity(96 + events_len);
    out.put_slice(format!(r#"{{"epoch":{epoch},"head":{},"gap":"#, replay.head).as_bytes());
    match replay.gap {
        Some(gap) => {
            out.put_slice(format!(r#"{{"first":{},"last":{}}}"#, gap.first, gap.last).as_bytes())
        }
        None => out.put_slice(b"null"),
    }
    out.put_slice(br#","events":["#);
    for (index, event) in replay.events.iter().enumerate() {
        if index > 0 {
            out.put_u8(b',');
        }
        out.put_slice(&event.json);
    }
    out.put_slice(b"]");
    if let Some(instance) = instance_json {
        out.put_slice(br#","instance":"#);
        out.put_slice(instance.as_bytes());
    }
    out.put_slice(b"}");
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Hub;
    use switchboard_shared::{Batch, EventBody, Gap, Notice, NoticeLevel};

    #[test]
    fn a_hand_assembled_batch_is_a_batch() {
        let hub = Hub::new(2);
        for n in 0..4 {
            hub.publish(EventBody::Notice(Notice {
                level: NoticeLevel::Info,
                code: "n".into(),
                text: format!("notice {n}"),
                fault: None,
                network: None,
                traffic: None,
            }));
        }
        let batch: Batch =
            serde_json::from_slice(&batch_json(hub.epoch(), None, &hub.since(0, 10))).unwrap();
        assert_eq!(batch.epoch, hub.epoch());
        assert_eq!(batch.head, 4);
        assert_eq!(batch.gap, Some(Gap { first: 1, last: 2 }));
        assert_eq!(
            batch
                .events
                .iter()
                .map(|event| event.seq)
                .collect::<Vec<_>>(),
            vec![3, 4]
        );
        let empty: Batch =
            serde_json::from_slice(&batch_json(1, Some(r#""b""#), &hub.since(4, 10))).unwrap();
        assert!(empty.events.is_empty() && empty.gap.is_none());
        assert_eq!(
            empty.instance.as_deref(),
            Some("b"),
            "named when one of several"
        );
        assert_eq!(batch.instance, None);
    }
}
