//! Pure rendering: one module per output.

pub mod check_json;
pub mod check_text;
pub mod nagios;
pub mod port;
pub mod prometheus;
