//! `portwarden` / `portwarden list`.

use crate::cli::{ListArgs, ListFormat};
use crate::config::{filter_from, list_format, Config};
use crate::error::Result;
use crate::exit::Exit;
use crate::model::Report;
use crate::registry::Registry;
use crate::render;
use std::io::Write;

/// Lists every listener that passes the filters, in the chosen format.
/// A listing always succeeds with [`Exit::Ok`]: `check` is what judges.
pub fn run(config: &Config, args: &ListArgs, out: &mut dyn Write) -> Result<Exit> {
    let registry = Registry::resolve(config.registry.as_deref())?;
    let report = super::scan(&registry)?;
    render_list(config, args, report, out)?;
    Ok(Exit::Ok)
}

/// Filters `report` and renders it: the pure half of [`run`].
pub fn render_list(
    config: &Config,
    args: &ListArgs,
    report: Report,
    out: &mut dyn Write,
) -> Result<()> {
    let filter = filter_from(&args.filter);
    let report = Report {
        listeners: filter.apply(report.listeners),
        privileged: report.privileged,
    };
    let style = config.list_style(args);
    match list_format(args) {
        ListFormat::Table => render::table::render(&report, &style, out)?,
        ListFormat::Json => render::json::render(&report, out)?,
        ListFormat::Csv => render::csv::render(&report, out)?,
        ListFormat::Plain => render::plain::render(&report, out)?,
    }
    out.flush()?;
    Ok(())
}
