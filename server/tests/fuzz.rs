//! Random input on every endpoint and on the WebSocket, from fixed seeds (so a failure can be replayed):
//! the server never answers with a server error, never panics, and the well-behaved clients beside the
//! noise receive every event, in order, with nothing missing.

mod common;

use common::TestServer;
use futures_util::SinkExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchboard_shared::{FaultRequest, ServerMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

const SEEDS: [u64; 3] = [1, 7, 2026];

const VALID_BODIES: [&str; 6] = [
    r#"{"author":"ana","text":"hello","client_ref":"r1"}"#,
    r#"{"type":"chat","author":"ana","text":"hello"}"#,
    r#"{"type":"ping","id":3,"client_ms":1700000000000.5}"#,
    r#"{"type":"resume","after":12}"#,
    r#"{"kind":"delay","lane":"ws","duration_ms":100,"delay_ms":5}"#,
    r#"{"kind":"half_open","lane":"all"}"#,
];

const PATHS: [&str; 9] = [
    "/api/poll",
    "/api/longpoll",
    "/api/sse",
    "/ws",
    "/api/messages",
    "/api/faults",
    "/api/stats",
    "/metrics",
    "/healthz",
];

/// Characters that matter to JSON and to HTTP, plus some that should not be there at all.
const NASTY: [char; 16] = [
    '{', '}', '[', ']', '"', ':', ',', '\\', '0', '9', '-', 'e', '\u{0}', '\u{7f}', 'é', '\u{fffd}',
];

fn mutate(rng: &mut StdRng, valid: &str) -> String {
    let mut chars: Vec<char> = valid.chars().collect();
    for _ in 0..rng.random_range(1..6) {
        let at = rng.random_range(0..=chars.len());
        match rng.random_range(0..3) {
            0 if at < chars.len() => {
                chars.remove(at);
            }
            1 if at < chars.len() => chars[at] = NASTY[rng.random_range(0..NASTY.len())],
            _ => chars.insert(at, NASTY[rng.random_range(0..NASTY.len())]),
        }
    }
    chars.into_iter().collect()
}

fn random_bytes(rng: &mut StdRng, max: usize) -> Vec<u8> {
    let len = rng.random_range(0..max);
    (0..len).map(|_| rng.random()).collect()
}

fn random_query(rng: &mut StdRng) -> String {
    let keys = ["after", "wait_ms", "x", "after[]", ""];
    let values = [
        "-1",
        "18446744073709551616",
        "1e3",
        "%00",
        "%FF",
        "",
        "abc",
        "5",
        "60001",
    ];
    let mut query = String::new();
    for _ in 0..rng.random_range(0..3) {
        query.push(if query.is_empty() { '?' } else { '&' });
        query.push_str(keys[rng.random_range(0..keys.len())]);
        query.push('=');
        query.push_str(values[rng.random_range(0..values.len())]);
    }
    query
}

#[tokio::test]
async fn random_requests_frames_and_bytes_never_break_the_server_or_its_other_clients() {
    // A token, so that random bodies that happen to be valid faults cannot cut the bystanders; a short
    // request deadline, so half-sent garbage is let go of quickly.
    let server = TestServer::start_with(|config| {
        config.admin_token = Some("fuzz".into());
        config.request_timeout_ms = 500;
    })
    .await;
    // The bystanders keep reading (and so answer the server's pings) while the noise goes on.
    let mut phone = server.ws("/ws").await;
    phone.next_message().await;
    let (phone_heard, mut phone_seqs) = tokio::sync::mpsc::unbounded_channel();
    let phone_task = tokio::spawn(async move {
        loop {
            match phone.next_non_heartbeat().await {
                ServerMessage::Event(event) => {
                    let _ = phone_heard.send(Ok(event.seq));
                }
                ServerMessage::Gap(gap) => {
                    let _ = phone_heard.send(Err(gap));
                }
                _ => {}
            }
        }
    });
    let mut radio = server.sse("/api/sse", None).await;
    radio.next_named("hello").await;
    let (radio_heard, mut radio_seqs) = tokio::sync::mpsc::unbounded_channel();
    let radio_task = tokio::spawn(async move {
        loop {
            let (_, event) = radio.next_event().await;
            let _ = radio_heard.send(event.seq);
        }
    });
    let mut published = Vec::new();

    for seed in SEEDS {
        let mut rng = StdRng::seed_from_u64(seed);
        for round in 0..150 {
            let path = PATHS[rng.random_range(0..PATHS.len())];
            let url = server.url(&format!("{path}{}", random_query(&mut rng)));
            let body: Vec<u8> = if rng.random_bool(0.5) {
                let valid = VALID_BODIES[rng.random_range(0..VALID_BODIES.len())];
                mutate(&mut rng, valid).into_bytes()
            } else {
                random_bytes(&mut rng, 600)
            };
            let method = ["GET", "POST", "PUT", "DELETE"][rng.random_range(0..4)];
            let mut request = server
                .http
                .request(method.parse().unwrap(), &url)
                .header("content-type", "application/json")
                // Streams and held letters that open are let go at once: only the status matters.
                .timeout(std::time::Duration::from_millis(300))
                .body(body);
            if rng.random_bool(0.2) {
                let id = String::from_utf8_lossy(&random_bytes(&mut rng, 12))
                    .replace(|c: char| c.is_control(), "");
                request = request.header("last-event-id", id);
            }
            if let Ok(response) = request.send().await {
                assert!(
                    !response.status().is_server_error(),
                    "seed {seed} round {round}: {method} {url} → {}",
                    response.status()
                );
            }
            if round % 10 == 0 {
                published.push(
                    server
                        .post_chat(&format!("seed {seed} round {round}"))
                        .await
                        .seq,
                );
            }
        }

        // Random frames on the phone line, on connections that may be hung up on for misbehaving.
        let mut rude = server.ws("/ws").await;
        for _ in 0..60 {
            let frame = match rng.random_range(0..3) {
                0 => Message::binary(random_bytes(&mut rng, 200)),
                1 => Message::text(
                    String::from_utf8_lossy(&random_bytes(&mut rng, 200)).into_owned(),
                ),
                _ => {
                    let valid = VALID_BODIES[rng.random_range(1..4)];
                    Message::text(mutate(&mut rng, valid))
                }
            };
            if rude.0.socket.send(frame).await.is_err() {
                rude = server.ws("/ws").await;
            }
        }

        // Raw bytes where an HTTP request should be.
        for _ in 0..10 {
            let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
            let _ = tcp.write_all(&random_bytes(&mut rng, 400)).await;
            let _ = tcp.write_all(b"\r\n\r\n").await;
            let mut sink = Vec::new();
            // Garbage is answered 400 or, when it never completes a request head, cut off at the deadline.
            tokio::time::timeout(common::PATIENCE, tcp.read_to_end(&mut sink))
                .await
                .expect("the server lets go of a garbage connection")
                .ok();
            if let Ok(text) = std::str::from_utf8(&sink) {
                assert!(!text.starts_with("HTTP/1.1 5"), "seed {seed}: {text}");
            }
        }
    }
    published.push(server.post_chat("after the noise").await.seq);

    // The bystanders heard every chat message, in order, with nothing missing and no gap notice.
    let mut heard_by_phone = Vec::new();
    while heard_by_phone.len() < published.len() {
        let heard = tokio::time::timeout(common::PATIENCE, phone_seqs.recv())
            .await
            .expect("the phone line keeps delivering")
            .expect("the phone line stays up");
        match heard {
            Ok(seq) if published.contains(&seq) => heard_by_phone.push(seq),
            Ok(_) => {}
            Err(gap) => panic!("the phone line lost {gap:?}"),
        }
    }
    assert_eq!(heard_by_phone, published);
    let mut heard_by_radio = Vec::new();
    while heard_by_radio.len() < published.len() {
        let seq = tokio::time::timeout(common::PATIENCE, radio_seqs.recv())
            .await
            .expect("the radio keeps delivering")
            .expect("the radio stays up");
        if published.contains(&seq) {
            heard_by_radio.push(seq);
        }
    }
    assert_eq!(heard_by_radio, published);
    phone_task.abort();
    radio_task.abort();
    assert_eq!(server.get_json("/healthz").await.0, 200);
    server.shutdown().await;
}

#[test]
fn random_fault_requests_are_refused_or_within_bounds() {
    let mut rng = StdRng::seed_from_u64(99);
    let mut accepted = 0;
    for _ in 0..20_000 {
        let valid = VALID_BODIES[rng.random_range(4..6)];
        let text = mutate(&mut rng, valid);
        let Ok(request) = serde_json::from_str::<FaultRequest>(&text) else {
            continue;
        };
        if let Ok(duration) = request.validate() {
            accepted += 1;
            assert!(
                duration <= switchboard_shared::fault::MAX_FAULT_MS,
                "{text}"
            );
            assert!(
                request.delay_ms.unwrap_or(0) <= switchboard_shared::fault::MAX_DELAY_MS,
                "{text}"
            );
        }
    }
    assert!(accepted > 0, "some mutations are still valid requests");
}
