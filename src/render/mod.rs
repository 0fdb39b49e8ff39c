//! Pure rendering: one module per output.

pub mod port;
