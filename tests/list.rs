//! `portwarden` / `portwarden list` through the real binary, against real
//! sockets opened by this test: every output format and every filter.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly
mod common;

use common::{child_listener, LOOPBACK_V4, LOOPBACK_V6, WILDCARD_V4};
use portwarden::model::{PortStatus, Proto};
use portwarden::registry::{Registry, Transport};
use serde_json::Value;
use std::net::{IpAddr, TcpListener, UdpSocket};

/// The binary with an environment that cannot influence it: no colour
/// variables, no installed registry, no user config.
fn portwarden(args: &[&str]) -> (String, String, i32) {
    let home = tempfile::tempdir().unwrap();
    // Exact owners: no other test thread may be between fork and exec
    // (holding copies of our sockets) while the binary scans.
    let _exact = common::fork_guard();
    let out = assert_cmd::Command::cargo_bin("portwarden")
        .unwrap()
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.code().unwrap_or(-1),
    )
}

/// A TCP listener on `addr` on a free port whose registry status for TCP is
/// `status`, in the user range (no root needed to bind).
fn tcp_on_status(addr: IpAddr, status: PortStatus) -> (TcpListener, u16) {
    let reg = Registry::embedded();
    // Start at a pseudo-random place so parallel test runs rarely collide.
    let start = 1024 + (std::process::id() as usize * 7919) % 40000;
    (1024..49152u16)
        .cycle()
        .skip(start - 1024)
        .take(48128)
        .filter(|&p| reg.lookup(p, Transport::Tcp).status == status)
        .find_map(|p| TcpListener::bind((addr, p)).ok().map(|l| (l, p)))
        .unwrap_or_else(|| panic!("no free {status:?} port on {addr}"))
}

fn listeners(json: &Value) -> &Vec<Value> {
    json["listeners"].as_array().unwrap()
}

fn find<'a>(json: &'a Value, proto: &str, port: u16) -> &'a Value {
    listeners(json)
        .iter()
        .find(|l| l["protocol"] == proto && l["port"] == port)
        .unwrap_or_else(|| panic!("{proto}/{port} not listed"))
}

/// Which of the fixture's listeners `portwarden --json ARGS` lists, matched
/// by protocol, address and port (other tests run in parallel and may hold
/// the same port number on another address).
fn ports_listed(args: &[&str], fx: &Fixture) -> Vec<(Proto, u16)> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (out, err, code) = portwarden(&all);
    assert_eq!(code, 0, "{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    let mut found: Vec<(Proto, u16)> = fx
        .keys()
        .into_iter()
        .filter(|(proto, address, port)| {
            listeners(&json).iter().any(|l| {
                l["protocol"] == proto.as_str() && l["address"] == *address && l["port"] == *port
            })
        })
        .map(|(proto, _, port)| (proto, port))
        .collect();
    found.sort();
    found
}

struct Fixture {
    assigned: (TcpListener, u16),
    reserved: Option<(TcpListener, u16)>,
    unassigned: (TcpListener, u16),
    udp: (UdpSocket, u16),
    child: common::ChildGuard,
}

impl Fixture {
    fn open() -> Fixture {
        let reserved =
            common::ipv6_available().then(|| tcp_on_status(LOOPBACK_V6, PortStatus::Reserved));
        Fixture {
            assigned: tcp_on_status(LOOPBACK_V4, PortStatus::Assigned),
            reserved,
            unassigned: tcp_on_status(WILDCARD_V4, PortStatus::Unassigned),
            udp: common::udp_socket_v4(),
            child: child_listener(Proto::Tcp, LOOPBACK_V4)
                .unwrap_or_else(|| panic!("cannot start a child listener")),
        }
    }

    /// The fixture's listeners: protocol, address, port.
    fn keys(&self) -> Vec<(Proto, &'static str, u16)> {
        let mut v = vec![
            (Proto::Tcp, "127.0.0.1", self.assigned.1),
            (Proto::Tcp, "0.0.0.0", self.unassigned.1),
            (Proto::Udp, "127.0.0.1", self.udp.1),
            (Proto::Tcp, "127.0.0.1", self.child.port),
        ];
        if let Some((_, p)) = &self.reserved {
            v.push((Proto::Tcp, "::1", *p));
        }
        v
    }

    fn ours(&self) -> Vec<(Proto, u16)> {
        let mut v: Vec<(Proto, u16)> = self
            .keys()
            .into_iter()
            .map(|(p, _, port)| (p, port))
            .collect();
        v.sort();
        v
    }
}

#[test]
fn json_reports_each_listener_with_owner_registry_and_findings() {
    let fx = Fixture::open();
    let (out, err, code) = portwarden(&["--json"]);
    assert_eq!(code, 0, "{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["schema_version"], 1);
    let me = std::process::id();
    let comm = common::own_comm();

    let a = find(&json, "tcp", fx.assigned.1);
    assert_eq!(a["address"], "127.0.0.1");
    assert_eq!(a["exposure"], "loopback");
    assert_eq!(a["owner_visible"], true);
    assert_eq!(a["processes"][0]["pid"], me);
    assert_eq!(a["processes"][0]["name"], comm.as_str());
    assert!(!a["processes"][0]["cmdline"].as_array().unwrap().is_empty());
    assert_eq!(a["registry"]["status"], "assigned");
    assert!(!a["registry"]["services"].as_array().unwrap().is_empty());
    assert_eq!(a["findings"], serde_json::json!([]));

    if let Some((_, port)) = &fx.reserved {
        let r = find(&json, "tcp", *port);
        assert_eq!(r["address"], "::1");
        assert_eq!(r["exposure"], "loopback");
        assert_eq!(r["registry"]["status"], "reserved");
        assert_eq!(r["findings"], serde_json::json!(["reserved-port"]));
    }

    let u = find(&json, "tcp", fx.unassigned.1);
    assert_eq!(u["address"], "0.0.0.0");
    assert_eq!(u["exposure"], "wildcard");
    assert_eq!(u["registry"]["status"], "unassigned");
    assert_eq!(u["registry"]["range"], "user");
    assert_eq!(u["findings"], serde_json::json!(["unassigned-port"]));

    let udp = find(&json, "udp", fx.udp.1);
    assert_eq!(udp["address"], "127.0.0.1");
    assert_eq!(udp["processes"][0]["pid"], me);

    let c = find(&json, "tcp", fx.child.port);
    assert_eq!(c["processes"].as_array().unwrap().len(), 1);
    assert_eq!(c["processes"][0]["pid"], fx.child.pid);
    assert_eq!(c["processes"][0]["name"], "sleep");
    assert_eq!(
        c["processes"][0]["exe"],
        fx.child.exe.to_string_lossy().as_ref()
    );
    assert_eq!(c["processes"][0]["cmdline"][0], "sleep");

    let summary = &json["summary"];
    assert_eq!(summary["listeners"], listeners(&json).len());

    // Scan warnings: always an array of lines; plain output gives the same
    // ones on standard error (Docker's state is the only thing that could
    // differ between the two scans, and it does not change here).
    let warnings: Vec<&str> = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(warnings.iter().all(|w| !w.is_empty() && !w.contains('\n')));
    let (_, err, code) = portwarden(&["--format", "plain"]);
    assert_eq!(code, 0, "{err}");
    let on_stderr: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("portwarden: warning: "))
        .collect();
    assert_eq!(on_stderr, warnings, "{err}");
}

#[test]
fn table_plain_and_csv_show_the_same_listeners() {
    let fx = Fixture::open();
    let me = std::process::id().to_string();

    let (table, _, code) = portwarden(&["--color", "always"]);
    assert_eq!(code, 0);
    assert!(table.lines().next().unwrap().contains("PROTO"));
    let row = |port: u16| -> String {
        table
            .lines()
            .find(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                cols.iter().any(|c| c.contains(&format!("{port}")))
                    && (cols.contains(&"tcp") || cols.contains(&"udp"))
            })
            .unwrap_or_else(|| panic!("no row for {port} in\n{table}"))
            .to_string()
    };
    let unassigned = row(fx.unassigned.1);
    assert!(unassigned.contains("unassigned-port"), "{unassigned}");
    assert!(unassigned.contains('!'), "flagged rows carry a text marker");
    assert!(unassigned.contains("\u{1b}["), "--color always colours");
    let assigned = row(fx.assigned.1);
    assert!(
        assigned.contains(&me) && !assigned.starts_with('!'),
        "{assigned}"
    );
    let child = row(fx.child.port);
    assert!(child.contains(&fx.child.pid.to_string()) && child.contains("sleep"));
    assert!(table.contains(" flagged"), "summary line");

    // Not a terminal and no --color: no escape sequences at all.
    let (table, _, _) = portwarden(&[]);
    assert!(!table.contains('\u{1b}'));

    let (plain, _, code) = portwarden(&["--format", "plain"]);
    assert_eq!(code, 0);
    let line = plain
        .lines()
        .find(|l| l.starts_with(&format!("tcp 0.0.0.0 {} ", fx.unassigned.1)))
        .unwrap_or_else(|| panic!("no plain line in\n{plain}"));
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields.len(), 9);
    assert_eq!(fields[3], "unassigned");
    assert_eq!(fields[5], me);
    assert_eq!(fields[8], "unassigned-port");

    let (csv, _, code) = portwarden(&["--format", "csv"]);
    assert_eq!(code, 0);
    let mut rd = csv::Reader::from_reader(csv.as_bytes());
    let headers = rd.headers().unwrap().clone();
    let col = |n: &str| headers.iter().position(|h| h == n).unwrap();
    let rec = rd
        .records()
        .map(|r| r.unwrap())
        .find(|r| r[col("port")] == fx.child.port.to_string() && &r[col("protocol")] == "tcp")
        .unwrap();
    assert_eq!(&rec[col("pids")], fx.child.pid.to_string());
    assert_eq!(&rec[col("processes")], "sleep");
    assert_eq!(&rec[col("exposure")], "loopback");
    assert_eq!(&rec[col("registry_status")].is_empty(), &false);
}

#[test]
fn every_filter_selects_what_it_should() {
    let fx = Fixture::open();
    let ours = fx.ours();
    let all = |v: &[(Proto, u16)]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    let tcp: Vec<_> = ours
        .iter()
        .copied()
        .filter(|(p, _)| *p == Proto::Tcp)
        .collect();
    assert_eq!(ports_listed(&[], &fx), ours);
    assert_eq!(ports_listed(&["--tcp"], &fx), tcp);
    assert_eq!(ports_listed(&["--udp"], &fx), vec![(Proto::Udp, fx.udp.1)]);
    let v4: Vec<_> = ours
        .iter()
        .copied()
        .filter(|k| Some(*k) != fx.reserved.as_ref().map(|r| (Proto::Tcp, r.1)))
        .collect();
    assert_eq!(ports_listed(&["-4"], &fx), v4);
    let v6: Vec<_> = fx.reserved.iter().map(|r| (Proto::Tcp, r.1)).collect();
    assert_eq!(ports_listed(&["-6"], &fx), v6);
    let port_arg = format!("{},{}", fx.assigned.1, fx.udp.1);
    assert_eq!(
        ports_listed(&["--port", &port_arg], &fx),
        all(&[(Proto::Tcp, fx.assigned.1), (Proto::Udp, fx.udp.1)])
    );
    let child_pid = fx.child.pid.to_string();
    assert_eq!(
        ports_listed(&["--pid", &child_pid], &fx),
        vec![(Proto::Tcp, fx.child.port)]
    );
    assert_eq!(
        ports_listed(&["--process", "sleep"], &fx),
        vec![(Proto::Tcp, fx.child.port)]
    );
    let (whoami, _, _) = portwarden(&["--json", "--pid", &std::process::id().to_string()]);
    let json: Value = serde_json::from_str(&whoami).unwrap();
    let user = listeners(&json)[0]["processes"][0]["user"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(ports_listed(&["--user", &user], &fx), ours);
    assert!(ports_listed(&["--user", "no-such-user-here"], &fx).is_empty());
    let mut flagged = vec![(Proto::Tcp, fx.unassigned.1)];
    flagged.extend(fx.reserved.iter().map(|r| (Proto::Tcp, r.1)));
    // Ephemeral ports can land on any status: ask the registry.
    let reg = Registry::embedded();
    for (proto, port) in [(Proto::Udp, fx.udp.1), (Proto::Tcp, fx.child.port)] {
        let st = reg.lookup(port, Transport::from(proto)).status;
        if st != PortStatus::Assigned {
            flagged.push((proto, port));
        }
    }
    assert_eq!(ports_listed(&["--flagged"], &fx), all(&flagged));
    assert_eq!(
        ports_listed(&["--exposed"], &fx),
        vec![(Proto::Tcp, fx.unassigned.1)]
    );
    // Filters combine.
    assert_eq!(
        ports_listed(&["--exposed", "--udp"], &fx),
        Vec::<(Proto, u16)>::new()
    );
    assert_eq!(
        ports_listed(&["--tcp", "--flagged", "-4"], &fx),
        all(
            &flagged
                .iter()
                .copied()
                .filter(|(p, port)| *p == Proto::Tcp
                    && Some(*port) != fx.reserved.as_ref().map(|r| r.1))
                .collect::<Vec<_>>()
        )
    );
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    let (_, err, code) = portwarden(&["--port", "70000"]);
    assert_eq!(code, 2);
    assert!(err.contains("70000"), "{err}");
    let (_, err, code) = portwarden(&["--format", "yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("yaml"), "{err}");
}

#[test]
fn port_command_says_who_listens_now() {
    let (listener, port) = tcp_on_status(LOOPBACK_V4, PortStatus::Unassigned);
    let (out, err, code) = portwarden(&["port", &port.to_string(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    let ls = json["listeners"].as_array().unwrap();
    assert_eq!(ls.len(), 1, "{out}");
    assert_eq!(ls[0]["protocol"], "tcp");
    assert_eq!(ls[0]["address"], "127.0.0.1");
    assert_eq!(ls[0]["processes"][0]["pid"], std::process::id());
    assert_eq!(json["ports"][0]["protocols"][0]["status"], "unassigned");

    let (text, _, code) = portwarden(&["port", &port.to_string()]);
    assert_eq!(code, 0);
    let expected = format!("tcp  127.0.0.1:{port}");
    let line = text
        .lines()
        .find(|l| l.contains(&expected))
        .unwrap_or_else(|| panic!("no listener line in\n{text}"));
    assert!(
        line.contains(&format!("pid {}", std::process::id())),
        "{line}"
    );
    drop(listener);

    let (text, _, _) = portwarden(&["port", &port.to_string()]);
    assert!(text.contains("listening now: nothing"), "{text}");
}

#[test]
fn without_root_other_users_owners_are_marked_not_visible_with_a_hint() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: needs root to run the binary as another user");
        return;
    }
    let (_listener, port) = tcp_on_status(LOOPBACK_V4, PortStatus::Unassigned);
    let bin = assert_cmd::cargo::cargo_bin("portwarden");
    let run = |args: &[&str]| -> Option<String> {
        use std::os::unix::process::CommandExt;
        let _exact = common::fork_guard();
        let out = std::process::Command::new(&bin)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", "/nonexistent")
            .uid(65534)
            .gid(65534)
            .args(args)
            .output();
        match out {
            Ok(out) => {
                assert_eq!(out.status.code(), Some(0), "{out:?}");
                Some(String::from_utf8(out.stdout).unwrap())
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                eprintln!("skipping: uid 65534 cannot run {}: {e}", bin.display());
                None
            }
            Err(e) => panic!("run {} as uid 65534: {e}", bin.display()),
        }
    };
    let Some(json) = run(&["--json"]) else {
        return;
    };
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["privileged"], false);
    let ours = find(&json, "tcp", port);
    assert_eq!(ours["owner_visible"], false, "{ours}");
    assert_eq!(ours["processes"], serde_json::json!([]));
    assert_eq!(ours["socket_uid"], 0);
    assert_eq!(ours["socket_user"], "root");

    let table = run(&["--port", &port.to_string()]).unwrap();
    let row = table
        .lines()
        .find(|l| l.contains(&format!(" {port} ")))
        .unwrap_or_else(|| panic!("no row for {port}:\n{table}"));
    assert!(
        row.contains("(owner not visible)") && row.contains("root"),
        "{row}"
    );
    assert!(
        table.contains("run as root to see the owners of every socket"),
        "{table}"
    );
}
