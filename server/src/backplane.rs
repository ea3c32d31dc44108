//! Several instances, one stream: the Redis backplane (`--redis redis://HOST:PORT`).
//!
//! Without it the [`Hub`] numbers and keeps events itself. With it, Redis holds the truth and every
//! instance's hub is a mirror of it:
//! - **Publishing** runs one Lua script: it increments the shared seq counter, stamps the event with
//!   Redis's clock and appends it to a Redis Stream of bounded length, under the id `SEQ-0` — so seqs are
//!   atomic across instances and the stream is in seq order. The publisher gets the seq back; it does
//!   not touch its own hub.
//! - **Following**: one task per instance reads the stream (`XREAD BLOCK`) from its last position and
//!   hands each entry to its hub, which serializes it once and fans it out to this instance's clients —
//!   every instance receives every event exactly once, from the same place.
//! - **The history** every resume reads is the stream: at start an instance loads its tail into the hub,
//!   so it can resume a client for seqs published through any other instance.
//! - **An epoch** key says which history the seqs belong to. A Redis that comes back empty (it keeps no
//!   data across a restart here) has none: the first instance to notice puts back its epoch and the
//!   newest seq it knows of, so seqs keep increasing, instances keep what they hold, and a client
//!   resuming from before gets an exact gap notice for anything Redis took with it. Only when the
//!   epoch in Redis is another one (every instance was gone too) does an instance start over: it
//!   empties its hub and cuts its streams, and clients count the new epoch.
//!
//! When Redis cannot be reached, the instance keeps its connections (heartbeats go on), reports
//! `degraded` with the reason on `/healthz`, refuses publishes with that reason, and reconnects with
//! backoff; it then reads on from its last position, so nothing that Redis still holds is missed. When it
//! is back it publishes a notice saying how long it was cut off and what was lost.

use redis::aio::MultiplexedConnection;
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use redis::{AsyncConnectionConfig, Client, RedisError, Script, Value};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use switchboard_shared::recovery::Backoff;
use switchboard_shared::{Event, EventBody, Notice, NoticeLevel, Seq};
use tokio_util::sync::CancellationToken;

use crate::hub::{Hub, now_ms};

/// Numbers the next event and appends it to the stream — or, given no body, only makes sure an epoch
/// exists. A missing epoch means Redis holds nothing of ours: on first use a new epoch begins; when
/// Redis lost its data (it keeps none across a restart here) the caller's epoch and newest seq are put
/// back, so seqs go on increasing and clients that resume are told exactly which seqs are gone.
/// KEYS: the seq counter, the stream, the epoch. ARGV: the body (JSON, or empty), the stream's bound, the
/// epoch the caller knows (or empty), the newest seq it knows of. Returns {seq, ts, epoch, recreated}.
const STREAM_SCRIPT: &str = r"
local recreated = 0
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  recreated = 1
  if ARGV[3] ~= '' then
    epoch = ARGV[3]
  else
    local now = redis.call('TIME')
    epoch = tostring(now[1] * 1000 + math.floor(now[2] / 1000))
  end
  redis.call('SET', KEYS[3], epoch)
  redis.call('SET', KEYS[1], ARGV[4])
  redis.call('DEL', KEYS[2])
end
if ARGV[1] == '' then
  return {0, 0, tonumber(epoch), recreated}
end
local seq = redis.call('INCR', KEYS[1])
local now = redis.call('TIME')
local ts = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], seq .. '-0',
  'ts', ts, 'epoch', epoch, 'body', ARGV[1])
return {seq, ts, tonumber(epoch), recreated}
";

/// Takes or keeps a lease: true when this instance holds it (for the next `ARGV[2]` ms).
const LEASE_SCRIPT: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
";

/// How long one read waits for new entries before asking again (and noticing a dead Redis).
const BLOCK_MS: u64 = 1000;
/// Entries taken per read: bounds what one read holds in memory.
const READ_COUNT: usize = 512;
/// How long a command may take before Redis counts as unreachable.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(1500);

/// Where the shared state lives in Redis; a prefix keeps several Switchboards apart on one Redis.
#[derive(Debug, Clone)]
struct Keys {
    seq: String,
    stream: String,
    epoch: String,
    sources: String,
}

impl Keys {
    fn new(prefix: &str) -> Keys {
        Keys {
            seq: format!("{prefix}:seq"),
            stream: format!("{prefix}:events"),
            epoch: format!("{prefix}:epoch"),
            sources: format!("{prefix}:sources-lease"),
        }
    }
}

/// What `/healthz` and `/api/stats` say about the backplane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackplaneStatus {
    /// Where Redis is (without any password).
    pub redis: String,
    pub state: LinkState,
    /// Why it is not `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// Since when (Unix ms) it has been in this state.
    pub since_ms: u64,
    /// The last seq this instance read from the stream.
    pub read: Seq,
    /// Publishes refused because Redis could not be reached.
    pub refused: u64,
    /// Seqs this instance saw accepted that no instance could read before Redis lost them.
    pub lost: u64,
}

/// Whether the instance reaches Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// Not yet reached since the start.
    Connecting,
    Ok,
    /// Lost; reconnecting with backoff.
    Degraded,
}

#[derive(Debug, Clone)]
struct Health {
    state: LinkState,
    why: Option<String>,
    since_ms: u64,
}

/// Why a publish failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot publish: Redis at {redis} is unreachable ({why}); try again shortly")]
pub struct PublishError {
    redis: String,
    why: String,
}

/// A publish that Redis accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub seq: Seq,
    pub ts_ms: u64,
}

/// One instance's link to the shared stream.
#[derive(Debug)]
pub struct Backplane {
    client: Client,
    redis: String,
    instance: String,
    keys: Keys,
    stream_len: usize,
    script: Script,
    lease: Script,
    /// The publishing connection (multiplexed, so concurrent publishes share it); `None` after it failed.
    publisher: Mutex<Option<MultiplexedConnection>>,
    health: RwLock<Health>,
    read: AtomicU64,
    /// The epoch this instance follows (0 before it first reached Redis).
    epoch: AtomicU64,
    /// The newest seq a publish through this instance got, in the current epoch.
    accepted: AtomicU64,
    refused: AtomicU64,
    lost: AtomicU64,
}

impl Backplane {
    /// A backplane for `url` (`redis://HOST:PORT[/DB]`); nothing is connected until [`Backplane::follow`]
    /// runs. The stream keeps about `stream_len` events.
    pub fn new(url: &str, instance: &str, stream_len: usize) -> Result<Backplane, RedisError> {
        let client = Client::open(url)?;
        let info = client.get_connection_info();
        let redis = format!("redis://{}", info.addr());
        Ok(Backplane {
            client,
            redis,
            instance: instance.to_owned(),
            keys: Keys::new("switchboard"),
            stream_len: stream_len.max(1),
            script: Script::new(STREAM_SCRIPT),
            lease: Script::new(LEASE_SCRIPT),
            publisher: Mutex::new(None),
            health: RwLock::new(Health {
                state: LinkState::Connecting,
                why: Some("not connected to Redis yet".into()),
                since_ms: now_ms(),
            }),
            read: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            lost: AtomicU64::new(0),
        })
    }

    pub fn status(&self) -> BackplaneStatus {
        let health = self
            .health
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        BackplaneStatus {
            redis: self.redis.clone(),
            state: health.state,
            why: health.why,
            since_ms: health.since_ms,
            read: self.read.load(Relaxed),
            refused: self.refused.load(Relaxed),
            lost: self.lost.load(Relaxed),
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.health.read().unwrap_or_else(|p| p.into_inner()).state == LinkState::Ok
    }

    fn set_health(&self, state: LinkState, why: Option<String>) {
        let mut health = self.health.write().unwrap_or_else(|p| p.into_inner());
        if health.state != state || health.why != why {
            *health = Health {
                state,
                why,
                since_ms: now_ms(),
            };
        }
    }

    /// Numbers `body` and appends it to the shared stream. Fails at once, with the reason, while Redis
    /// cannot be reached: a publish is either accepted with a seq or refused, never silently dropped.
    pub async fn publish(&self, body: &EventBody) -> Result<Stamp, PublishError> {
        if !self.is_healthy() {
            let why = self.status().why.unwrap_or_else(|| "not connected".into());
            return Err(self.refuse(why));
        }
        let json = serde_json::to_string(body).expect("event bodies serialize");
        match self.run_script(&json).await {
            Ok((seq, ts_ms, _epoch, _recreated)) => {
                self.accepted.fetch_max(seq, Relaxed);
                Ok(Stamp { seq, ts_ms })
            }
            Err(err) => Err(self.refuse(err.to_string())),
        }
    }

    fn refuse(&self, why: String) -> PublishError {
        self.refused.fetch_add(1, Relaxed);
        PublishError {
            redis: self.redis.clone(),
            why,
        }
    }

    async fn run_script(&self, body: &str) -> Result<ScriptReply, RedisError> {
        let mut conn = self.publishing_connection().await?;
        let result = self.invoke(&mut conn, body).await;
        if result.is_err() {
            // Dropped so the next publish dials again rather than reusing a broken connection.
            *self.publisher.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        result
    }

    /// Runs the stream script with what this instance knows (see [`STREAM_SCRIPT`]).
    async fn invoke(
        &self,
        conn: &mut MultiplexedConnection,
        body: &str,
    ) -> Result<ScriptReply, RedisError> {
        let epoch = self.epoch.load(Relaxed);
        let known_epoch = if epoch == 0 {
            String::new()
        } else {
            epoch.to_string()
        };
        let newest = self.read.load(Relaxed).max(self.accepted.load(Relaxed));
        self.script
            .key(&self.keys.seq)
            .key(&self.keys.stream)
            .key(&self.keys.epoch)
            .arg(body)
            .arg(self.stream_len)
            .arg(known_epoch)
            .arg(newest)
            .invoke_async(conn)
            .await
    }

    async fn publishing_connection(&self) -> Result<MultiplexedConnection, RedisError> {
        if let Some(conn) = self
            .publisher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Ok(conn);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT));
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        *self.publisher.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn.clone());
        Ok(conn)
    }

    /// True when this instance runs the server's own sources (host load, ticker) for everyone: one
    /// instance at a time holds the lease, so two instances do not publish two tickers.
    pub async fn leads_sources(&self, lease: Duration) -> bool {
        if !self.is_healthy() {
            return false;
        }
        let Ok(mut conn) = self.publishing_connection().await else {
            return false;
        };
        let held: Result<i64, _> = self
            .lease
            .key(&self.keys.sources)
            .arg(&self.instance)
            .arg(lease.as_millis() as u64)
            .invoke_async(&mut conn)
            .await;
        held == Ok(1)
    }

    /// Follows the stream into `hub` until `shutdown`: loads its tail, then reads every new entry, and
    /// reconnects with backoff whenever Redis goes away. `cut_streams` is called when Redis lost its
    /// data and the hub started a new epoch, so open streams end and their clients resume in it.
    pub async fn follow(
        self: Arc<Self>,
        hub: Arc<Hub>,
        shutdown: CancellationToken,
        cut_streams: impl Fn() + Send,
    ) {
        let mut backoff = Backoff::new(200, 5_000, 10_000.0);
        let clock = Instant::now();
        let elapsed_ms = || clock.elapsed().as_secs_f64() * 1000.0;
        // Where this instance is in the stream: the epoch and the last seq read.
        let mut position: Option<(u64, Seq)> = None;
        let mut outage: Option<Outage> = None;
        loop {
            let session = Session {
                backplane: &self,
                hub: &hub,
                position: &mut position,
                outage: &mut outage,
                cut_streams: &cut_streams,
                backoff: &mut backoff,
                up_at_ms: elapsed_ms(),
            };
            let failure = tokio::select! {
                () = shutdown.cancelled() => return,
                failure = session.run() => failure,
            };
            tracing::warn!(redis = %self.redis, "lost the shared stream: {failure}");
            self.set_health(LinkState::Degraded, Some(failure.to_string()));
            outage.get_or_insert_with(|| Outage {
                since: Instant::now(),
                refused_before: self.refused.load(Relaxed),
            });
            let wait = backoff.down(elapsed_ms(), rand::random::<f64>());
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(u64::from(wait))) => {}
            }
        }
    }
}

/// The stream script's answer: seq, timestamp, epoch, and whether the epoch had to be put back.
type ScriptReply = (Seq, u64, u64, u8);

/// A time the instance could not reach Redis.
#[derive(Debug, Clone, Copy)]
struct Outage {
    since: Instant,
    refused_before: u64,
}

/// One connection's worth of following.
struct Session<'a, F> {
    backplane: &'a Backplane,
    hub: &'a Arc<Hub>,
    position: &'a mut Option<(u64, Seq)>,
    outage: &'a mut Option<Outage>,
    cut_streams: &'a F,
    backoff: &'a mut Backoff,
    up_at_ms: f64,
}

impl<F: Fn()> Session<'_, F> {
    /// Connects, finds its place in the stream and reads on; returns only with the error that ended it.
    async fn run(self) -> RedisError {
        match self.try_run().await {
            Ok(never) => match never {},
            Err(err) => err,
        }
    }

    async fn try_run(self) -> Result<std::convert::Infallible, RedisError> {
        let backplane = self.backplane;
        // A read blocks for BLOCK_MS; the reply must be allowed that long and more.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT + Duration::from_millis(BLOCK_MS)));
        let mut conn = backplane
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let accepted = backplane.accepted.load(Relaxed);
        let (_, _, epoch, recreated) = backplane.invoke(&mut conn, "").await?;
        let mut last = match *self.position {
            // Same history: read on from where this instance was. Whatever the stream no longer has
            // (trimmed, or gone with a Redis that lost its data) the hub reports as a gap.
            Some((known, last)) if known == epoch => {
                if recreated == 1 && accepted > last {
                    backplane.lost.fetch_add(accepted - last, Relaxed);
                    tracing::warn!(
                        "Redis lost its data: seqs {}..={accepted}, accepted here, were never read",
                        last + 1
                    );
                }
                last
            }
            // Another history (every instance was gone as well): start over in it.
            _ => {
                if self.position.is_some() {
                    tracing::warn!("the shared stream is another epoch now: starting over in it");
                }
                self.hub.reset(epoch);
                // Streams opened before (even on the first join, a client may have come early) speak
                // of the old history: they end, and their clients resume in this one.
                (self.cut_streams)();
                backplane.epoch.store(epoch, Relaxed);
                self.load_tail(&mut conn, epoch).await?
            }
        };
        *self.position = Some((epoch, last));
        backplane.set_health(LinkState::Ok, None);
        self.backoff.up(self.up_at_ms);
        if let Some(outage) = self.outage.take() {
            self.announce_recovery(outage, epoch, recreated == 1).await;
        }
        loop {
            let reply: Option<StreamReadReply> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(READ_COUNT)
                .arg("BLOCK")
                .arg(BLOCK_MS)
                .arg("STREAMS")
                .arg(&backplane.keys.stream)
                .arg(format!("{last}-0"))
                .query_async(&mut conn)
                .await?;
            for entry in reply
                .into_iter()
                .flat_map(|reply| reply.keys)
                .flat_map(|key| key.ids)
            {
                let event = entry_event(&entry, epoch)?;
                last = event.seq;
                self.hub.accept(event);
            }
            backplane.read.store(last, Relaxed);
            *self.position = Some((epoch, last));
        }
    }

    /// Loads the newest entries the stream holds (up to the hub's capacity) into the hub; returns the
    /// last seq loaded (0 when the stream is empty).
    async fn load_tail(
        &self,
        conn: &mut MultiplexedConnection,
        epoch: u64,
    ) -> Result<Seq, RedisError> {
        let tail: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(&self.backplane.keys.stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(self.hub.capacity())
            .query_async(conn)
            .await?;
        let mut last = 0;
        for entry in tail.ids.iter().rev() {
            let event = entry_event(entry, epoch)?;
            last = event.seq;
            self.hub.accept(event);
        }
        self.backplane.read.store(last, Relaxed);
        Ok(last)
    }

    /// Tells every viewer, on the stream itself, that this instance was cut off and what it cost.
    async fn announce_recovery(&self, outage: Outage, epoch: u64, emptied: bool) {
        let backplane = self.backplane;
        let refused = backplane.refused.load(Relaxed) - outage.refused_before;
        let lost = backplane.lost.load(Relaxed);
        let emptied = if emptied {
            "Redis had lost its data, so the epoch and the seq count were put back; "
        } else {
            ""
        };
        let text = format!(
            "instance {} was cut off from Redis for {:.1} s and is back (epoch {epoch}): {emptied}its \
             clients kept their connections; {refused} publishes were refused meanwhile; {lost} accepted \
             events were lost",
            backplane.instance,
            outage.since.elapsed().as_secs_f64(),
        );
        tracing::info!("{text}");
        let notice = EventBody::Notice(Notice {
            level: NoticeLevel::Warning,
            code: "redis_recovered".into(),
            text,
            fault: None,
            network: None,
            traffic: None,
        });
        if let Err(err) = backplane.publish(&notice).await {
            tracing::warn!("could not announce the recovery: {err}");
        }
    }
}

/// An entry of the stream as an event: its id is `SEQ-0`; its fields are `ts`, `epoch` and `body`.
fn entry_event(entry: &StreamId, epoch: u64) -> Result<Event, RedisError> {
    let malformed = |what: &str| {
        RedisError::from((
            redis::ErrorKind::Parse,
            "a malformed stream entry",
            format!("{what} in entry {}", entry.id),
        ))
    };
    let seq = entry
        .id
        .strip_suffix("-0")
        .and_then(|seq| seq.parse::<Seq>().ok())
        .ok_or_else(|| malformed("an id that is not SEQ-0"))?;
    let field = |name: &str| match entry.map.get(name) {
        Some(Value::BulkString(bytes)) => Some(bytes.as_slice()),
        _ => None,
    };
    let number = |name: &str| {
        field(name)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .and_then(|text| text.parse::<u64>().ok())
    };
    if number("epoch") != Some(epoch) {
        // The stream was replaced under this connection (someone flushed Redis): start over.
        return Err(malformed("another epoch"));
    }
    let ts_ms = number("ts").ok_or_else(|| malformed("no ts"))?;
    let body = field("body")
        .and_then(|bytes| serde_json::from_slice::<EventBody>(bytes).ok())
        .ok_or_else(|| malformed("no readable body"))?;
    Ok(Event { seq, ts_ms, body })
}
