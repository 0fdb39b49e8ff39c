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
    render_list(
        config,
        args,
        scan.report,
        &scan.netns_skipped,
        &scan.warnings,
        out,
        &mut std::io::stderr(),
    )?;
    Ok(Exit::Ok)
}

/// Filters `report` and renders it, the pure half of [`run`]: the network
/// namespaces not scanned and the scan's warnings go after the table, into
/// the JSON document, or to `err` beside CSV and plain output (whose
/// standard output has a fixed shape).
pub fn render_list(
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
            render::json::render(&report, netns_skipped, warnings, out)?;
        }
        ListFormat::Csv => render::csv::render(&report, out)?,
        ListFormat::Plain => render::plain::render(&report, out)?,
    }
    out.flush()?;
    if matches!(list_format(args), ListFormat::Csv | ListFormat::Plain) {
        // These formats have a fixed shape: the notes go to standard error.
        render::warnings::stderr_lines(warnings, err)?;
        render::netns::skipped_note(netns_skipped, report.privileged, err)?;
    }
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
        render_list(&config(), &args, report, &[], warnings, &mut out, &mut err).unwrap();
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
