//! HAR files: the browser's own record of a page's traffic, and the one classifier of traffic into the
//! timeline's channels. [`model`] reads and writes HAR 1.2 as Chrome and Firefox export it; [`classify`]
//! sorts its traffic into channels (letters, held letters, radio, phone call) with their figures and a
//! verdict in words. The page uses both on a file a person opens; the server's proxy records an app's
//! traffic as HAR entries and sorts it with the same rules, so a live app and its downloaded HAR read
//! the same.

pub mod classify;
pub mod model;
pub mod write;

pub use classify::{Channel, ChannelKind, EmptyRule, Imported, Item, classify};
pub use model::{Har, HarError};
