//! Behind the real nginx with the shipped configuration (`deploy/nginx/switchboard.conf`), in front of
//! two instances sharing one stream through Redis: every lane passes through it unbuffered, letters that
//! are up to date come from its one-second cache, and the per-client limits count the client nginx
//! forwards, which a client cannot forge.

mod common;

use common::{PATIENCE, TestServer};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use switchboard_client::nginx::Nginx;
use switchboard_client::redis::Redis;
use switchboard_shared::{LaneId, ServerMessage};

/// Redis, instances `a` and `b` started with `--trust-proxy`, and nginx in front of them.
struct Cluster {
    front: TestServer,
    instances: Vec<TestServer>,
    nginx: Nginx,
    _redis: Redis,
}

impl Cluster {
    async fn start(adjust: impl Fn(&mut switchboard_server::Config)) -> Cluster {
        let redis = Redis::start();
        let mut instances = Vec::new();
        for name in ["a", "b"] {
            let instance = TestServer::start_with(|config| {
                config.instance = Some(name.into());
                config.redis = Some(redis.url());
                config.trust_proxy = true;
                adjust(config);
            })
            .await;
            instances.push(instance);
        }
        let upstreams: Vec<SocketAddr> = instances.iter().map(|server| server.addr).collect();
        let nginx = Nginx::start(&upstreams);
        let front = TestServer::front(SocketAddr::from(([127, 0, 0, 1], nginx.port)));
        Cluster {
            front,
            instances,
            nginx,
            _redis: redis,
        }
    }

    /// Requests the instances answered on `lane`, together.
    async fn origin_requests(&self, lane: LaneId) -> u64 {
        let mut total = 0;
        for instance in &self.instances {
            total += instance.stats().await.lanes[&lane].requests;
        }
        total
    }

    async fn stop(self) {
        drop(self.nginx);
        for instance in self.instances {
            instance.shutdown().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lane_passes_through_nginx_unbuffered() {
    let cluster = Cluster::start(|_| {}).await;
    let front = &cluster.front;
    // The page learns it is behind a proxy, and its idle timeout, from every answer.
    let health = front.http.get(front.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "{}", cluster.nginx.error_log());
    assert_eq!(
        health.headers()["x-switchboard-proxy"],
        "nginx; idle-timeout=15s"
    );

    let mut radio = front.sse("/api/sse", None).await;
    let mut endless = front.stream("/api/stream").await;
    let mut phone = front.ws("/ws").await;
    assert!(matches!(
        endless.next_message().await,
        Some(ServerMessage::Hello(_))
    ));
    assert!(matches!(
        phone.next_message().await,
        ServerMessage::Hello(_)
    ));
    let head = front.stats().await.head;
    let held = tokio::spawn({
        let url = front.url(&format!("/api/longpoll?after={head}&wait_ms=20000"));
        let http = front.http.clone();
        async move {
            let started = Instant::now();
            let answer: switchboard_shared::Batch =
                http.get(url).send().await.unwrap().json().await.unwrap();
            (answer, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    // One event, published through nginx to whichever instance: every lane has it promptly (a buffering
    // proxy would hold the streams' few bytes back).
    let published = Instant::now();
    let seq = front.post_chat("through the proxy").await.seq;
    let (_, event) = radio.next_event().await;
    assert_eq!(event.seq, seq);
    assert_eq!(endless.next_event().await.seq, seq);
    assert_eq!(phone.next_event().await.seq, seq);
    assert!(
        published.elapsed() < Duration::from_secs(2),
        "the streams took {:?}",
        published.elapsed()
    );
    let (batch, waited) = held.await.unwrap();
    assert_eq!(batch.events.first().map(|e| e.seq), Some(seq));
    assert!(waited >= Duration::from_millis(300), "held {waited:?}");
    let letter = front.batch(&format!("/api/poll?after={}", seq - 1)).await;
    assert_eq!(letter.events.first().map(|e| e.seq), Some(seq));
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn letters_that_are_up_to_date_come_from_the_proxy_cache() {
    let cluster = Cluster::start(|_| {}).await;
    let front = &cluster.front;
    let head = front.stats().await.head;
    let before = cluster.origin_requests(LaneId::Poll).await;
    // Forty clients, up to date, ask at once: nginx sends one through and answers the rest.
    let url = front.url(&format!("/api/poll?after={head}"));
    let asks: Vec<_> = (0..40)
        .map(|_| {
            let (http, url) = (front.http.clone(), url.clone());
            tokio::spawn(async move {
                let answer = http.get(url).send().await.unwrap();
                answer.headers()["x-cache-status"]
                    .to_str()
                    .unwrap()
                    .to_owned()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for ask in asks {
        statuses.push(ask.await.unwrap());
    }
    let hits = statuses.iter().filter(|s| s.as_str() == "HIT").count();
    let origin = cluster.origin_requests(LaneId::Poll).await - before;
    assert!(hits >= 30, "{statuses:?}");
    assert!(origin <= 3, "the instances answered {origin} of 40");
    // A second later the cache has expired: news reaches the letters within about a second.
    let seq = front.post_chat("news").await.seq;
    let started = Instant::now();
    loop {
        let batch = front.batch(&format!("/api/poll?after={head}")).await;
        if batch.events.iter().any(|event| event.seq == seq) {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the cached letter never refreshed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    cluster.stop().await;
}

/// An HTTP client whose connections come from `ip` (any 127.x.y.z is this machine).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(ip))
        .build()
        .unwrap()
}

/// Opens a radio through `front` claiming to be `forged`; the stream, when it opened, is kept in `held`.
async fn open_radio(
    http: &reqwest::Client,
    front: &TestServer,
    forged: &str,
    held: &mut Vec<reqwest::Response>,
) -> u16 {
    let mut request = http.get(front.url("/api/sse"));
    if !forged.is_empty() {
        request = request.header("x-forwarded-for", forged);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    if status == 200 {
        held.push(response);
    }
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_count_the_client_nginx_forwards_and_a_forged_address_changes_nothing() {
    // One stream per client address, on each instance.
    let cluster = Cluster::start(|config| config.max_connections_per_client = 1).await;
    let front = &cluster.front;
    let (one, two) = (client_from([127, 0, 0, 1]), client_from([127, 0, 0, 2]));
    // Every connection reaches the instances from nginx's address; with the forwarded one, two clients
    // of two addresses each get a stream on the same instance (round robin sends the first two
    // requests to different instances, so open two each).
    let (mut statuses, mut held) = (Vec::new(), Vec::new());
    for http in [&one, &two] {
        statuses.push(open_radio(http, front, "", &mut held).await);
        statuses.push(open_radio(http, front, "", &mut held).await);
    }
    assert_eq!(statuses, [200, 200, 200, 200]);
    // A third from the same address is refused on either instance, whatever it claims to be.
    for instance_turn in 0..2 {
        let status = open_radio(&one, front, "203.0.113.9", &mut held).await;
        assert_eq!(status, 429, "turn {instance_turn}");
    }
    drop(held);
    cluster.stop().await;
}

/// nginx compresses the JSON the instances send plain (a letter full of events) and keeps their cache
/// headers; it never compresses an event stream, whose events must not wait in a compressor's buffer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_gzips_letters_but_never_a_stream() {
    let cluster = Cluster::start(|_| {}).await;
    let front = &cluster.front;
    for n in 0..10 {
        front
            .post_chat(&format!(
                "a message long enough to be worth compressing, number {n}"
            ))
            .await;
    }
    // A client that decompresses nothing by itself, so the headers are what nginx sent.
    let raw = reqwest::Client::builder().build().unwrap();
    let letter = raw
        .get(front.url("/api/poll?after=0"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(letter.status(), 200, "{}", cluster.nginx.error_log());
    assert_eq!(
        letter
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("gzip")
    );
    assert_eq!(letter.headers()["cache-control"], "no-store");
    let zipped = letter.bytes().await.unwrap();
    assert_eq!(&zipped[..2], &[0x1f, 0x8b], "a gzip body");

    let radio = raw
        .get(front.url("/api/sse"))
        .header("accept-encoding", "gzip")
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(radio.status(), 200);
    assert!(
        radio.headers().get("content-encoding").is_none(),
        "the radio was compressed: {:?}",
        radio.headers()
    );
    drop(radio);
    cluster.stop().await;
}
