//! A client of any lane that recovers on its own, with the same policy as the browser's: a watchdog
//! that declares a silent line dead after 2.5 heartbeat intervals, redials with full-jitter backoff,
//! resumes after its last seq, notices a new epoch, and keeps honest books in a `SeqTracker`.

use futures_util::{Stream, StreamExt, stream};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_shared::recovery::Watchdog;
use switchboard_shared::ws::Hello;
use switchboard_shared::{
    Backoff, Event, LaneId, SeqTracker, ServerMessage, Shape, WebTransportMode,
};
use tokio::task::JoinHandle;

use crate::sse::SseClient;
use crate::stream::StreamClient;
use crate::webtransport::WtClient;
use crate::ws::{Ended, WsClient};
use crate::{ClientError, letters};

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

/// The wall clock in Unix milliseconds (the epoch of the server's `ts_ms`).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
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

/// One lane followed by a task of its own until dropped.
#[derive(Debug)]
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
    let base = format!("http://{addr}");
    let mut backoff = policy.backoff;
    let started = Instant::now();
    let clock = || started.elapsed().as_secs_f64() * 1000.0;
    loop {
        let after = books.lock().unwrap().tracker.last().unwrap_or(0);
        // Each lane's own transport; the letters share one.
        let outcome = match lane {
            LaneId::Poll | LaneId::LongPoll => {
                let url = letters::url(&base, lane, Some(after), policy.long_poll_wait_ms);
                let held = match lane.shape() {
                    Shape::HeldRequest => Duration::from_millis(policy.long_poll_wait_ms),
                    _ => Duration::ZERO,
                };
                letter(&http, &url, held + policy.letter_grace, &books).await
            }
            LaneId::HttpStream => {
                let url = format!("{base}{}?after={after}", lane.path());
                endless_letter(&http, &url, &books, &mut backoff, &clock).await
            }
            LaneId::Sse => {
                let url = format!("{base}{}", lane.path());
                radio(&http, &url, after, &books, &mut backoff, &clock).await
            }
            LaneId::Ws => {
                let url = format!("ws://{addr}{}?after={after}", lane.path());
                call(&url, &books, &mut backoff, &clock).await
            }
            LaneId::WebTransport => {
                video_call(&http, &base, after, &books, &mut backoff, &clock).await
            }
        };
        match outcome {
            Ok(()) if lane.shape() == Shape::Request => {
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
    url: &str,
    patience: Duration,
    books: &Mutex<Books>,
) -> Result<(), ()> {
    let answer = letters::send(http, url, Some(patience)).await;
    let mut books = books.lock().unwrap();
    let Ok(answer) = answer else {
        books.failures += 1;
        return Err(());
    };
    let batch = answer.batch;
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
    next: impl std::future::Future<Output = Result<T, E>>,
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
        Ok(Ok(item)) => {
            if let Some(dog) = watchdog {
                dog.sign_of_life(clock());
            }
            Ok(item)
        }
        Ok(Err(_)) => {
            books.lock().unwrap().broken += 1;
            Err(())
        }
    }
}

/// Listens until the watchdog declares the line dead or it ends; `Err` in every case a line ends.
async fn radio(
    http: &reqwest::Client,
    url: &str,
    after: u64,
    books: &Mutex<Books>,
    backoff: &mut Backoff,
    clock: &impl Fn() -> f64,
) -> Result<(), ()> {
    // Redial as a browser's EventSource does: with Last-Event-ID.
    let Ok(stream) = SseClient::open(http, url, Some(&after.to_string())).await else {
        books.lock().unwrap().failures += 1;
        return Err(());
    };
    let messages = stream::unfold(stream, |mut stream| async move {
        let message = stream.next_message().await?;
        Some((message.map(ServerMessage::from), stream))
    });
    listen(messages, books, backoff, clock).await
}

/// Takes in one message of a line (an endless letter's line, a call's frame).
fn take(
    books: &Mutex<Books>,
    message: ServerMessage,
    watchdog: &mut Option<Watchdog>,
    backoff: &mut Backoff,
    now: f64,
) {
    match message {
        ServerMessage::Hello(said) => hello(books, &said, watchdog, backoff, now),
        ServerMessage::Event(event) => books.lock().unwrap().event(event),
        ServerMessage::Heartbeat(beat) => books.lock().unwrap().tracker.observe_head(beat.head),
        ServerMessage::Gap(gap) => {
            books.lock().unwrap().tracker.declare_lost(gap);
        }
        _ => {}
    }
}

/// Reads the endless letter until the watchdog declares it dead or it ends; `Err` in every case.
async fn endless_letter(
    http: &reqwest::Client,
    url: &str,
    books: &Mutex<Books>,
    backoff: &mut Backoff,
    clock: &impl Fn() -> f64,
) -> Result<(), ()> {
    let Ok(stream) = StreamClient::open(http, url).await else {
        books.lock().unwrap().failures += 1;
        return Err(());
    };
    let messages = stream::unfold(stream, |mut stream| async move {
        stream.next_message().await.map(|message| (message, stream))
    });
    listen(messages, books, backoff, clock).await
}

/// Asks where to dial (as the page does on every dial, so behind a balancer it reaches whichever
/// instance answers), then reads the session until the watchdog declares it dead or it ends.
async fn video_call(
    http: &reqwest::Client,
    base: &str,
    after: u64,
    books: &Mutex<Books>,
    backoff: &mut Backoff,
    clock: &impl Fn() -> f64,
) -> Result<(), ()> {
    let dialled = async {
        let info = WtClient::info(http, base).await?;
        let url = WtClient::url(&info, Some(after), WebTransportMode::Stream);
        WtClient::connect(&info, &url).await
    };
    let Ok(session) = dialled.await else {
        books.lock().unwrap().failures += 1;
        return Err(());
    };
    let messages = stream::unfold(session, |mut session| async move {
        session
            .next_message()
            .await
            .map(|message| (message, session))
    });
    listen(messages, books, backoff, clock).await
}

/// Takes in a line's messages until the watchdog declares it dead or the line ends; `Err` in every
/// case a line ends. The endless letter, the radio and the video call give their client as a stream.
async fn listen(
    messages: impl Stream<Item = Result<ServerMessage, ClientError>>,
    books: &Mutex<Books>,
    backoff: &mut Backoff,
    clock: &impl Fn() -> f64,
) -> Result<(), ()> {
    let mut messages = std::pin::pin!(messages);
    let mut watchdog: Option<Watchdog> = None;
    loop {
        let next = async {
            messages
                .next()
                .await
                .unwrap_or_else(|| Err(ClientError::Protocol("the line ended".into())))
        };
        let message = watched(&mut watchdog, clock, books, next).await?;
        take(books, message, &mut watchdog, backoff, clock());
    }
}

async fn call(
    url: &str,
    books: &Mutex<Books>,
    backoff: &mut Backoff,
    clock: &impl Fn() -> f64,
) -> Result<(), ()> {
    let Ok((mut socket, _)) = WsClient::dial(url).await else {
        books.lock().unwrap().failures += 1;
        return Err(());
    };
    let mut watchdog: Option<Watchdog> = None;
    loop {
        let message = watched(&mut watchdog, clock, books, async {
            match socket.next_message().await {
                // A garbled frame is the server's bug, not a broken line: skip it.
                Err(Ended::Garbled(_)) => Ok(None),
                Err(ended) => Err(ended),
                Ok(message) => Ok(Some(message)),
            }
        })
        .await?;
        if let Some(message) = message {
            take(books, message, &mut watchdog, backoff, clock());
        }
    }
}
