//! `portwarden` / `portwarden list`.

use crate::cli::{ListArgs, ListFormat};
use crate::collect::ScanOptions;
use crate::config::{filter_from, list_format, Config};
use crate::error::Result;
use crate::exit::Exit;
use crate::model::{NetNsSkipped, Report};
use crate::registry::Registry;
use crate::render;
use std::io::Write;

/// Lists every listener that passes the filters, in the chosen format.
/// A listing always succeeds with [`Exit::Ok`]: `check` is what judges.
pub fn run(config: &Config, args: &ListArgs, out: &mut dyn Write) -> Result<Exit> {
    let registry = Registry::resolve(config.registry.as_deref())?;
    let options = ScanOptions {
        all_netns: args.all_netns,
    };
    let scan = super::scan_with(&registry, &options)?;
    render_list_with_netns(config, args, scan.report, &scan.netns_skipped, out)?;
    Ok(Exit::Ok)
}

/// Filters `report` and renders it: the pure half of [`run`].
pub fn render_list(
    config: &Config,
    args: &ListArgs,
    report: Report,
    out: &mut dyn Write,
) -> Result<()> {
    render_list_with_netns(config, args, report, &[], out)
}

/// [`render_list`], also saying which network namespaces were not scanned.
pub fn render_list_with_netns(
    config: &Config,
    args: &ListArgs,
    report: Report,
    netns_skipped: &[NetNsSkipped],
    out: &mut dyn Write,
) -> Result<()> {
    let filter = filter_from(&args.filter);
    let report = Report {
        listeners: filter.apply(report.listeners),
        privileged: report.privileged,
    };
    let style = config.list_style(args);
    match list_format(args) {
        ListFormat::Table => {
            render::table::render(&report, &style, out)?;
            render::netns::skipped_note(netns_skipped, report.privileged, out)?;
        }
        ListFormat::Json => render::json::render_with_netns(&report, netns_skipped, out)?,
        // These formats have a fixed shape: the note goes to standard error.
        ListFormat::Csv | ListFormat::Plain => {
            if list_format(args) == ListFormat::Csv {
                render::csv::render(&report, out)?;
            } else {
                render::plain::render(&report, out)?;
            }
            out.flush()?;
            render::netns::skipped_note(netns_skipped, report.privileged, &mut std::io::stderr())?;
        }
    }
    out.flush()?;
    Ok(())
}
