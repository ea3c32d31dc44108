//! A client that recovers on its own, one per lane, with the same policy as the browser's: a watchdog
//! that declares a silent line dead after 2.5 heartbeat intervals, redials with full-jitter backoff,
//! resumes after its last seq, notices a new epoch, and keeps honest books in a `SeqTracker`.

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_shared::recovery::Watchdog;
use switchboard_shared::ws::{Heartbeat, Hello};
use switchboard_shared::{Backoff, Batch, Event, Gap, LaneId, SeqTracker, ServerMessage};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// What a follower saw.
#[derive(Debug, Default, Clone)]
pub struct Books {
    pub tracker: SeqTracker,
    /// Every event received, in order of receipt, with when it arrived (Unix ms).
    pub events: Vec<(Event, u64)>,
    /// Lines opened (hello received) or letters answered after a failure.
    pub connects: u32,
    /// Lines the watchdog declared dead, with how long each had been silent.
    pub declared_dead: Vec<Duration>,
    /// Lines that ended because the server closed them or the connection failed.
    pub broken: u32,
    /// Requests or dials refused with an error status, or that got no answer in time.
    pub failures: u32,
    /// When the last outage began (the first failure after being up), and when it was next back.
    pub last_break: Option<Instant>,
    pub last_recovery: Option<Instant>,
    /// Between a failure and the next success.
    down: bool,
}

impl Books {
    fn event(&mut self, event: Event) {
        self.tracker.observe(event.seq);
        self.events.push((event, now_ms()));
    }

    fn broke(&mut self) {
        if !self.down {
            self.down = true;
            self.last_break = Some(Instant::now());
        }
    }

    fn back(&mut self) {
        if std::mem::take(&mut self.down) {
            self.last_recovery = Some(Instant::now());
        }
    }

    pub fn has(&self, seq: u64) -> bool {
        self.tracker.last().is_some_and(|last| last >= seq) && self.missing() == 0
    }

    pub fn missing(&self) -> u64 {
        self.tracker.missing_count()
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// How a follower paces itself.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub backoff: Backoff,
    /// How often letters are sent.
    pub poll_every: Duration,
    /// How long a long poll asks to be held.
    pub long_poll_wait_ms: u64,
    /// How long past its expected answer a letter is given up.
    pub letter_grace: Duration,
}

impl Policy {
    /// Quick steps, so tests do not wait long.
    pub fn fast() -> Policy {
        Policy {
            backoff: Backoff::new(50, 1_000, 2_000.0),
            poll_every: Duration::from_millis(100),
            long_poll_wait_ms: 1_000,
            letter_grace: Duration::from_millis(1_500),
        }
    }

    /// What the dashboard in the browser does (its defaults).
    pub fn browser() -> Policy {
        Policy {
            backoff: Backoff::standard(),
            poll_every: Duration::from_millis(1_000),
            long_poll_wait_ms: 25_000,
            letter_grace: Duration::from_millis(5_000),
        }
    }
}

pub struct Follower {
    pub lane: LaneId,
    pub books: Arc<Mutex<Books>>,
    task: JoinHandle<()>,
}

impl Follower {
    /// Follows `lane` on the server at `addr` from after `after`, with the fast policy.
    pub fn start(addr: SocketAddr, lane: LaneId, after: u64) -> Follower {
        Follower::with_policy(addr, lane, after, Policy::fast())
    }

    pub fn with_policy(addr: SocketAddr, lane: LaneId, after: u64, policy: Policy) -> Follower {
        let books = Arc::new(Mutex::new(Books {
            tracker: SeqTracker::resuming_after(after),
            ..Books::default()
        }));
        let task = tokio::spawn(follow(addr, lane, books.clone(), policy));
        Follower { lane, books, task }
    }

    pub fn books(&self) -> Books {
        self.books.lock().unwrap().clone()
    }

    /// Waits until the follower has every seq up to `seq` (none missing).
    pub async fn wait_for(&self, seq: u64, patience: Duration) {
        let deadline = Instant::now() + patience;
        loop {
            let books = self.books();
            if books.has(seq) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} follower did not get everything up to {seq} in time: {books:?}",
                self.lane
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn follow(addr: SocketAddr, lane: LaneId, books: Arc<Mutex<Books>>, policy: Policy) {
    let http = reqwest::Client::new();
    let mut backoff = policy.backoff;
    let grace = policy.letter_grace;
    let started = Instant::now();
    let clock = || started.elapsed().as_secs_f64() * 1000.0;
    loop {
        let after = books.lock().unwrap().tracker.last().unwrap_or(0);
        let outcome = match lane {
            LaneId::Poll => {
                let path = format!("/api/poll?after={after}");
                letter(&http, addr, &path, Duration::ZERO, grace, &books).await
            }
            LaneId::LongPoll => {
                let wait = policy.long_poll_wait_ms;
                let path = format!("/api/longpoll?after={after}&wait_ms={wait}");
                letter(
                    &http,
                    addr,
                    &path,
                    Duration::from_millis(wait),
                    grace,
                    &books,
                )
                .await
            }
            LaneId::Sse => radio(&http, addr, after, &books, &mut backoff, &clock).await,
            LaneId::Ws => call(addr, after, &books, &mut backoff, &clock).await,
        };
        match outcome {
            Ok(()) if matches!(lane, LaneId::Poll) => {
                backoff.up(clock());
                tokio::time::sleep(policy.poll_every).await;
            }
            Ok(()) => backoff.up(clock()),
            Err(()) => {
                books.lock().unwrap().broke();
                let wait = backoff.down(clock(), rand::random::<f64>());
                tokio::time::sleep(Duration::from_millis(u64::from(wait))).await;
            }
        }
    }
}

/// One letter; `Err` when it failed (error status, no answer in time).
async fn letter(
    http: &reqwest::Client,
    addr: SocketAddr,
    path: &str,
    wait: Duration,
    grace: Duration,
    books: &Mutex<Books>,
) -> Result<(), ()> {
    let request = http
        .get(format!("http://{addr}{path}"))
        .timeout(wait + grace)
        .send();
    let batch = match request.await {
        Ok(response) if response.status().is_success() => response.json::<Batch>().await.ok(),
        _ => None,
    };
    let mut books = books.lock().unwrap();
    let Some(batch) = batch else {
        books.failures += 1;
        return Err(());
    };
    books.tracker.observe_epoch(batch.epoch, batch.head);
    if let Some(gap) = batch.gap {
        books.tracker.declare_lost(gap);
    }
    for event in batch.events {
        books.event(event);
    }
    books.back();
    Ok(())
}

/// A line said hello: it is up, watched from now at the heartbeat interval it promises.
fn hello(
    books: &Mutex<Books>,
    hello: &Hello,
    watchdog: &mut Option<Watchdog>,
    backoff: &mut Backoff,
    now: f64,
) {
    *watchdog = Some(Watchdog::new(hello.heartbeat_ms, now));
    backoff.up(now);
    let mut books = books.lock().unwrap();
    books.tracker.observe_epoch(hello.epoch, hello.head);
    books.connects += 1;
    books.back();
}

/// The next item of a line, unless the watchdog declares the line dead first (after 2.5 heartbeat
/// intervals of silence; 10 s before the hello) or the line ends: `Err` in both cases, with the books
/// told which.
async fn watched<T, E>(
    watchdog: &mut Option<Watchdog>,
    clock: &impl Fn() -> f64,
    books: &Mutex<Books>,
    next: impl std::future::Future<Output = Option<Result<T, E>>>,
) -> Result<T, ()> {
    let deadline = watchdog.map_or(Duration::from_secs(10), |dog| {
        Duration::from_millis((dog.deadline_ms() - clock()).max(0.0) as u64)
    });
    match tokio::time::timeout(deadline, next).await {
        Err(_) => {
            let silent = watchdog.map_or(0.0, |dog| dog.silent_ms(clock()));
            books
                .lock()
                .unwrap()
                .declared_dead
                .push(Duration::from_millis(silent as u64));
            Err(())
        }
        Ok(Some(Ok(item))) => {
            if let Some(dog) = watchdog {
                dog.sign_of_life(clock());
            }
            Ok(item)
        }
        Ok(_) => {
            books.lock().unwrap().broken += 1;
            Err(())
        }
    }
}

/// Listens until the watchdog declares the line dead or it ends; `Err` in every case a line ends.
async fn radio(
    http: &reqwest::Client,
    addr: SocketAddr,
    after: u64,
    books: &Mutex<Books>,
    backoff: &mut Backoff,
    clock: &impl Fn() -> f64,
) -> Result<(), ()> {
    // Redial as a browser's EventSource does: with Last-Event-ID.
    let response = http
        .get(format!("http://{addr}/api/sse"))
        .header("Last-Event-ID", after.to_string())
        .timeout(Duration::from_secs(3600))
        .send()
        .await;
    let response = match response {
        Ok(response) if response.status().is_success() => response,
        _ => {
            books.lock().unwrap().failures += 1;
            return Err(());
        }
    };
    let mut stream = response.bytes_stream().eventsource();
    let mut watchdog: Option<Watchdog> = None;
    loop {
        let item = watched(&mut watchdog, clock, books, stream.next()).await?;
        match item.event.as_str() {
            "hello" => {
                let said: Hello = serde_json::from_str(&item.data).unwrap();
                hello(books, &said, &mut watchdog, backoff, clock());
            }
            "heartbeat" => {
                let beat: Heartbeat = serde_json::from_str(&item.data).unwrap();
                books.lock().unwrap().tracker.observe_head(beat.head);
            }
            "gap" => {
                let gap: Gap = serde_json::from_str(&item.data).unwrap();
                books.lock().unwrap().tracker.declare_lost(gap);
            }
            _ => books
                .lock()
                .unwrap()
                .event(serde_json::from_str(&item.data).unwrap()),
        }
    }
}

async fn call(
    addr: SocketAddr,
    after: u64,
    books: &Mutex<Books>,
    backoff: &mut Backoff,
    clock: &impl Fn() -> f64,
) -> Result<(), ()> {
    let Ok((mut socket, _)) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/ws?after={after}")).await
    else {
        books.lock().unwrap().failures += 1;
        return Err(());
    };
    let mut watchdog: Option<Watchdog> = None;
    loop {
        let frame = watched(&mut watchdog, clock, books, socket.next()).await?;
        let Message::Text(text) = frame else {
            if let Message::Close(_) = frame {
                books.lock().unwrap().broken += 1;
                return Err(());
            }
            continue;
        };
        match serde_json::from_str::<ServerMessage>(text.as_str()).unwrap() {
            ServerMessage::Hello(said) => hello(books, &said, &mut watchdog, backoff, clock()),
            ServerMessage::Event(event) => books.lock().unwrap().event(event),
            ServerMessage::Heartbeat(beat) => books.lock().unwrap().tracker.observe_head(beat.head),
            ServerMessage::Gap(gap) => {
                books.lock().unwrap().tracker.declare_lost(gap);
            }
            _ => {}
        }
    }
}
