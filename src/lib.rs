//! mpscope: singular-value spectra of transformer weights against the Marchenko–Pastur law.
//!
//! The library holds everything; the `mpscope` binary only parses the command line.

pub mod anatomy;
pub mod cache;
pub mod checkpoint;
pub mod compare;
pub mod compare_report;
pub mod demo;
pub mod error;
pub mod inspect;
pub mod progress;
pub mod rank;
pub mod report;
pub mod rng;
pub mod saved_report;
pub mod scan;
pub mod shard;
mod simd;
pub mod spectrum;
pub mod synth;
pub mod tui;
pub mod units;
pub mod worker;

pub use error::Error;
