//! What a page needs to open a WebTransport session, and the two ways events come on one.

use serde::{Deserialize, Serialize};

/// `GET /api/webtransport`: where the server's QUIC endpoint takes sessions and the certificate to
/// trust. A browser accepts a self-signed certificate only by its SHA-256 (`serverCertificateHashes`),
/// and only one valid for less than two weeks: the server makes a new one at every start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebTransportInfo {
    /// The session URL without its query (`https://127.0.0.1:3000/api/webtransport`); the port is UDP.
    pub url: String,
    /// The certificate's SHA-256, 64 lowercase hex digits.
    pub cert_sha256: String,
    /// When the certificate stops being valid (Unix ms).
    pub not_after_ms: u64,
}

impl WebTransportInfo {
    /// The certificate's SHA-256 as bytes, as `serverCertificateHashes` takes it; `None` when
    /// `cert_sha256` is not 64 hex digits.
    pub fn cert_digest(&self) -> Option<[u8; 32]> {
        let text = self.cert_sha256.as_bytes();
        if text.len() != 64 {
            return None;
        }
        let mut digest = [0u8; 32];
        for (byte, pair) in digest.iter_mut().zip(text.chunks(2)) {
            let pair = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(digest)
    }
}

/// How events come on a WebTransport session (`?mode=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebTransportMode {
    /// On the server's one unidirectional stream, in seq order, none lost (QUIC retransmits).
    #[default]
    Stream,
    /// Each event in its own datagram: never retransmitted, so a lost packet is a missed seq — the one
    /// lane where that is expected. Hello, heartbeats and gap notices stay on the stream.
    Datagram,
}

impl WebTransportMode {
    pub const fn as_str(self) -> &'static str {
        match self {
            WebTransportMode::Stream => "stream",
            WebTransportMode::Datagram => "datagram",
        }
    }

    /// How the page names it.
    pub const fn title(self) -> &'static str {
        match self {
            WebTransportMode::Stream => "a stream",
            WebTransportMode::Datagram => "datagrams",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_digest_is_read_from_hex() {
        let info = |hash: &str| WebTransportInfo {
            url: String::new(),
            cert_sha256: hash.into(),
            not_after_ms: 0,
        };
        let digest = info(&format!("00ff{}", "1a".repeat(30)))
            .cert_digest()
            .unwrap();
        assert_eq!(
            (digest[0], digest[1], digest[2], digest[31]),
            (0, 255, 0x1a, 0x1a)
        );
        assert_eq!(info("00ff").cert_digest(), None, "too short");
        assert_eq!(info(&"zz".repeat(32)).cert_digest(), None, "not hex");
        assert_eq!(info(&"é".repeat(32)).cert_digest(), None, "not ASCII");
    }

    #[test]
    fn the_mode_is_read_from_the_query_word() {
        assert_eq!(
            serde_json::from_str::<WebTransportMode>("\"datagram\"").unwrap(),
            WebTransportMode::Datagram
        );
        assert_eq!(WebTransportMode::default(), WebTransportMode::Stream);
        assert!(serde_json::from_str::<WebTransportMode>("\"carrier pigeon\"").is_err());
    }
}
