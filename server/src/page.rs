//! The headers that keep the page to itself: `X-Content-Type-Options: nosniff` on every response, and on
//! every HTML page a Content-Security-Policy under which the dashboard (WebAssembly, its phone and
//! video calls) works and nothing else runs. Trunk loads the dashboard with one inline module script;
//! the policy names it by its SHA-256, computed from the page as it is served (a dashboard rebuilt while
//! the server runs still matches).

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::AppError;

/// The largest HTML page the policy is computed for (the dashboard's is under 2 KiB).
const MAX_PAGE: usize = 256 * 1024;

pub async fn middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .map(str::to_owned);
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if state.config.static_dir.is_some()
        && response.status().is_success()
        && let Some(policy) = cache_policy(&path)
    {
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
        // The same path answers br, gzip or plain bytes by the request's Accept-Encoding.
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|kind| kind.to_str().ok())
        .is_some_and(|kind| kind.starts_with("text/html"));
    if !is_html {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(page) = to_bytes(body, MAX_PAGE).await else {
        return AppError::Unavailable("the page could not be read".into()).into_response();
    };
    let webtransport = state
        .webtransport
        .get()
        .map(|dialing| dialing.info(host.as_deref()).url);
    let policy = policy(&page, host.as_deref(), webtransport.as_deref());
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        parts
            .headers
            .insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    Response::from_parts(parts, Body::from(page))
}

/// The policy for `page`, served as `host`, whose video call dials `webtransport` (a session URL).
fn policy(page: &[u8], host: Option<&str>, webtransport: Option<&str>) -> String {
    let scripts: String = inline_scripts(&String::from_utf8_lossy(page))
        .map(|script| {
            let digest = Sha256::digest(script.as_bytes());
            format!(
                " 'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            )
        })
        .collect();
    // 'self' covers the page's own ws:// in current browsers; named as well for older ones. The video
    // call is https:// to a UDP port: any port of its host, since behind a balancer the page may be
    // sent to another instance, on another port, at its next dial.
    let mut connect = String::from("'self'");
    if let Some(host) = host {
        connect.push_str(&format!(" ws://{host} wss://{host}"));
    }
    if let Some(host) = webtransport.and_then(url_host) {
        connect.push_str(&format!(" https://{host}:*"));
    }
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{scripts}; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src {connect}; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// The host of a URL (`127.0.0.1`, `[::1]`), without its scheme, port or path.
fn url_host(url: &str) -> Option<String> {
    let uri: axum::http::Uri = url.parse().ok()?;
    crate::limits::host_of(uri.authority()?.as_str())
}

/// The text of each inline `<script>` (one without `src=`) of an HTML page, exactly as a browser
/// hashes it.
fn inline_scripts(page: &str) -> impl Iterator<Item = &str> {
    page.match_indices("<script").filter_map(move |(at, _)| {
        let open_end = at + page[at..].find('>')?;
        let tag = &page[at..open_end];
        if tag.contains("src=") {
            return None;
        }
        let body_start = open_end + 1;
        let body_end = body_start + page[body_start..].find("</script>")?;
        Some(&page[body_start..body_end])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_each_inline_script_by_hash_and_allows_the_calls() {
        let page = "<html><script type=\"module\">\nimport init from '/a.js';\n</script>\
                    <script src=\"/b.js\"></script><script>alert(1)</script></html>";
        let scripts: Vec<&str> = inline_scripts(page).collect();
        assert_eq!(scripts, ["\nimport init from '/a.js';\n", "alert(1)"]);
        let policy = policy(
            page.as_bytes(),
            Some("127.0.0.1:3000"),
            Some("https://127.0.0.1:3000/api/webtransport"),
        );
        // echo -n 'alert(1)' | openssl dgst -sha256 -binary | base64
        assert!(
            policy.contains("'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='"),
            "{policy}"
        );
        assert!(policy.contains("'wasm-unsafe-eval'"), "{policy}");
        assert!(
            policy.contains(
                "connect-src 'self' ws://127.0.0.1:3000 wss://127.0.0.1:3000 https://127.0.0.1:*;"
            ),
            "{policy}"
        );
        assert_eq!(url_host("https://[::1]:4433/x").as_deref(), Some("[::1]"));
        assert_eq!(url_host("https://box.lan/x").as_deref(), Some("box.lan"));
    }
}

/// How long a browser may keep a file of the built page: a file whose name carries its content's hash
/// (`style-61913c9d82eb1b66.css`, `…-6ce8776e36900d4a_bg.wasm`) never changes, so for a year without
/// asking; the page itself is asked about every time, so a new build is picked up at once.
fn cache_policy(path: &str) -> Option<&'static str> {
    let name = path.rsplit('/').next().unwrap_or_default();
    if name.is_empty() || name.ends_with(".html") {
        return Some("no-cache");
    }
    let hashed = name.rsplit_once('-').is_some_and(|(_, rest)| {
        let hash = &rest[..rest.len().min(16)];
        hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit())
    });
    let asset = [".wasm", ".js", ".css"]
        .iter()
        .any(|ext| name.ends_with(ext));
    (hashed && asset).then_some("public, max-age=31536000, immutable")
}

#[cfg(test)]
mod cache_tests {
    use super::cache_policy;

    #[test]
    fn hashed_files_are_kept_for_a_year_and_the_page_is_asked_about_every_time() {
        let year = Some("public, max-age=31536000, immutable");
        assert_eq!(
            cache_policy("/switchboard-frontend-6ce8776e36900d4a_bg.wasm"),
            year
        );
        assert_eq!(cache_policy("/style-61913c9d82eb1b66.css"), year);
        assert_eq!(cache_policy("/"), Some("no-cache"));
        assert_eq!(cache_policy("/index.html"), Some("no-cache"));
        assert_eq!(cache_policy("/logo.png"), None);
        assert_eq!(cache_policy("/app-abc.js"), None, "not a hash");
    }
}
