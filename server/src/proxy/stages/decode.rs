//! Decoding: an app's gzip, deflate or Brotli answer to a request (not a stream's, which the proxy splits
//! into events as they come) is decoded as it passes, its first 64 KiB kept for the stages that read what
//! the app said — the recorder's HAR text and the figures' "same answer as before" ([`decoded`]).

use axum::http::{header, response};
use std::time::Duration;

use crate::proxy::decode::Decoder;
use crate::proxy::headers::is_event_stream;
use crate::proxy::stage::{Direction, Flow, Stage};

#[derive(Debug)]
pub struct Decode;

/// The answer's decoded first bytes, when it came compressed.
pub fn decoded(flow: &Flow) -> Option<Vec<u8>> {
    flow.peek_mut(|decoder: &mut Option<Decoder>| decoder.as_mut().map(Decoder::decoded))
        .flatten()
}

impl Stage for Decode {
    fn on_response(&self, flow: &Flow, head: &response::Parts, by_proxy: bool) -> Duration {
        let mime = head
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let decoder = head
            .headers
            .get(header::CONTENT_ENCODING)
            .and_then(|value| value.to_str().ok())
            .filter(|_| !by_proxy && !flow.websocket && !is_event_stream(&flow.url, &mime))
            .and_then(Decoder::for_encoding);
        if decoder.is_some() {
            flow.put(decoder);
        }
        Duration::ZERO
    }

    fn on_body(&self, flow: &Flow, direction: Direction, chunk: &[u8]) {
        if direction == Direction::Down {
            flow.peek_mut(|decoder: &mut Option<Decoder>| {
                if let Some(decoder) = decoder {
                    decoder.push(chunk);
                }
            });
        }
    }
}
