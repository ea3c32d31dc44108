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

/// The proxy's idle timeout from the header (`idle-timeout=15s`, or `…=500ms`), in milliseconds.
pub fn proxy_idle_ms(said: &str) -> Option<f64> {
    let value = said
        .split(';')
        .filter_map(|part| part.trim().split_once('='))
        .find(|(key, _)| key.trim() == "idle-timeout")?
        .1
        .trim();
    match value.strip_suffix("ms") {
        Some(ms) => ms.parse().ok(),
        None => value
            .strip_suffix('s')
            .and_then(|s| s.parse::<f64>().ok())
            .map(|s| s * 1000.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idle_timeout_is_read_in_milliseconds() {
        assert_eq!(proxy_idle_ms("nginx; idle-timeout=15s"), Some(15_000.0));
        assert_eq!(proxy_idle_ms("nginx; idle-timeout=500ms"), Some(500.0));
        assert_eq!(proxy_idle_ms("nginx"), None);
        assert_eq!(proxy_idle_ms("nginx; idle-timeout=soon"), None);
    }

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
