//! What a reverse proxy in front of the server says of itself, so the page can show it: the shipped
//! nginx configuration (`deploy/nginx/`) adds `X-Switchboard-Proxy: nginx; idle-timeout=15s` to every
//! answer.

/// The response header a proxy in front of Switchboard adds to say it is there.
pub const PROXY_HEADER: &str = "x-switchboard-proxy";

/// The header's value in words for the page: `nginx; idle-timeout=15s` → `behind nginx · idle timeout
/// 15s`. Parameters it does not know are shown as they are.
pub fn proxy_words(said: &str) -> String {
    let mut parts = said.split(';').map(str::trim);
    let name = parts
        .next()
        .filter(|name| !name.is_empty())
        .unwrap_or("a proxy");
    let mut words = format!("behind {name}");
    for part in parts.filter(|part| !part.is_empty()) {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        words.push_str(" · ");
        words.push_str(&key.trim().replace('-', " "));
        if !value.is_empty() {
            words.push(' ');
            words.push_str(value.trim());
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_header_reads_as_words() {
        assert_eq!(
            proxy_words("nginx; idle-timeout=15s"),
            "behind nginx · idle timeout 15s"
        );
        assert_eq!(proxy_words("haproxy"), "behind haproxy");
        assert_eq!(proxy_words(" ; cache"), "behind a proxy · cache");
    }
}
