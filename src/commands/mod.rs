//! One module per subcommand: library functions that write to the writer
//! given and return a Result; `main` only maps the result to an exit status.

pub mod baseline;
pub mod check;
pub mod policy;
pub mod port;
pub mod registry;
