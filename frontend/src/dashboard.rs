//! The page's shared state: the store every lane reports into, the lane controls, and the phone line.
//! It is `Copy` (arena handles), so every component holds it; a lane client holds only its narrow
//! [`Reporter`].

use futures_util::future::{AbortHandle, LocalBoxFuture, abortable};
use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_shared::{LaneId, PerLane};

use crate::lanes::{self, LetterSettings, Phone, ReportSink, Reporter};
use crate::store::Store;
use crate::wire::Wire;

/// The settings a person can change while the lanes run.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The letters lanes' interval and wait.
    pub letters: LetterSettings,
    /// The admin token, when the server wants one for faults and network conditions.
    pub admin_token: RwSignal<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Dashboard {
    /// Everything that happened on every lane's wire. Not reactive by itself: see [`Dashboard::changed`].
    pub store: StoredValue<Store>,
    /// Bumped when the store changed and the page should look again. Reports only mark the store dirty;
    /// a refresh a few times a second bumps this, so a burst of events costs one re-render.
    pub changed: RwSignal<u64>,
    sink: ReportSink,
    pub settings: Settings,
    /// Whether each lane is running.
    pub running: PerLane<RwSignal<bool>>,
    tasks: StoredValue<PerLane<Option<AbortHandle>>>,
    /// Each two-way lane's line (the phone call, the video call): chat to say on it, and the server's
    /// answers. The other lanes' stay unused.
    pub phones: PerLane<Phone>,
    /// The clock the page last refreshed at, for "time since" figures.
    pub now_ms: RwSignal<f64>,
    /// What a proxy in front of the server says of itself (`X-Switchboard-Proxy`), if there is one.
    pub proxy: RwSignal<Option<String>>,
    /// Whether the server puts a person's app through the lab (`--upstream`), once `/api/stats` said:
    /// only then does the "Your app" view ask `/api/app`.
    pub app_proxied: RwSignal<Option<bool>>,
}

impl Dashboard {
    pub fn new() -> Dashboard {
        let store = StoredValue::new(Store::started_at(crate::lanes::now_ms()));
        Dashboard {
            store,
            changed: RwSignal::new(0),
            sink: ReportSink::new(store),
            settings: Settings {
                letters: LetterSettings {
                    poll_interval_ms: RwSignal::new(1_000),
                    wait_ms: RwSignal::new(25_000),
                    webtransport_mode: RwSignal::new(switchboard_shared::WebTransportMode::Stream),
                },
                admin_token: RwSignal::new(String::new()),
            },
            running: PerLane::from_fn(|_| RwSignal::new(false)),
            tasks: StoredValue::new(PerLane::default()),
            phones: PerLane::from_fn(Phone::new),
            now_ms: RwSignal::new(0.0),
            proxy: RwSignal::new(None),
            app_proxied: RwSignal::new(None),
        }
    }

    /// Takes one wire report from `lane` (the lane clients report through their [`Reporter`]; tests and
    /// the page's own events come here).
    pub fn report(&self, lane: LaneId, at_ms: f64, wire: Wire) {
        self.sink.report(lane, at_ms, wire);
    }

    /// Changes the store outside any lane's report (a network condition, the page's visibility).
    pub fn touch(&self, change: impl FnOnce(&mut Store)) {
        self.store.update_value(change);
        self.sink.touch();
    }

    /// Lets the page see what changed since the last refresh.
    pub fn refresh(&self, now_ms: f64) {
        self.now_ms.set(now_ms);
        if self.sink.take_changed() {
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
            let client: LocalBoxFuture<'static, ()> = Box::pin(lanes::run(Reporter {
                lane,
                sink: self.sink,
                settings: self.settings.letters,
                phone: self.phones[lane],
            }));
            // Aborting drops the client, and with it its socket, stream or pending letter.
            let (client, handle) = abortable(client);
            spawn_local(async move {
                let _ = client.await;
            });
            self.tasks.update_value(|tasks| tasks[lane] = Some(handle));
        }
        self.running[lane].set(run);
    }
}

impl Default for Dashboard {
    fn default() -> Self {
        Dashboard::new()
    }
}
