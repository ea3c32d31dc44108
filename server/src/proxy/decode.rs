//! An app's compressed answer (`Content-Encoding: gzip`, `deflate` or `br`) read for the recording and
//! the figures — so "the same answer as before" and the HAR's text work on what the app said, not on its
//! compressed bytes. The browser gets the bytes as they came; only the first [`KEPT`] bytes are decoded,
//! and decoding stops there, so a large download costs no more than its first 64 KiB.

use std::io::Write;

use super::record::BODY_PREFIX;

/// How much of an answer is decoded: what the recording keeps of a body.
pub const KEPT: usize = BODY_PREFIX;

/// Takes decoded bytes up to its limit, then refuses more (which stops the decoder).
#[derive(Debug, Default)]
struct Limited {
    out: Vec<u8>,
}

impl Write for Limited {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let room = KEPT - self.out.len();
        if room == 0 {
            return Err(std::io::Error::other("enough is decoded"));
        }
        let taken = room.min(bytes.len());
        self.out.extend_from_slice(&bytes[..taken]);
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Inner {
    Gzip(flate2::write::GzDecoder<Limited>),
    Deflate(flate2::write::ZlibDecoder<Limited>),
    Brotli(Box<brotli_decompressor::DecompressorWriter<Limited>>),
}

/// One answer's decoder.
pub struct Decoder {
    inner: Inner,
    /// It stopped: enough was decoded, or the bytes were not what the header said.
    done: bool,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    /// A decoder for an answer's `Content-Encoding`, when it is one the proxy reads.
    pub fn for_encoding(encoding: &str) -> Option<Decoder> {
        let inner = match encoding.trim().to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Inner::Gzip(flate2::write::GzDecoder::new(Limited::default())),
            "deflate" => Inner::Deflate(flate2::write::ZlibDecoder::new(Limited::default())),
            "br" => Inner::Brotli(Box::new(brotli_decompressor::DecompressorWriter::new(
                Limited::default(),
                4096,
            ))),
            _ => return None,
        };
        Some(Decoder { inner, done: false })
    }

    /// Decodes a chunk of the answer as it came.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.done {
            return;
        }
        let written = match &mut self.inner {
            Inner::Gzip(decoder) => decoder.write_all(chunk),
            Inner::Deflate(decoder) => decoder.write_all(chunk),
            Inner::Brotli(decoder) => decoder.write_all(chunk),
        };
        if written.is_err() {
            self.done = true;
        }
    }

    /// What was decoded so far (at most [`KEPT`] bytes).
    pub fn decoded(&mut self) -> Vec<u8> {
        let _ = match &mut self.inner {
            Inner::Gzip(decoder) => decoder.flush(),
            Inner::Deflate(decoder) => decoder.flush(),
            Inner::Brotli(decoder) => decoder.flush(),
        };
        match &self.inner {
            Inner::Gzip(decoder) => decoder.get_ref().out.clone(),
            Inner::Deflate(decoder) => decoder.get_ref().out.clone(),
            Inner::Brotli(decoder) => decoder.get_ref().out.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_and_deflate_answers_are_read_as_the_app_wrote_them() {
        let text = b"{\"events\": [], \"cursor\": 12}".repeat(10);
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(&text).unwrap();
        let gzip = gzip.finish().unwrap();
        let mut decoder = Decoder::for_encoding("gzip").unwrap();
        for chunk in gzip.chunks(7) {
            decoder.push(chunk);
        }
        assert_eq!(decoder.decoded(), text);

        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(&text).unwrap();
        let mut decoder = Decoder::for_encoding("deflate").unwrap();
        decoder.push(&zlib.finish().unwrap());
        assert_eq!(decoder.decoded(), text);
        assert!(Decoder::for_encoding("identity").is_none());
    }

    #[test]
    fn only_the_first_64_kib_are_decoded_and_garbage_stops_the_decoder() {
        let big = vec![b'a'; 10 * KEPT];
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&big).unwrap();
        let mut decoder = Decoder::for_encoding("gzip").unwrap();
        decoder.push(&gzip.finish().unwrap());
        assert_eq!(decoder.decoded().len(), KEPT);
        assert!(decoder.done);

        let mut decoder = Decoder::for_encoding("br").unwrap();
        decoder.push(b"this is not brotli at all");
        decoder.push(b"nor is this");
        assert!(decoder.decoded().len() < 64);
    }
}
