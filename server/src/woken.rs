//! A future that is polled only after it woke.
//!
//! A stream's or call's task wakes for every event it sends, and `select!` then polls every branch,
//! including ones that wait for something rare: the end of the connection (the server's shutdown or a
//! cut from the failure lab). Polling that future re-checks the shutdown token (a lock) and the cut
//! watch although neither changed; at 100,000 frames a second it showed in the profile. Wrapped in
//! [`WhenWoken`], it is polled once at first and then only after its own waker fired; any other poll
//! costs a pointer comparison and one atomic swap.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// `inner`, polled only when its own waker has fired since it last returned `Pending`.
pub struct WhenWoken<F> {
    inner: Pin<Box<F>>,
    signal: Arc<Signal>,
    /// The waker handed to `inner`: it marks `signal` and wakes the task.
    waker: Waker,
    /// The task's waker as last stored in `signal` (kept here to compare without the lock).
    task: Option<Waker>,
}

impl<F> std::fmt::Debug for WhenWoken<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhenWoken").finish_non_exhaustive()
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

impl<F: Future> WhenWoken<F> {
    pub fn new(inner: F) -> WhenWoken<F> {
        let signal = Arc::new(Signal {
            // Polled once at first, so that it registers its waker.
            woken: AtomicBool::new(true),
            task: Mutex::new(None),
        });
        WhenWoken {
            inner: Box::pin(inner),
            waker: Waker::from(signal.clone()),
            signal,
            task: None,
        }
    }
}

impl<F: Future> Future for WhenWoken<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        // The task's waker rarely changes; it is stored (under the lock) only when it does.
        if !this
            .task
            .as_ref()
            .is_some_and(|task| task.will_wake(cx.waker()))
        {
            let task = cx.waker().clone();
            *this.signal.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task.clone());
            this.task = Some(task);
        }
        // A wake that comes after this swap sets the flag again and wakes the task: nothing is lost.
        if !this.signal.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        this.inner
            .as_mut()
            .poll(&mut Context::from_waker(&this.waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts its polls; ready once `open` is set, waking whoever waits when it is.
    struct Gate {
        polls: Arc<AtomicUsize>,
        open: Arc<AtomicBool>,
        waiting: Arc<Mutex<Option<Waker>>>,
    }

    impl Future for Gate {
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
        let mut gate = WhenWoken::new(Gate {
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
        let ended = WhenWoken::new(token.clone().cancelled_owned());
        let waiting = tokio::spawn(ended);
        tokio::task::yield_now().await;
        token.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("woken by the cancellation")
            .unwrap();
    }
}
