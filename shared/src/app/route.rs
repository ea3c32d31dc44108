//! Channels are endpoints, not URLs: the *route template* a request's path is read by, so that one
//! socket whose URL carries a session id (`/sockjs/412/xk2bqmtd/websocket`) is one channel
//! (`/sockjs/{server}/{session}/websocket`), not a new one at each reconnect.
//!
//! The rule, documented in docs/PROTOCOL.md ("Route templates"), in the order it is applied:
//! 1. **Known shapes.** A SockJS URL (`…/<server>/<session>/<transport>`, the transport one of
//!    SockJS's, the server id 1–3 digits) is `…/{server}/{session}/<transport>`.
//! 2. **Ids by their look.** A segment of digits is `{n}`; a UUID is `{uuid}`; a segment of 8 or more
//!    letters, digits, `-` and `_` holding both a digit and a letter, or 16 or more hex digits, is
//!    `{id}` — except a version (`v2`, `v10`), which is a word of the API.
//! 3. **Learned from the paths seen.** Two paths of the same method and socket-ness, with the same
//!    number of segments (three or more), equal in every segment but one that is neither the first
//!    nor the last, are one endpoint: that segment becomes `{id}` in the template, for the paths seen
//!    before and after. (`/rooms/general/events` and `/rooms/random/events` are `/rooms/{id}/events`;
//!    `/api/status` and `/api/poll` stay two endpoints.)
//!
//! The learner is bounded ([`MAX_TEMPLATES`]); past it, paths are read by rules 1 and 2 alone.

/// The most templates learned: an app of endless distinct paths stops teaching (its paths are still
/// read by their look).
pub const MAX_TEMPLATES: usize = 2_000;

/// SockJS's transports, the last segment of its session URLs.
const SOCKJS_TRANSPORTS: [&str; 9] = [
    "websocket",
    "xhr",
    "xhr_send",
    "xhr_streaming",
    "eventsource",
    "htmlfile",
    "jsonp",
    "jsonp_send",
    "xhr_polling",
];

/// Whether a placeholder stands in this segment.
fn is_placeholder(segment: &str) -> bool {
    segment.starts_with('{') && segment.ends_with('}')
}

/// A segment as rule 2 reads it: a placeholder when it looks like an id.
fn by_look(segment: &str) -> Option<&'static str> {
    let bytes = segment.as_bytes();
    if bytes.is_empty() {
        return None;
    }
    if bytes.iter().all(u8::is_ascii_digit) {
        return Some("{n}");
    }
    if is_uuid(segment) {
        return Some("{uuid}");
    }
    if (bytes[0] | 0x20) == b'v' && bytes.len() <= 4 && bytes[1..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let tokenish = bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    let digit = bytes.iter().any(u8::is_ascii_digit);
    let letter = bytes.iter().any(u8::is_ascii_alphabetic);
    let hex = bytes.len() >= 16 && bytes.iter().all(u8::is_ascii_hexdigit);
    (tokenish && ((bytes.len() >= 8 && digit && letter) || hex)).then_some("{id}")
}

fn is_uuid(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(at, b)| match at {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// A path as rules 1 and 2 read it, segment by segment (the leading `/` gives an empty first one).
fn by_rules(path: &str) -> Vec<String> {
    let mut segments: Vec<String> = path.split('/').map(str::to_owned).collect();
    let n = segments.len();
    // SockJS: …/<server>/<session>/<transport>, the server id 1–3 digits.
    if n >= 4
        && SOCKJS_TRANSPORTS.contains(&segments[n - 1].as_str())
        && (1..=3).contains(&segments[n - 3].len())
        && segments[n - 3].bytes().all(|b| b.is_ascii_digit())
        && !segments[n - 2].is_empty()
        && !segments[n - 2].contains('.')
    {
        segments[n - 3] = "{server}".to_owned();
        segments[n - 2] = "{session}".to_owned();
    }
    for segment in &mut segments {
        if !is_placeholder(segment)
            && let Some(placeholder) = by_look(segment)
        {
            *segment = placeholder.to_owned();
        }
    }
    segments
}

/// Segments joined back into a path (by hand: `join` would be one more function in the page's
/// WebAssembly).
fn joined(segments: &[String]) -> String {
    let mut path = String::new();
    for (at, segment) in segments.iter().enumerate() {
        if at > 0 {
            path.push('/');
        }
        path.push_str(segment);
    }
    path
}

/// A path's template by rules 1 and 2 alone (what a single path can tell).
pub fn template_of(path: &str) -> String {
    joined(&by_rules(path))
}

/// What [`Routes::learn`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Learned {
    /// The template the path is read by.
    pub template: String,
    /// When this path taught a new placeholder: the template the earlier paths were read by, now
    /// read as `template` (their channel is renamed, not left behind).
    pub renamed: Option<String>,
}

/// The templates learned so far, each with its method and socket-ness (a list: at most
/// [`MAX_TEMPLATES`], and no map for the page's WebAssembly to carry).
#[derive(Debug, Default, Clone)]
pub struct Routes {
    known: Vec<(bool, String, Vec<String>)>,
    count: usize,
}

impl Routes {
    /// The template `path` is read by, learning from it (rule 3).
    pub fn learn(&mut self, method: &str, path: &str, socket: bool) -> Learned {
        let segments = by_rules(path);
        let n = segments.len();
        let mut known: Vec<&mut Vec<String>> = self
            .known
            .iter_mut()
            .filter(|(s, m, t)| *s == socket && m == method && t.len() == n)
            .map(|(_, _, t)| t)
            .collect();
        // A template it already fits: the one with the fewest placeholders (the most particular).
        let fits = |template: &[String]| {
            template
                .iter()
                .zip(&segments)
                .all(|(t, s)| t == s || is_placeholder(t))
        };
        if let Some(template) = known
            .iter()
            .filter(|t| fits(t))
            .min_by_key(|t| t.iter().filter(|s| is_placeholder(s)).count())
        {
            return Learned {
                template: joined(template),
                renamed: None,
            };
        }
        // One that differs in exactly one middle segment, both literal: that segment varies.
        if n >= 4 {
            let differs_in_one = known.iter().position(|template| {
                let mut differing = template
                    .iter()
                    .zip(&segments)
                    .enumerate()
                    .filter(|(_, (t, s))| t != s);
                match (differing.next(), differing.next()) {
                    (Some((at, (t, _))), None) => at >= 2 && at < n - 1 && !is_placeholder(t),
                    _ => false,
                }
            });
            if let Some(index) = differs_in_one {
                let before = joined(known[index]);
                let template = &mut *known[index];
                for (t, s) in template.iter_mut().zip(&segments) {
                    if t != s {
                        *t = "{id}".to_owned();
                    }
                }
                let after = joined(template);
                return Learned {
                    template: after,
                    renamed: Some(before),
                };
            }
        }
        let template = joined(&segments);
        if self.count < MAX_TEMPLATES {
            self.known.push((socket, method.to_owned(), segments));
            self.count += 1;
        }
        Learned {
            template,
            renamed: None,
        }
    }

    /// Forgets every template (the lab's Start over).
    pub fn clear(&mut self) {
        self.known.clear();
        self.count = 0;
    }
}

/// What a request is, besides a channel's traffic: what the page loads, a framework's handshake, or a
/// session's uploads. None of them is a channel (they are counted apart, and a page reloaded three times
/// is no polling loop); the rule is the proxy's and the HAR import's alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Aside {
    /// The page and what it loads: HTML, scripts, styles, images, fonts (a `GET` by its answer's type,
    /// a script only when its path names a file).
    Page,
    /// A framework's handshake: SockJS's `/info`, Engine.IO's open (its first poll, no `sid` yet),
    /// Bayeux's `/meta/handshake`.
    Handshake,
    /// What a long-polling or streaming session sends up: Engine.IO's `POST`s, SockJS's `xhr_send`.
    Upload,
}

/// Whether uploads to the path `upload` (a template) belong to the session channel at `path`, of
/// `method`: Engine.IO's `POST`s to its polling `GET`s' path; SockJS's `xhr_send` to the same
/// session's receiving transport (`xhr_streaming`, `xhr`, `eventsource`, `htmlfile`).
pub fn uploads_belong(upload: &str, method: &str, path: &str) -> bool {
    match upload
        .strip_suffix("/xhr_send")
        .or_else(|| upload.strip_suffix("/jsonp_send"))
    {
        Some(session) => path
            .strip_prefix(session)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|transport| {
                matches!(
                    transport,
                    "xhr_streaming" | "xhr" | "eventsource" | "htmlfile" | "jsonp"
                )
            }),
        None => method == "GET" && path == upload,
    }
}

/// Whether the channel named `other` is a fallback transport of the socket channel named `socket`: a
/// channel of the same session that is not a socket — Engine.IO's and SignalR's long polling on the
/// socket's own path, SockJS's `xhr_streaming` (or `xhr`, `eventsource`…) and Phoenix's `longpoll`
/// beside their `websocket`. A framework that
/// loses its socket carries on there, and the browser is back before its socket is.
pub fn fallback_of(socket: &str, other: &str) -> bool {
    fn session(name: &str) -> Option<(bool, &str)> {
        let (socket, path) = match name
            .strip_prefix("ws://")
            .or_else(|| name.strip_prefix("wss://"))
        {
            Some(rest) => (true, rest.find('/').map_or("/", |at| &rest[at..])),
            None => (false, name.split_once(' ')?.1),
        };
        let path = path.split_once('?').map_or(path, |(path, _)| path);
        let root = [
            "websocket",
            "xhr_streaming",
            "xhr",
            "eventsource",
            "htmlfile",
            "jsonp",
            "longpoll",
        ]
        .iter()
        .find_map(|transport| {
            path.strip_suffix(transport)
                .and_then(|rest| rest.strip_suffix('/'))
        })
        .unwrap_or(path);
        Some((socket, root))
    }
    match (session(socket), session(other)) {
        (Some((true, mine)), Some((false, theirs))) => mine == theirs,
        _ => false,
    }
}

/// The session a request on a socket's fallback transport belongs to, as its URL names it: Engine.IO's
/// `sid`, SignalR's `id` and Phoenix's `token` in the query, SockJS's session segment before its
/// transport (`/echo/123/f4k3/xhr`). None for a request that names none — a session's first, its
/// handshake, which is how a client that starts over begins.
pub fn session_of(url: &str) -> Option<&str> {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let named = query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (matches!(name, "sid" | "id" | "token") && !value.is_empty()).then_some(value)
    });
    named.or_else(|| {
        let mut segments = path.rsplit('/');
        let transport = segments.next()?;
        SOCKJS_TRANSPORTS
            .contains(&transport)
            .then(|| segments.next())
            .flatten()
            .filter(|session| !session.is_empty())
    })
}

/// What `method` `url` (with its query) answered as `mime` (lower case) is, if it is aside from the
/// channels.
pub fn aside(method: &str, url: &str, mime: &str) -> Option<Aside> {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    // By bytes: a reverse string search would be one more function in the page's WebAssembly.
    let after = |text: &str, byte: u8| {
        text.as_bytes()
            .iter()
            .rposition(|b| *b == byte)
            .map(|at| text[at + 1..].to_owned())
    };
    let last = after(path, b'/').unwrap_or_default();
    let last = last.as_str();
    let param = |name: &str| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some(name))
    };
    let engine_io = param("EIO");
    if engine_io && method == "POST" && param("sid") {
        return Some(Aside::Upload);
    }
    if engine_io && method == "GET" && !param("sid") && param("transport") {
        return Some(Aside::Handshake);
    }
    if method == "POST" && matches!(last, "xhr_send" | "jsonp_send") {
        return Some(Aside::Upload);
    }
    if path.ends_with("/meta/handshake") || (last == "info" && mime.contains("json")) {
        return Some(Aside::Handshake);
    }
    let file = last.contains('.')
        && last.split('.').next_back().is_some_and(|ext| {
            matches!(
                ext,
                "js" | "mjs"
                    | "css"
                    | "html"
                    | "htm"
                    | "png"
                    | "jpg"
                    | "jpeg"
                    | "gif"
                    | "svg"
                    | "ico"
                    | "webp"
                    | "woff"
                    | "woff2"
                    | "ttf"
                    | "wasm"
                    | "map"
            )
        });
    let resource = mime.starts_with("text/html")
        || mime.starts_with("text/css")
        || mime.starts_with("image/")
        || mime.starts_with("font/")
        || mime.starts_with("application/wasm")
        || (mime.contains("javascript") && file);
    (method == "GET" && (resource || (file && mime.is_empty()))).then_some(Aside::Page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fallback_request_names_its_session_and_a_handshake_none() {
        for (url, session) in [
            // Engine.IO: the handshake names none; its polls and posts name the sid it got.
            (
                "http://app.test/socket.io/?EIO=4&transport=polling&t=PbX1",
                None,
            ),
            (
                "http://app.test/socket.io/?EIO=4&transport=polling&t=PbX2&sid=k3Y_AAAB",
                Some("k3Y_AAAB"),
            ),
            // SockJS: the segment before its transport.
            ("http://app.test/echo/123/f4k3ab/xhr", Some("f4k3ab")),
            ("http://app.test/echo/123/f4k3ab/xhr_send", Some("f4k3ab")),
            ("http://app.test/echo/info?t=1", None),
            // SignalR and Phoenix.
            ("http://app.test/hub?id=Qm9i&_=1", Some("Qm9i")),
            (
                "http://app.test/socket/longpoll?token=SFM&vsn=2.0.0",
                Some("SFM"),
            ),
            ("http://app.test/socket/longpoll?vsn=2.0.0", None),
            ("http://app.test/poll?sid=", None),
        ] {
            assert_eq!(session_of(url), session, "{url}");
        }
    }

    #[test]
    fn a_sockets_fallback_is_its_sessions_other_transport_and_nothing_else() {
        // Engine.IO: long polling on the socket's own path.
        assert!(fallback_of(
            "ws://127.0.0.1:4000/socket.io/",
            "GET /socket.io/"
        ));
        // SockJS: the session's streaming transport beside its websocket.
        assert!(fallback_of(
            "ws://app.test/echo/{n}/{id}/websocket",
            "POST /echo/{n}/{id}/xhr_streaming"
        ));
        assert!(fallback_of("wss://app.test/live", "GET /live?x=1"));
        // Phoenix: `longpoll` beside `websocket` under the socket's path.
        assert!(fallback_of(
            "ws://app.test/socket/websocket",
            "GET /socket/longpoll"
        ));
        // Another path, another socket, or a socket asked of a letter: not a fallback.
        assert!(!fallback_of(
            "ws://127.0.0.1:4000/socket.io/",
            "GET /api/status"
        ));
        assert!(!fallback_of(
            "ws://127.0.0.1:4000/socket.io/",
            "ws://127.0.0.1:4000/socket.io/"
        ));
        assert!(!fallback_of(
            "GET /socket.io/",
            "ws://127.0.0.1:4000/socket.io/"
        ));
    }

    #[test]
    fn ids_are_placeholders_by_their_look_and_words_stay() {
        assert_eq!(template_of("/api/rooms/42/events"), "/api/rooms/{n}/events");
        assert_eq!(
            template_of("/items/3f2b8c1e-9a4d-4e2b-8f6a-1c2d3e4f5a6b"),
            "/items/{uuid}"
        );
        assert_eq!(
            template_of("/live/u7Xk29QpLm/stream"),
            "/live/{id}/stream",
            "a random token"
        );
        assert_eq!(template_of("/cache/0123456789abcdef0"), "/cache/{id}");
        assert_eq!(template_of("/api/v2/poll"), "/api/v2/poll", "a version");
        assert_eq!(template_of("/socket.io/"), "/socket.io/");
        assert_eq!(template_of("/graphql"), "/graphql");
        assert_eq!(template_of("/"), "/");
        assert_eq!(
            template_of("/assets/app-3f2b.js"),
            "/assets/app-3f2b.js",
            "a file name is no id"
        );
    }

    #[test]
    fn a_sockjs_session_url_is_its_endpoint_whatever_its_session_id_looks_like() {
        for session in ["xk2bqmtd", "abcdefgh", "a", "0tuvwxyz"] {
            assert_eq!(
                template_of(&format!("/sockjs/412/{session}/websocket")),
                "/sockjs/{server}/{session}/websocket"
            );
        }
        assert_eq!(
            template_of("/chat/sockjs/7/qwertyui/xhr_streaming"),
            "/chat/sockjs/{server}/{session}/xhr_streaming"
        );
        assert_eq!(template_of("/sockjs/info"), "/sockjs/info");
    }

    #[test]
    fn a_segment_that_differs_between_otherwise_equal_paths_is_learned_and_renames_the_first() {
        let mut routes = Routes::default();
        let first = routes.learn("GET", "/rooms/general/events", false);
        assert_eq!(first.template, "/rooms/general/events");
        assert_eq!(first.renamed, None);
        let second = routes.learn("GET", "/rooms/random/events", false);
        assert_eq!(second.template, "/rooms/{id}/events");
        assert_eq!(second.renamed.as_deref(), Some("/rooms/general/events"));
        let third = routes.learn("GET", "/rooms/lobby/events", false);
        assert_eq!(third.template, "/rooms/{id}/events");
        assert_eq!(third.renamed, None, "learned once");
    }

    #[test]
    fn different_endpoints_stay_apart() {
        let mut routes = Routes::default();
        for path in ["/api/status", "/api/poll", "/state", "/events"] {
            assert_eq!(routes.learn("GET", path, false).template, path);
        }
        // The first and last segments name an endpoint: never learned as ids.
        assert_eq!(
            routes.learn("GET", "/api/orders/list", false).template,
            "/api/orders/list"
        );
        assert_eq!(
            routes.learn("GET", "/api/orders/poll", false).template,
            "/api/orders/poll"
        );
        // Another method, or a socket, is another endpoint.
        assert_eq!(
            routes.learn("POST", "/rooms/a/events", false).template,
            "/rooms/a/events"
        );
        assert_eq!(
            routes.learn("GET", "/rooms/a/events", true).template,
            "/rooms/a/events"
        );
        // Paths that differ in two words are not one endpoint.
        routes.learn("GET", "/x/one/two/y", false);
        assert_eq!(
            routes.learn("GET", "/x/three/four/y", false).template,
            "/x/three/four/y"
        );
    }

    #[test]
    fn pages_handshakes_and_uploads_are_aside_and_a_sessions_traffic_is_not() {
        let js = "application/javascript; charset=utf-8";
        for (method, url, mime, aside_as) in [
            ("GET", "/", "text/html; charset=utf-8", Some(Aside::Page)),
            ("GET", "/socket.io/socket.io.js", js, Some(Aside::Page)),
            ("GET", "/app.css", "", Some(Aside::Page)),
            ("GET", "/logo.png", "image/png", Some(Aside::Page)),
            (
                "GET",
                "/sockjs/info?t=1796",
                "application/json; charset=utf-8",
                Some(Aside::Handshake),
            ),
            (
                "GET",
                "/socket.io/?EIO=4&transport=polling&t=abc",
                "text/plain",
                Some(Aside::Handshake),
            ),
            (
                "POST",
                "/cometd/meta/handshake",
                "application/json",
                Some(Aside::Handshake),
            ),
            (
                "POST",
                "/socket.io/?EIO=4&transport=polling&sid=x1",
                "text/html",
                Some(Aside::Upload),
            ),
            (
                "POST",
                "/sockjs/123/abcdefgh/xhr_send?t=1",
                "text/plain",
                Some(Aside::Upload),
            ),
            // A session's own traffic, and an app's JSON, are channels' business.
            (
                "GET",
                "/socket.io/?EIO=4&transport=polling&sid=x1",
                "text/plain",
                None,
            ),
            ("POST", "/sockjs/123/abcdefgh/xhr_streaming?t=1", js, None),
            ("POST", "/sockjs/123/abcdefgh/xhr?t=1", js, None),
            ("GET", "/status", "application/json", None),
            ("GET", "/api/info", "text/plain", None),
        ] {
            assert_eq!(aside(method, url, mime), aside_as, "{method} {url}");
        }
    }

    #[test]
    fn uploads_belong_to_their_sessions_channel() {
        assert!(uploads_belong("/socket.io/", "GET", "/socket.io/"));
        assert!(!uploads_belong("/socket.io/", "POST", "/socket.io/"));
        let send = "/sockjs/{server}/{session}/xhr_send";
        assert!(uploads_belong(
            send,
            "POST",
            "/sockjs/{server}/{session}/xhr_streaming"
        ));
        assert!(uploads_belong(
            send,
            "POST",
            "/sockjs/{server}/{session}/xhr"
        ));
        assert!(!uploads_belong(
            send,
            "GET",
            "/sockjs/{server}/{session}/websocket"
        ));
        assert!(!uploads_belong(send, "GET", "/other/xhr"));
    }

    #[test]
    fn the_learner_is_bounded() {
        let mut routes = Routes::default();
        for at in 0..MAX_TEMPLATES + 10 {
            routes.learn("GET", &format!("/p{at}x/a/b/c{at}z"), false);
        }
        assert_eq!(routes.count, MAX_TEMPLATES);
        assert_eq!(
            routes.learn("GET", "/unseen/a/b/c", false).template,
            "/unseen/a/b/c",
            "still read by its look"
        );
    }
}
