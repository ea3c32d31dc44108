//! The chat composer: one message, two ways to send it — as a letter (HTTP POST) or on the phone line
//! (a WebSocket frame) — and everyone receives it on all four lanes.

use leptos::prelude::*;
use leptos::task::spawn_local;
use switchboard_shared::{BrowserMessage, ChatAccepted, ChatPost, ChatVia};

use crate::dashboard::Dashboard;

/// What became of the last message sent.
#[derive(Debug, Clone, PartialEq)]
enum Sent {
    Nothing,
    Waiting(&'static str),
    /// Said on the phone line as `client_ref`; the server's `chat_accepted` confirms it.
    Said(String),
    Accepted(String),
    Refused(String),
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
    let send_ws = move || {
        let Some(post) = compose(ChatVia::Ws) else {
            return;
        };
        let client_ref = post.client_ref.clone().unwrap_or_default();
        dashboard.phone.reply.set(None);
        match dashboard.phone.say(BrowserMessage::Chat(post)) {
            Ok(()) => {
                text.set(String::new());
                sent.set(Sent::Said(client_ref));
            }
            Err(why) => sent.set(Sent::Refused(why)),
        }
    };
    // The server answers a chat frame on the same line: confirm the message it published, or say why
    // it refused.
    Effect::new(move |_| {
        let reply = dashboard.phone.reply.get();
        let Sent::Said(waiting_for) = sent.get_untracked() else {
            return;
        };
        match reply {
            Some(Ok(accepted)) if accepted.client_ref.as_deref() == Some(waiting_for.as_str()) => {
                sent.set(Sent::Accepted(format!(
                    "said on the phone line: published as #{}",
                    accepted.seq
                )));
            }
            Some(Err(why)) => sent.set(Sent::Refused(format!("refused on the phone line: {why}"))),
            _ => {}
        }
    });

    view! {
        // Enter sends: on the phone line while a call is up, otherwise as a letter.
        <form
            class="composer"
            on:submit=move |event| {
                event.prevent_default();
                if dashboard.phone.is_up() { send_ws() } else { send_post() }
            }
        >
            <input
                class="author"
                aria-label="Your name"
                maxlength="32"
                prop:value=move || author.get()
                on:input=move |event| author.set(event_target_value(&event))
            />
            <input
                class="message"
                data-testid="chat-input"
                aria-label="Chat message"
                placeholder="Say something — everyone receives it on every lane"
                maxlength="500"
                prop:value=move || text.get()
                on:input=move |event| text.set(event_target_value(&event))
            />
            <button type="button" class="send post" data-testid="send-post" on:click=move |_| send_post()>
                "✉ Send as a letter"
            </button>
            <button type="button" class="send ws" data-testid="send-ws" on:click=move |_| send_ws()>
                "☎ Say on the phone"
            </button>
            <p class="sent" data-testid="chat-status" class:refused=move || matches!(sent.get(), Sent::Refused(_))>
                {move || match sent.get() {
                    Sent::Nothing => String::new(),
                    Sent::Waiting(how) => format!("sending as a {how}…"),
                    Sent::Said(_) => "said on the phone line; waiting for the server to confirm…".to_owned(),
                    Sent::Accepted(what) | Sent::Refused(what) => what,
                }}
            </p>
        </form>
    }
}
