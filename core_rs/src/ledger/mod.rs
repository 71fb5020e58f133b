//! The provision ledger (情報提供等記録): every inquiry, permitted or denied, as a record in an
//! RFC 6962/9162 Merkle tree, stored in the C2SP tlog-tiles layout and committed by signed
//! C2SP checkpoints.

pub mod fetched;
pub mod integrate;
pub mod merkle;
pub mod note;
pub mod record;
pub mod store;
pub mod tiles;
mod group;

pub use group::{Appender, Ledger};
