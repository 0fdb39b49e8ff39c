//! Collection against the real kernel: sockets opened here (and in child
//! processes) must be reported exactly, with their owners; non-listeners
//! must not be.

// A failed expectation in a test helper is a test failure: panicking is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use portwarden::collect;
use portwarden::model::{Inventory, Proto, Socket};
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

/// Scans with no fork of this test binary under way (see [`fork_guard`]).
fn scan() -> Inventory {
    let _guard = fork_guard();
    collect::scan().unwrap_or_else(|e| panic!("scan failed: {e}"))
}

/// Every socket of the inventory on `proto` `address`:`port`. Another
/// process may use the same port number on another address, so the
/// address is always part of the match.
fn on(inv: &Inventory, proto: Proto, address: IpAddr, port: u16) -> Vec<&Socket> {
    inv.sockets
        .iter()
        .filter(|s| s.proto == proto && s.address == address && s.port == port)
        .collect()
}

/// The single socket on `proto` `address`:`port`, failing the test otherwise.
fn one(inv: &Inventory, proto: Proto, address: IpAddr, port: u16) -> &Socket {
    let found = on(inv, proto, address, port);
    assert_eq!(
        found.len(),
        1,
        "{proto} {address} port {port}: expected one socket, got {found:#?}"
    );
    found[0]
}

fn pids(s: &Socket) -> Vec<u32> {
    s.processes.iter().map(|p| p.pid).collect()
}

#[cfg(unix)]
fn own_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // /proc/self is owned by the process's effective uid; tests run with
    // real == effective.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or_else(|e| panic!("stat /proc/self: {e}"))
}

/// Asserts `s` is held by this test process exactly, with its details.
fn assert_ours(s: &Socket) {
    assert_eq!(pids(s), [std::process::id()], "{s:#?}");
    let p = &s.processes[0];
    assert_eq!(p.name, own_comm());
    let exe = std::env::current_exe().unwrap();
    assert_eq!(p.exe.as_deref(), Some(exe.to_str().unwrap()));
    assert_eq!(p.cmdline.first().map(String::as_str), exe.to_str());
    assert_eq!(p.uid, Some(own_uid()));
    assert_eq!(s.uid, Some(own_uid()));
    assert!(s.inode.is_some_and(|i| i > 0), "{s:#?}");
}

#[test]
fn loopback_tcp_listeners_are_listed_with_our_pid() {
    let (_v4, p4) = tcp_listener_v4();
    let v6 = tcp_listener_v6();
    let inv = scan();
    let s = one(&inv, Proto::Tcp, LOOPBACK_V4, p4);
    assert!(!s.dual_stack);
    assert_ours(s);
    if let Some((_l, p6)) = &v6 {
        let s = one(&inv, Proto::Tcp, LOOPBACK_V6, *p6);
        assert!(!s.dual_stack);
        assert_ours(s);
    }
}

#[test]
fn wildcard_listeners_and_dual_stack() {
    let (_w4, p4) = tcp_wildcard_v4();
    let dual = tcp_dual_stack();
    let v6only = tcp_listener_on(WILDCARD_V6, true);
    let inv = scan();
    let s = one(&inv, Proto::Tcp, WILDCARD_V4, p4);
    assert!(!s.dual_stack);
    assert_ours(s);
    if let (Some((_d, pd)), Some((_o, po))) = (&dual, &v6only) {
        // One socket accepting both families is one listener, not two.
        let s = one(&inv, Proto::Tcp, WILDCARD_V6, *pd);
        assert!(s.dual_stack, "{s:#?}");
        assert!(s.accepts_v4() && s.accepts_v6());
        assert_ours(s);
        let s = one(&inv, Proto::Tcp, WILDCARD_V6, *po);
        assert!(!s.dual_stack, "{s:#?}");
    }
}

#[test]
fn bound_udp_is_listed_connected_udp_is_not() {
    let (_bound, bound_port) = udp_socket_v4();
    let (_peer, peer_port) = udp_socket_v4();
    let (_connected, connected_port) = udp_connected_v4(SocketAddr::new(LOOPBACK_V4, peer_port));
    let v6 = udp_socket_v6();
    let inv = scan();
    let s = one(&inv, Proto::Udp, LOOPBACK_V4, bound_port);
    assert_ours(s);
    one(&inv, Proto::Udp, LOOPBACK_V4, peer_port);
    assert!(
        on(&inv, Proto::Udp, LOOPBACK_V4, connected_port).is_empty(),
        "connected UDP socket listed: {:#?}",
        on(&inv, Proto::Udp, LOOPBACK_V4, connected_port)
    );
    if let Some((_u, p6)) = &v6 {
        let s = one(&inv, Proto::Udp, LOOPBACK_V6, *p6);
        assert_ours(s);
    }
}

#[test]
fn bound_tcp_socket_that_does_not_listen_is_not_listed() {
    let (_s, port) = tcp_bound_not_listening_v4();
    let (_l, control) = tcp_listener_v4();
    let inv = scan();
    one(&inv, Proto::Tcp, LOOPBACK_V4, control);
    assert!(
        on(&inv, Proto::Tcp, LOOPBACK_V4, port).is_empty(),
        "{:#?}",
        on(&inv, Proto::Tcp, LOOPBACK_V4, port)
    );
}

#[test]
fn listener_owned_by_a_child_reports_the_child() {
    for (proto, addr) in [(Proto::Tcp, LOOPBACK_V4), (Proto::Udp, LOOPBACK_V4)] {
        let Some(child) = child_listener(proto, addr) else {
            return;
        };
        let inv = scan();
        let s = one(&inv, proto, addr, child.port);
        assert_eq!(pids(s), [child.pid], "only the child holds it: {s:#?}");
        let p = &s.processes[0];
        assert_eq!(p.name, "sleep");
        assert_eq!(p.exe.as_deref(), child.exe.to_str());
        assert_eq!(p.cmdline, ["sleep", CHILD_SLEEP_SECS]);
        assert_eq!(p.uid, Some(own_uid()));
        assert!(p.user.is_some(), "uid {:?} has a name: {p:#?}", p.uid);
    }
}

#[test]
fn socket_shared_with_a_child_lists_both_pids() {
    let Some((_ours, child)) = shared_listener(Proto::Tcp, LOOPBACK_V4) else {
        return;
    };
    let inv = scan();
    let s = one(&inv, Proto::Tcp, LOOPBACK_V4, child.port);
    let mut expected = vec![std::process::id(), child.pid];
    expected.sort_unstable();
    assert_eq!(pids(s), expected, "sorted by pid: {s:#?}");
    let names: Vec<&str> = s.processes.iter().map(|p| p.name.as_str()).collect();
    assert!(
        names.contains(&"sleep") && names.contains(&own_comm().as_str()),
        "{names:?}"
    );
}

#[test]
fn privileged_is_effective_root() {
    assert_eq!(scan().privileged, own_uid() == 0);
}

#[test]
fn sockets_are_sorted_and_processes_sorted_by_pid() {
    let (_a, _) = tcp_listener_v4();
    let (_b, _) = udp_socket_v4();
    let inv = scan();
    let keys: Vec<_> = inv
        .sockets
        .iter()
        .map(|s| (s.proto, s.port, s.address))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    for s in &inv.sockets {
        assert!(pids(s).windows(2).all(|w| w[0] < w[1]), "{s:#?}");
    }
}

/// Key of a socket for comparing two collectors.
type Key = (Proto, IpAddr, u16);

fn key(s: &Socket) -> Key {
    (s.proto, s.address, s.port)
}

/// The sockets of `inv` with one of `keys`, with their owning pids.
fn owners_of(inv: &Inventory, keys: &BTreeSet<Key>) -> BTreeSet<(Key, Vec<u32>)> {
    inv.sockets
        .iter()
        .filter(|s| keys.contains(&key(s)))
        .map(|s| (key(s), pids(s)))
        .collect()
}

/// Opens the test's set of listeners: returns them (keep them alive) and
/// their keys.
fn fixture_sockets() -> (Vec<Box<dyn std::any::Any>>, BTreeSet<Key>) {
    let mut keep: Vec<Box<dyn std::any::Any>> = Vec::new();
    let mut keys = BTreeSet::new();
    let tcp = [
        (LOOPBACK_V4, true),
        (WILDCARD_V4, true),
        (LOOPBACK_V6, true),
        (WILDCARD_V6, false), // dual-stack
    ];
    for (addr, v6only) in tcp {
        if let Some((l, p)) = tcp_listener_on(addr, v6only) {
            keep.push(Box::new(l));
            keys.insert((Proto::Tcp, addr, p));
        }
    }
    for addr in [LOOPBACK_V4, LOOPBACK_V6] {
        if let Some((u, p)) = udp_socket_on(addr) {
            keep.push(Box::new(u));
            keys.insert((Proto::Udp, addr, p));
        }
    }
    if let Some(child) = child_listener(Proto::Tcp, LOOPBACK_V4) {
        keys.insert((Proto::Tcp, LOOPBACK_V4, child.port));
        keep.push(Box::new(child));
    }
    (keep, keys)
}

#[test]
fn linux_and_portable_collectors_agree() {
    let (_keep, keys) = fixture_sockets();
    let (native, portable) = {
        let _guard = fork_guard();
        let native = collect::scan().unwrap_or_else(|e| panic!("scan: {e}"));
        let portable = collect::portable::scan().unwrap_or_else(|e| panic!("portable scan: {e}"));
        (native, portable)
    };
    let native = owners_of(&native, &keys);
    let portable = owners_of(&portable, &keys);
    assert_eq!(native.len(), keys.len(), "{native:#?}");
    assert_eq!(native, portable);
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use std::path::Path;

    #[test]
    fn proc_net_fallback_agrees_with_netlink() {
        let (_keep, keys) = fixture_sockets();
        let ((native, source), fallback) = {
            let _guard = fork_guard();
            let native = collect::linux::scan_at(Path::new("/proc")).unwrap();
            (
                native,
                collect::linux::scan_procnet(Path::new("/proc")).unwrap(),
            )
        };
        assert_eq!(source, collect::linux::Source::Netlink);
        assert_eq!(owners_of(&native, &keys).len(), keys.len());
        assert_eq!(owners_of(&native, &keys), owners_of(&fallback, &keys));
        for s in fallback.sockets.iter().filter(|s| keys.contains(&key(s))) {
            assert!(!s.dual_stack, "/proc/net cannot tell dual-stack: {s:#?}");
            let n = native.sockets.iter().find(|n| key(n) == key(s)).unwrap();
            assert_eq!((n.inode, n.uid), (s.inode, s.uid));
        }
    }

    #[test]
    fn listener_with_no_visible_owner_is_listed_without_processes() {
        // The listener's only descriptor is in flight in a Unix socket
        // queue: no process has it, the kernel still has it listening.
        let hidden = listener_in_flight_v4();
        let inv = scan();
        let s = one(&inv, Proto::Tcp, LOOPBACK_V4, hidden.port);
        assert!(s.processes.is_empty(), "owner must not be guessed: {s:#?}");
        assert!(!s.owner_visible());
        assert_eq!(s.uid, Some(own_uid()));
        assert!(s.inode.is_some());
    }

    /// `ss -H -l{t,u}np` rows without a `users:` column: (proto, local).
    fn ss_ownerless() -> Option<BTreeSet<(Proto, String)>> {
        // Forks under the guard, like every spawn here (see fork_guard).
        let out = match common::output(std::process::Command::new("ss").args(["-H", "-ltunp"])) {
            Ok(o) if o.status.success() => o,
            Ok(o) => {
                eprintln!(
                    "skipping: ss failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                return None;
            }
            Err(e) => {
                eprintln!("skipping: cannot run ss: {e}");
                return None;
            }
        };
        let text = String::from_utf8_lossy(&out.stdout);
        Some(
            text.lines()
                .filter(|l| !l.contains("users:"))
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    let proto = match *f.first()? {
                        "tcp" => Proto::Tcp,
                        "udp" => Proto::Udp,
                        _ => return None,
                    };
                    Some((proto, f.get(4)?.to_string()))
                })
                .collect(),
        )
    }

    /// How `ss` prints a local endpoint: `[v6]:port`, `v4:port`, and
    /// (since it prints a dual-stack wildcard as `*`) `*:port`.
    fn ss_local(s: &Socket) -> Vec<String> {
        match s.address {
            IpAddr::V4(a) => vec![format!("{a}:{}", s.port)],
            IpAddr::V6(a) => vec![format!("[{a}]:{}", s.port), format!("*:{}", s.port)],
        }
    }

    #[test]
    fn sockets_ss_shows_without_owner_are_listed_without_processes() {
        // On some hosts (e.g. a sandbox whose supervisor lives outside our
        // pid namespace) `ss -p` shows listeners with no process even as
        // root. Every such socket must be listed by us, with no processes.
        // A socket only counts when it is ownerless in two ss runs around
        // our scan, so sockets that come and go meanwhile are ignored.
        let hidden = listener_in_flight_v4();
        let Some(before) = ss_ownerless() else { return };
        let inv = scan();
        let Some(after) = ss_ownerless() else { return };
        let stable: BTreeSet<_> = before.intersection(&after).cloned().collect();
        assert!(
            stable.contains(&(Proto::Tcp, format!("127.0.0.1:{}", hidden.port))),
            "ss shows our in-flight listener without owner: {stable:#?}"
        );
        for (proto, local) in &stable {
            let ours: Vec<&Socket> = inv
                .sockets
                .iter()
                .filter(|s| s.proto == *proto && ss_local(s).contains(local))
                .collect();
            assert!(
                !ours.is_empty(),
                "{proto} {local}: shown by ss, missing here"
            );
            assert!(
                ours.iter().any(|s| s.processes.is_empty()),
                "{proto} {local}: ss sees no owner, we report {ours:#?}"
            );
        }
    }
}
