//! The terminal explorer: state, keys, drawing and the event loop.

pub mod keys;
pub mod plot;
pub mod terminal;
pub mod theme;
