//! A video-call client: asks where to dial (one letter), then reads one WebTransport session's stream
//! (and, in datagram mode, its datagrams). Sessions share a few QUIC endpoints, as a browser's share its
//! QUIC stack, rather than a UDP socket and a driver task each.

use std::sync::{Arc, Mutex};
use switchboard_client::WtClient;
use switchboard_client::webtransport::ClientEndpoint;
use switchboard_shared::{WebTransportInfo, WebTransportMode};

use super::{Client, read_line, take_message};
use crate::ClientRecord;

/// How many sessions share one client endpoint (one UDP socket).
const SESSIONS_PER_ENDPOINT: usize = 256;

/// The endpoints made so far, per certificate (one per server instance), and how many sessions each
/// was handed.
static ENDPOINTS: Mutex<Vec<(String, Arc<ClientEndpoint>, usize)>> = Mutex::new(Vec::new());

fn endpoint_for(info: &WebTransportInfo) -> Option<Arc<ClientEndpoint>> {
    let mut endpoints = ENDPOINTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, endpoint, used)) = endpoints
        .iter_mut()
        .find(|(hash, _, used)| *hash == info.cert_sha256 && *used < SESSIONS_PER_ENDPOINT)
    {
        *used += 1;
        return Some(endpoint.clone());
    }
    let endpoint = WtClient::endpoint(info).ok()?;
    endpoints.push((info.cert_sha256.clone(), endpoint.clone(), 1));
    Some(endpoint)
}

pub async fn run(client: Client, mode: WebTransportMode) -> ClientRecord {
    let mut record = ClientRecord::default();
    record.requests += 1;
    let dialled = async {
        let info = WtClient::info(&client.http, &client.base).await.ok()?;
        let endpoint = endpoint_for(&info)?;
        let url = WtClient::url(&info, None, mode);
        WtClient::connect_on(&endpoint, &url).await.ok()
    };
    let Some(session) = dialled.await else {
        record.error(&client.live);
        return record;
    };
    client.connected();
    let messages = futures_util::stream::unfold(session, |mut session| async move {
        session.next_text().await.map(|text| (text, session))
    });
    read_line(&client, &mut record, messages, |record, live, text| {
        record.bytes += text.len() as u64 + 1;
        take_message(record, live, text.trim_end());
    })
    .await;
    record
}
