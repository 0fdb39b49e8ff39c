//! `portwarden watch` through the real binary, against real sockets opened
//! and closed by this test while it runs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly
mod common;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// How long any one expected line may take to arrive. Generous: the host
/// may be busy; the test only waits this long when something is wrong.
const PATIENCE: Duration = Duration::from_secs(30);

fn binary() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("portwarden")
}

/// The binary with an environment that cannot influence it.
fn command(home: &tempfile::TempDir, args: &[&str]) -> Command {
    let mut cmd = Command::new(binary());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .args(args);
    cmd
}

/// A running `portwarden watch` whose stdout lines arrive on a channel;
/// killed and reaped on drop.
struct Watch {
    child: Child,
    lines: Receiver<String>,
}

impl Watch {
    /// Starts `portwarden watch ARGS`; the reader thread stops after
    /// `max_lines` lines (closing the pipe), or at end of output.
    fn start(home: &tempfile::TempDir, args: &[&str], max_lines: usize) -> Watch {
        let mut child = common::spawn(
            command(home, args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
        .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let reader = BufReader::new(stdout);
            for line in reader.lines().take(max_lines) {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Watch { child, lines }
    }

    /// The next line, or a panic naming `what` after [`PATIENCE`].
    fn next(&self, what: &str) -> String {
        self.lines
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|e| panic!("no line while waiting for {what}: {e}"))
    }

    /// Reads lines until one satisfies `want`; panics after [`PATIENCE`].
    fn until(&self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no {what} within {PATIENCE:?}: {e}"));
            let event: Value = serde_json::from_str(&line).unwrap();
            if want(&event) {
                return event;
            }
        }
    }

    /// Waits (bounded) for the child to end; its status code and stderr.
    fn wait(mut self) -> (i32, String) {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "watch did not end");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            std::io::Read::read_to_string(&mut e, &mut err).unwrap();
        }
        (status.code().unwrap_or(-1), err)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_event(e: &Value, kind: &str, port: u16) -> bool {
    e["event"] == kind && e["listener"]["protocol"] == "tcp" && e["listener"]["port"] == port
}

fn owned_by_us(e: &Value) -> bool {
    let me = std::process::id();
    e["listener"]["processes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["pid"] == me)
}

#[test]
fn json_stream_shows_a_listener_appear_then_go() {
    let home = tempfile::tempdir().unwrap();
    // Something of ours listens from the start, so the initial state is not
    // empty; only our own listeners are watched (--pid), so other programs
    // on the host cannot interleave.
    let (_sentinel, sentinel_port) = common::tcp_listener_v4();
    let me = std::process::id().to_string();
    let args = [
        "watch",
        "--json",
        "--interval",
        "0.2",
        "--count",
        "1000",
        "--pid",
        &me,
    ];
    let watch = Watch::start(&home, &args, usize::MAX);

    let first: Value = serde_json::from_str(&watch.next("the initial state")).unwrap();
    assert_eq!(first["event"], "present", "{first}");
    // The time is RFC 3339 UTC.
    let time = first["time"].as_str().unwrap();
    assert!(time.ends_with('Z') && time.contains('T'), "{time}");
    // The sentinel is present (maybe not first: this test binary's other
    // listeners may be listed too).
    if !is_event(&first, "present", sentinel_port) {
        watch.until("the sentinel", |e| is_event(e, "present", sentinel_port));
    }

    // The first scan is done (its lines are out): open a listener now.
    let (listener, port) = common::tcp_listener_v4();
    let appeared = watch.until("appeared", |e| is_event(e, "appeared", port));
    assert!(owned_by_us(&appeared), "{appeared}");
    assert_eq!(appeared["listener"]["address"], "127.0.0.1");
    assert_eq!(appeared["listener"]["exposure"], "loopback");
    assert!(appeared["previous"].is_null());

    drop(listener);
    let gone = watch.until("gone", |e| is_event(e, "gone", port));
    // A gone listener is shown as it was last seen.
    assert!(owned_by_us(&gone), "{gone}");
}

#[test]
fn plain_stream_stops_after_count_rounds() {
    let home = tempfile::tempdir().unwrap();
    let (_listener, port) = common::tcp_listener_v4();
    let me = std::process::id().to_string();
    let args = [
        "watch",
        "--format",
        "plain",
        "--interval",
        "0.2",
        "--count",
        "2",
        "--pid",
        &me,
    ];
    let out = common::output(&mut command(&home, &args)).unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "");
    let ours: Vec<&str> = stdout
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(&port.to_string()))
        .collect();
    // `= TIME tcp 127.0.0.1 PORT STATUS SERVICES PIDS PROCESSES USERS FINDINGS`
    assert_eq!(ours.len(), 1, "{stdout}");
    let fields: Vec<&str> = ours[0].split(' ').collect();
    assert_eq!(fields.len(), 11, "{}", ours[0]);
    assert_eq!(fields[0], "=");
    assert_eq!((fields[2], fields[3]), ("tcp", "127.0.0.1"));
    assert!(fields[7].split(',').any(|p| p == me), "{}", ours[0]);
}

#[test]
fn a_closed_pipe_ends_the_watch_quietly() {
    let home = tempfile::tempdir().unwrap();
    let (_sentinel, _) = common::tcp_listener_v4();
    let me = std::process::id().to_string();
    let args = ["watch", "--json", "--interval", "0.2", "--pid", &me];
    // The reader takes one line, then closes the pipe.
    let watch = Watch::start(&home, &args, 1);
    watch.next("the initial state");
    // Give the watch something to write, so it finds the pipe closed.
    let (_listener, _) = common::tcp_listener_v4();
    let (code, stderr) = watch.wait();
    assert_eq!((code, stderr.as_str()), (0, ""));
}

#[cfg(target_os = "linux")]
#[test]
fn a_closed_pipe_ends_even_a_quiet_watch() {
    let home = tempfile::tempdir().unwrap();
    let (_sentinel, port) = common::tcp_listener_v4();
    let me = std::process::id().to_string();
    let port = port.to_string();
    // Only the sentinel is watched: the other tests' listeners cause no writes.
    let args = [
        "watch",
        "--json",
        "--interval",
        "0.2",
        "--pid",
        &me,
        "--port",
        &port,
    ];
    let watch = Watch::start(&home, &args, 1);
    watch.next("the initial state");
    // Nothing changes: the watch must notice the reader is gone by itself.
    let (code, stderr) = watch.wait();
    assert_eq!((code, stderr.as_str()), (0, ""));
}

#[test]
fn the_table_is_redrawn_each_round() {
    let home = tempfile::tempdir().unwrap();
    let (_listener, port) = common::tcp_listener_v4();
    let me = std::process::id().to_string();
    // --format table redraws even into a pipe.
    let args = [
        "watch",
        "--format",
        "table",
        "--interval",
        "0.2",
        "--count",
        "2",
        "--pid",
        &me,
    ];
    let out = common::output(&mut command(&home, &args)).unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let frames: Vec<&str> = stdout.split("\u{1b}[H").skip(1).collect();
    assert_eq!(frames.len(), 2, "{stdout:?}");
    for (i, frame) in frames.iter().enumerate() {
        assert!(
            frame.starts_with(&format!("portwarden watch, every 0.2s: round {}", i + 1)),
            "{frame:?}"
        );
        assert!(
            frame.contains(&format!("127.0.0.1 {port:>5} ")),
            "{frame:?}"
        );
        assert!(frame.ends_with("\u{1b}[J"));
    }
    // Not a terminal: never coloured.
    assert!(!stdout.contains("\u{1b}[1m"));
}

#[test]
fn on_a_terminal_the_default_is_the_live_view() {
    let Some(script) = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("script"))
            .find(|p| p.is_file())
    }) else {
        eprintln!("skipping: no `script` (util-linux) on PATH to give the watch a terminal");
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let (_listener, port) = common::tcp_listener_v4();
    let inner = format!(
        "'{}' watch --count 1 --color never --pid {}",
        binary().display(),
        std::process::id()
    );
    let mut cmd = Command::new(script);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("TERM", "xterm")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(Stdio::null());
    let out = common::output(&mut cmd).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.code() != Some(0) {
        eprintln!(
            "skipping: `script` could not run the watch on a pty: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    assert!(stdout.starts_with("\u{1b}[H"), "{stdout:?}");
    assert!(
        stdout.contains(&format!("127.0.0.1 {port:>5} ")),
        "{stdout:?}"
    );
    assert!(stdout.contains("no changes yet"), "{stdout:?}");
}

#[test]
fn bad_usage_exits_2() {
    let home = tempfile::tempdir().unwrap();
    for args in [
        &["watch", "--interval", "0.1"][..],
        &["watch", "--count", "0"],
        &[
            "watch",
            "--count",
            "1",
            "--registry",
            "/nonexistent/registry.csv",
        ],
    ] {
        let out = common::output(&mut command(&home, args)).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.is_empty(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
