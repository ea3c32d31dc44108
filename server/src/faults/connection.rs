//! One connection's view of the lab, taken when a stream, call or held letter opens: what holds its
//! frames back, and when it must end.

use std::sync::Arc;
use std::time::Duration;
use switchboard_shared::LaneId;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Faults;
use crate::hub::now_ms;

/// Why the lab cut connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// A network failure: the connection just ends, nothing said.
    Drop,
    /// The server restarts: a WebSocket is told so (close code 1012) before it goes.
    Restart,
}

/// A connection's view of the lab: taken when a stream or call opens.
#[derive(Debug)]
pub struct ConnectionFaults {
    faults: Arc<Faults>,
    lane: LaneId,
    opened: Instant,
    cuts: watch::Receiver<Cut>,
}

/// The connection must go: a half-open fault kept it silent to its end.
#[derive(Debug)]
pub struct Silenced;

impl ConnectionFaults {
    pub fn new(faults: &Arc<Faults>, lane: LaneId) -> ConnectionFaults {
        let mut cuts = faults.cuts(lane);
        cuts.mark_unchanged();
        ConnectionFaults {
            faults: faults.clone(),
            lane,
            opened: Instant::now(),
            cuts,
        }
    }

    /// Holds a frame made (published, or generated) at `made_ms` as the faults on the lane say: a
    /// `delay` until `made_ms` + the delay (counted from the frame's making, so a backlog does not add
    /// it once per frame); a `half_open` fault that began after this connection opened keeps it silent
    /// until the fault ends, and then the connection must be torn down without a word. Returns at
    /// once, without a lock, when no timed fault is in effect on the lane.
    pub async fn hold(&self, made_ms: u64, shutdown: &CancellationToken) -> Result<(), Silenced> {
        let Some((state, now)) = self.faults.on(self.lane) else {
            return Ok(());
        };
        if let Some(window) = state.half_open
            && window.covers(now)
            && self.opened < window.from
        {
            tokio::select! {
                () = tokio::time::sleep_until(window.until) => {}
                () = shutdown.cancelled() => {}
            }
            return Err(Silenced);
        }
        if let Some((window, delay)) = state.delay
            && window.covers(now)
        {
            let due = made_ms + delay.as_millis() as u64;
            tokio::time::sleep(Duration::from_millis(due.saturating_sub(now_ms()))).await;
        }
        Ok(())
    }

    /// Whether this connection's heartbeats are off (a `no_heartbeat` fault on its lane).
    pub fn heartbeats_off(&self) -> bool {
        self.faults.heartbeats_off(self.lane)
    }

    /// True while no timed fault is armed on the lane (one atomic load): frames may then be written
    /// together, with nothing to hold any one of them back.
    pub fn is_quiet(&self) -> bool {
        self.faults.on(self.lane).is_none()
    }

    /// Resolves when a stream or call must end: the server shuts down (`None`) or the lab cuts it
    /// (how). Made once per connection and polled for its whole life, so a frame does not register and
    /// unregister two wakers on shared notifiers (the shutdown token's, the cut watch's) each time it is
    /// written: at 100,000 frames a second those locks showed in the profile.
    pub fn ending(
        &self,
        shutdown: &CancellationToken,
    ) -> impl Future<Output = Option<Cut>> + Send + 'static {
        let mut cuts = self.faults.cuts(self.lane);
        cuts.mark_unchanged();
        let shutdown = shutdown.clone().cancelled_owned();
        async move {
            tokio::select! {
                biased;
                () = shutdown => None,
                Ok(()) = cuts.changed() => Some(*cuts.borrow_and_update()),
            }
        }
    }

    /// Resolves when the lab cuts this connection, saying how.
    pub async fn cut(&mut self) -> Cut {
        if self.cuts.changed().await.is_err() {
            // The server is gone; nothing will cut this connection.
            std::future::pending::<()>().await;
        }
        *self.cuts.borrow_and_update()
    }
}
