//! `portwarden port <PORT | LOW-HIGH | SERVICE-NAME> [--json]`.

use crate::cli::PortArgs;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::model::Listener;
use crate::registry::{self, Registry};
use crate::render;
use std::io::Write;

/// `portwarden port`: resolves the registry, scans the machine and explains
/// the query. The query is checked before the scan, so a bad one fails fast.
pub fn run(config: &Config, args: &PortArgs, out: &mut dyn Write) -> Result<Exit> {
    let registry = Registry::resolve(config.registry.as_deref())?;
    registry::Query::parse(&args.query)?;
    let options = crate::collect::ScanOptions {
        all_netns: args.all_netns,
    };
    let report = super::scan_with(&registry, &options)?.report;
    explain(
        &registry,
        &args.query,
        args.json,
        Some(&report.listeners),
        out,
    )?;
    Ok(Exit::Ok)
}

/// Explains `query` from `registry` and writes it as text or JSON.
/// `listeners` are the current listeners (`None` when no scan was made);
/// the OS's ephemeral range is read here.
pub fn explain(
    registry: &Registry,
    query: &str,
    json: bool,
    listeners: Option<&[Listener]>,
    out: &mut dyn Write,
) -> Result<()> {
    let explanation = registry::explain(registry, query, listeners, registry::ephemeral_range())?;
    if json {
        render::port::json(&explanation, out)
    } else {
        render::port::text(&explanation, out)
    }
    .map_err(Error::Write)
}
