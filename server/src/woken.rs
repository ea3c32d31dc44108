//! Polls that happen only after a waker fired.
//!
//! A stream's or call's task wakes for every event it sends, and `select!` then polls every branch,
//! including ones that wait for something rare: the end of the connection (the server's shutdown or a
//! cut from the failure lab), the heartbeat's timer, the peer's next frame. Polling those re-checks a
//! token (a lock), a watch, a timer and the socket's readiness although none changed; at 100,000
//! frames a second it showed in the profile. Behind a [`Gate`] they are polled once at first and then
//! only after their own waker fired; any other poll costs a pointer comparison and one atomic load.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::StreamExt;

/// A gate for things polled at every wake-up of a task that are rarely ready: what is polled through
/// [`Gate::poll_with`] is polled with the gate's own waker, and again only after that waker fired (or
/// after it was ready). Several things may share one gate: when any of them wakes it, all are polled.
///
/// Gates of one task are made as [`Gate::sibling`]s and share one waker and one word: a wake opens all of
/// them (each polls what it guards once more, which is rare and cheap), and a wake-up that checks every
/// gate of the task touches one cache line, not one per gate. At 5,000 calls each gate's flag was a line
/// fetched from memory at every event: its check was the server's top symbol in user space (4 % of
/// samples, for two gates).
pub struct Gate {
    signal: Arc<Signal>,
    /// This gate's flag in `signal.woken`.
    bit: u8,
    /// The waker handed to what is polled: it opens every gate of the task and wakes the task.
    waker: Waker,
    /// The task's waker as last stored in `signal` (kept here to compare without the lock).
    task: Option<Waker>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("bit", &self.bit)
            .finish_non_exhaustive()
    }
}

/// What the gates of one task share: their flags and the task to wake.
#[derive(Debug, Default)]
struct Signal {
    /// One bit per gate, all set by a wake.
    woken: AtomicU8,
    task: Mutex<Option<Waker>>,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(u8::MAX, Ordering::Release);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(task) = task.as_ref() {
            task.wake_by_ref();
        }
    }
}

impl Default for Gate {
    fn default() -> Gate {
        Gate::on(Arc::new(Signal::default()), 1)
    }
}

impl Gate {
    fn on(signal: Arc<Signal>, bit: u8) -> Gate {
        // Open at first, so that what it guards is polled once and registers its waker.
        signal.woken.fetch_or(bit, Ordering::Release);
        Gate {
            waker: Waker::from(signal.clone()),
            signal,
            bit,
            task: None,
        }
    }

    /// Another gate for the same task, whose flag sits beside this one's. Up to eight gates share a
    /// word; a ninth gets a word of its own.
    pub fn sibling(&self) -> Gate {
        match self.bit.checked_shl(1) {
            Some(bit) if bit != 0 => Gate::on(self.signal.clone(), bit),
            _ => Gate::default(),
        }
    }

    /// `poll` run with the gate's waker if the gate was woken since its last `Pending`; otherwise
    /// `Pending` at the cost of a pointer comparison and an atomic load.
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
            self.signal.woken.fetch_or(self.bit, Ordering::Release);
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
        // Most checks find the flag down: a load, no locked write. A wake after the load sets the flag
        // (after the task's waker was stored above) and wakes the task: nothing is lost.
        if self.signal.woken.load(Ordering::Acquire) & self.bit == 0 {
            return false;
        }
        // A wake after this clear sets the flag again and wakes the task.
        self.signal.woken.fetch_and(!self.bit, Ordering::AcqRel) & self.bit != 0
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
        WhenReadable::with_gate(stream, Gate::default())
    }

    /// Reading `stream` behind `gate` (a sibling of the task's other gates).
    pub fn with_gate(stream: S, gate: Gate) -> WhenReadable<S> {
        WhenReadable { gate, stream }
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
    use std::sync::atomic::{AtomicBool, AtomicUsize};

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
        let (door, polls, open, waiting) = door();
        let mut gate = gated(door);
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

    /// A door, with what counts its polls, what opens it and the waker of whoever waits at it.
    type DoorHandles = (
        Door,
        Arc<AtomicUsize>,
        Arc<AtomicBool>,
        Arc<Mutex<Option<Waker>>>,
    );

    fn door() -> DoorHandles {
        let polls = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicBool::new(false));
        let waiting = Arc::new(Mutex::new(None::<Waker>));
        let door = Door {
            polls: polls.clone(),
            open: open.clone(),
            waiting: waiting.clone(),
        };
        (door, polls, open, waiting)
    }

    #[test]
    fn a_wake_opens_every_sibling_once_and_each_closes_on_its_own() {
        let (mut first, first_polls, first_open, first_waiting) = door();
        let (mut second, second_polls, _, second_waiting) = door();
        let mut first_gate = Gate::default();
        let mut second_gate = first_gate.sibling();
        let woken = Arc::new(AtomicUsize::new(0));
        struct Count(Arc<AtomicUsize>);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let task = Waker::from(Arc::new(Count(woken.clone())));
        let cx = Context::from_waker(&task);
        let mut poll_both = || {
            let a = first_gate.poll_with(&cx, |cx| Pin::new(&mut first).poll(cx));
            let b = second_gate.poll_with(&cx, |cx| Pin::new(&mut second).poll(cx));
            (a, b)
        };
        /// Polled again and again (the task's other wakes), neither is ready.
        fn stays_pending(poll_both: &mut impl FnMut() -> (Poll<()>, Poll<()>)) {
            for _ in 0..10 {
                assert_eq!(poll_both(), (Poll::Pending, Poll::Pending));
            }
        }
        // Both are polled once at first, then neither.
        stays_pending(&mut poll_both);
        assert_eq!(first_polls.load(Ordering::SeqCst), 1);
        assert_eq!(second_polls.load(Ordering::SeqCst), 1);
        // The second's wake wakes the task; both are polled once more, then neither again.
        second_waiting.lock().unwrap().take().unwrap().wake();
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        stays_pending(&mut poll_both);
        assert_eq!(first_polls.load(Ordering::SeqCst), 2);
        assert_eq!(second_polls.load(Ordering::SeqCst), 2);
        // The first's wake, once it is ready: it is.
        first_open.store(true, Ordering::SeqCst);
        first_waiting.lock().unwrap().take().unwrap().wake();
        assert_eq!(woken.load(Ordering::SeqCst), 2);
        assert_eq!(poll_both(), (Poll::Ready(()), Poll::Pending));
        assert_eq!(first_polls.load(Ordering::SeqCst), 3);
        assert_eq!(second_polls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_ninth_sibling_still_works() {
        let mut gate = Gate::default();
        for _ in 0..9 {
            gate = gate.sibling();
        }
        let (mut door, polls, _, waiting) = door();
        let cx = Context::from_waker(Waker::noop());
        for _ in 0..3 {
            assert!(
                gate.poll_with(&cx, |cx| Pin::new(&mut door).poll(cx))
                    .is_pending()
            );
        }
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        waiting.lock().unwrap().take().unwrap().wake();
        assert!(
            gate.poll_with(&cx, |cx| Pin::new(&mut door).poll(cx))
                .is_pending()
        );
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
