//! Sends a change to one of the server's control endpoints (`/api/faults`, `/api/network`,
//! `/api/traffic`) with the admin token when one is set, and turns a refusal into the server's own
//! words.

use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard_shared::ErrorBody;

/// `POST path` with `body` as JSON: the server's answer, or why it refused.
pub async fn post_json<T: DeserializeOwned>(
    path: &str,
    body: &impl Serialize,
    token: &str,
) -> Result<T, String> {
    let mut builder = gloo_net::http::Request::post(path);
    if !token.is_empty() {
        builder = builder.header("authorization", &format!("Bearer {token}"));
    }
    let request = builder.json(body).map_err(|err| err.to_string())?;
    let response = request
        .send()
        .await
        .map_err(|err| format!("no answer: {err}"))?;
    if response.ok() {
        return response
            .json::<T>()
            .await
            .map_err(|err| format!("unreadable answer: {err}"));
    }
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    Err(format!(
        "refused ({status}): {}",
        ErrorBody::message_of(&body)
    ))
}
