//! The page's own headers against a real server: `nosniff` everywhere, and a Content-Security-Policy
//! on the page that names its inline script by hash and lets its calls through.

mod common;

use base64::Engine;
use common::TestServer;
use sha2::{Digest, Sha256};

#[tokio::test]
async fn the_page_is_served_with_a_policy_naming_its_inline_script_and_everything_with_nosniff() {
    let dist = std::env::temp_dir().join(format!("switchboard-page-{}", std::process::id()));
    std::fs::create_dir_all(&dist).unwrap();
    let script = "\nimport init from '/app.js';\nawait init();\n";
    std::fs::write(
        dist.join("index.html"),
        format!(
            "<!doctype html><html><head><script type=\"module\">{script}</script></head></html>"
        ),
    )
    .unwrap();
    let server = TestServer::start_with(|config| config.static_dir = Some(dist.clone())).await;

    let page = server.http.get(server.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script));
    assert!(policy.contains(&format!("'sha256-{hash}'")), "{policy}");
    assert!(policy.contains("'wasm-unsafe-eval'"), "{policy}");
    assert!(
        policy.contains("https://127.0.0.1:*"),
        "the video call may dial any instance's UDP port: {policy}"
    );
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(
        page.text().await.unwrap().contains(script),
        "the page is served whole"
    );

    for path in ["/api/stats", "/nowhere", "/api/webtransport"] {
        let answer = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(
            answer.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
        assert!(
            answer.headers().get("content-security-policy").is_none(),
            "{path}: no page, no policy"
        );
    }
    std::fs::remove_dir_all(&dist).unwrap();
}

#[tokio::test]
async fn the_built_page_travels_compressed_and_its_hashed_files_are_cached_for_a_year() {
    let dist = std::env::temp_dir().join(format!("switchboard-built-{}", std::process::id()));
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(dist.join("index.html"), "<!doctype html><title>x</title>").unwrap();
    let wasm = "app-0123456789abcdef_bg.wasm";
    std::fs::write(dist.join(wasm), vec![7u8; 50_000]).unwrap();
    std::fs::write(dist.join(format!("{wasm}.br")), b"brotli bytes").unwrap();
    std::fs::write(dist.join(format!("{wasm}.gz")), b"gzip bytes").unwrap();
    let server = TestServer::start_with(|config| config.static_dir = Some(dist.clone())).await;
    // reqwest here decodes nothing itself: what the server sent is what is read.
    let get = |encoding: &'static str| {
        server
            .http
            .get(server.url(&format!("/{wasm}")))
            .header("accept-encoding", encoding)
            .send()
    };
    let br = get("gzip, deflate, br").await.unwrap();
    assert_eq!(br.headers()["content-encoding"], "br");
    assert_eq!(
        br.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        br.headers()["vary"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("accept-encoding")
    );
    assert_eq!(&br.bytes().await.unwrap()[..], b"brotli bytes");
    let gz = get("gzip").await.unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert_eq!(&gz.bytes().await.unwrap()[..], b"gzip bytes");
    let plain = get("identity").await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.bytes().await.unwrap().len(), 50_000);

    let page = server.http.get(server.url("/")).send().await.unwrap();
    assert_eq!(page.headers()["cache-control"], "no-cache");
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dist);
}
