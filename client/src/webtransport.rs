//! WebTransport: ask `GET /api/webtransport` where to dial and which certificate to trust (by its
//! SHA-256, as a browser does), open a session over QUIC, read the JSON lines of the server's
//! unidirectional stream — and, in datagram mode, the events that come as datagrams — and say things on
//! a bidirectional stream.

use bytes::BytesMut;
use std::sync::Arc;
use std::time::Duration;
use switchboard_shared::{BrowserMessage, Seq, ServerMessage, WebTransportInfo, WebTransportMode};
use wtransport::tls::Sha256Digest;
use wtransport::{ClientConfig, Connection, Endpoint, RecvStream, SendStream};

use crate::ClientError;
use crate::stream::take_line;

/// A QUIC client endpoint: one UDP socket, any number of sessions.
pub type ClientEndpoint = Endpoint<wtransport::endpoint::endpoint_side::Client>;

/// One open session.
pub struct WtClient {
    connection: Connection,
    _endpoint: Arc<ClientEndpoint>,
    lines: Option<RecvStream>,
    pending: BytesMut,
    talk: Option<(SendStream, RecvStream, BytesMut)>,
}

impl std::fmt::Debug for WtClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WtClient")
            .field("remote", &self.connection.remote_address())
            .finish_non_exhaustive()
    }
}

impl WtClient {
    /// Where the server at `base` (`http://host:port`) takes WebTransport sessions.
    pub async fn info(http: &reqwest::Client, base: &str) -> Result<WebTransportInfo, ClientError> {
        let response = http.get(format!("{base}/api/webtransport")).send().await?;
        if !response.status().is_success() {
            return Err(ClientError::refused(response).await);
        }
        Ok(response.json().await?)
    }

    /// The session URL for `info`, resuming after `after`, in `mode`.
    pub fn url(info: &WebTransportInfo, after: Option<Seq>, mode: WebTransportMode) -> String {
        let mut url = info.url.clone();
        let mut sep = '?';
        if let Some(after) = after {
            url.push_str(&format!("{sep}after={after}"));
            sep = '&';
        }
        if mode == WebTransportMode::Datagram {
            url.push_str(&format!("{sep}mode=datagram"));
        }
        url
    }

    /// A client endpoint (one UDP socket) that trusts only the certificate `info` names; many sessions
    /// can share it, as a browser's share one QUIC stack.
    pub fn endpoint(info: &WebTransportInfo) -> Result<Arc<ClientEndpoint>, ClientError> {
        let config = WtClient::config(info, Some(Duration::from_secs(5)))?;
        Endpoint::client(config).map(Arc::new).map_err(wt)
    }

    /// A client configuration that trusts only the certificate `info` names.
    fn config(
        info: &WebTransportInfo,
        keep_alive: Option<Duration>,
    ) -> Result<ClientConfig, ClientError> {
        let hash = info
            .cert_digest()
            .map(Sha256Digest::new)
            .ok_or_else(|| ClientError::Protocol(format!("not a SHA-256: {}", info.cert_sha256)))?;
        Ok(ClientConfig::builder()
            .with_bind_default()
            .with_server_certificate_hashes([hash])
            .keep_alive_interval(keep_alive)
            .build())
    }

    /// Completes only QUIC's handshake with the endpoint `info` names and never says CONNECT (a hostile
    /// client's way to hold the server's handshake slots). Returns the bare QUIC connection and its
    /// endpoint; dropping them closes it.
    pub async fn handshake_only(
        info: &WebTransportInfo,
    ) -> Result<(wtransport::quinn::Connection, wtransport::quinn::Endpoint), ClientError> {
        let config = WtClient::config(info, None)?;
        let url: reqwest::Url = info.url.parse().map_err(wt)?;
        let host = url.host_str().unwrap_or("localhost").to_owned();
        let port = url.port().unwrap_or(443);
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(wt)?
            .next()
            .ok_or_else(|| ClientError::Protocol(format!("no address for {host}")))?;
        let bind: std::net::SocketAddr = if addr.is_ipv4() {
            ([127, 0, 0, 1], 0).into()
        } else {
            (std::net::Ipv6Addr::LOCALHOST, 0).into()
        };
        let mut endpoint = wtransport::quinn::Endpoint::client(bind).map_err(wt)?;
        endpoint.set_default_client_config(config.quic_config().clone());
        let connection = endpoint
            .connect(addr, &host)
            .map_err(wt)?
            .await
            .map_err(wt)?;
        Ok((connection, endpoint))
    }

    /// Opens a session at `url` on an endpoint of its own.
    pub async fn connect(info: &WebTransportInfo, url: &str) -> Result<WtClient, ClientError> {
        let endpoint = WtClient::endpoint(info)?;
        WtClient::connect_on(&endpoint, url).await
    }

    /// Opens a session at `url` as a page of `origin` would (a browser sends its page's origin).
    pub async fn connect_from(
        info: &WebTransportInfo,
        url: &str,
        origin: &str,
    ) -> Result<WtClient, ClientError> {
        let endpoint = WtClient::endpoint(info)?;
        let options = wtransport::endpoint::ConnectOptions::builder(url)
            .add_header("origin", origin)
            .build();
        let connection = endpoint.connect(options).await.map_err(wt)?;
        Ok(WtClient {
            connection,
            _endpoint: endpoint,
            lines: None,
            pending: BytesMut::new(),
            talk: None,
        })
    }

    /// Opens a session at `url` on a shared `endpoint`.
    pub async fn connect_on(
        endpoint: &Arc<ClientEndpoint>,
        url: &str,
    ) -> Result<WtClient, ClientError> {
        let connection = endpoint.connect(url).await.map_err(wt)?;
        Ok(WtClient {
            connection,
            _endpoint: endpoint.clone(),
            lines: None,
            pending: BytesMut::new(),
            talk: None,
        })
    }

    /// The next line of the server's stream; `None` when it ended.
    async fn next_line(&mut self) -> Option<Result<String, ClientError>> {
        loop {
            if let Some(line) = take_line(&mut self.pending) {
                return Some(line);
            }
            if self.lines.is_none() {
                match self.connection.accept_uni().await {
                    Ok(stream) => self.lines = Some(stream),
                    Err(err) => return Some(Err(wt(err))),
                }
            }
            let stream = self.lines.as_mut().expect("accepted just above");
            let mut buffer = [0u8; 4096];
            match stream.read(&mut buffer).await {
                Ok(Some(read)) => self.pending.extend_from_slice(&buffer[..read]),
                Ok(None) => return None,
                Err(err) => return Some(Err(wt(err))),
            }
        }
    }

    /// The next message, from the stream or (in datagram mode) a datagram, whichever comes first;
    /// `None` when the session ended.
    pub async fn next_message(&mut self) -> Option<Result<ServerMessage, ClientError>> {
        let text = self.next_text().await?;
        Some(text.and_then(|text| {
            serde_json::from_str(text.trim_end())
                .map_err(|err| ClientError::Protocol(format!("{err}: {text}")))
        }))
    }

    /// The next message's text as it came (a line without its newline, or a datagram's payload).
    pub async fn next_text(&mut self) -> Option<Result<String, ClientError>> {
        let text = if self.pending.contains(&b'\n') {
            self.next_line().await?
        } else {
            let connection = self.connection.clone();
            tokio::select! {
                line = self.next_line() => line?,
                datagram = connection.receive_datagram() => match datagram {
                    Ok(datagram) => String::from_utf8(datagram.payload().to_vec())
                        .map_err(|err| ClientError::Protocol(format!("a datagram not UTF-8: {err}"))),
                    Err(err) => Err(wt(err)),
                },
            }
        };
        Some(text)
    }

    /// Says `message` on the session's talking stream (opened on first use) and waits for its answer.
    pub async fn say(&mut self, message: &BrowserMessage) -> Result<ServerMessage, ClientError> {
        let mut line = serde_json::to_vec(message).expect("plain data serializes");
        line.push(b'\n');
        self.say_raw(&line).await
    }

    /// Writes `bytes` as they are on the talking stream and reads one answer line.
    pub async fn say_raw(&mut self, bytes: &[u8]) -> Result<ServerMessage, ClientError> {
        if self.talk.is_none() {
            let opening = self.connection.open_bi().await.map_err(wt)?;
            let (send, recv) = opening.await.map_err(wt)?;
            self.talk = Some((send, recv, BytesMut::new()));
        }
        let (send, recv, pending) = self.talk.as_mut().expect("opened just above");
        send.write_all(bytes).await.map_err(wt)?;
        loop {
            if let Some(end) = pending.iter().position(|&byte| byte == b'\n') {
                let line = pending.split_to(end + 1);
                return serde_json::from_slice(&line[..end]).map_err(|err| {
                    ClientError::Protocol(format!("{err}: {}", String::from_utf8_lossy(&line)))
                });
            }
            let mut buffer = [0u8; 4096];
            match recv.read(&mut buffer).await.map_err(wt)? {
                Some(read) => pending.extend_from_slice(&buffer[..read]),
                None => return Err(ClientError::Protocol("the talking stream ended".into())),
            }
        }
    }

    /// Says `bytes` on a talking stream of its own (a new bidirectional stream each time) and reads
    /// one answer line, or `None` when the stream or the session ended first.
    pub async fn say_on_new_stream(&self, bytes: &[u8]) -> Result<Option<String>, ClientError> {
        let opening = self.connection.open_bi().await.map_err(wt)?;
        let (mut send, mut recv) = opening.await.map_err(wt)?;
        send.write_all(bytes).await.map_err(wt)?;
        let mut pending = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            if let Some(end) = pending.iter().position(|&byte| byte == b'\n') {
                return Ok(Some(String::from_utf8_lossy(&pending[..end]).into_owned()));
            }
            match recv.read(&mut buffer).await {
                Ok(Some(read)) => pending.extend_from_slice(&buffer[..read]),
                Ok(None) | Err(_) => return Ok(None),
            }
        }
    }

    /// Opens a unidirectional stream of the client's own and writes `bytes` on it (the lane reads none:
    /// a hostile client's way to make the server buffer). Returns once all were accepted.
    pub async fn write_own_stream(&self, bytes: &[u8]) -> Result<(), ClientError> {
        let opening = self.connection.open_uni().await.map_err(wt)?;
        let mut send = opening.await.map_err(wt)?;
        send.write_all(bytes).await.map_err(wt)
    }

    /// Sends one datagram (the lane reads none the client sends).
    pub fn send_datagram(&self, payload: &[u8]) -> Result<(), ClientError> {
        self.connection.send_datagram(payload).map_err(wt)
    }

    /// Stops reading the server's stream (QUIC's STOP_SENDING), as a page that drops its reader does;
    /// the connection itself stays up until one side closes it.
    pub fn stop_reading(&mut self) {
        if let Some(stream) = self.lines.take() {
            stream.stop(wtransport::VarInt::from_u32(0));
        }
    }

    /// Waits for the session to end; the server's close code and reason, when it closed it.
    pub async fn closed(&self) -> Option<(u32, String)> {
        match self.connection.closed().await {
            wtransport::error::ConnectionError::ApplicationClosed(close) => Some((
                close.code().into_inner() as u32,
                String::from_utf8_lossy(close.reason()).into_owned(),
            )),
            _ => None,
        }
    }

    /// UDP bytes this client sent and received on the session so far.
    pub fn udp_bytes(&self) -> (u64, u64) {
        let stats = self.connection.quic_connection().stats();
        (stats.udp_tx.bytes, stats.udp_rx.bytes)
    }
}

fn wt(err: impl std::fmt::Display) -> ClientError {
    ClientError::WebTransport(err.to_string())
}
