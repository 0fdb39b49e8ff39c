//! The subcommands, as library functions: each takes resolved
//! configuration, writes to the writer it is given and returns an [`Exit`].

pub mod baseline;
pub mod check;
pub mod list;
pub mod policy;
pub mod port;
pub mod registry;
pub mod watch;

use crate::classify::classify;
use crate::error::Result;
use crate::model::Report;
use crate::registry::Registry;

/// One scan of the machine, classified: collect, then classify.
pub fn scan(registry: &Registry) -> Result<Report> {
    let inventory = crate::collect::scan()?;
    Ok(classify(inventory, registry))
}
