//! Scan warnings through the real binary: netlink sock_diag made to fail
//! by `strace` fault injection (every `socket(2)` call gets EPERM), so the
//! collector falls back to `/proc/net` and must say so. Linux only; skips
//! when `strace` is missing or cannot trace.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly

mod common;

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// The warning the fallback gives when `socket(AF_NETLINK)` fails with EPERM.
fn fallback_warning() -> String {
    let eperm = std::io::Error::from_raw_os_error(libc::EPERM);
    format!(
        "sockets read from /proc/net: netlink sock_diag failed (netlink socket: {eperm}); \
         dual-stack sockets show as IPv6 only"
    )
}

fn strace() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|d| d.join("strace"))
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!("skipping: no `strace` on PATH to make netlink fail");
    }
    found
}

/// Runs the binary with `args`, under `strace` injecting EPERM into every
/// `socket(2)` when `strace` is given: (stdout, stderr, exit code).
fn portwarden(strace: Option<&PathBuf>, args: &[&str]) -> (String, String, i32) {
    let home = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("portwarden");
    let mut cmd = match strace {
        Some(s) => {
            let mut c = Command::new(s);
            c.args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=socket"])
                .args(["-e", "inject=socket:error=EPERM", "--"])
                .arg(&bin);
            c
        }
        None => Command::new(&bin),
    };
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .args(args);
    let out = common::output(&mut cmd).unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn the_proc_net_fallback_is_announced_in_every_format() {
    let Some(strace) = strace() else { return };
    let Some((_listener, port)) = common::tcp_dual_stack() else {
        eprintln!("skipping: no IPv6 here for a dual-stack listener");
        return;
    };
    let port_arg = port.to_string();
    let args = ["--port", port_arg.as_str()];
    // strace itself must work here (ptrace may be forbidden).
    let (table, err, code) = portwarden(Some(&strace), &args);
    if code != 0 && err.contains("ptrace") {
        eprintln!("skipping: strace cannot trace here: {err}");
        return;
    }
    assert_eq!(code, 0, "{err}");
    let warning = fallback_warning();

    // Table: the row (IPv6 only, as the warning says), then the warning.
    let row = |table: &str| {
        table
            .lines()
            .find(|l| l.contains(&format!(" {port} ")))
            .unwrap_or_else(|| panic!("no row for {port} in\n{table}"))
            .split_whitespace()
            .skip_while(|c| *c != "tcp")
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(row(&table), "::", "{table}");
    assert_eq!(
        table.lines().last(),
        Some(format!("warning: {warning}").as_str()),
        "{table}"
    );
    assert!(!err.contains("netlink"), "{err}");

    // Plain and CSV keep their shape: the warning goes to stderr.
    for format in ["plain", "csv"] {
        let (out, err, code) =
            portwarden(Some(&strace), &[&args[..], &["--format", format]].concat());
        assert_eq!(code, 0, "{err}");
        assert!(!out.contains("netlink"), "{format}: {out}");
        assert!(
            err.lines()
                .any(|l| l == format!("portwarden: warning: {warning}")),
            "{format}: {err}"
        );
    }

    // JSON: the top-level array.
    let (out, err, code) = portwarden(Some(&strace), &[&args[..], &["--json"]].concat());
    assert_eq!(code, 0, "{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    let warnings = json["warnings"].as_array().unwrap();
    assert_eq!(warnings[0], warning.as_str(), "{out}");

    // `port` explains on stdout and warns on stderr.
    let (out, err, code) = portwarden(Some(&strace), &["port", &port_arg]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("netlink"), "{out}");
    assert!(
        err.lines()
            .any(|l| l == format!("portwarden: warning: {warning}")),
        "{err}"
    );

    // With netlink working: the socket is dual-stack (`*`), and nothing
    // is said about netlink.
    let (table, err, code) = portwarden(None, &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(row(&table), "*", "{table}");
    assert!(
        !table.contains("netlink") && !err.contains("netlink"),
        "{table}{err}"
    );
}
