//! One module per subcommand: library functions that write to the writers
//! given and return a Result; `main` only maps the result to an exit status.

pub mod baseline;
pub mod check;
pub mod policy;
