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
    render_list_with_notes(
        config,
        args,
        scan.report,
        &scan.netns_skipped,
        &scan.warnings,
        out,
    )?;
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
    render_list_with_notes(config, args, report, netns_skipped, &[], out)
}

/// [`render_list_with_netns`], also giving the scan's warnings: after the
/// table, in the JSON document's `warnings` array, or on standard error
/// beside CSV and plain output (whose standard output has a fixed shape).
pub fn render_list_with_notes(
    config: &Config,
    args: &ListArgs,
    report: Report,
    netns_skipped: &[NetNsSkipped],
    warnings: &[String],
    out: &mut dyn Write,
) -> Result<()> {
    render_list_to(
        config,
        args,
        report,
        netns_skipped,
        warnings,
        out,
        &mut std::io::stderr(),
    )
}

/// [`render_list_with_notes`] with standard error given, for tests.
fn render_list_to(
    config: &Config,
    args: &ListArgs,
    report: Report,
    netns_skipped: &[NetNsSkipped],
    warnings: &[String],
    out: &mut dyn Write,
    err: &mut dyn Write,
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
            render::warnings::lines(warnings, out)?;
            render::netns::skipped_note(netns_skipped, report.privileged, out)?;
        }
        ListFormat::Json => {
            render::json::render_with_notes(&report, netns_skipped, warnings, out)?;
        }
        // These formats have a fixed shape: the note goes to standard error.
        ListFormat::Csv | ListFormat::Plain => {
            if list_format(args) == ListFormat::Csv {
                render::csv::render(&report, out)?;
            } else {
                render::plain::render(&report, out)?;
            }
            out.flush()?;
            render::warnings::stderr_lines(warnings, err)?;
            render::netns::skipped_note(netns_skipped, report.privileged, err)?;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            color: false,
            stdout_is_terminal: false,
            stderr_is_terminal: false,
            width: None,
            registry: None,
            policy_env: None,
        }
    }

    /// Standard output and standard error of a listing in `format`.
    fn listed(format: ListFormat, warnings: &[String]) -> (String, String) {
        let args = ListArgs {
            format: Some(format),
            ..ListArgs::default()
        };
        let report = crate::render::fixtures::report();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        render_list_to(&config(), &args, report, &[], warnings, &mut out, &mut err).unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn warnings_follow_the_table_or_go_to_stderr() {
        let w = vec![
            "sockets read from /proc/net: netlink sock_diag failed (x)".to_string(),
            "container names unknown: Docker API at /d.sock failed (\u{1b}y)".to_string(),
        ];
        let lines = "warning: sockets read from /proc/net: netlink sock_diag failed (x)\n\
                     warning: container names unknown: Docker API at /d.sock failed (\\ey)\n";
        let (quiet, _) = listed(ListFormat::Table, &[]);
        let (out, err) = listed(ListFormat::Table, &w);
        assert_eq!(out, format!("{quiet}{lines}"));
        assert!(err.is_empty(), "{err}");
        let on_stderr = lines.replace("warning: ", "portwarden: warning: ");
        for format in [ListFormat::Plain, ListFormat::Csv] {
            let (quiet, none) = listed(format, &[]);
            assert!(none.is_empty(), "{none}");
            let (out, err) = listed(format, &w);
            assert_eq!(out, quiet, "{format:?}: standard output keeps its shape");
            assert_eq!(err, on_stderr, "{format:?}");
        }
        let (out, err) = listed(ListFormat::Json, &w);
        assert!(err.is_empty(), "{err}");
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["warnings"], serde_json::json!(w));
        let (out, _) = listed(ListFormat::Json, &[]);
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["warnings"], serde_json::json!([]));
    }
}
