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
use crate::collect::ScanOptions;
use crate::error::Result;
use crate::model::{NetNsSkipped, Report};
use crate::registry::Registry;

/// One scan of the machine, classified: collect, then classify.
pub fn scan(registry: &Registry) -> Result<Report> {
    scan_with(registry, &ScanOptions::default()).map(|s| s.report)
}

/// A classified scan and what it could not cover.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// The listeners found.
    pub report: Report,
    /// Network namespaces that were asked for but could not be scanned.
    pub netns_skipped: Vec<NetNsSkipped>,
    /// What the scan could not do as well as it should
    /// ([`crate::model::Inventory::warnings`]).
    pub warnings: Vec<String>,
}

/// [`scan`] as `options` say (e.g. every network namespace).
pub fn scan_with(registry: &Registry, options: &ScanOptions) -> Result<Scan> {
    let mut inventory = crate::collect::scan_with(options)?;
    let netns_skipped = std::mem::take(&mut inventory.netns_skipped);
    let warnings = std::mem::take(&mut inventory.warnings);
    Ok(Scan {
        report: classify(inventory, registry),
        netns_skipped,
        warnings,
    })
}
