//! What the proxy reads and rewrites in a head on its way through: the hop-by-hop headers (RFC 9110
//! §7.6.1) it never forwards, the framing it re-derives (RFC 9112 §6.3: a message with
//! Transfer-Encoding never carries its Content-Length onward), its own `Via` (RFC 9110 §7.6.3), and
//! the sizes and copies the recording keeps.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

/// Headers that belong to one hop (RFC 9110, 7.6.1), never forwarded as they are.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
];

/// What the proxy adds to `Via`: the protocol it received and its pseudonym.
pub const VIA: &str = "1.1 switchboard";

pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    let has = |name: HeaderName, word: &str| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|value| {
                value
                    .split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(word))
            })
        })
    };
    has(header::UPGRADE, "websocket") && has(header::CONNECTION, "upgrade")
}

/// An answer to `url` whose events the proxy splits one by one (see
/// [`switchboard_shared::har::classify::event_stream`]): Server-Sent Events, NDJSON, SockJS's
/// `xhr_streaming`.
pub fn is_event_stream(url: &str, mime: &str) -> bool {
    switchboard_shared::har::classify::event_stream(url, mime).is_some()
}

/// Removes the hop-by-hop headers, and those the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| {
            value
                .split(',')
                .map(|name| name.trim().to_ascii_lowercase())
        })
        .filter(|name| !name.is_empty())
        .collect();
    for name in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        headers.remove(name);
    }
}

/// A head as it goes on to the next hop, either way: hop-by-hop headers gone, a Content-Length that
/// came beside a Transfer-Encoding gone with it (the next hop frames the body anew, and a stale length
/// would cut it short), and the proxy named in `Via`.
pub fn onward(headers: &mut HeaderMap) {
    let chunked = headers.contains_key(header::TRANSFER_ENCODING);
    strip_hop_by_hop(headers);
    if chunked {
        headers.remove(header::CONTENT_LENGTH);
    }
    headers.append(header::VIA, HeaderValue::from_static(VIA));
}

pub fn pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// A head's size on the wire: its first line, each header and the blank line.
pub fn head_bytes(first_line: usize, headers: &HeaderMap) -> u64 {
    let fields: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    (first_line + 2 + fields + 2) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onward_a_chunked_message_loses_its_stale_length_and_names_the_proxy() {
        let mut headers = HeaderMap::new();
        headers.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        headers.insert(header::CONTENT_LENGTH, "5".parse().unwrap());
        headers.insert(
            header::CONNECTION,
            "keep-alive, x-secret-hop".parse().unwrap(),
        );
        headers.insert("x-secret-hop", "1".parse().unwrap());
        headers.insert(header::VIA, "1.0 earlier".parse().unwrap());
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        onward(&mut headers);
        assert!(headers.get(header::CONTENT_LENGTH).is_none());
        assert!(headers.get(header::TRANSFER_ENCODING).is_none());
        assert!(headers.get("x-secret-hop").is_none());
        let via: Vec<_> = headers.get_all(header::VIA).iter().collect();
        assert_eq!(via, ["1.0 earlier", VIA]);
        assert_eq!(headers[header::CONTENT_TYPE], "text/plain");
    }

    #[test]
    fn onward_a_message_with_only_a_length_keeps_it() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, "50".parse().unwrap());
        onward(&mut headers);
        assert_eq!(headers[header::CONTENT_LENGTH], "50");
    }
}
