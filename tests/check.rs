//! Scheduled checks (issue 4), through the real binary and real tools:
//! contrib/ files validated by promtool and systemd-analyze.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The program's path when it can be run (`--version`/`--help` answered), else
/// `None` with the reason printed.
fn tool(name: &str, probe: &str) -> Option<PathBuf> {
    match Command::new(name).arg(probe).output() {
        Ok(_) => Some(PathBuf::from(name)),
        Err(e) => {
            eprintln!("skipping: `{name}` not runnable ({e}); the CI installs it");
            None
        }
    }
}

fn run_ok(cmd: &mut Command) -> String {
    let output = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{cmd:?} failed:\n{text}");
    text
}

#[test]
fn contrib_alert_rules_are_valid_and_fire_as_documented() {
    let Some(promtool) = tool("promtool", "--version") else {
        return;
    };
    let rules = repo("contrib/prometheus/portwarden.rules.yml");
    let out = run_ok(
        Command::new(&promtool)
            .arg("check")
            .arg("rules")
            .arg(&rules),
    );
    assert!(out.contains("SUCCESS: 3 rules found"), "{out}");
    // Unit tests of the rules on synthetic series: which alert fires when.
    let out = run_ok(
        Command::new(&promtool)
            .arg("test")
            .arg("rules")
            .arg(repo("tests/fixtures/prometheus/portwarden.rules.test.yml")),
    );
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn contrib_systemd_units_verify() {
    let Some(analyze) = tool("systemd-analyze", "--version") else {
        return;
    };
    // Point ExecStart at the binary under test: verify checks it is executable.
    let dir = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_portwarden");
    let mut units = Vec::new();
    for name in ["portwarden-check.service", "portwarden-check.timer"] {
        let text = std::fs::read_to_string(repo(&format!("contrib/systemd/{name}"))).unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text.replace("/usr/local/bin/portwarden", binary)).unwrap();
        units.push(path);
    }
    let service = std::fs::read_to_string(&units[0]).unwrap();
    assert!(service.contains(&format!(
        "ExecStart={binary} check --format prometheus --output /var/lib/prometheus/node-exporter/portwarden.prom"
    )));
    let output = Command::new(&analyze)
        .arg("verify")
        .arg("--man=no")
        .args(&units)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr);
    // verify exits 0 on unknown keys and bad values, only warning: any output is a failure.
    assert!(
        output.status.success() && text.trim().is_empty(),
        "systemd-analyze verify:\n{text}"
    );
}

#[test]
fn contrib_cron_line_runs_the_documented_command() {
    let text = std::fs::read_to_string(repo("contrib/cron/portwarden")).unwrap();
    let jobs: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty() && !l.contains('='))
        .collect();
    assert_eq!(
        jobs,
        vec!["*/5 * * * * root portwarden check --format prometheus --output /var/lib/prometheus/node-exporter/portwarden.prom"]
    );
}
