//! HAR files: the browser's own record of a page's traffic. [`model`] reads and writes HAR 1.2 as
//! Chrome and Firefox export it; [`classify`] sorts its traffic into the timeline's channels (letters,
//! held letters, radio, phone call) with their figures and a verdict in words; [`export`] writes this
//! session as a HAR.

pub mod classify;
pub mod export;
pub mod model;

pub use classify::{Channel, ChannelKind, EmptyRule, Imported, Item, classify};
pub use model::{Har, HarError};
