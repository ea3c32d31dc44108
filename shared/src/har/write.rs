//! The one HAR writer: an exchange as either side recorded it — the page its own lanes, the proxy the
//! app's traffic — described once ([`Exchange`]) and written as HAR 1.2 the same way, with the same
//! extensions (`_webSocketMessages`, `_eventSourceMessages`, `_resourceType`, `_transferSize`,
//! `_error`, and the proxy's `_channel` and `_kind`).

use super::model::{
    Content, Creator, Entry, Har, Header, Log, Request, Response, Timings, WebSocketMessage,
    format_date_time,
};

/// What kind of exchange it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// A request and its answer.
    Request,
    /// An answer that kept coming: Server-Sent Events (`sse`) or an endless letter.
    Stream { sse: bool },
    /// A WebSocket.
    Socket,
}

/// One exchange, as a HAR needs it.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    /// Unix ms.
    pub started_ms: f64,
    /// When the answer began; `None` when the recorder could not tell (a request's whole time then
    /// counts as waiting, a line's as receiving).
    pub first_byte_ms: Option<f64>,
    pub end_ms: f64,
    pub method: String,
    pub url: String,
    pub request_headers: Vec<(String, String)>,
    /// Bytes on the wire; -1 when unknown.
    pub request_head_bytes: i64,
    pub request_body_bytes: i64,
    pub status: u16,
    pub status_text: String,
    pub response_headers: Vec<(String, String)>,
    pub response_head_bytes: i64,
    pub mime: String,
    /// The answer's body as text, as far as it was kept.
    pub body: Option<String>,
    /// The body's bytes on the wire.
    pub body_bytes: i64,
    /// The body's size as text, where it differs from its bytes on the wire (the page knows the text
    /// it read and the bytes the lane counted).
    pub text_bytes: Option<i64>,
    /// Everything that came down, heads included.
    pub transfer_bytes: i64,
    pub form: Option<Form>,
    /// A socket's frames both ways, or a stream's events, with their times.
    pub messages: Vec<WebSocketMessage>,
    pub error: Option<String>,
    pub channel: Option<String>,
    pub kind: Option<String>,
}

fn headers(pairs: &[(String, String)]) -> Vec<Header> {
    pairs
        .iter()
        .map(|(name, value)| Header {
            name: name.clone(),
            value: value.clone(),
        })
        .collect()
}

/// A URL's query as HAR's `queryString`.
fn query(url: &str) -> Vec<Header> {
    url.split_once('?')
        .map(|(_, query)| {
            query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                    Header {
                        name: name.into(),
                        value: value.into(),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One HAR entry.
pub fn entry(exchange: Exchange) -> Entry {
    let form = exchange.form.unwrap_or(Form::Request);
    let end = exchange.end_ms.max(exchange.started_ms);
    let took = end - exchange.started_ms;
    let (wait, receive) = match exchange.first_byte_ms {
        Some(first) => {
            let first = first.clamp(exchange.started_ms, end);
            (first - exchange.started_ms, end - first)
        }
        None if form == Form::Request => (took, 0.0),
        None => (0.0, took),
    };
    let socket = form == Form::Socket;
    Entry {
        started_date_time: format_date_time(exchange.started_ms),
        time: wait + receive,
        request: Request {
            method: exchange.method,
            query_string: query(&exchange.url),
            url: exchange.url,
            http_version: "HTTP/1.1".into(),
            headers: headers(&exchange.request_headers),
            cookies: Vec::new(),
            headers_size: exchange.request_head_bytes,
            body_size: exchange.request_body_bytes,
        },
        response: Response {
            status: exchange.status,
            status_text: exchange.status_text,
            http_version: "HTTP/1.1".into(),
            headers: headers(&exchange.response_headers),
            cookies: Vec::new(),
            content: Content {
                size: exchange.text_bytes.unwrap_or(exchange.body_bytes),
                mime_type: exchange.mime,
                text: if socket { None } else { exchange.body },
                encoding: None,
            },
            redirect_url: String::new(),
            headers_size: exchange.response_head_bytes,
            body_size: if socket { 0 } else { exchange.body_bytes },
            transfer_size: Some(exchange.transfer_bytes),
            error: exchange.error,
        },
        cache: serde_json::json!({}),
        timings: Timings {
            send: 0.0,
            wait,
            receive,
            ..Timings::default()
        },
        resource_type: Some(
            match form {
                Form::Socket => "websocket",
                Form::Stream { sse: true } => "eventsource",
                _ => "fetch",
            }
            .into(),
        ),
        web_socket_messages: socket.then(|| exchange.messages.clone()),
        event_source_messages: matches!(form, Form::Stream { .. }).then(|| {
            exchange
                .messages
                .into_iter()
                .filter(|message| message.kind == "receive")
                .collect()
        }),
        channel: exchange.channel,
        kind: exchange.kind,
    }
}

/// A whole file.
pub fn har(creator: &str, entries: Vec<Entry>, comment: Option<String>) -> Har {
    Har {
        log: Log {
            version: "1.2".into(),
            creator: Creator {
                name: creator.into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            pages: Vec::new(),
            entries,
            comment,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_splits_its_time_at_the_first_byte_and_keeps_its_query() {
        let entry = entry(Exchange {
            started_ms: 1_000.0,
            first_byte_ms: Some(1_250.0),
            end_ms: 1_300.0,
            method: "GET".into(),
            url: "http://app/poll?after=3&x".into(),
            status: 200,
            body: Some("[]".into()),
            body_bytes: 2,
            transfer_bytes: 120,
            ..Exchange::default()
        });
        assert_eq!((entry.timings.wait, entry.timings.receive), (250.0, 50.0));
        assert_eq!(entry.time, 300.0);
        let query: Vec<(&str, &str)> = entry
            .request
            .query_string
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        assert_eq!(query, [("after", "3"), ("x", "")]);
        assert_eq!(entry.response.content.text.as_deref(), Some("[]"));
        assert!(entry.web_socket_messages.is_none());
    }

    #[test]
    fn a_line_without_a_first_byte_counts_its_time_as_receiving_and_keeps_its_messages() {
        let message = |kind: &str| WebSocketMessage {
            kind: kind.into(),
            time: 1.5,
            opcode: 1,
            data: "x".into(),
            size: None,
            swallowed: false,
        };
        let stream = entry(Exchange {
            started_ms: 1_000.0,
            end_ms: 3_000.0,
            form: Some(Form::Stream { sse: true }),
            messages: vec![message("receive")],
            ..Exchange::default()
        });
        assert_eq!(
            (stream.timings.wait, stream.timings.receive),
            (0.0, 2_000.0)
        );
        assert_eq!(stream.resource_type.as_deref(), Some("eventsource"));
        assert_eq!(stream.event_source_messages.unwrap().len(), 1);
        let socket = entry(Exchange {
            form: Some(Form::Socket),
            body: Some("never a socket's".into()),
            messages: vec![message("send"), message("receive")],
            ..Exchange::default()
        });
        assert_eq!(socket.web_socket_messages.unwrap().len(), 2);
        assert_eq!(socket.response.content.text, None);
        assert_eq!(socket.response.body_size, 0);
    }
}
