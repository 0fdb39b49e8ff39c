//! portwarden: what is listening on this machine, who owns it, and should it be there?
//!
//! Data flows one way: [`collect`] (OS-specific, returns plain data) ->
//! [`classify`] (pure) -> [`render`] (pure, one module per format).

pub mod baseline;
pub mod check;
pub mod classify;
pub mod cli;
pub mod collect;
pub mod commands;
pub mod config;
pub mod error;
pub mod exit;
pub mod filter;
pub mod model;
pub mod paths;
pub mod policy;
pub mod registry;
pub mod render;
pub mod sanitize;
pub mod summary;
pub mod watch;

pub use error::{Error, Result};
