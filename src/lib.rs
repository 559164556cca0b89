//! mpscope: singular-value spectra of transformer weights against the Marchenko–Pastur law.

pub mod anatomy;
pub mod checkpoint;
pub mod spectrum;
pub mod rng;
pub mod synth;
