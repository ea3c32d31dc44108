//! The page's shared state: the store every lane reports into, the lane controls, and the phone line's
//! outbox for chat frames. It is `Copy` (arena handles), so every component and lane task holds it.

use futures_channel::mpsc::UnboundedSender;
use futures_util::future::{AbortHandle, LocalBoxFuture, abortable};
use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_shared::{BrowserMessage, ChatAccepted, LaneId, PerLane};

use crate::lanes::{self, Reporter};
use crate::store::Store;
use crate::wire::Wire;

/// The lane settings a person can change while the lanes run.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How often the letters lane asks.
    pub poll_interval_ms: RwSignal<u32>,
    /// How long the held-letters lane asks the server to hold each letter.
    pub wait_ms: RwSignal<u32>,
    /// The admin token, when the server wants one for faults and network conditions.
    pub admin_token: RwSignal<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Dashboard {
    /// Everything that happened on the four wires. Not reactive by itself: see [`Dashboard::changed`].
    pub store: StoredValue<Store>,
    /// Bumped when the store changed and the page should look again. Reports only mark the store dirty;
    /// a refresh a few times a second bumps this, so a burst of events costs one re-render.
    pub changed: RwSignal<u64>,
    dirty: StoredValue<bool>,
    pub settings: Settings,
    /// Whether each lane is running.
    pub running: PerLane<RwSignal<bool>>,
    tasks: StoredValue<PerLane<Option<AbortHandle>>>,
    /// Where to put chat frames for the phone line while a call is up.
    phone: StoredValue<Option<UnboundedSender<BrowserMessage>>, LocalStorage>,
    /// The clock the page last refreshed at, for "time since" figures.
    pub now_ms: RwSignal<f64>,
    /// The server's last answer to a chat frame said on the phone line: accepted (with its seq) or
    /// refused (why), so the composer can confirm what it sent.
    pub phone_reply: RwSignal<Option<Result<ChatAccepted, String>>>,
}

impl Dashboard {
    pub fn new() -> Dashboard {
        Dashboard {
            store: StoredValue::new(Store::new()),
            changed: RwSignal::new(0),
            dirty: StoredValue::new(false),
            settings: Settings {
                poll_interval_ms: RwSignal::new(1_000),
                wait_ms: RwSignal::new(25_000),
                admin_token: RwSignal::new(String::new()),
            },
            running: PerLane::from_fn(|_| RwSignal::new(false)),
            tasks: StoredValue::new(PerLane::default()),
            phone: StoredValue::new_local(None),
            now_ms: RwSignal::new(0.0),
            phone_reply: RwSignal::new(None),
        }
    }

    /// Takes one wire report from `lane`.
    pub fn report(&self, lane: LaneId, at_ms: f64, wire: Wire) {
        self.store
            .update_value(|store| store.apply(lane, at_ms, wire));
        self.dirty.set_value(true);
    }

    /// Changes the store outside any lane's report (a network condition, the page's visibility).
    pub fn touch(&self, change: impl FnOnce(&mut Store)) {
        self.store.update_value(change);
        self.dirty.set_value(true);
    }

    /// Lets the page see what changed since the last refresh.
    pub fn refresh(&self, now_ms: f64) {
        self.now_ms.set(now_ms);
        if self.dirty.get_value() {
            self.dirty.set_value(false);
            self.changed.update(|n| *n += 1);
        }
    }

    pub fn is_running(&self, lane: LaneId) -> RwSignal<bool> {
        self.running[lane]
    }

    /// Starts or stops a lane's client. A stopped lane keeps its counts; started again, it resumes
    /// after the last seq it had, so nothing published meanwhile is missed.
    pub fn set_running(&self, lane: LaneId, run: bool) {
        let previous = self
            .tasks
            .try_update_value(|tasks| tasks[lane].take())
            .flatten();
        if let Some(handle) = previous {
            handle.abort();
        }
        if run {
            let reporter = Reporter {
                lane,
                dashboard: *self,
            };
            let client: LocalBoxFuture<'static, ()> = match lane {
                LaneId::Poll => Box::pin(lanes::poll::run(reporter)),
                LaneId::LongPoll => Box::pin(lanes::longpoll::run(reporter)),
                LaneId::Sse => Box::pin(lanes::sse::run(reporter)),
                LaneId::Ws => Box::pin(lanes::ws::run(reporter)),
            };
            // Aborting drops the client, and with it its socket, stream or pending letter.
            let (client, handle) = abortable(client);
            spawn_local(async move {
                let _ = client.await;
            });
            self.tasks.update_value(|tasks| tasks[lane] = Some(handle));
        }
        self.running[lane].set(run);
    }

    pub(crate) fn set_phone(&self, outbox: Option<UnboundedSender<BrowserMessage>>) {
        self.phone.set_value(outbox);
    }

    /// Whether a call is up to say things on.
    pub fn phone_is_up(&self) -> bool {
        self.phone.with_value(Option::is_some)
    }

    /// Says `message` on the phone line; an error when no call is up.
    pub fn say_on_phone(&self, message: BrowserMessage) -> Result<(), String> {
        self.phone.with_value(|phone| match phone {
            Some(outbox) => outbox
                .unbounded_send(message)
                .map_err(|_| "the phone line just hung up".to_owned()),
            None => Err("the phone line is not up: start the Phone call lane".to_owned()),
        })
    }
}

impl Default for Dashboard {
    fn default() -> Self {
        Dashboard::new()
    }
}
