//! `portwarden check`: load the policy and baseline, scan, evaluate, render.

use crate::baseline::Baseline;
use crate::check::{evaluate, Evaluation};
use crate::cli::{CheckArgs, CheckFormat};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::model::Report;
use crate::paths;
use crate::policy::{self, Policy};
use crate::render::{check_json, check_text, nagios, prometheus};
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The policy for a check: `--config`, else `$PORTWARDEN_CONFIG` (passed in
/// as `config_env`), else the user's file, else the system file, else defaults.
pub fn load_policy(explicit: Option<&Path>, config_env: Option<&OsStr>) -> Result<Policy> {
    let user = paths::user_policy().ok();
    match policy::locate(
        explicit,
        config_env,
        user.as_deref(),
        Path::new(paths::SYSTEM_POLICY),
    ) {
        Some(path) => Policy::load(&path),
        None => Ok(Policy::default()),
    }
}

/// The baseline path asked for: `--baseline` without a path means the
/// default baseline in the user's data directory.
pub fn baseline_path(arg: Option<&Path>) -> Result<PathBuf> {
    match arg {
        Some(path) => Ok(path.to_path_buf()),
        None => paths::default_baseline(),
    }
}

fn evaluation(
    args: &CheckArgs,
    config_env: Option<&OsStr>,
    scan: &mut dyn FnMut() -> Result<Report>,
) -> Result<Evaluation> {
    // Configuration errors first: a broken policy must not cost a scan.
    let policy = load_policy(args.config.as_deref(), config_env)?;
    let baseline = match &args.baseline {
        Some(arg) => {
            let path = baseline_path(arg.as_deref())?;
            let baseline = Baseline::load(&path)?;
            Some((path, baseline))
        }
        None => None,
    };
    let report = scan()?;
    let mut evaluation = evaluate(&report, &policy, baseline.as_ref().map(|(_, b)| b));
    evaluation.baseline = baseline.map(|(path, _)| path);
    Ok(evaluation)
}

fn emit(args: &CheckArgs, bytes: &[u8], out: &mut dyn Write) -> Result<()> {
    match &args.output {
        Some(path) => paths::write_atomic(path, bytes, false),
        None => out
            .write_all(bytes)
            .and_then(|()| out.flush())
            .map_err(Error::Write),
    }
}

/// Runs `portwarden check`: [`Exit::Ok`] when nothing is unexpected, else
/// [`Exit::Findings`]. With `--format nagios` the plugin state decides
/// instead, and every error becomes an UNKNOWN plugin line and
/// [`Exit::Unknown`]; otherwise errors are returned for the binary to print
/// (exit 2).
pub fn run(
    args: &CheckArgs,
    config_env: Option<&OsStr>,
    scan: &mut dyn FnMut() -> Result<Report>,
    out: &mut dyn Write,
) -> Result<Exit> {
    let result = evaluation(args, config_env, scan);
    let mut buffer = Vec::new();
    let outcome = match (args.format, result) {
        (CheckFormat::Nagios, Err(e)) => nagios::render_unknown(&e.to_string(), &mut buffer)
            .map_err(Error::Write)?
            .exit(),
        (_, Err(e)) => return Err(e),
        (CheckFormat::Nagios, Ok(e)) => nagios::render(&e, &mut buffer)
            .map_err(Error::Write)?
            .exit(),
        (format, Ok(e)) => {
            match format {
                CheckFormat::Text => check_text::render(&e, args.verbose, &mut buffer),
                CheckFormat::Json => check_json::render(&e, &mut buffer),
                CheckFormat::Prometheus => prometheus::render(&e, SystemTime::now(), &mut buffer),
                CheckFormat::Nagios => Ok(()),
            }
            .map_err(Error::Write)?;
            if e.unexpected_count() == 0 {
                Exit::Ok
            } else {
                Exit::Findings
            }
        }
    };
    match emit(args, &buffer, out) {
        Ok(()) => Ok(outcome),
        // A plugin that cannot write its file could not run: UNKNOWN (3),
        // never exit 2, which Nagios would read as CRITICAL.
        Err(e) if args.format == CheckFormat::Nagios && args.output.is_some() => {
            let mut line = Vec::new();
            let state = nagios::render_unknown(&e.to_string(), &mut line).map_err(Error::Write)?;
            out.write_all(&line)
                .and_then(|()| out.flush())
                .map_err(Error::Write)?;
            Ok(state.exit())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::tests::{listener, owner};
    use crate::model::{PortStatus, Proto};

    fn args(format: CheckFormat) -> CheckArgs {
        CheckArgs {
            config: None,
            baseline: None,
            format,
            output: None,
            verbose: false,
        }
    }

    fn report(unexpected: bool) -> Report {
        let status = if unexpected {
            PortStatus::Unassigned
        } else {
            PortStatus::Assigned
        };
        Report {
            listeners: vec![listener(
                Proto::Tcp,
                "127.0.0.1",
                4444,
                status,
                vec![owner(7, "nc", "/usr/bin/nc", "eve")],
            )],
            privileged: true,
        }
    }

    /// Runs with an empty policy file, so no user or system policy is read.
    fn run_with(mut a: CheckArgs, scanned: Report) -> (Result<Exit>, String, bool) {
        let dir = tempfile::tempdir().unwrap();
        if a.config.is_none() {
            let empty = dir.path().join("empty.toml");
            std::fs::write(&empty, "").unwrap();
            a.config = Some(empty);
        }
        let mut called = false;
        let mut scan = || {
            called = true;
            Ok(scanned.clone())
        };
        let mut out = Vec::new();
        let result = run(&a, None, &mut scan, &mut out);
        (result, String::from_utf8(out).unwrap(), called)
    }

    #[test]
    fn clean_and_unexpected_outcomes() {
        let (r, out, _) = run_with(args(CheckFormat::Text), report(false));
        assert_eq!((r.unwrap(), out.as_str()), (Exit::Ok, ""));
        let mut verbose = args(CheckFormat::Text);
        verbose.verbose = true;
        let (_, out, _) = run_with(verbose, report(false));
        assert_eq!(out, "portwarden: OK - 1 listener, nothing unexpected\n");
        let (r, out, _) = run_with(args(CheckFormat::Text), report(true));
        assert_eq!(r.unwrap(), Exit::Findings);
        assert_eq!(
            out,
            "unassigned-port tcp 127.0.0.1:4444 7 nc eve unassigned\n"
        );
        let (r, out, _) = run_with(args(CheckFormat::Nagios), report(true));
        assert_eq!(r.unwrap(), Exit::Findings);
        assert!(
            out.starts_with("PORTWARDEN WARNING - 1 unexpected"),
            "{out}"
        );
    }

    #[test]
    fn configuration_errors_come_before_the_scan() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[[allow]]\nport = 22\nbogus = 1\n").unwrap();
        let mut a = args(CheckFormat::Text);
        a.config = Some(bad.clone());
        let (r, out, called) = run_with(a, report(false));
        match r {
            Err(Error::Policy {
                path, line, column, ..
            }) => assert_eq!((path, line, column), (bad.clone(), 3, 1)),
            other => panic!("{other:?}"),
        }
        assert!(!called && out.is_empty());

        let mut a = args(CheckFormat::Nagios);
        a.config = Some(bad.clone());
        let (r, out, called) = run_with(a, report(false));
        assert_eq!(r.unwrap(), Exit::Unknown);
        assert!(out.starts_with("PORTWARDEN UNKNOWN - "), "{out}");
        assert!(out.contains("bad.toml:3:1: unknown field `bogus`"), "{out}");
        assert!(!called);

        let mut a = args(CheckFormat::Prometheus);
        a.baseline = Some(Some(dir.path().join("none.json")));
        let (r, _, called) = run_with(a, report(false));
        assert!(matches!(r, Err(Error::Baseline { .. })), "{r:?}");
        assert!(!called);
    }

    #[test]
    fn scan_errors_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("p.toml");
        std::fs::write(&empty, "").unwrap();
        let mut a = args(CheckFormat::Json);
        a.config = Some(empty);
        let mut scan = || Err(Error::Collect("netlink refused".into()));
        let mut out = Vec::new();
        assert!(matches!(
            run(&a, None, &mut scan, &mut out),
            Err(Error::Collect(_))
        ));
        a.format = CheckFormat::Nagios;
        assert_eq!(run(&a, None, &mut scan, &mut out).unwrap(), Exit::Unknown);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "PORTWARDEN UNKNOWN - cannot enumerate sockets: netlink refused\n"
        );
    }

    #[test]
    fn output_file_gets_the_metrics_and_stdout_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("portwarden.prom");
        let mut a = args(CheckFormat::Prometheus);
        a.output = Some(file.clone());
        let (r, out, _) = run_with(a, report(true));
        assert_eq!(r.unwrap(), Exit::Findings);
        assert_eq!(out, "");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.contains("portwarden_unexpected_listeners 1\n"),
            "{text}"
        );
    }

    #[test]
    fn baseline_flag_alone_means_the_default_path() {
        assert_eq!(
            baseline_path(Some(Path::new("/x/b.json"))).unwrap(),
            Path::new("/x/b.json")
        );
        if let Ok(default) = paths::default_baseline() {
            assert_eq!(baseline_path(None).unwrap(), default);
        }
    }
}
