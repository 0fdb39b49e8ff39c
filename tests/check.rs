//! Scheduled checks (issue 4), through the real binary against the real
//! kernel: listeners opened and closed between runs, a child process on an
//! expected port, saved baselines, broken files, and the outputs checked by
//! the real promtool and served by a real prometheus-node-exporter. Also the
//! contrib/ files, validated by promtool and systemd-analyze.
//!
//! Every run gets a scrubbed environment with HOME and the XDG directories in
//! a temporary directory. Policies allow every port but the ones under test,
//! so other listeners on the machine cannot change an exit status. The tests
//! run one at a time: each opens listeners or spawns processes, and a child
//! between fork and exec holds copies of every descriptor of this process,
//! listeners included, which would show up in another test's scan.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use portwarden::model::PortStatus;
use portwarden::registry::{Registry, Transport};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tempfile::TempDir;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A scrubbed environment for the binary: HOME, XDG_CONFIG_HOME and
/// XDG_DATA_HOME in a fresh temporary directory.
struct Env {
    dir: TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portwarden"));
        cmd.env_clear()
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `portwarden ARGS`.
    fn run(&self, args: &[&str]) -> Run {
        let output = self.command().args(args).output().unwrap();
        Run::new(args, output)
    }

    /// Writes a policy file and returns its path as a string.
    fn policy(&self, name: &str, text: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }
}

/// One run of the binary.
struct Run {
    what: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn new(args: &[&str], output: Output) -> Run {
        Run {
            what: format!("portwarden {}", args.join(" ")),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn code(&self, expected: i32) -> &Run {
        assert_eq!(
            self.code,
            Some(expected),
            "{}\n--- stdout\n{}--- stderr\n{}",
            self.what,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// A policy allowing every port of both protocols except `ports`.
fn allow_all_except(ports: &[u16]) -> String {
    let mut sorted = ports.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut low: u32 = 0;
    for port in sorted {
        if u32::from(port) > low {
            out.push_str(&format!("[[allow]]\nport = \"{low}-{}\"\n", port - 1));
        }
        low = u32::from(port) + 1;
    }
    if low <= 65535 {
        out.push_str(&format!("[[allow]]\nport = \"{low}-65535\"\n"));
    }
    out
}

static NEXT_CANDIDATE: AtomicU16 = AtomicU16::new(0);

/// A TCP listener on 127.0.0.1 on a free port that IANA lists as unassigned
/// for TCP, in the user range below Linux's ephemeral ports (so the kernel
/// does not hand it out meanwhile). The port is picked at run time.
fn unassigned_listener() -> (TcpListener, u16) {
    let registry = Registry::embedded();
    let start = 20000 + (std::process::id() % 5000) as u16;
    loop {
        let offset = NEXT_CANDIDATE.fetch_add(1, Ordering::Relaxed);
        assert!(offset < 10000, "no free unassigned port found");
        let port = 1024 + (start - 1024 + offset * 7) % (32768 - 1024);
        if registry.lookup(port, Transport::Tcp).status != PortStatus::Unassigned {
            continue;
        }
        if let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            return (listener, port);
        }
    }
}

/// The user name of this process, as the check reports it.
fn own_user(env: &Env, port: u16) -> String {
    let config = env.policy("user-probe.toml", "");
    let run = env.run(&["check", "--config", &config, "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    doc["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["port"] == port)
        .and_then(|l| l["processes"][0]["user"].as_str())
        .unwrap_or_else(|| panic!("port {port} not in {}", run.stdout))
        .to_string()
}

#[test]
fn exit_codes_follow_listeners_opened_and_closed() {
    let _serial = serial();
    let env = Env::new();
    let (listener, port) = unassigned_listener();
    let config = env.policy("policy.toml", &allow_all_except(&[port]));
    let user = own_user(&env, port);

    let run = env.run(&["check", "--config", &config]);
    run.code(1);
    assert_eq!(
        run.stdout,
        format!(
            "unassigned-port tcp 127.0.0.1:{port} {} {} {user} unassigned\n",
            std::process::id(),
            common::own_comm()
        )
    );
    assert_eq!(run.stderr, "");

    let run = env.run(&["check", "--config", &config, "--verbose"]);
    run.code(1);
    assert!(
        run.stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("portwarden: WARNING - 1 unexpected (1 unassigned-port); "),
        "{}",
        run.stdout
    );

    drop(listener);
    let run = env.run(&["check", "--config", &config]);
    run.code(0);
    assert_eq!(run.stdout, "", "silent on success");
    let run = env.run(&["check", "--config", &config, "-v"]);
    run.code(0);
    assert!(
        run.stdout.starts_with("portwarden: OK - "),
        "{}",
        run.stdout
    );
    assert!(
        // "1 listener" on a host where nothing else listens.
        run.stdout.ends_with(" listeners, nothing unexpected\n")
            || run.stdout.ends_with(" 1 listener, nothing unexpected\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn allow_rules_match_on_every_key() {
    let _serial = serial();
    let env = Env::new();
    let (_listener, port) = unassigned_listener();
    let user = own_user(&env, port);
    let exe = std::fs::canonicalize(std::env::current_exe().unwrap()).unwrap();
    let rest = allow_all_except(&[port]);
    let cases = [
        (format!("port = {port}"), 0),
        (
            format!("port = \"{}-{}\"\nprotocol = \"tcp\"", port - 1, port + 1),
            0,
        ),
        (
            format!("port = {port}\nprocess = \"{}\"", common::own_comm()),
            0,
        ),
        (format!("port = {port}\nexe = \"{}\"", exe.display()), 0),
        (
            format!("port = {port}\nuser = \"{user}\"\naddress = \"loopback\""),
            0,
        ),
        (format!("port = {port}\naddress = \"127.0.0.1\""), 0),
        (format!("port = {port}\nprotocol = \"udp\""), 1),
        (format!("port = {port}\naddress = \"wildcard\""), 1),
        (format!("port = {port}\naddress = \"::1\""), 1),
        (format!("port = {port}\nprocess = \"sshd\""), 1),
        (format!("port = {port}\nuser = \"no-such-user-xyz\""), 1),
        (format!("port = {port}\nexe = \"/usr/sbin/sshd\""), 1),
    ];
    for (i, (rule, code)) in cases.iter().enumerate() {
        let config = env.policy(
            &format!("allow-{i}.toml"),
            &format!("{rest}[[allow]]\n{rule}\nreason = \"test\"\n"),
        );
        env.run(&["check", "--config", &config]).code(*code);
    }

    // A loopback listener may be exempted by the setting instead.
    let config = env.policy(
        "loopback.toml",
        &format!("[settings]\nignore_loopback = true\n{rest}"),
    );
    env.run(&["check", "--config", &config]).code(0);
    let config = env.policy(
        "ignored.toml",
        &format!("[settings]\nignore_findings = [\"unassigned-port\"]\n{rest}"),
    );
    env.run(&["check", "--config", &config]).code(0);
}

#[test]
fn expect_rules_catch_a_foreign_owner_and_a_missing_listener() {
    let _serial = serial();
    let env = Env::new();
    let (listener, port) = unassigned_listener();
    drop(listener);
    let Some(child) = listener_in_child(port) else {
        return;
    };
    let exe = child.exe.display().to_string();
    let allow_all = "[[allow]]\nport = \"0-65535\"\n";

    // The port-hijack case: the expected port held by another program.
    let sshd = env.policy(
        "sshd.toml",
        &format!(
            "{allow_all}[[expect]]\nport = {port}\nprotocol = \"tcp\"\nexe = \"/usr/sbin/sshd\"\n"
        ),
    );
    let run = env.run(&["check", "--config", &sshd]);
    run.code(1);
    let line = format!("unexpected-owner tcp 127.0.0.1:{port} {} sleep ", child.pid);
    assert!(run.stdout.starts_with(&line), "{}", run.stdout);
    assert!(
        run.stdout
            .ends_with(" unassigned expected=/usr/sbin/sshd\n"),
        "{}",
        run.stdout
    );
    let run = env.run(&["check", "--config", &sshd, "--format", "nagios"]);
    run.code(2);
    assert!(
        run.stdout
            .starts_with("PORTWARDEN CRITICAL - 1 unexpected of "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!(
            ": unexpected-owner tcp 127.0.0.1:{port} | listeners="
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(" unexpected_owner=1;;;0 "),
        "{}",
        run.stdout
    );
    let run = env.run(&["check", "--config", &sshd, "--format", "json"]);
    run.code(1);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["status"], "critical");
    let held = doc["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["port"] == port)
        .unwrap();
    assert_eq!(held["processes"][0]["pid"], child.pid);
    let finding = held["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["finding"] == "unexpected-owner")
        .unwrap();
    assert_eq!(finding["expected"], "/usr/sbin/sshd");
    assert_eq!(finding["unexpected"], true);

    // The right owner, by path or by name: nothing unexpected.
    for (name, rule) in [
        ("by-exe", format!("exe = \"{exe}\"")),
        ("by-name", "process = \"sleep\"".to_string()),
    ] {
        let config = env.policy(
            &format!("{name}.toml"),
            &format!("{allow_all}[[expect]]\nport = {port}\n{rule}\n"),
        );
        env.run(&["check", "--config", &config]).code(0);
        env.run(&["check", "--config", &config, "--format", "nagios"])
            .code(0);
    }

    // The owner exits: the expected listener is missing.
    let pid = child.pid;
    drop(child);
    let config = env.policy(
        "gone.toml",
        &format!("{allow_all}[[expect]]\nport = {port}\nprotocol = \"tcp\"\nexe = \"{exe}\"\n"),
    );
    let run = env.run(&["check", "--config", &config]);
    run.code(1);
    assert_eq!(
        run.stdout,
        format!("missing-expected tcp *:{port} - - - - expected={exe}\n")
    );
    assert!(!run.stdout.contains(&pid.to_string()));
    let run = env.run(&["check", "--config", &config, "--format", "nagios"]);
    run.code(2);
    assert!(
        run.stdout
            .contains(&format!("missing-expected tcp *:{port}")),
        "{}",
        run.stdout
    );
}

#[test]
fn baselines_report_new_and_gone_listeners() {
    let _serial = serial();
    let env = Env::new();
    let (first, first_port) = unassigned_listener();
    let (second, second_port) = unassigned_listener();
    drop(second);
    let user = own_user(&env, first_port);
    let config = env.policy(
        "policy.toml",
        &format!(
            "[settings]\nignore_findings = [\"unassigned-port\"]\n{}",
            allow_all_except(&[first_port, second_port])
        ),
    );

    // No path: the default baseline in $XDG_DATA_HOME.
    let run = env.run(&["baseline", "save"]);
    run.code(0);
    let default = env.path("data/portwarden/baseline.json");
    assert!(
        run.stdout.starts_with("portwarden: saved ")
            && run
                .stdout
                .ends_with(&format!(" to {}\n", default.display())),
        "{}",
        run.stdout
    );
    let saved = std::fs::read_to_string(&default).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&saved).unwrap();
    assert_eq!(doc["schema_version"], 1);
    assert!(!saved.contains("\"pid\""), "identities carry no pid");
    env.run(&["check", "--config", &config, "--baseline"])
        .code(0);

    // Saving the same listeners again gives the same bytes.
    env.run(&["baseline", "save"]).code(0);
    assert_eq!(std::fs::read_to_string(&default).unwrap(), saved);

    // One listener goes, another comes.
    drop(first);
    let second = TcpListener::bind((Ipv4Addr::LOCALHOST, second_port)).unwrap();
    let run = env.run(&["check", "--config", &config, "--baseline"]);
    run.code(1);
    let exe = std::fs::canonicalize(std::env::current_exe().unwrap()).unwrap();
    assert_eq!(
        run.stdout,
        format!(
            "new-listener tcp 127.0.0.1:{second_port} {} {} {user} unassigned\n\
             gone-listener tcp 127.0.0.1:{first_port} - {} {user} -\n",
            std::process::id(),
            common::own_comm(),
            exe.display()
        )
    );
    let run = env.run(&[
        "check",
        "--config",
        &config,
        "--baseline",
        "--format",
        "json",
    ]);
    run.code(1);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["baseline"], default.display().to_string());
    assert_eq!(doc["gone"][0]["port"], first_port);
    assert_eq!(doc["summary"]["findings"]["new-listener"], 1);
    assert_eq!(doc["summary"]["findings"]["gone-listener"], 1);

    // An explicit path works the same.
    let explicit = env.path("explicit.json");
    let explicit = explicit.to_str().unwrap();
    env.run(&["baseline", "save", explicit]).code(0);
    env.run(&["check", "--config", &config, "--baseline", explicit])
        .code(0);

    // Another program on the same port is another identity.
    drop(second);
    let Some(child) = listener_in_child(second_port) else {
        return;
    };
    let run = env.run(&["check", "--config", &config, "--baseline", explicit]);
    run.code(1);
    assert!(
        run.stdout.starts_with(&format!(
            "new-listener tcp 127.0.0.1:{second_port} {} sleep ",
            child.pid
        )),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(&format!(
        "\ngone-listener tcp 127.0.0.1:{second_port} - {} ",
        exe.display()
    )));

    // The same program restarted (another pid) is no change.
    env.run(&["baseline", "save", explicit]).code(0);
    let old_pid = child.pid;
    drop(child);
    let Some(restarted) = listener_in_child(second_port) else {
        return;
    };
    assert_ne!(restarted.pid, old_pid);
    env.run(&["check", "--config", &config, "--baseline", explicit])
        .code(0);
}

/// A `sleep` child holding a TCP listener on 127.0.0.1:`port`.
fn listener_in_child(port: u16) -> Option<common::ChildGuard> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    common::spawn_holding(OwnedFd::from(listener), port)
}

#[test]
fn broken_and_missing_files_exit_2_naming_file_line_and_column() {
    let _serial = serial();
    let env = Env::new();
    let fixtures = repo("tests/fixtures/policy");
    let mut seen = 0;
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let header = text
            .lines()
            .next()
            .unwrap()
            .strip_prefix("# error: ")
            .unwrap();
        let position = header.split(' ').next().unwrap();
        let file = path.to_str().unwrap();
        let run = env.run(&["check", "--config", file]);
        run.code(2);
        assert!(
            run.stderr
                .starts_with(&format!("portwarden: {file}:{position}: ")),
            "{}: {}",
            file,
            run.stderr
        );
        assert_eq!(run.stdout, "");
        let run = env.run(&["check", "--config", file, "--format", "nagios"]);
        run.code(3);
        assert!(
            run.stdout
                .starts_with(&format!("PORTWARDEN UNKNOWN - {file}:{position}: ")),
            "{}",
            run.stdout
        );
        seen += 1;
    }
    assert!(seen >= 9);

    // A named policy that does not exist is an error, not the defaults.
    let missing = env.path("nope.toml");
    let run = env.run(&["check", "--config", missing.to_str().unwrap()]);
    run.code(2);
    assert!(
        run.stderr.contains(&missing.display().to_string()),
        "{}",
        run.stderr
    );

    // $PORTWARDEN_CONFIG, then the user's config directory, are read when no --config is given.
    let bad = fixtures.join("unknown-key.toml");
    let output = env
        .command()
        .args(["check"])
        .env("PORTWARDEN_CONFIG", &bad)
        .output()
        .unwrap();
    let run = Run::new(&["check (PORTWARDEN_CONFIG)"], output);
    run.code(2);
    assert!(
        run.stderr.contains(&format!("{}:4:1: ", bad.display())),
        "{}",
        run.stderr
    );
    let user_policy = env.path("config/portwarden/portwarden.toml");
    std::fs::create_dir_all(user_policy.parent().unwrap()).unwrap();
    std::fs::write(&user_policy, "[settings]\nignore_loopback = 1\n").unwrap();
    let run = env.run(&["check"]);
    run.code(2);
    assert!(
        run.stderr
            .contains(&format!("{}:2:19: ", user_policy.display())),
        "{}",
        run.stderr
    );

    // Baselines: missing, empty, truncated, wrong version.
    let config = env.policy("empty.toml", "");
    let run = env.run(&["check", "--config", &config, "--baseline"]);
    run.code(2);
    assert!(
        run.stderr.contains("baseline ") && run.stderr.contains("baseline save"),
        "{}",
        run.stderr
    );
    for (name, text, needle) in [
        ("empty.json", "", "corrupt at line 1"),
        (
            "truncated.json",
            "{\"schema_version\": 1,\n\"listeners\": [\n{\"protocol\": \"tcp\",",
            "corrupt at line 3",
        ),
        (
            "future.json",
            "{\"schema_version\": 9, \"listeners\": []}",
            "schema_version 9",
        ),
    ] {
        let path = env.path(name);
        std::fs::write(&path, text).unwrap();
        let run = env.run(&[
            "check",
            "--config",
            &config,
            "--baseline",
            path.to_str().unwrap(),
        ]);
        run.code(2);
        assert!(
            run.stderr
                .starts_with(&format!("portwarden: baseline {}: ", path.display()))
                && run.stderr.contains(needle),
            "{}",
            run.stderr
        );
        let run = env.run(&[
            "check",
            "--config",
            &config,
            "--baseline",
            path.to_str().unwrap(),
            "--format",
            "nagios",
        ]);
        run.code(3);
    }
}

#[test]
fn nagios_ok_and_warning() {
    let _serial = serial();
    let env = Env::new();
    let (listener, port) = unassigned_listener();
    let config = env.policy("policy.toml", &allow_all_except(&[port]));
    let run = env.run(&["check", "--config", &config, "--format", "nagios"]);
    run.code(1);
    let mut lines = run.stdout.lines();
    let first = lines.next().unwrap();
    assert!(
        first.starts_with("PORTWARDEN WARNING - 1 unexpected of "),
        "{first}"
    );
    assert!(
        first.contains(&format!(
            ": unassigned-port tcp 127.0.0.1:{port} | listeners="
        )),
        "{first}"
    );
    assert!(
        first.contains(" unexpected=1;;;0 unassigned_port=1;;;0 "),
        "{first}"
    );
    assert!(lines
        .next()
        .unwrap()
        .starts_with(&format!("unassigned-port tcp 127.0.0.1:{port} ")));
    drop(listener);
    let run = env.run(&["check", "--config", &config, "--format", "nagios"]);
    run.code(0);
    assert!(run.stdout.starts_with("PORTWARDEN OK - "), "{}", run.stdout);
    assert!(
        run.stdout
            .contains(" listeners, nothing unexpected | listeners=")
            || run
                .stdout
                .contains(" 1 listener, nothing unexpected | listeners=1;"),
        "{}",
        run.stdout
    );
    assert_eq!(run.stdout.lines().count(), 1);

    // A plugin that cannot write its output file could not run: UNKNOWN.
    let missing = env.dir.path().join("no-such-dir").join("out.txt");
    let run = env.run(&[
        "check",
        "--config",
        &config,
        "--format",
        "nagios",
        "--output",
        missing.to_str().unwrap(),
    ]);
    run.code(3);
    assert!(
        run.stdout.starts_with("PORTWARDEN UNKNOWN - ") && run.stdout.contains("no-such-dir"),
        "{}",
        run.stdout
    );
}

/// The program when it runs, else `None` with the reason printed.
fn tool(name: &str) -> Option<PathBuf> {
    match Command::new(name).arg("--version").output() {
        Ok(_) => Some(PathBuf::from(name)),
        Err(e) => {
            eprintln!("skipping: `{name}` not runnable ({e}); the CI installs it");
            None
        }
    }
}

fn promtool_check_metrics(promtool: &Path, text: &str) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics rejected:\n{text}\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn prometheus_output_passes_promtool() {
    let _serial = serial();
    let env = Env::new();
    let (_listener, port) = unassigned_listener();
    let config = env.policy("policy.toml", &allow_all_except(&[port]));
    let run = env.run(&["check", "--config", &config, "--format", "prometheus"]);
    run.code(1);
    let text = &run.stdout;
    assert!(
        text.contains(
            "# TYPE portwarden_unexpected_listeners gauge\nportwarden_unexpected_listeners 1\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("# TYPE portwarden_listeners gauge\n"),
        "{text}"
    );
    assert!(
        text.contains("\nportwarden_last_check_timestamp_seconds "),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "portwarden_listener_info{{protocol=\"tcp\",address=\"127.0.0.1\",port=\"{port}\",process=\"{}\",",
            common::own_comm()
        )),
        "{text}"
    );
    assert!(
        text.contains("finding=\"unassigned-port\",unexpected=\"true\"} 1\n"),
        "{text}"
    );

    // --output: the same metrics in the file, nothing on stdout.
    let file = env.path("portwarden.prom");
    let run = env.run(&[
        "check",
        "--config",
        &config,
        "--format",
        "prometheus",
        "--output",
        file.to_str().unwrap(),
    ]);
    run.code(1);
    assert_eq!(run.stdout, "");
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.contains("portwarden_unexpected_listeners 1\n"));

    if let Some(promtool) = tool("promtool") {
        promtool_check_metrics(&promtool, text);
        promtool_check_metrics(&promtool, &written);
    }
}

/// Kills and reaps the exporter however the test ends.
struct Exporter(std::process::Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

#[test]
fn node_exporter_textfile_collector_serves_the_metrics() {
    let _serial = serial();
    let Some(exporter) = tool("prometheus-node-exporter") else {
        return;
    };
    let env = Env::new();
    let (_listener, port) = unassigned_listener();
    let config = env.policy("policy.toml", &allow_all_except(&[port]));
    let textfiles = env.path("textfile");
    std::fs::create_dir(&textfiles).unwrap();
    let prom = textfiles.join("portwarden.prom");
    env.run(&[
        "check",
        "--config",
        &config,
        "--format",
        "prometheus",
        "--output",
        prom.to_str().unwrap(),
    ])
    .code(1);

    let (_exporter, web_port) = start_node_exporter(&exporter, &textfiles);
    let body = poll(web_port, "/metrics", |_| true);
    assert!(
        body.contains("\nportwarden_unexpected_listeners 1\n"),
        "{body}"
    );
    assert!(body.contains("\nportwarden_listeners "), "{body}");
    assert!(body.contains(&format!("port=\"{port}\"")), "{body}");
    assert!(
        body.contains("\nportwarden_last_check_timestamp_seconds "),
        "{body}"
    );
    // The collector read our file without complaint.
    assert!(body.contains("\nnode_textfile_scrape_error 0\n"), "{body}");
}

/// A free TCP port on 127.0.0.1 for a server the test starts.
fn free_port() -> u16 {
    let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    probe.local_addr().unwrap().port()
}

/// Starts the node exporter serving only the textfile collector on `dir`.
fn start_node_exporter(exporter: &Path, dir: &Path) -> (Exporter, u16) {
    let port = free_port();
    let child = common::spawn(
        Command::new(exporter)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--collector.disable-defaults")
            .arg("--collector.textfile")
            .arg(format!("--collector.textfile.directory={}", dir.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .unwrap();
    (Exporter(child), port)
}

/// GETs `path` until the answer is a 200 whose body satisfies `ready`.
fn poll(port: u16, path: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = http_get(port, path);
        if let Ok(r) = &answer {
            if (r.starts_with("HTTP/1.0 200") || r.starts_with("HTTP/1.1 200")) && ready(r) {
                return r.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "127.0.0.1:{port}{path} never ready: {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The whole pipeline of the README's "Scheduled checks": check writes the
/// textfile, node_exporter serves it, Prometheus scrapes it and evaluates
/// contrib's rules, and PortwardenUnexpectedListener fires.
#[test]
fn prometheus_alert_fires_end_to_end() {
    let _serial = serial();
    let (Some(exporter), Some(prometheus)) = (tool("prometheus-node-exporter"), tool("prometheus"))
    else {
        return;
    };
    let env = Env::new();
    let (_listener, port) = unassigned_listener();
    let config = env.policy("policy.toml", &allow_all_except(&[port]));
    let textfiles = env.path("textfile");
    std::fs::create_dir(&textfiles).unwrap();
    let prom = textfiles.join("portwarden.prom");
    env.run(&[
        "check",
        "--config",
        &config,
        "--format",
        "prometheus",
        "--output",
        prom.to_str().unwrap(),
    ])
    .code(1);
    let (_exporter, exporter_port) = start_node_exporter(&exporter, &textfiles);

    let prometheus_port = free_port();
    let prometheus_yml = env.path("prometheus.yml");
    std::fs::write(
        &prometheus_yml,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n",
            repo("contrib/prometheus/portwarden.rules.yml").display()
        ),
    )
    .unwrap();
    let _prometheus = Exporter(
        common::spawn(
            Command::new(&prometheus)
                .arg(format!("--config.file={}", prometheus_yml.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    env.path("tsdb").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .unwrap(),
    );
    let alerts = poll(prometheus_port, "/api/v1/alerts", |body| {
        body.contains("\"alertname\":\"PortwardenUnexpectedListener\"")
            && body.contains("\"state\":\"firing\"")
    });
    assert!(
        alerts.contains(&format!("\"instance\":\"127.0.0.1:{exporter_port}\"")),
        "{alerts}"
    );
    assert!(!alerts.contains("PortwardenCritical"), "{alerts}");
    assert!(!alerts.contains("PortwardenCheckStale"), "{alerts}");
}

#[test]
fn policy_init_allows_what_listens_now() {
    let _serial = serial();
    let env = Env::new();
    let (_listener, port) = unassigned_listener();

    let run = env.run(&["policy", "init"]);
    run.code(0);
    let written = env.path("config/portwarden/portwarden.toml");
    assert!(
        run.stdout.contains(&written.display().to_string()),
        "{}",
        run.stdout
    );
    let text = std::fs::read_to_string(&written).unwrap();
    assert!(text.contains(&format!("\nport = {port}\n")), "{text}");
    // The check finds the policy in the user's config directory and passes
    // for everything that listened then (asserted per listener: programs
    // elsewhere on the machine may open listeners meanwhile).
    let allowed = |env: &Env, ports: &[u16]| {
        let run = env.run(&["check", "--format", "json"]);
        let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(doc["policy"], written.display().to_string());
        for port in ports {
            let l = doc["listeners"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["port"] == *port)
                .unwrap_or_else(|| panic!("{port} not listed: {}", run.stdout));
            assert_eq!(l["unexpected"], false, "{l}");
            assert_eq!(l["expected_by"]["kind"], "allow", "{l}");
        }
        run
    };
    allowed(&env, &[port]);

    // A new listener is not covered.
    let (_other, other_port) = unassigned_listener();
    let run = env.run(&["check"]);
    run.code(1);
    assert!(
        run.stdout.contains(&format!("127.0.0.1:{other_port} ")),
        "{}",
        run.stdout
    );

    // No overwrite without --force; `-` writes to stdout.
    let run = env.run(&["policy", "init"]);
    run.code(2);
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    env.run(&["policy", "init", "--force"]).code(0);
    allowed(&env, &[port, other_port]);
    let run = env.run(&["policy", "init", "-"]);
    run.code(0);
    assert!(
        run.stdout.starts_with("# portwarden policy"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(&format!("\nport = {other_port}\n")));
}

#[test]
fn contrib_cron_job_writes_the_metrics_file() {
    let _serial = serial();
    let env = Env::new();
    let text = std::fs::read_to_string(repo("contrib/cron/portwarden")).unwrap();
    let jobs: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty() && !l.contains('='))
        .collect();
    assert_eq!(jobs.len(), 1, "{text}");
    // minute hour dom month dow user command
    let fields: Vec<&str> = jobs[0].splitn(7, ' ').collect();
    assert_eq!(&fields[..6], &["*/5", "*", "*", "*", "*", "root"]);
    let target = "/var/lib/prometheus/node-exporter/portwarden.prom";
    assert!(fields[6].contains(target));
    // Run the job's command as cron would (sh -c), writing into a temp dir.
    let prom = env.path("portwarden.prom");
    let command = fields[6].replace(target, prom.to_str().unwrap());
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_portwarden"))
        .parent()
        .unwrap();
    let config = env.policy("policy.toml", "[[allow]]\nport = \"0-65535\"\n");
    let output = Command::new("sh")
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
        .env("HOME", env.path("home"))
        .env("PORTWARDEN_CONFIG", &config)
        .args(["-c", &command])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(
        output.stdout.is_empty() && output.stderr.is_empty(),
        "cron would mail: {output:?}"
    );
    let metrics = std::fs::read_to_string(&prom).unwrap();
    assert!(
        metrics.contains("portwarden_unexpected_listeners 0\n"),
        "{metrics}"
    );
}

#[test]
fn contrib_alert_rules_are_valid_and_fire_as_documented() {
    let _serial = serial();
    let Some(promtool) = tool("promtool") else {
        return;
    };
    let rules = repo("contrib/prometheus/portwarden.rules.yml");
    let run = Command::new(&promtool)
        .arg("check")
        .arg("rules")
        .arg(&rules)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && out.contains("SUCCESS: 3 rules found"),
        "{run:?}"
    );
    // Unit tests of the rules on synthetic series: which alert fires when.
    let run = Command::new(&promtool)
        .arg("test")
        .arg("rules")
        .arg(repo("tests/fixtures/prometheus/portwarden.rules.test.yml"))
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
}

#[test]
fn contrib_systemd_units_verify() {
    let _serial = serial();
    let Some(analyze) = tool("systemd-analyze") else {
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
