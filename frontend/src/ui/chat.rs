//! The chat composer: one message, three ways to send it — as a letter (HTTP POST), on the phone line
//! (a WebSocket frame) or on the video call (a line on a WebTransport stream) — and everyone receives
//! it on every lane.

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_shared::{BrowserMessage, ChatAccepted, ChatPost, ChatVia, LaneId};

use crate::dashboard::Dashboard;

/// What became of the last message sent.
#[derive(Debug, Clone, PartialEq)]
enum Sent {
    Nothing,
    Waiting(&'static str),
    /// Said on a two-way lane as `client_ref`; the server's `chat_accepted` confirms it.
    Said(LaneId, String),
    Accepted(String),
    Refused(String),
}

/// The two-way lanes a message can be said on: the lane, how the server records it, the button, and how
/// the status line names the lane.
const SPOKEN: [(LaneId, ChatVia, &str, &str); 2] = [
    (
        LaneId::Ws,
        ChatVia::Ws,
        "☎ Say on the phone",
        "the phone line",
    ),
    (
        LaneId::WebTransport,
        ChatVia::WebTransport,
        "▶ Say on the video call",
        "the video call",
    ),
];

fn named(lane: LaneId) -> &'static str {
    SPOKEN
        .iter()
        .find(|(spoken, ..)| *spoken == lane)
        .map_or("the line", |(.., name)| name)
}

#[component]
pub fn ChatComposer() -> impl IntoView {
    let dashboard = expect_context::<Dashboard>();
    let author = RwSignal::new("guest".to_owned());
    let text = RwSignal::new(String::new());
    let sent = RwSignal::new(Sent::Nothing);
    let counter = StoredValue::new(0u64);

    // Checked here with the server's own rules, so a bad message is refused before it goes out.
    let compose = move |via: ChatVia| -> Option<ChatPost> {
        let n = counter.try_update_value(|n| {
            *n += 1;
            *n
        })?;
        let post = ChatPost {
            author: author.get_untracked(),
            text: text.get_untracked(),
            client_ref: Some(format!("page-{n}")),
        };
        match post.clone().validate(via) {
            Ok(_) => Some(post),
            Err(why) => {
                sent.set(Sent::Refused(why.to_string()));
                None
            }
        }
    };
    let send_post = move || {
        let Some(post) = compose(ChatVia::Post) else {
            return;
        };
        sent.set(Sent::Waiting("letter"));
        spawn_local(async move {
            let outcome = match gloo_net::http::Request::post("/api/messages").json(&post) {
                Ok(request) => match request.send().await {
                    Ok(response) if response.ok() => match response.json::<ChatAccepted>().await {
                        Ok(accepted) => Sent::Accepted(format!(
                            "sent as a letter: published as #{}",
                            accepted.seq
                        )),
                        Err(err) => Sent::Refused(format!("unreadable answer: {err}")),
                    },
                    Ok(response) => Sent::Refused(format!(
                        "refused ({}): {}",
                        response.status(),
                        response.text().await.unwrap_or_default()
                    )),
                    Err(err) => Sent::Refused(format!("no answer: {err}")),
                },
                Err(err) => Sent::Refused(err.to_string()),
            };
            if matches!(outcome, Sent::Accepted(_)) {
                text.set(String::new());
            }
            sent.set(outcome);
        });
    };
    let say_on = move |lane: LaneId, via: ChatVia| {
        let Some(post) = compose(via) else {
            return;
        };
        let client_ref = post.client_ref.clone().unwrap_or_default();
        let phone = dashboard.phones[lane];
        phone.reply.set(None);
        match phone.say(BrowserMessage::Chat(post)) {
            Ok(()) => {
                text.set(String::new());
                sent.set(Sent::Said(lane, client_ref));
            }
            Err(why) => sent.set(Sent::Refused(why)),
        }
    };
    // The server answers a chat message on the line it came on: confirm the message it published, or
    // say why it refused.
    for (lane, ..) in SPOKEN {
        Effect::new(move |_| {
            let reply = dashboard.phones[lane].reply.get();
            let Sent::Said(said_on, waiting_for) = sent.get_untracked() else {
                return;
            };
            if said_on != lane {
                return;
            }
            match reply {
                Some(Ok(accepted))
                    if accepted.client_ref.as_deref() == Some(waiting_for.as_str()) =>
                {
                    sent.set(Sent::Accepted(format!(
                        "said on {}: published as #{}",
                        named(lane),
                        accepted.seq
                    )));
                }
                Some(Err(why)) => {
                    sent.set(Sent::Refused(format!("refused on {}: {why}", named(lane))))
                }
                _ => {}
            }
        });
    }

    // Enter sends: on the phone line while a call is up, otherwise on the video call while one is up,
    // otherwise as a letter. The form has two fields and no submit button, so the browser does no
    // implicit submission: Enter is heard in the fields themselves.
    let send_now = move || match SPOKEN
        .into_iter()
        .find(|(lane, ..)| dashboard.phones[*lane].is_up())
    {
        Some((lane, via, ..)) => say_on(lane, via),
        None => send_post(),
    };
    let on_enter = move |event: web_sys::KeyboardEvent| {
        if event.key() == "Enter" && !event.is_composing() && !event.shift_key() {
            event.prevent_default();
            send_now();
        }
    };
    view! {
        <form
            class="composer"
            on:submit=move |event| {
                event.prevent_default();
                send_now();
            }
        >
            <input
                class="author"
                aria-label="Your name"
                maxlength="32"
                prop:value=move || author.get()
                on:input=move |event| author.set(event_target_value(&event))
                on:keydown=on_enter
            />
            <input
                class="message"
                data-testid="chat-input"
                aria-label="Chat message"
                placeholder="Say something — everyone receives it on every lane"
                maxlength="500"
                prop:value=move || text.get()
                on:input=move |event| text.set(event_target_value(&event))
                on:keydown=on_enter
            />
            <button type="button" class="send post" data-testid="send-post" on:click=move |_| send_post()>
                "✉ Send as a letter"
            </button>
            {SPOKEN
                .into_iter()
                .map(|(lane, via, label, _)| view! {
                    <button
                        type="button"
                        class=format!("send {lane}")
                        data-testid=format!("send-{lane}")
                        on:click=move |_| say_on(lane, via)
                    >
                        {label}
                    </button>
                })
                .collect_view()}
            <p class="sent" data-testid="chat-status" class:refused=move || matches!(sent.get(), Sent::Refused(_))>
                {move || match sent.get() {
                    Sent::Nothing => String::new(),
                    Sent::Waiting(how) => format!("sending as a {how}…"),
                    Sent::Said(lane, _) => format!("said on {}; waiting for the server to confirm…", named(lane)),
                    Sent::Accepted(what) | Sent::Refused(what) => what,
                }}
            </p>
        </form>
    }
}
