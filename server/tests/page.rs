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
