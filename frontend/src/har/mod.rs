//! HAR files: the browser's own record of a page's traffic. [`model`] and [`classify`] live in `shared`
//! (the server's proxy sorts a live app's traffic with the same rules); [`export`] writes this session
//! as a HAR.

pub mod export;

pub use switchboard_shared::har::{
    Channel, ChannelKind, EmptyRule, Har, HarError, Imported, Item, classify, model,
};
