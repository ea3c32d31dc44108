//! Watch another endpoint live: a person types a `ws://`/`wss://` URL or an SSE URL, and the page dials
//! it itself and shows it as an extra swimlane with the same figures as a lane: messages, bytes,
//! silence, heartbeats, reconnects — and, when the browser refuses or loses it, the browser's words.

use std::collections::VecDeque;

use futures_util::StreamExt;
use futures_util::future::{AbortHandle, abortable};
use gloo_net::eventsource::futures::EventSource;
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, WebSocketError};
use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_shared::stats::group_thousands;

use crate::dashboard::Dashboard;
use crate::format::{format_bytes, format_ms};
use crate::lanes::{now_ms, sleep};

/// Seconds of messages the swimlane shows.
const SHOWN_MS: f64 = 60_000.0;
/// Messages kept for the swimlane and the heartbeat guess.
const KEPT: usize = 2_000;
/// The wait before dialling a socket again.
const REDIAL_MS: u32 = 2_000;
/// SSE event names listened to besides the default `message` (a page can only hear the names it asks
/// for): the ones heartbeats and greetings usually go by.
const SSE_NAMES: [&str; 5] = ["message", "heartbeat", "ping", "hello", "keepalive"];

/// What came on the watched line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Watched {
    pub url: String,
    pub messages: u64,
    pub bytes: u64,
    pub reconnects: u64,
    pub connected: bool,
    /// The browser's last word on a refusal or a loss.
    pub error: Option<String>,
    pub longest_silence_ms: f64,
    /// (arrival, payload length), newest last.
    pub recent: VecDeque<(f64, usize)>,
}

impl Watched {
    fn heard(&mut self, at_ms: f64, len: usize) {
        if let Some(&(last, _)) = self.recent.back() {
            self.longest_silence_ms = self.longest_silence_ms.max(at_ms - last);
        }
        self.messages += 1;
        self.bytes += len as u64;
        self.connected = true;
        self.recent.push_back((at_ms, len));
        if self.recent.len() > KEPT {
            self.recent.pop_front();
        }
    }

    /// The heartbeat, if small messages come at a steady pace (the rule an imported socket's frames
    /// are judged by).
    pub fn heartbeat_ms(&self) -> Option<f64> {
        let small: Vec<f64> = self
            .recent
            .iter()
            .filter(|&&(_, len)| len <= 64)
            .map(|&(at, _)| at)
            .collect();
        crate::har::classify::heartbeat_period(&small)
    }
}

/// Dials a WebSocket, counts what comes, and dials again when it closes.
async fn watch_socket(url: String, state: RwSignal<Watched>) {
    loop {
        match WebSocket::open(&url) {
            Err(err) => state.update(|s| {
                s.connected = false;
                s.error = Some(format!("the browser would not dial it: {err}"));
            }),
            Ok(socket) => {
                let (_, mut frames) = socket.split();
                while let Some(frame) = frames.next().await {
                    match frame {
                        Ok(Message::Text(text)) => state.update(|s| s.heard(now_ms(), text.len())),
                        Ok(Message::Bytes(bytes)) => {
                            state.update(|s| s.heard(now_ms(), bytes.len()))
                        }
                        Err(WebSocketError::ConnectionClose(close)) => {
                            state.update(|s| {
                                s.error = Some(format!(
                                    "closed {}{}{}",
                                    close.code,
                                    if close.reason.is_empty() { "" } else { " " },
                                    close.reason
                                ));
                            });
                            break;
                        }
                        Err(err) => {
                            state.update(|s| s.error = Some(err.to_string()));
                            break;
                        }
                    }
                }
                state.update(|s| s.connected = false);
            }
        }
        sleep(REDIAL_MS).await;
        state.update(|s| s.reconnects += 1);
    }
}

/// Opens an EventSource (the browser redials it by itself) and counts what comes.
async fn watch_stream(url: String, state: RwSignal<Watched>) {
    let mut source = match EventSource::new(&url) {
        Ok(source) => source,
        Err(err) => {
            return state
                .update(|s| s.error = Some(format!("the browser would not open it: {err}")));
        }
    };
    let subscriptions: Vec<_> = SSE_NAMES
        .iter()
        .filter_map(|name| source.subscribe(*name).ok())
        .collect();
    let mut events = futures_util::stream::select_all(subscriptions);
    while let Some(event) = events.next().await {
        match event {
            Ok((_, message)) => {
                let len = message.data().as_string().map_or(0, |data| data.len());
                state.update(|s| {
                    s.heard(now_ms(), len);
                    s.error = None;
                });
            }
            // Every subscription hears the same error; count it once per break.
            Err(_) => state.update(|s| {
                if s.connected {
                    s.reconnects += 1;
                }
                s.connected = false;
                s.error = Some(
                    "the browser refused or lost the stream (an EventSource error says no more; the browser's console has the detail)"
                        .to_owned(),
                );
            }),
        }
    }
}

#[component]
pub fn WatchPanel() -> impl IntoView {
    let dashboard = expect_context::<Dashboard>();
    let url = RwSignal::new(String::new());
    // The watch in progress: its own signal, which its task updates.
    let current = RwSignal::new(None::<RwSignal<Watched>>);
    let task = StoredValue::new(None::<AbortHandle>);
    let refused = RwSignal::new(None::<String>);
    let stop = move || {
        if let Some(handle) = task.try_update_value(Option::take).flatten() {
            handle.abort();
        }
    };
    let start = move || {
        stop();
        let target = url.get_untracked().trim().to_owned();
        let lower = target.to_ascii_lowercase();
        let socket = lower.starts_with("ws://") || lower.starts_with("wss://");
        if !socket && !lower.starts_with("http://") && !lower.starts_with("https://") {
            refused.set(Some(
                "Give a ws:// or wss:// URL (a WebSocket) or an http(s):// URL of a text/event-stream."
                    .to_owned(),
            ));
            return;
        }
        refused.set(None);
        let watched = RwSignal::new(Watched {
            url: target.clone(),
            ..Watched::default()
        });
        // The panel shows the watch's own signal; a new watch starts from zero.
        let (job, handle) = if socket {
            abortable(futures_util::FutureExt::boxed_local(watch_socket(
                target, watched,
            )))
        } else {
            abortable(futures_util::FutureExt::boxed_local(watch_stream(
                target, watched,
            )))
        };
        spawn_local(async move {
            let _ = job.await;
        });
        task.set_value(Some(handle));
        current.set(Some(watched));
    };
    on_cleanup(stop);
    let origin = web_sys::window()
        .and_then(|window| window.location().origin().ok())
        .unwrap_or_default();

    view! {
        <section class="watch" aria-label="Watch another endpoint">
            <div class="har-head">
                <h2>"Watch another endpoint"</h2>
            </div>
            <form
                class="watch-form"
                on:submit=move |event: web_sys::SubmitEvent| {
                    event.prevent_default();
                    start();
                }
            >
                <input
                    type="url"
                    data-testid="watch-url"
                    aria-label="A WebSocket or Server-Sent Events URL"
                    placeholder="wss://example.com/socket or https://example.com/events"
                    prop:value=move || url.get()
                    on:input=move |event| url.set(event_target_value(&event))
                />
                <button type="submit" class="tool" data-testid="watch-start">"Watch"</button>
                <button
                    type="button"
                    class="tool"
                    data-testid="watch-stop"
                    on:click=move |_| {
                        stop();
                        if let Some(watched) = current.get_untracked() {
                            watched.update(|s| s.connected = false);
                        }
                    }
                >
                    "Stop"
                </button>
            </form>
            <p class="hint">
                {format!("This page dials the URL itself. A WebSocket needs nothing more (its server may still check the Origin, {origin}); an SSE URL on another origin must allow this one (Access-Control-Allow-Origin), or the browser refuses it.")}
            </p>
            {move || refused.get().map(|why| view! { <p class="har-status refused" data-testid="watch-refused">{why}</p> })}
            // Redrawn with the page's refresh (four times a second), so "quiet for" and the swimlane
            // move on between messages; not at every message, which is why the line is read untracked:
            // a busy endpoint (hundreds of messages a second) had its 2,000 ticks redrawn for each one,
            // and the page answered typing in the URL field 40 s late.
            {move || current.get().map(|watched| {
                let now = dashboard.now_ms.get().max(now_ms());
                view! { <WatchedChannel watched=watched.get_untracked() now_ms=now/> }
            })}
        </section>
    }
}

#[component]
fn WatchedChannel(watched: Watched, now_ms: f64) -> impl IntoView {
    let from = now_ms - SHOWN_MS;
    let heartbeat = watched.heartbeat_ms();
    let ticks = watched
        .recent
        .iter()
        .filter(|&&(at, _)| at >= from)
        .map(|&(at, len)| {
            let x = (at - from) / SHOWN_MS * 1000.0;
            let class = if heartbeat.is_some() && len <= 64 { "frame beat" } else { "frame down" };
            let (y, height) = if class == "frame beat" { ("17", "8") } else { ("26", "10") };
            view! { <rect class=class x=format!("{:.1}", x - 0.6) y=y width="1.2" height=height></rect> }
        })
        .collect_view();
    let quiet = watched
        .recent
        .back()
        .map(|&(last, _)| (now_ms - last).max(0.0));
    let silences = heartbeat.map(|period| {
        watched
            .recent
            .iter()
            .map(|&(at, _)| at)
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|pair| pair[1] - pair[0] > 2.5 * period)
            .count()
    });
    view! {
        <article class="imported lane-ws" data-testid="watched-channel">
            <header>
                <h3><i class="dot" aria-hidden="true"></i>{if watched.connected { "Watching" } else { "Not connected" }}</h3>
                <code>{watched.url.clone()}</code>
            </header>
            <svg class="swimlane" viewBox="0 0 1000 44" preserveAspectRatio="none" role="img"
                aria-label=format!("{} messages in the last minute", watched.recent.iter().filter(|&&(at, _)| at >= from).count())>
                <rect class="line" x="0" y="20" width="1000" height="2"></rect>
                {ticks}
            </svg>
            <dl class="score">
                <div><dt>"messages"</dt><dd data-testid="watched-messages">{group_thousands(watched.messages)}</dd></div>
                <div><dt>"payload bytes"</dt><dd data-testid="watched-bytes">{format_bytes(watched.bytes as f64)}</dd></div>
                <div><dt>"quiet for"</dt><dd>{quiet.map_or("–".into(), format_ms)}</dd></div>
                <div><dt>"longest silence"</dt><dd>{format_ms(watched.longest_silence_ms)}</dd></div>
                <div><dt>"heartbeat"</dt><dd>{heartbeat.map_or("none seen".into(), |ms| format!("every {}", format_ms(ms)))}</dd></div>
                {silences.map(|count| view! { <div><dt>"silences > 2.5 beats"</dt><dd>{count}</dd></div> })}
                <div><dt>"reconnects"</dt><dd data-testid="watched-reconnects">{watched.reconnects}</dd></div>
            </dl>
            {watched.error.map(|error| view! { <p class="lane-error" data-testid="watched-error">{format!("The browser says: {error}")}</p> })}
        </article>
    }
}

#[cfg(test)]
mod tests {
    use super::Watched;

    #[test]
    fn small_messages_at_a_steady_pace_are_a_heartbeat_and_a_long_gap_a_silence() {
        let mut watched = Watched::default();
        for at in [0.0, 1000.0, 2000.0, 3000.0, 9000.0, 10_000.0] {
            watched.heard(at, 20);
        }
        watched.heard(10_500.0, 400);
        assert_eq!(watched.heartbeat_ms(), Some(1000.0));
        assert_eq!(watched.longest_silence_ms, 6000.0);
        assert_eq!((watched.messages, watched.bytes), (7, 6 * 20 + 400));
        let mut chatter = Watched::default();
        for at in [0.0, 100.0, 2500.0, 2600.0, 9000.0] {
            chatter.heard(at, 20);
        }
        assert_eq!(chatter.heartbeat_ms(), None, "no steady pace, no heartbeat");
    }
}
