//! The registry through the real binary: golden facts from IANA's data, the
//! JSON schema of `port`, `--registry FILE`, and `registry update` against a
//! server on 127.0.0.1 started here (nothing reaches the internet).

// Test helpers outside #[test] functions may panic: a failure is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use assert_cmd::Command;
use portwarden::model::PortStatus;
use portwarden::registry::{Registry, Transport};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};

const FIXTURE: &str = "tests/fixtures/registry/iana-layout.csv";

/// A scrubbed environment with HOME and XDG_DATA_HOME in a temporary directory.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn data_home(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn installed(&self) -> PathBuf {
        self.data_home()
            .join("portwarden")
            .join("service-names-port-numbers.csv")
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portwarden"));
        cmd.env_clear()
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_DATA_HOME", self.data_home())
            .env("LC_ALL", "C")
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        cmd
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self
            .cmd()
            .args(args)
            .assert()
            .success()
            .get_output()
            .clone();
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn text(&self, args: &[&str]) -> String {
        let out = self
            .cmd()
            .args(args)
            .assert()
            .success()
            .get_output()
            .clone();
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command expected to fail with exit 2 and one `portwarden:` line.
    fn error(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).assert().code(2).get_output().clone();
        assert!(out.stdout.is_empty(), "stdout: {:?}", out.stdout);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("portwarden: "), "{stderr}");
        stderr
    }
}

fn protocol<'a>(port_json: &'a Value, proto: &str) -> &'a Value {
    port_json["ports"][0]["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["protocol"] == proto)
        .unwrap_or_else(|| panic!("no {proto} in {port_json}"))
}

fn entries<'a>(port_json: &'a Value, proto: &str) -> Vec<&'a Value> {
    port_json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["protocol"] == proto || e["protocol"].is_null())
        .collect()
}

#[test]
fn golden_facts() {
    let env = Env::new();

    let ssh = env.json(&["port", "22", "--json"]);
    assert_eq!(protocol(&ssh, "tcp")["status"], "assigned");
    assert_eq!(
        protocol(&ssh, "tcp")["services"],
        serde_json::json!(["ssh"])
    );
    assert_eq!(ssh["range_classes"], serde_json::json!(["system"]));

    let smsd = env.json(&["port", "596", "--json"]);
    assert!(entries(&smsd, "tcp")
        .iter()
        .any(|e| e["service"] == "smsd" && e["assignee"] == "[Wayne_Barlow]"));

    let r1276 = env.json(&["port", "1276", "--json"]);
    for proto in ["tcp", "udp"] {
        assert_eq!(protocol(&r1276, proto)["status"], "reserved");
        let e = entries(&r1276, proto);
        assert!(e.iter().any(|e| e["status"] == "reserved"
            && e["modification_date"] == "2014-05-23"
            && e["notes"] == "This entry has been removed on 2014-05-23."));
    }
    let text = env.text(&["port", "1276"]);
    assert!(text.contains("tcp   reserved"), "{text}");
    assert!(text.contains("modified: 2014-05-23"), "{text}");
    assert!(
        text.contains("note: This entry has been removed on 2014-05-23."),
        "{text}"
    );

    let r1596 = env.json(&["port", "1596", "--json"]);
    assert_eq!(
        protocol(&r1596, "tcp")["services"],
        serde_json::json!(["radio-sm"])
    );
    assert_eq!(
        protocol(&r1596, "udp")["services"],
        serde_json::json!(["radio-bc"])
    );

    let x11 = env.json(&["port", "6003", "--json"]);
    assert_eq!(protocol(&x11, "tcp")["status"], "assigned");
    assert!(entries(&x11, "tcp").iter().any(|e| e["service"] == "x11"
        && e["low"] == 6000
        && e["high"] == 6063
        && e["unauthorized_use"] == "Known Unauthorized Use on port 6003"));
    let text = env.text(&["port", "6003"]);
    assert!(text.contains("x11 6000-6063/tcp"), "{text}");
    assert!(
        text.contains("unauthorized use reported: Known Unauthorized Use on port 6003"),
        "{text}"
    );

    let r230 = env.json(&["port", "230", "--json"]);
    assert_eq!(protocol(&r230, "udp")["status"], "reserved");
    assert!(entries(&r230, "udp")
        .iter()
        .any(|e| e["low"] == 225 && e["high"] == 241 && e["protocol"].is_null()));

    let dynamic = env.json(&["port", "50000", "--json"]);
    assert_eq!(protocol(&dynamic, "tcp")["status"], "dynamic");
    assert_eq!(dynamic["range_classes"], serde_json::json!(["dynamic"]));
    assert_eq!(dynamic["entries"], serde_json::json!([]));
}

#[test]
fn port_json_schema() {
    let env = Env::new();
    let v = env.json(&["port", "80", "--json"]);
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&v),
        [
            "entries",
            "ephemeral_range",
            "in_ephemeral_range",
            "listeners",
            "ports",
            "query",
            "range_classes",
            "schema_version"
        ]
    );
    assert_eq!(v["schema_version"], 1);
    assert_eq!(
        v["query"],
        serde_json::json!({"input": "80", "kind": "port", "low": 80, "high": 80, "service": null})
    );
    let entry_keys = [
        "assignee",
        "contact",
        "description",
        "high",
        "low",
        "modification_date",
        "notes",
        "protocol",
        "reference",
        "registration_date",
        "service",
        "service_code",
        "status",
        "unauthorized_use",
    ];
    for e in v["entries"].as_array().unwrap() {
        assert_eq!(keys(e), entry_keys);
        for k in entry_keys {
            assert!(
                e[k].is_null() || e[k].is_string() || e[k].is_number(),
                "{k}: {e}"
            );
        }
    }
    // Several names on one port and protocol, with nulls where IANA has nothing.
    let tcp = protocol(&v, "tcp");
    assert_eq!(
        tcp["services"],
        serde_json::json!(["http", "www", "www-http"])
    );
    let http = entries(&v, "tcp")[0];
    assert_eq!(http["service"], "http");
    assert!(http["assignee"].is_null());
    // The ephemeral range is this machine's (Linux) and the flag agrees with it.
    if let Ok(range) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range") {
        let mut it = range.split_whitespace().map(|n| n.parse::<u64>().unwrap());
        let (low, high) = (it.next().unwrap(), it.next().unwrap());
        assert_eq!(
            v["ephemeral_range"],
            serde_json::json!({"low": low, "high": high})
        );
        assert_eq!(v["in_ephemeral_range"], low <= 80 && 80 <= high);
        let inside = env.json(&["port", &low.to_string(), "--json"]);
        assert_eq!(inside["ports"][0]["ephemeral"], true);
    } else {
        eprintln!(
            "skipping the ephemeral range check: /proc/sys/net/ipv4/ip_local_port_range unreadable"
        );
    }
}

#[test]
fn service_names_and_ranges() {
    let env = Env::new();
    let v = env.json(&["port", "SSH", "--json"]);
    assert_eq!(v["query"]["kind"], "service");
    assert_eq!(v["ports"][0]["port"], 22);
    assert!(v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["service"] == "ssh"));

    let x = env.json(&["port", "6000-6063", "--json"]);
    assert_eq!(x["query"]["kind"], "range");
    assert!(x["ports"].is_null());
    assert!(x["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["service"] == "x11"));
    let text = env.text(&["port", "6000-6063"]);
    assert!(text.starts_with("ports 6000-6063: user ports"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("6000-6063") && l.contains("x11")),
        "{text}"
    );

    assert!(env
        .error(&["port", "no-such-service-here"])
        .contains("unknown service name"));
    assert!(env.error(&["port", "65536"]).contains("invalid port"));
    assert!(env.error(&["port", "10-5"]).contains("invalid port"));
    assert!(env.error(&["port", "--", "-1"]).contains("invalid port"));
}

#[test]
fn registry_file_in_iana_layout() {
    let env = Env::new();
    let v = env.json(&["--registry", FIXTURE, "port", "150", "--json"]);
    assert_eq!(protocol(&v, "tcp")["status"], "reserved");
    assert_eq!(
        protocol(&v, "udp")["services"],
        serde_json::json!(["gamma"])
    );
    let web = env.json(&["--registry", FIXTURE, "port", "web", "--json"]);
    let notes = web["entries"][0]["notes"].as_str().unwrap();
    assert!(notes.contains("note\r\nsecond line") || notes.contains("note\nsecond line"));
    assert_eq!(web["entries"][0]["description"], "A \"quoted\" word");
    let portless = env.json(&["--registry", FIXTURE, "port", "portless-svc", "--json"]);
    assert_eq!(portless["entries"][0]["low"], Value::Null);
    assert_eq!(portless["ports"], serde_json::json!([]));
    let info = env.json(&["--registry", FIXTURE, "registry", "info", "--json"]);
    assert_eq!(info["source"], "file");
    assert_eq!(info["counts"]["entries"], 15);
    assert_eq!(info["counts"]["portless"], 1);

    let bad = env.dir.path().join("bad.csv");
    let text = std::fs::read_to_string(FIXTURE)
        .unwrap()
        .replacen("6000-6063", "6000-99999", 1);
    std::fs::write(&bad, text).unwrap();
    let e = env.error(&["--registry", bad.to_str().unwrap(), "port", "22"]);
    assert!(
        e.contains("bad.csv: line 14:") && e.contains("outside 0-65535"),
        "{e}"
    );
    let e = env.error(&["--registry", "/nonexistent/registry.csv", "port", "22"]);
    assert!(e.contains("/nonexistent/registry.csv"), "{e}");
}

/// Canned HTTP responses on 127.0.0.1, by path.
fn serve(routes: Vec<(&'static str, Vec<u8>)>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = answer(stream, &routes);
        }
    });
    port
}

fn answer(mut stream: TcpStream, routes: &[(&str, Vec<u8>)]) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    match routes.iter().find(|(p, _)| *p == path) {
        Some((_, response)) => stream.write_all(response)?,
        None => stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
        )?,
    }
    stream.flush()
}

fn response(content_type: &str, declared_len: usize, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {declared_len}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// A port unassigned for tcp in the embedded registry, found at run time.
fn unassigned_tcp_port() -> u16 {
    let registry = Registry::embedded();
    (1024..49151)
        .find(|&p| {
            let l = registry.lookup(p, Transport::Tcp);
            l.status == PortStatus::Unassigned && l.entries.is_empty()
        })
        .unwrap()
}

fn tcp_status(env: &Env, port: u16) -> String {
    let v = env.json(&["port", &port.to_string(), "--json"]);
    protocol(&v, "tcp")["status"].as_str().unwrap().to_string()
}

fn source(env: &Env) -> String {
    env.json(&["registry", "info", "--json"])["source"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn registry_update_validates_before_installing() {
    let env = Env::new();
    let port = unassigned_tcp_port();
    let snapshot = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/iana/service-names-port-numbers.csv"),
    )
    .unwrap();
    let good = format!(
        "{}\r\npw-update-test,{port},tcp,Added by the update test,,,,,,,,\r\n",
        snapshot.trim_end()
    );
    let half = good.len() / 2;
    let cut = &good.as_bytes()[..half];
    let html = b"<!DOCTYPE html>\n<html><body>Service unavailable</body></html>\n";
    let server = serve(vec![
        (
            "/good.csv",
            response("text/csv", good.len(), good.as_bytes()),
        ),
        // A complete HTTP response whose file stops in the middle of a row.
        ("/truncated.csv", response("text/csv", cut.len(), cut)),
        // The connection closes before the declared length arrives.
        ("/short.csv", response("text/csv", good.len(), cut)),
        (
            "/error.html",
            response("text/html; charset=utf-8", html.len(), html),
        ),
        // HTML sent as text/plain is caught by the parser.
        ("/error.txt", response("text/plain", html.len(), html)),
        ("/empty.csv", response("text/csv", 0, b"")),
        // Plain http is for loopback only, so its redirects are not
        // followed: this one would lead to the good file.
        (
            "/redirect.csv",
            b"HTTP/1.1 302 Found\r\nLocation: /good.csv\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_vec(),
        ),
    ]);
    let url = |path: &str| format!("http://127.0.0.1:{server}{path}");
    let refused = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        drop(l);
        format!("http://127.0.0.1:{p}/x.csv")
    };

    assert_eq!(source(&env), "embedded");
    assert_eq!(tcp_status(&env, port), "unassigned");
    let rejections: Vec<(String, &str)> = vec![
        (url("/truncated.csv"), "fields instead of 12"),
        (url("/short.csv"), "cannot download"),
        (url("/error.html"), "text/html"),
        (url("/error.txt"), "HTML"),
        (url("/empty.csv"), "empty"),
        (url("/missing.csv"), "HTTP 404"),
        (url("/redirect.csv"), "redirect"),
        (refused, "cannot download"),
        ("http://192.0.2.1/x.csv".to_string(), "loopback"),
        ("ftp://127.0.0.1/x.csv".to_string(), "only https://"),
    ];
    for (from, why) in &rejections {
        let e = env.error(&["registry", "update", "--from", from]);
        assert!(e.contains(why), "{from}: {e}");
        assert!(!env.installed().exists(), "{from} was installed");
        assert_eq!(source(&env), "embedded");
        assert_eq!(tcp_status(&env, port), "unassigned");
    }
    // A small local file in IANA's layout parses but is not the whole registry.
    let e = env.error(&["registry", "update", "--from", FIXTURE]);
    assert!(e.contains("only 15 rows"), "{e}");

    let done = env
        .cmd()
        .args(["registry", "update", "--from", &url("/good.csv")])
        .assert()
        .success()
        .get_output()
        .clone();
    let out = String::from_utf8(done.stdout).unwrap();
    assert!(out.starts_with("installed "), "{out}");
    assert!(done.stderr.is_empty(), "progress is for terminals only");
    assert_eq!(std::fs::read_to_string(env.installed()).unwrap(), good);
    assert_eq!(source(&env), "installed");
    assert_eq!(tcp_status(&env, port), "assigned");
    let v = env.json(&["port", "pw-update-test", "--json"]);
    assert_eq!(v["entries"][0]["description"], "Added by the update test");
    let info = env.text(&["registry", "info"]);
    assert!(info.contains(&url("/good.csv")), "{info}");

    // A later bad download leaves the installed registry as it was.
    for (from, _) in rejections.iter().take(4) {
        env.error(&["registry", "update", "--from", from]);
        assert_eq!(std::fs::read_to_string(env.installed()).unwrap(), good);
        assert_eq!(tcp_status(&env, port), "assigned");
    }
    // An installed file older than the embedded snapshot is not used.
    let file = std::fs::File::options()
        .append(true)
        .open(env.installed())
        .unwrap();
    file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(946_684_800))
        .unwrap();
    drop(file);
    assert_eq!(source(&env), "embedded");
    assert_eq!(tcp_status(&env, port), "unassigned");
    let info = env.text(&["registry", "info"]);
    assert!(info.contains("older than the embedded snapshot"), "{info}");
    // --registry FILE overrides the installed file.
    let v = env.json(&["--registry", FIXTURE, "registry", "info", "--json"]);
    assert_eq!(v["source"], "file");
    assert_eq!(
        std::fs::read_dir(env.installed().parent().unwrap())
            .unwrap()
            .count(),
        2,
        "temporary files left behind"
    );
}
