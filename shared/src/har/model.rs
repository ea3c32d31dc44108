//! HAR 1.2 (<http://www.softwareishard.com/blog/har-12-spec/>) as Chrome and Firefox export it: the
//! parts a timeline needs, read leniently (a field a browser leaves out takes its default, so one
//! browser's omissions do not reject the file), written strictly (every field the spec requires).
//! Chrome's private fields keep their underscore names: `_resourceType`, `_transferSize` and
//! `_webSocketMessages`.

use serde::{Deserialize, Serialize};

// The date form HAR writes (`startedDateTime`) lives in `time`, which the e2e's recorder uses too.
pub use crate::time::{format_date_time, parse_date_time};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Har {
    pub log: Log,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Log {
    #[serde(default = "version")]
    pub version: String,
    #[serde(default)]
    pub creator: Creator,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pages: Vec<serde_json::Value>,
    pub entries: Vec<Entry>,
    /// What the file covers, in words (the proxy says how many older exchanges it dropped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

fn version() -> String {
    "1.2".to_owned()
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Creator {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// When the request started, ISO 8601 with a time zone.
    pub started_date_time: String,
    /// Total time of the request, ms (the sum of the non-negative timings).
    #[serde(default)]
    pub time: f64,
    pub request: Request,
    pub response: Response,
    #[serde(default)]
    pub cache: serde_json::Value,
    #[serde(default)]
    pub timings: Timings,
    #[serde(
        rename = "_resourceType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub resource_type: Option<String>,
    #[serde(
        rename = "_webSocketMessages",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub web_socket_messages: Option<Vec<WebSocketMessage>>,
    /// Chrome's own field for an event stream's events, each with its arrival time (the same shape as a
    /// socket's frames, all `receive`): written by Switchboard's proxy, read when present, so a radio's
    /// heartbeat pace can be known.
    #[serde(
        rename = "_eventSourceMessages",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub event_source_messages: Option<Vec<WebSocketMessage>>,
    /// Switchboard's proxy: the id of the channel the exchange belongs to.
    #[serde(rename = "_channel", default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Switchboard's proxy: the kind its channel was found to be (`letters`, `held`, `radio`,
    /// `phone`), so a reader sorts it as the proxy did; absent from an exchange that belongs to no
    /// channel.
    #[serde(rename = "_kind", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub method: String,
    pub url: String,
    #[serde(default = "http_version")]
    pub http_version: String,
    #[serde(default)]
    pub headers: Vec<Header>,
    #[serde(default)]
    pub query_string: Vec<Header>,
    #[serde(default)]
    pub cookies: Vec<serde_json::Value>,
    /// -1 where unknown.
    #[serde(default = "unknown")]
    pub headers_size: i64,
    #[serde(default = "unknown")]
    pub body_size: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    /// 0 where the request got no answer.
    #[serde(default)]
    pub status: u16,
    #[serde(default)]
    pub status_text: String,
    #[serde(default = "http_version")]
    pub http_version: String,
    #[serde(default)]
    pub headers: Vec<Header>,
    #[serde(default)]
    pub cookies: Vec<serde_json::Value>,
    #[serde(default)]
    pub content: Content,
    #[serde(rename = "redirectURL", default)]
    pub redirect_url: String,
    #[serde(default = "unknown")]
    pub headers_size: i64,
    #[serde(default = "unknown")]
    pub body_size: i64,
    /// Chrome: bytes on the wire, headers included.
    #[serde(
        rename = "_transferSize",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub transfer_size: Option<i64>,
    /// Chrome: why no answer came whole (`net::ERR_ABORTED`); Switchboard's proxy writes `cancelled`
    /// for a request the browser gave up on, or what broke the app's answer.
    #[serde(rename = "_error", default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub mime_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// Where the request's time went, ms; -1 where a phase does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    #[serde(default = "unknown_ms")]
    pub blocked: f64,
    #[serde(default = "unknown_ms")]
    pub dns: f64,
    #[serde(default = "unknown_ms")]
    pub connect: f64,
    #[serde(default)]
    pub send: f64,
    /// Waiting for the first byte of the answer: how long a held letter was held.
    #[serde(default)]
    pub wait: f64,
    #[serde(default)]
    pub receive: f64,
    #[serde(default = "unknown_ms")]
    pub ssl: f64,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            blocked: -1.0,
            dns: -1.0,
            connect: -1.0,
            send: 0.0,
            wait: 0.0,
            receive: 0.0,
            ssl: -1.0,
        }
    }
}

/// One WebSocket frame as Chrome records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebSocketMessage {
    /// `send` (browser → server) or `receive`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Seconds since the Unix epoch, with a fraction.
    pub time: f64,
    /// 1 text, 2 binary (9 and 10 are pings and pongs, which Chrome does not show).
    #[serde(default = "text_opcode")]
    pub opcode: u8,
    #[serde(default)]
    pub data: String,
    /// Its true size in bytes, where `data` is not all of it (a binary frame, whose bytes are not
    /// text; a message cut short in the recording). Switchboard's proxy writes it.
    #[serde(rename = "_size", default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Dropped on the way by a fault of the lab: the browser never got it. Switchboard's proxy writes it.
    #[serde(
        rename = "_swallowed",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub swallowed: bool,
}

impl WebSocketMessage {
    /// Its size in bytes: the recorded size where there is one, else its data's.
    pub fn len(&self) -> usize {
        self.size.map_or(self.data.len(), |size| size as usize)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn http_version() -> String {
    "HTTP/1.1".to_owned()
}

fn unknown() -> i64 {
    -1
}

fn unknown_ms() -> f64 {
    -1.0
}

fn text_opcode() -> u8 {
    1
}

/// Why a file is not a HAR the page can open, in words for the person who dropped it.
#[derive(Debug, Clone, PartialEq)]
pub enum HarError {
    NotJson(String),
    NotHar(String),
}

impl std::fmt::Display for HarError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HarError::NotJson(why) => write!(f, "This file is not JSON ({why})."),
            HarError::NotHar(why) => write!(
                f,
                "This file is JSON but not a HAR ({why}). Export one from the browser's developer tools: Network tab, \"Save all as HAR\"."
            ),
        }
    }
}

impl Har {
    /// Reads a HAR, telling "not JSON" from "JSON of another shape".
    pub fn parse(text: &str) -> Result<Har, HarError> {
        // Straight from the text, not through a `serde_json::Value`: a second deserializer would
        // double the code every HAR type brings into the page's bundle.
        serde_json::from_str(text).map_err(|err| match err.classify() {
            serde_json::error::Category::Data => {
                if err.to_string().starts_with("missing field `log`")
                    || err.to_string().starts_with("missing field `entries`")
                {
                    HarError::NotHar("it has no log.entries".to_owned())
                } else {
                    HarError::NotHar(err.to_string())
                }
            }
            _ => HarError::NotJson(err.to_string()),
        })
    }
}

/// Where each of a HAR's entries sits in its text, and the log with its entries taken out, so a big
/// file can be read an entry at a time (with the page's event loop turning between batches) rather than
/// in one parse that freezes the page. `None` when the text has no `entries` array inside an object.
pub fn split_entries(text: &str) -> Option<(String, Vec<(usize, usize)>)> {
    let bytes = text.as_bytes();
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let (mut string_start, mut last_string) = (0, (0, 0));
    let mut array: Option<(usize, usize)> = None; // (depth inside the array, index of its '[')
    let mut item_start = None;
    let mut items = Vec::new();
    for (i, &byte) in bytes.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
                last_string = (string_start, i);
            }
            continue;
        }
        match byte {
            b'"' => {
                in_string = true;
                string_start = i + 1;
            }
            b'{' | b'[' => {
                match array {
                    Some((inside, _)) if depth == inside && byte == b'{' => item_start = Some(i),
                    // The `entries` key of the log object (depth 2: inside `{"log": {`).
                    None if byte == b'['
                        && depth == 2
                        && &text[last_string.0..last_string.1] == "entries" =>
                    {
                        array = Some((depth + 1, i));
                    }
                    _ => {}
                }
                depth += 1;
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if let Some((inside, open)) = array {
                    if byte == b'}' && depth == inside {
                        items.push((item_start.take()?, i + 1));
                    } else if byte == b']' && depth + 1 == inside {
                        let rest = format!("{}{}", &text[..=open], &text[i..]);
                        return Some((rest, items));
                    }
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_json_or_not_a_har_says_which() {
        assert!(matches!(Har::parse("{nope"), Err(HarError::NotJson(_))));
        let not_har = Har::parse(r#"{"log": {"pages": []}}"#).unwrap_err();
        assert!(
            not_har
                .to_string()
                .contains("not a HAR (it has no log.entries)"),
            "{not_har}"
        );
        let minimal = Har::parse(
            r#"{"log": {"entries": [{"startedDateTime": "2026-11-28T16:04:05.123Z",
                "request": {"method": "GET", "url": "http://x/a"}, "response": {"status": 204}}]}}"#,
        )
        .unwrap();
        assert_eq!(minimal.log.entries[0].response.status, 204);
        assert_eq!(minimal.log.entries[0].request.headers_size, -1);
    }

    #[test]
    fn entries_are_found_one_by_one_around_strings_that_look_like_json() {
        let text = r#"{"log": {"creator": {"name": "x ] } \" {"}, "entries": [
            {"a": "[{", "b": {"c": [1, 2]}}, {"d": "}"}
        ], "pages": []}}"#;
        let (rest, items) = split_entries(text).unwrap();
        let parts: Vec<&str> = items.iter().map(|&(from, to)| &text[from..to]).collect();
        assert_eq!(
            parts,
            vec![r#"{"a": "[{", "b": {"c": [1, 2]}}"#, r#"{"d": "}"}"#]
        );
        let rest: serde_json::Value = serde_json::from_str(&rest).unwrap();
        assert_eq!(rest["log"]["entries"], serde_json::json!([]));
        assert_eq!(rest["log"]["creator"]["name"], "x ] } \" {");
        assert!(
            split_entries(r#"{"entries": []}"#).is_none(),
            "entries must be inside log"
        );
    }
}
