//! The phone call: `GET /ws` upgraded to a WebSocket, speaking [`ServerMessage`] one way and
//! [`BrowserMessage`] the other.

use futures_util::{SinkExt, StreamExt};
use switchboard_shared::{BrowserMessage, ServerMessage};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::ClientError;

/// The socket a call runs on.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One call.
#[derive(Debug)]
pub struct WsClient {
    pub socket: Socket,
}

/// Why no message came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The server closed the call, with its close code when it gave one.
    Closed(Option<u16>),
    /// The connection ended or failed without a close frame.
    Gone,
    /// A text frame that is not a server message.
    Garbled(String),
}

impl WsClient {
    /// Dials `url` (`ws://host:port/ws?after=N`); the answer's status comes with the call (101).
    pub async fn dial(url: &str) -> Result<(WsClient, u16), ClientError> {
        WsClient::dial_with(url, WebSocketConfig::default()).await
    }

    /// Dials with a configuration (a small read buffer, say, for thousands of calls at once).
    pub async fn dial_with(
        url: &str,
        config: WebSocketConfig,
    ) -> Result<(WsClient, u16), ClientError> {
        let (socket, response) =
            tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
        Ok((WsClient { socket }, response.status().as_u16()))
    }

    /// Says `message` on the line.
    pub async fn say(&mut self, message: &BrowserMessage) -> Result<(), ClientError> {
        let text = serde_json::to_string(message).expect("browser messages serialize");
        self.send_text(text).await
    }

    /// Sends any text frame, well-formed or not (the tests send bad ones on purpose).
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), ClientError> {
        Ok(self.socket.send(Message::text(text.into())).await?)
    }

    /// The next frame as it came; `None` when the connection ended.
    pub async fn next_frame(&mut self) -> Option<Result<Message, ClientError>> {
        self.socket
            .next()
            .await
            .map(|frame| frame.map_err(ClientError::from))
    }

    /// The next protocol message (a text frame; protocol pings and pongs are skipped, and answered by
    /// the library), or how the call ended.
    pub async fn next_message(&mut self) -> Result<ServerMessage, Ended> {
        loop {
            match self.next_frame().await {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(text.as_str())
                        .map_err(|err| Ended::Garbled(format!("{err}: {}", text.as_str())));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(Ended::Closed(frame.map(|frame| u16::from(frame.code))));
                }
                Some(Ok(_)) => continue,
                None | Some(Err(_)) => return Err(Ended::Gone),
            }
        }
    }

    /// Hangs up politely.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
