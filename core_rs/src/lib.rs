//! renkei's engine. Each domain is its own module, usable and tested without Python; the PyO3
//! bindings live in `py` and are built only with the `python` feature (maturin turns it on).

pub mod codes;
pub mod durable;
pub mod error;
pub mod holdings;
pub mod inquiry;
pub mod ledger;
pub mod numbers;
pub mod permissions;
pub mod permits;

#[cfg(feature = "python")]
mod py;

pub use error::{Error, Result};
