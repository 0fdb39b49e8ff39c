//! Renderers: pure functions from model data to a writer, one module per format.

pub mod check_json;
pub mod check_text;
pub mod nagios;
pub mod prometheus;
