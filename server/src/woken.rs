//! Polls that happen only after a waker fired.
//!
//! A stream's or call's task wakes for every event it sends, and `select!` then polls every branch,
//! including ones that wait for something rare: the end of the connection (the server's shutdown or a
//! cut from the failure lab), the heartbeat's timer, the peer's next frame. Polling those re-checks a
//! token (a lock), a watch, a timer and the socket's readiness although none changed; at 100,000
//! frames a second it showed in the profile. Behind a [`Gate`] they are polled once at first and then
//! only after their own waker fired; any other poll costs a pointer comparison and one atomic swap.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::StreamExt;

/// A gate for things polled at every wake-up of a task that are rarely ready: what is polled through
/// [`Gate::poll_with`] is polled with the gate's own waker, and again only after that waker fired (or
/// after it was ready). Several things may share one gate: when any of them wakes it, all are polled.
pub struct Gate {
    signal: Arc<Signal>,
    /// The waker handed to what is polled: it marks `signal` and wakes the task.
    waker: Waker,
    /// The task's waker as last stored in `signal` (kept here to compare without the lock).
    task: Option<Waker>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Signal {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(task) = task.as_ref() {
            task.wake_by_ref();
        }
    }
}

impl Default for Gate {
    fn default() -> Gate {
        let signal = Arc::new(Signal {
            // Open at first, so that what it guards is polled once and registers its waker.
            woken: AtomicBool::new(true),
            task: Mutex::new(None),
        });
        Gate {
            waker: Waker::from(signal.clone()),
            signal,
            task: None,
        }
    }
}

impl Gate {
    /// `poll` run with the gate's waker if the gate was woken since its last `Pending`; otherwise
    /// `Pending` at the cost of a pointer comparison and an atomic swap.
    pub fn poll_with<T>(
        &mut self,
        cx: &Context<'_>,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        if !self.woken(cx) {
            return Poll::Pending;
        }
        let polled = poll(&mut Context::from_waker(&self.waker));
        if polled.is_ready() {
            // Whatever was ready has not registered a waker for its next time: poll it then.
            self.signal.woken.store(true, Ordering::Release);
        }
        polled
    }

    /// Whether what the gate guards is to be polled now (its waker fired), storing the task's waker
    /// for the next wake.
    fn woken(&mut self, cx: &Context<'_>) -> bool {
        // The task's waker rarely changes; it is stored (under the lock) only when it does.
        if !self
            .task
            .as_ref()
            .is_some_and(|task| task.will_wake(cx.waker()))
        {
            let task = cx.waker().clone();
            *self.signal.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task.clone());
            self.task = Some(task);
        }
        // A wake that comes after this swap sets the flag again and wakes the task: nothing is lost.
        self.signal.woken.swap(false, Ordering::AcqRel)
    }
}

/// The same gate for a stream read again and again round a loop (a new `next()` future each time, as
/// in a `select!`): the phone call's incoming frames. A task woken for every event it sends polled its
/// socket's read side each time, which found nothing and registered its waker again — a tenth of the
/// server's CPU at 5,000 calls. After an item the stream is polled again (the codec may hold more
/// frames than the socket's readiness says); after `Pending`, only once its waker fired.
#[derive(Debug)]
pub struct WhenReadable<S> {
    gate: Gate,
    stream: S,
}

impl<S: futures_util::Stream + Unpin> WhenReadable<S> {
    pub fn new(stream: S) -> WhenReadable<S> {
        WhenReadable {
            gate: Gate::default(),
            stream,
        }
    }

    /// The stream itself, to write to or close.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The next item, polling the stream only when it may have one.
    pub async fn next(&mut self) -> Option<S::Item> {
        let WhenReadable { gate, stream } = self;
        std::future::poll_fn(|cx| gate.poll_with(cx, |cx| stream.poll_next_unpin(cx))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::AtomicUsize;

    /// `inner` polled through a gate of its own, as a future.
    fn gated<F: Future + Unpin>(mut inner: F) -> impl Future<Output = F::Output> + Unpin {
        let mut gate = Gate::default();
        std::future::poll_fn(move |cx| gate.poll_with(cx, |cx| Pin::new(&mut inner).poll(cx)))
    }

    /// Counts its polls; ready once `open` is set, waking whoever waits when it is.
    struct Door {
        polls: Arc<AtomicUsize>,
        open: Arc<AtomicBool>,
        waiting: Arc<Mutex<Option<Waker>>>,
    }

    impl Future for Door {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            if self.open.load(Ordering::SeqCst) {
                return Poll::Ready(());
            }
            *self.waiting.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn polls_the_inner_future_only_after_it_woke() {
        let polls = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicBool::new(false));
        let waiting = Arc::new(Mutex::new(None::<Waker>));
        let mut gate = gated(Door {
            polls: polls.clone(),
            open: open.clone(),
            waiting: waiting.clone(),
        });
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        // The first poll reaches it; the next many do not.
        for _ in 0..100 {
            assert!(Pin::new(&mut gate).poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        // Opened and woken: the next poll reaches it, and it is ready.
        open.store(true, Ordering::SeqCst);
        waiting.lock().unwrap().take().unwrap().wake();
        assert!(Pin::new(&mut gate).poll(&mut cx).is_ready());
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_wake_reaches_the_task_that_waits() {
        let token = tokio_util::sync::CancellationToken::new();
        let ended = gated(Box::pin(token.clone().cancelled_owned()));
        let waiting = tokio::spawn(ended);
        tokio::task::yield_now().await;
        token.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("woken by the cancellation")
            .unwrap();
    }

    /// Counts its polls; yields what is queued, then waits to be woken.
    struct Queue {
        polls: Arc<AtomicUsize>,
        items: Arc<Mutex<std::collections::VecDeque<u32>>>,
        waiting: Arc<Mutex<Option<Waker>>>,
    }

    impl futures_util::Stream for Queue {
        type Item = u32;
        fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u32>> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            if let Some(item) = self.items.lock().unwrap().pop_front() {
                return Poll::Ready(Some(item));
            }
            *self.waiting.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_stream_is_read_again_after_an_item_and_after_a_wake_only() {
        let polls = Arc::new(AtomicUsize::new(0));
        let items = Arc::new(Mutex::new(std::collections::VecDeque::from([1, 2])));
        let waiting = Arc::new(Mutex::new(None::<Waker>));
        let mut reading = WhenReadable::new(Queue {
            polls: polls.clone(),
            items: items.clone(),
            waiting: waiting.clone(),
        });
        // Both buffered items come without a wake in between.
        assert_eq!(reading.next().await, Some(1));
        assert_eq!(reading.next().await, Some(2));
        // Then it waits; polled again and again (other wakes of the task), it is not read.
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        for _ in 0..50 {
            let next = std::pin::pin!(reading.next());
            assert!(next.poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::SeqCst), 3);
        // Something arrives and its waker fires: read.
        items.lock().unwrap().push_back(3);
        waiting.lock().unwrap().take().unwrap().wake();
        assert_eq!(reading.next().await, Some(3));
    }
}
