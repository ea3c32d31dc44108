//! Numbers as a person reads them: they live in `shared`, where the server's findings use them too.

pub use switchboard_shared::format::{format_bytes, format_clock, format_ms};
