//! The terminal explorer: state, keys, drawing and the event loop.

pub mod app;
pub mod draw;
pub mod heat;
pub mod hits;
pub mod keys;
pub mod lines;
pub mod nav;
pub mod plot;
pub mod run;
pub mod terminal;
pub mod theme;
