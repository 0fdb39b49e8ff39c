//! Listeners in other network namespaces, against the real kernel: a
//! namespace made here (by `unshare` from a thread, or `ip netns add`),
//! holding a TCP listener and a UDP socket in a child process that lives
//! in it. Needs root (creating and entering namespaces); Linux only.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly

mod common;

use common::{fork_guard, LOOPBACK_V4};
use portwarden::collect::{self, ScanOptions};
use portwarden::model::{Inventory, Proto, Socket};
use serde_json::Value;
use socket2::{Domain, Protocol, SockAddr, Type};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};

fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether the test can run here; prints why not.
fn can_run() -> bool {
    if !is_root() {
        eprintln!("skipping: creating and entering network namespaces needs root");
        return false;
    }
    if common::sleep_program().is_none() {
        return false;
    }
    true
}

fn scan(all_netns: bool) -> Inventory {
    let _exact = fork_guard();
    collect::scan_with(&ScanOptions { all_netns }).unwrap_or_else(|e| panic!("scan: {e}"))
}

/// The namespace inode of `/proc/PID/ns/net`.
fn netns_inode(pid: u32) -> u64 {
    let target = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let target = target.to_str().unwrap();
    target
        .strip_prefix("net:[")
        .and_then(|t| t.strip_suffix(']'))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("odd namespace link {target}"))
}

/// Brings up `lo` in the calling thread's network namespace, so that
/// 127.0.0.1 can be bound there (SIOCGIFFLAGS / SIOCSIFFLAGS, netdevice(7)).
fn loopback_up() {
    let s = socket2::Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
    // SAFETY: an all-zero ifreq is valid; the name fits with its NUL; both
    // ioctls read and write only that ifreq.
    unsafe {
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (d, s) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
            *d = *s as libc::c_char;
        }
        assert_eq!(
            libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr),
            0,
            "SIOCGIFFLAGS lo: {}",
            std::io::Error::last_os_error()
        );
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        assert_eq!(
            libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr),
            0,
            "SIOCSIFFLAGS lo: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// A TCP listener and a bound UDP socket on 127.0.0.1:`port`, in the
/// calling thread's namespace.
fn sockets_on(port: u16) -> (OwnedFd, OwnedFd) {
    let addr = SockAddr::from(SocketAddr::new(LOOPBACK_V4, port));
    let tcp = socket2::Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    tcp.bind(&addr)
        .unwrap_or_else(|e| panic!("bind tcp 127.0.0.1:{port} in the namespace: {e}"));
    tcp.listen(8).unwrap();
    let udp = socket2::Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    udp.bind(&addr)
        .unwrap_or_else(|e| panic!("bind udp 127.0.0.1:{port} in the namespace: {e}"));
    (tcp.into(), udp.into())
}

/// A `sleep` child holding `tcp` as stdin and `udp` as stdout; forked from
/// the calling thread, so it lives in that thread's network namespace.
/// Killed and reaped on drop.
struct Holder {
    pid: u32,
    child: Child,
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hold(tcp: OwnedFd, udp: OwnedFd) -> Holder {
    let child = common::spawn(
        Command::new("sleep")
            .arg(common::CHILD_SLEEP_SECS)
            .stdin(Stdio::from(tcp))
            .stdout(Stdio::from(udp)),
    )
    .unwrap();
    let pid = child.id();
    // The kernel sets the new command line a moment after spawn returns.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.is_empty())
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    Holder { pid, child }
}

/// In a new thread: enters `enter` (a fresh namespace when `None`), brings
/// up loopback, binds 127.0.0.1:`port` (TCP and UDP) and hands them to a
/// child in that namespace. The thread ends; the child keeps the namespace.
fn holder_in_namespace(enter: Option<std::fs::File>, port: u16) -> Holder {
    std::thread::spawn(move || {
        // SAFETY: both change only this short-lived thread's namespace.
        let rc = unsafe {
            match &enter {
                Some(f) => libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET),
                None => libc::unshare(libc::CLONE_NEWNET),
            }
        };
        assert_eq!(
            rc,
            0,
            "entering a namespace: {}",
            std::io::Error::last_os_error()
        );
        loopback_up();
        let (tcp, udp) = sockets_on(port);
        hold(tcp, udp)
    })
    .join()
    .unwrap()
}

fn on(inv: &Inventory, proto: Proto, port: u16) -> Vec<&Socket> {
    inv.sockets
        .iter()
        .filter(|s| s.proto == proto && s.address == LOOPBACK_V4 && s.port == port)
        .collect()
}

fn pids(s: &Socket) -> Vec<u32> {
    s.processes.iter().map(|p| p.pid).collect()
}

/// Checks both scans: the namespace's sockets appear only with
/// `all_netns`, each once, tagged with the namespace and owned by the
/// child; our host socket on the same port is listed separately.
fn assert_seen_only_with_all_netns(holder: &Holder, port: u16, name: Option<&str>) {
    let inode = netns_inode(holder.pid);
    assert_ne!(inode, netns_inode(std::process::id()));

    let host = scan(false);
    for proto in [Proto::Tcp, Proto::Udp] {
        let found = on(&host, proto, port);
        assert_eq!(
            found.len(),
            1,
            "{proto}/{port} without --all-netns: {found:#?}"
        );
        assert_eq!(found[0].netns, None);
        assert_eq!(pids(found[0]), [std::process::id()]);
    }
    assert!(host.netns_skipped.is_empty());
    assert!(host.sockets.iter().all(|s| s.netns.is_none()));

    let all = scan(true);
    assert!(
        all.netns_skipped.iter().all(|s| s.netns.inode != inode),
        "{:#?}",
        all.netns_skipped
    );
    for proto in [Proto::Tcp, Proto::Udp] {
        let found = on(&all, proto, port);
        assert_eq!(
            found.len(),
            2,
            "{proto}/{port} with --all-netns: {found:#?}"
        );
        let (ours, theirs): (Vec<&&Socket>, Vec<&&Socket>) =
            found.iter().partition(|s| s.netns.is_none());
        assert_eq!(pids(ours[0]), [std::process::id()]);
        let theirs = theirs[0];
        let ns = theirs.netns.as_ref().unwrap();
        assert_eq!(ns.inode, inode, "{theirs:#?}");
        assert_eq!(ns.name.as_deref(), name, "{theirs:#?}");
        assert_eq!(ns.pid, Some(holder.pid), "{theirs:#?}");
        assert_eq!(pids(theirs), [holder.pid], "{theirs:#?}");
        assert_eq!(theirs.processes[0].name, "sleep");
        assert_ne!(theirs.inode, ours[0].inode);
    }
}

/// Our own socket on 127.0.0.1:`port` (TCP and UDP), on a port free on
/// both protocols.
fn host_sockets() -> (OwnedFd, OwnedFd, u16) {
    for _ in 0..100 {
        let (tcp, port) = common::tcp_listener_v4();
        if let Ok(udp) = std::net::UdpSocket::bind((LOOPBACK_V4, port)) {
            return (tcp.into(), udp.into(), port);
        }
    }
    panic!("no port free for both tcp and udp on 127.0.0.1");
}

#[test]
fn an_unnamed_namespace_is_scanned_only_with_all_netns() {
    if !can_run() {
        return;
    }
    let (_tcp, _udp, port) = host_sockets();
    let holder = holder_in_namespace(None, port);
    assert_seen_only_with_all_netns(&holder, port, None);
}

/// `ip netns add NAME`, deleted on drop (also when the test panics).
struct NamedNetns {
    name: String,
}

impl NamedNetns {
    fn add(name: &str) -> Option<NamedNetns> {
        let out = common::output(Command::new("ip").args(["netns", "add", name]));
        match out {
            Err(e) => {
                eprintln!("skipping: cannot run `ip` (iproute2): {e}");
                None
            }
            Ok(o) if !o.status.success() => {
                panic!(
                    "ip netns add {name}: {}",
                    String::from_utf8_lossy(&o.stderr)
                )
            }
            Ok(_) => Some(NamedNetns {
                name: name.to_string(),
            }),
        }
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }
}

impl Drop for NamedNetns {
    fn drop(&mut self) {
        let _ = common::output(Command::new("ip").args(["netns", "delete", &self.name]));
    }
}

#[test]
fn a_named_namespace_is_listed_with_its_name_also_through_the_binary() {
    if !can_run() {
        return;
    }
    let Some(named) = NamedNetns::add(&format!("pw-test-{}", std::process::id())) else {
        return;
    };
    let (_tcp, _udp, port) = host_sockets();
    let file = std::fs::File::open(named.path()).unwrap();
    let inode = file.metadata().unwrap().ino();
    let holder = holder_in_namespace(Some(file), port);
    assert_eq!(netns_inode(holder.pid), inode);
    assert_seen_only_with_all_netns(&holder, port, Some(&named.name));

    // Through the binary: the JSON netns object, and the table's column.
    let run = |args: &[&str]| -> String {
        let _exact = fork_guard();
        let out = assert_cmd::Command::cargo_bin("portwarden")
            .unwrap()
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let port_arg = port.to_string();
    let json: Value = serde_json::from_str(&run(&[
        "list",
        "--all-netns",
        "--json",
        "--port",
        &port_arg,
    ]))
    .unwrap();
    let listeners = json["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 4, "{json:#}");
    let theirs: Vec<&Value> = listeners.iter().filter(|l| !l["netns"].is_null()).collect();
    assert_eq!(theirs.len(), 2, "{json:#}");
    for l in theirs {
        assert_eq!(l["netns"]["inode"], inode);
        assert_eq!(l["netns"]["name"], named.name.as_str());
        assert_eq!(l["netns"]["pid"], holder.pid);
        assert_eq!(l["processes"][0]["pid"], holder.pid);
        assert_eq!(l["address"], "127.0.0.1");
    }
    assert_eq!(json["netns_skipped"], serde_json::json!([]));

    let json: Value = serde_json::from_str(&run(&["list", "--json", "--port", &port_arg])).unwrap();
    let listeners = json["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 2, "{json:#}");
    assert!(listeners.iter().all(|l| l["netns"].is_null()), "{json:#}");

    let table = run(&["--all-netns", "--port", &port_arg]);
    assert!(table.lines().next().unwrap().ends_with(" NETNS"), "{table}");
    let named_rows = table
        .lines()
        .filter(|l| l.ends_with(&format!(" {}", named.name)))
        .count();
    assert_eq!(named_rows, 2, "{table}");
    assert!(!run(&["--port", &port_arg]).contains("NETNS"));

    let text = run(&["port", &port_arg, "--all-netns"]);
    assert!(
        text.contains(&format!(
            "pid {} sleep (root) in netns {}",
            holder.pid, named.name
        )),
        "{text}"
    );
}
