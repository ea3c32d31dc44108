//! A HAR recorded from Chromium's own DevTools Network events, as DevTools' "Save all as HAR" builds
//! it: chromedriver's performance log carries every `Network.*` event of the page (requests, answers,
//! event-stream messages, WebSocket frames), and `Network.getResponseBody` gives the bodies of finished
//! answers. The tests use it to open real recorded traffic in the page.

use std::collections::BTreeMap;

use fantoccini::Client;
use serde_json::{Value, json};

/// A WebDriver command chromedriver understands beyond W3C: `se/log` (the performance log) and
/// `goog/cdp/execute` (one DevTools command, see [`devtools`]).
#[derive(Debug)]
struct Chromedriver {
    path: &'static str,
    body: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Chromedriver {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

/// One request as the Network events tell it.
#[derive(Default)]
struct Request {
    url: String,
    method: String,
    kind: String,
    request_headers: Value,
    /// Wall clock (s) and monotonic clock (s) at the start: events after it carry only the latter.
    wall: f64,
    start: f64,
    end: Option<f64>,
    status: u16,
    status_text: String,
    mime: String,
    response_headers: Value,
    wait_ms: f64,
    bytes_down: f64,
    finished: bool,
    events: Vec<(String, String, String)>,
    frames: Vec<Value>,
}

fn headers_size(headers: &Value) -> i64 {
    headers.as_object().map_or(-1, |headers| {
        headers
            .iter()
            .map(|(name, value)| name.len() + 2 + value.as_str().map_or(0, str::len) + 2)
            .sum::<usize>() as i64
            + 2
    })
}

fn header_list(headers: &Value) -> Value {
    Value::Array(
        headers
            .as_object()
            .map(|headers| {
                headers
                    .iter()
                    .map(|(name, value)| json!({"name": name, "value": value.as_str().unwrap_or_default()}))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

/// Sends the page's Chromium one DevTools command (through chromedriver's `goog/cdp/execute`) and
/// returns its result.
pub async fn devtools(
    page: &Client,
    method: &str,
    params: Value,
) -> Result<Value, fantoccini::error::CmdError> {
    page.issue_cmd(Chromedriver {
        path: "goog/cdp/execute",
        body: json!({"cmd": method, "params": params}),
    })
    .await
}

/// Reads the performance log gathered since the last read and builds the HAR of everything in it.
pub async fn record(page: &Client) -> Value {
    let log = page
        .issue_cmd(Chromedriver {
            path: "se/log",
            body: json!({"type": "performance"}),
        })
        .await
        .expect("chromedriver's performance log (goog:loggingPrefs)");
    let mut requests: BTreeMap<String, Request> = BTreeMap::new();
    for line in log.as_array().into_iter().flatten() {
        let Some(message) = line["message"]
            .as_str()
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
        else {
            continue;
        };
        let (method, params) = (&message["message"]["method"], &message["message"]["params"]);
        let Some(method) = method.as_str() else {
            continue;
        };
        let id = params["requestId"].as_str().unwrap_or_default().to_owned();
        let at = params["timestamp"].as_f64().unwrap_or_default();
        match method {
            "Network.requestWillBeSent" => {
                let request = requests.entry(id).or_default();
                request.url = params["request"]["url"].as_str().unwrap_or_default().into();
                request.method = params["request"]["method"].as_str().unwrap_or("GET").into();
                request.kind = params["type"].as_str().unwrap_or_default().into();
                request.request_headers = params["request"]["headers"].clone();
                request.wall = params["wallTime"].as_f64().unwrap_or_default();
                request.start = at;
            }
            "Network.responseReceived" => {
                if let Some(request) = requests.get_mut(&id) {
                    let response = &params["response"];
                    request.status = response["status"].as_u64().unwrap_or_default() as u16;
                    request.status_text =
                        response["statusText"].as_str().unwrap_or_default().into();
                    request.mime = response["mimeType"].as_str().unwrap_or_default().into();
                    request.response_headers = response["headers"].clone();
                    let timing = &response["timing"];
                    request.wait_ms = (timing["receiveHeadersEnd"].as_f64().unwrap_or_default()
                        - timing["sendEnd"].as_f64().unwrap_or_default())
                    .max(0.0);
                    request.end = Some(at);
                }
            }
            "Network.dataReceived" => {
                if let Some(request) = requests.get_mut(&id) {
                    request.bytes_down += params["encodedDataLength"].as_f64().unwrap_or_default();
                    request.end = Some(at);
                }
            }
            "Network.loadingFinished" => {
                if let Some(request) = requests.get_mut(&id) {
                    request.bytes_down = params["encodedDataLength"].as_f64().unwrap_or_default();
                    request.end = Some(at);
                    request.finished = true;
                }
            }
            "Network.eventSourceMessageReceived" => {
                if let Some(request) = requests.get_mut(&id) {
                    request.events.push((
                        params["eventName"].as_str().unwrap_or("message").into(),
                        params["eventId"].as_str().unwrap_or_default().into(),
                        params["data"].as_str().unwrap_or_default().into(),
                    ));
                    request.end = Some(at);
                }
            }
            "Network.webSocketCreated" => {
                let request = requests.entry(id).or_default();
                request.url = params["url"].as_str().unwrap_or_default().into();
                request.method = "GET".into();
                request.kind = "WebSocket".into();
            }
            "Network.webSocketWillSendHandshakeRequest" => {
                if let Some(request) = requests.get_mut(&id) {
                    request.wall = params["wallTime"].as_f64().unwrap_or_default();
                    request.start = at;
                    request.request_headers = params["request"]["headers"].clone();
                }
            }
            "Network.webSocketHandshakeResponseReceived" => {
                if let Some(request) = requests.get_mut(&id) {
                    request.status = params["response"]["status"].as_u64().unwrap_or(101) as u16;
                    request.status_text = "Switching Protocols".into();
                    request.response_headers = params["response"]["headers"].clone();
                    request.end = Some(at);
                }
            }
            "Network.webSocketFrameSent" | "Network.webSocketFrameReceived" => {
                if let Some(request) = requests.get_mut(&id) {
                    let wall = request.wall + (at - request.start);
                    request.frames.push(json!({
                        "type": if method.ends_with("Sent") { "send" } else { "receive" },
                        "time": wall,
                        "opcode": params["response"]["opcode"],
                        "data": params["response"]["payloadData"],
                    }));
                    request.end = Some(at);
                }
            }
            _ => {}
        }
    }

    let mut entries = Vec::new();
    for (id, request) in &requests {
        if request.url.is_empty() || request.wall == 0.0 {
            continue;
        }
        // Finished answers have their bodies; a stream still open does not (DevTools leaves it out too).
        let mut text = None;
        if request.finished
            && request.kind != "EventSource"
            && let Ok(body) =
                devtools(page, "Network.getResponseBody", json!({"requestId": id})).await
            && body["base64Encoded"] == false
        {
            text = body["body"].as_str().map(str::to_owned);
        }
        if !request.events.is_empty() {
            text = Some(
                request
                    .events
                    .iter()
                    .map(|(name, id, data)| {
                        let name = if name == "message" {
                            String::new()
                        } else {
                            format!("event: {name}\n")
                        };
                        let id = if id.is_empty() {
                            String::new()
                        } else {
                            format!("id: {id}\n")
                        };
                        format!("{name}{id}data: {data}\n\n")
                    })
                    .collect(),
            );
        }
        let end = request.end.unwrap_or(request.start);
        let socket = request.kind == "WebSocket";
        let mut entry = json!({
            "startedDateTime": switchboard_shared::time::format_date_time(request.wall * 1000.0),
            "time": ((end - request.start) * 1000.0).max(0.0),
            "request": {
                "method": request.method, "url": request.url, "httpVersion": "HTTP/1.1",
                "headers": header_list(&request.request_headers), "queryString": [], "cookies": [],
                "headersSize": headers_size(&request.request_headers), "bodySize": 0,
            },
            "response": {
                "status": request.status, "statusText": request.status_text, "httpVersion": "HTTP/1.1",
                "headers": header_list(&request.response_headers), "cookies": [],
                "content": {"size": text.as_ref().map_or(0, String::len), "mimeType": request.mime},
                "redirectURL": "", "headersSize": headers_size(&request.response_headers),
                "bodySize": -1, "_transferSize": request.bytes_down.round() as i64,
            },
            "cache": {},
            "timings": {"blocked": -1, "dns": -1, "ssl": -1, "connect": -1, "send": 0, "wait": request.wait_ms, "receive": 0},
            "_resourceType": request.kind.to_ascii_lowercase(),
        });
        if let Some(text) = text {
            entry["response"]["content"]["text"] = Value::String(text);
        }
        if socket {
            entry["_webSocketMessages"] = Value::Array(request.frames.clone());
        }
        entries.push(entry);
    }
    entries.sort_by(|a, b| {
        a["startedDateTime"]
            .as_str()
            .cmp(&b["startedDateTime"].as_str())
    });
    json!({"log": {
        "version": "1.2",
        "creator": {"name": "Switchboard e2e (Chromium DevTools Network events)", "version": "1"},
        "pages": [],
        "entries": entries,
    }})
}
