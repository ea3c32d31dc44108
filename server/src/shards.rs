//! Runs the phone calls on a few tasks, one per worker thread, instead of a task each.
//!
//! Every event wakes every open call. As tokio tasks, each of those wake-ups went through the scheduler:
//! the task's state word, a run queue (overflowing into the shared one at a few hundred), the other
//! worker unparked, then the task's own poll. Here a call is one future among the thousands in its
//! shard's `FuturesUnordered`: waking it pushes it on that set's ready list and wakes the shard's one
//! task (already awake after the first), which then polls the woken calls one after the other — the
//! way an event loop walks its sockets. Each call is still its own future with its own timers and
//! writes; nothing about what it does changes, only who polls it.

use futures_util::FutureExt;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc;

/// The shards, started on first use (from within the server's runtime).
#[derive(Debug, Default)]
pub struct Shards {
    inboxes: OnceLock<Vec<mpsc::UnboundedSender<BoxFuture<'static, ()>>>>,
    next: AtomicUsize,
}

impl Shards {
    /// Runs `call` to its end on one of the shards (round robin).
    pub fn spawn(&self, call: impl Future<Output = ()> + Send + 'static) {
        let inboxes = self.inboxes.get_or_init(|| {
            let count = std::thread::available_parallelism().map_or(1, |n| n.get());
            (0..count)
                .map(|_| {
                    let (sender, inbox) = mpsc::unbounded_channel();
                    tokio::spawn(run(inbox));
                    sender
                })
                .collect()
        });
        let shard = self.next.fetch_add(1, Ordering::Relaxed) % inboxes.len();
        let call = AssertUnwindSafe(call).catch_unwind().map(|ended| {
            if ended.is_err() {
                // As a panicking task would: this call ends, the others in the shard go on.
                tracing::error!("a phone call panicked; its connection is closed");
            }
        });
        if let Err(refused) = inboxes[shard].send(Box::pin(call)) {
            // The shard is gone (the runtime is shutting down): the call cannot be served.
            drop(refused);
        }
    }
}

/// One shard: takes new calls and polls whichever calls were woken.
async fn run(mut inbox: mpsc::UnboundedReceiver<BoxFuture<'static, ()>>) {
    // Unconstrained: tokio's budget counts every call's channel receive and socket write against the
    // shard's one task, and would otherwise make it yield after about a hundred of its thousands of calls
    // each time. `FuturesUnordered` yields by itself once it has polled as many calls as it holds.
    tokio::task::unconstrained(async move {
        let mut calls = FuturesUnordered::new();
        loop {
            tokio::select! {
                call = inbox.recv() => match call {
                    Some(call) => calls.push(call),
                    None => break,
                },
                Some(()) = calls.next(), if !calls.is_empty() => {}
            }
        }
        while calls.next().await.is_some() {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_that_panics_ends_alone_and_the_others_run_on() {
        let shards = Shards::default();
        let (done, mut finished) = mpsc::unbounded_channel();
        shards.spawn(async { panic!("a call's bug") });
        // Round robin: with one more call than there are shards, one of these shares the panicking
        // call's shard.
        let calls = 2 * std::thread::available_parallelism().map_or(1, |n| n.get()) + 1;
        for call in 0..calls {
            let done = done.clone();
            shards.spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                done.send(call).expect("the test waits");
            });
        }
        let mut seen = Vec::new();
        while seen.len() < calls {
            let call = tokio::time::timeout(Duration::from_secs(5), finished.recv())
                .await
                .expect("every call ends")
                .expect("the sender is held");
            seen.push(call);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..calls).collect::<Vec<_>>());
    }
}
