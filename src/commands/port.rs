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
    let scan = super::scan_with(&registry, &options)?;
    explain(
        &registry,
        &args.query,
        args.json,
        Some(&scan.report.listeners),
        out,
    )?;
    // Namespaces --all-netns could not enter: "nothing listening" would
    // otherwise be a claim about them too. JSON keeps its schema: the note
    // goes to standard error there.
    let privileged = scan.report.privileged;
    out.flush()?;
    render::warnings::stderr_lines(&scan.warnings, &mut std::io::stderr())?;
    if args.json {
        out.flush()?;
        render::netns::skipped_note(&scan.netns_skipped, privileged, &mut std::io::stderr())?;
    } else {
        render::netns::skipped_note(&scan.netns_skipped, privileged, out)?;
    }
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
