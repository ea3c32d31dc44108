//! How a client notices a dead line and how it redials: the same policy in the browser, the load
//! generator and the tests, so what the page shows is what the tests prove.
//!
//! Time is passed in (milliseconds on any monotonic-enough clock) and randomness too, so the policy is
//! pure and testable; each side brings its own clock and random source.

/// Heartbeat intervals without any message before a line is declared dead. More than two, so one late
/// heartbeat on a busy machine is not taken for a dead line; less than three, so it is found quickly.
pub const DEAD_AFTER_HEARTBEATS: f64 = 2.5;

/// Watches a line for signs of life (any message, heartbeats included).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Watchdog {
    heartbeat_ms: f64,
    last_sign_ms: f64,
}

impl Watchdog {
    /// A watchdog for a line whose server promised a heartbeat every `heartbeat_ms`, opened at `now_ms`.
    pub fn new(heartbeat_ms: u64, now_ms: f64) -> Watchdog {
        Watchdog {
            heartbeat_ms: heartbeat_ms.max(1) as f64,
            last_sign_ms: now_ms,
        }
    }

    /// Something arrived on the line.
    pub fn sign_of_life(&mut self, now_ms: f64) {
        self.last_sign_ms = self.last_sign_ms.max(now_ms);
    }

    /// How long the line may stay silent before it is declared dead.
    pub fn limit_ms(&self) -> f64 {
        self.heartbeat_ms * DEAD_AFTER_HEARTBEATS
    }

    /// When the line will be declared dead if nothing arrives before.
    pub fn deadline_ms(&self) -> f64 {
        self.last_sign_ms + self.limit_ms()
    }

    /// How long the line has been silent.
    pub fn silent_ms(&self, now_ms: f64) -> f64 {
        (now_ms - self.last_sign_ms).max(0.0)
    }

    pub fn is_dead(&self, now_ms: f64) -> bool {
        now_ms >= self.deadline_ms()
    }

    /// How often to look: often enough that a dead line is found within a small fraction of the limit.
    pub fn check_every_ms(&self) -> u32 {
        (self.limit_ms() / 10.0).clamp(50.0, 1_000.0) as u32
    }
}

/// Reconnect delays: exponential from `base_ms` up to `cap_ms`, with full jitter (uniform between zero
/// and the exponential ceiling) so that many clients that lost the same server do not redial in step;
/// back to the first step once a connection has stayed healthy for `healthy_ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base_ms: u32,
    pub cap_ms: u32,
    pub healthy_ms: f64,
    /// Failures since the last healthy period.
    attempt: u32,
    /// When the current connection came up, if it is up.
    up_since_ms: Option<f64>,
}

impl Backoff {
    pub const fn new(base_ms: u32, cap_ms: u32, healthy_ms: f64) -> Backoff {
        Backoff {
            base_ms,
            cap_ms,
            healthy_ms,
            attempt: 0,
            up_since_ms: None,
        }
    }

    /// The policy of every Switchboard client: 500 ms doubling to 15 s; healthy after 10 s up.
    pub const fn standard() -> Backoff {
        Backoff::new(500, 15_000, 10_000.0)
    }

    /// The connection is up (the server answered: hello, or a good reply).
    pub fn up(&mut self, now_ms: f64) {
        if self.up_since_ms.is_none() {
            self.up_since_ms = Some(now_ms);
        }
    }

    /// The connection failed or went down at `now_ms`; returns how long to wait before the next try,
    /// given `random` uniform in 0..1.
    pub fn down(&mut self, now_ms: f64, random: f64) -> u32 {
        if let Some(since) = self.up_since_ms.take()
            && now_ms - since >= self.healthy_ms
        {
            self.attempt = 0;
        }
        let ceiling = self.ceiling_ms(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        (f64::from(ceiling) * random.clamp(0.0, 1.0)).round() as u32
    }

    /// Failures counted since the last healthy period.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The most the `attempt`-th retry may wait.
    pub fn ceiling_ms(&self, attempt: u32) -> u32 {
        let ceiling = f64::from(self.base_ms) * 2f64.powi(attempt.min(30) as i32);
        ceiling.min(f64::from(self.cap_ms)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_dead_after_two_and_a_half_heartbeats_of_silence() {
        let mut dog = Watchdog::new(2_000, 10_000.0);
        assert_eq!(dog.limit_ms(), 5_000.0);
        assert!(!dog.is_dead(14_999.0));
        assert!(dog.is_dead(15_000.0));
        dog.sign_of_life(14_000.0);
        assert!(!dog.is_dead(18_999.0));
        assert!(dog.is_dead(19_000.0));
        assert_eq!(dog.silent_ms(19_000.0), 5_000.0);
        // A stale report does not move the clock back.
        dog.sign_of_life(1.0);
        assert_eq!(dog.deadline_ms(), 19_000.0);
        assert_eq!(dog.check_every_ms(), 500);
        assert_eq!(Watchdog::new(10, 0.0).check_every_ms(), 50);
    }

    #[test]
    fn backoff_doubles_to_its_cap_with_full_jitter() {
        let mut backoff = Backoff::new(500, 10_000, 10_000.0);
        let ceilings: Vec<u32> = (0..7).map(|_| backoff.down(0.0, 1.0)).collect();
        assert_eq!(
            ceilings,
            vec![500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000]
        );
        assert_eq!(backoff.down(0.0, 0.25), 2_500);
        assert_eq!(backoff.down(0.0, 0.0), 0);
        assert_eq!(backoff.ceiling_ms(u32::MAX), 10_000);
    }

    #[test]
    fn backoff_resets_only_after_a_healthy_period() {
        let mut backoff = Backoff::new(500, 60_000, 10_000.0);
        for _ in 0..4 {
            backoff.down(0.0, 1.0);
        }
        // Up for a moment, then down again: a flapping server keeps the long delays.
        backoff.up(1_000.0);
        assert_eq!(backoff.down(2_000.0, 1.0), 8_000);
        // Up long enough to count as healthy: the next failure starts over.
        backoff.up(20_000.0);
        backoff.up(25_000.0);
        assert_eq!(backoff.down(30_000.0, 1.0), 500);
        assert_eq!(backoff.attempt(), 1);
    }
}
