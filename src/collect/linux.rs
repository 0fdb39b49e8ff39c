//! Linux collection: sockets from NETLINK_SOCK_DIAG (falling back to the
//! `/proc/net` tables when netlink is unavailable), owners from one pass
//! over `/proc/*/fd`, process details from `/proc/PID` for owners only,
//! and container names from the Docker API only when an owner needs them.

mod attribution;
mod netlink;
pub(crate) mod netns;
mod procfs;
mod procnet;

use super::ScanOptions;
use crate::error::{Error, Result};
use crate::model::{Inventory, NetNs, Process, Proto, Socket};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;

/// A listening socket before its owners are known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RawSocket {
    pub proto: Proto,
    pub address: IpAddr,
    pub port: u16,
    pub dual_stack: bool,
    pub uid: Option<u32>,
    pub inode: u64,
}

/// Where the socket list came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// NETLINK_SOCK_DIAG: complete, with `dual_stack`.
    Netlink,
    /// `/proc/net/{tcp,tcp6,udp,udp6}`: `dual_stack` is always false.
    ProcNet,
}

/// Scans the machine: the calling thread's network namespace, the
/// processes visible under `/proc`.
pub fn scan() -> Result<Inventory> {
    scan_with(&ScanOptions::default())
}

/// Scans as `options` say: with `all_netns`, every network namespace found
/// under `/proc` and in `/run/netns` as well as the calling thread's.
pub fn scan_with(options: &ScanOptions) -> Result<Inventory> {
    scan_at_with(Path::new("/proc"), Path::new(netns::NAMED_DIR), options)
        .map(|(inventory, _)| inventory)
}

/// Scans with processes (and the `/proc/net` fallback) read from
/// `proc_root`. The netlink query always sees the calling thread's network
/// namespace, so a caller scanning another namespace must enter it first
/// (`setns`) and pass that namespace's proc mount.
pub fn scan_at(proc_root: &Path) -> Result<(Inventory, Source)> {
    scan_at_with(
        proc_root,
        Path::new(netns::NAMED_DIR),
        &ScanOptions::default(),
    )
}

/// [`scan_at`] with options; named network namespaces are read from
/// `named_dir` (normally `/run/netns`). The [`Source`] is that of the
/// calling thread's namespace.
pub fn scan_at_with(
    proc_root: &Path,
    named_dir: &Path,
    options: &ScanOptions,
) -> Result<(Inventory, Source)> {
    scan_from(proc_root, named_dir, options, netlink::listeners())
}

/// [`scan_at_with`] given the netlink dump's outcome (so a test can make
/// netlink fail).
fn scan_from(
    proc_root: &Path,
    named_dir: &Path,
    options: &ScanOptions,
    netlink: std::result::Result<Vec<RawSocket>, impl std::fmt::Display>,
) -> Result<(Inventory, Source)> {
    let (raw, source, fallback) = sockets_or_fallback(proc_root, netlink)?;
    let mut warnings: Vec<String> = fallback.into_iter().collect();
    let mut raw: Vec<(Option<NetNs>, RawSocket)> = raw.into_iter().map(|r| (None, r)).collect();
    let mut netns_skipped = Vec::new();
    if options.all_netns {
        let candidates = netns::enumerate(proc_root, named_dir).map_err(|e| {
            Error::Collect(format!(
                "listing network namespaces under {} and {}: {e}",
                proc_root.display(),
                named_dir.display()
            ))
        })?;
        let found = netns::scan_all(proc_root, &candidates);
        raw.extend(found.sockets);
        netns_skipped = found.skipped;
        warnings.extend(found.warnings);
    }
    let sockets = attach_owners(proc_root, raw, &mut warnings)?;
    Ok((
        Inventory {
            sockets,
            privileged: effective_uid() == 0,
            netns_skipped,
            warnings,
        },
        source,
    ))
}

/// The socket list: `netlink`'s answer when there is one, else the
/// `/proc/net` tables under `proc_root`, with a warning that says why and
/// what the fallback cannot tell.
fn sockets_or_fallback(
    proc_root: &Path,
    netlink: std::result::Result<Vec<RawSocket>, impl std::fmt::Display>,
) -> Result<(Vec<RawSocket>, Source, Option<String>)> {
    match netlink {
        Ok(raw) => Ok((raw, Source::Netlink, None)),
        Err(netlink_error) => match procnet::listeners(proc_root) {
            Ok(raw) => Ok((
                raw,
                Source::ProcNet,
                Some(fallback_warning(proc_root, &netlink_error)),
            )),
            Err(e) => Err(Error::Collect(format!(
                "{netlink_error}; fallback to {}/net failed too: {e}",
                proc_root.display()
            ))),
        },
    }
}

/// The scan warning for a `/proc/net` fallback after `netlink_error`.
fn fallback_warning(proc_root: &Path, netlink_error: &impl std::fmt::Display) -> String {
    format!(
        "sockets read from {}/net: netlink sock_diag failed ({netlink_error}); \
         dual-stack sockets show as IPv6 only",
        proc_root.display()
    )
}

/// The scan with the `/proc/net` tables as socket source, netlink unused.
/// Exposed so the fallback can be exercised and compared on any host.
pub fn scan_procnet(proc_root: &Path) -> Result<Inventory> {
    let raw = procnet::listeners(proc_root)?;
    let mut warnings = Vec::new();
    let sockets = attach_owners(
        proc_root,
        raw.into_iter().map(|r| (None, r)).collect(),
        &mut warnings,
    )?;
    Ok(Inventory {
        sockets,
        privileged: effective_uid() == 0,
        netns_skipped: Vec::new(),
        warnings,
    })
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// Finds every owner of every socket and builds the sorted socket list.
/// Each socket comes with its network namespace (`None`: our own).
/// What could not be found out (container names) is added to `warnings`.
fn attach_owners(
    proc_root: &Path,
    mut raw: Vec<(Option<NetNs>, RawSocket)>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Socket>> {
    // A dump interrupted by table changes may repeat a socket. Socket
    // inodes are global, so this holds across namespaces too.
    let mut seen = HashSet::new();
    raw.retain(|(_, s)| s.inode == 0 || seen.insert((s.proto, s.inode)));

    let wanted: HashSet<u64> = raw
        .iter()
        .map(|(_, s)| s.inode)
        .filter(|&i| i != 0)
        .collect();
    let pids = procfs::pids(proc_root).map_err(|e| Error::io(proc_root, e))?;
    let procfs::Walked {
        owners,
        start_times,
    } = procfs::find_owners(proc_root, &pids, &wanted).map_err(|e| Error::io(proc_root, e))?;

    let mut users = procfs::UserNames::default();
    let mut details: HashMap<u32, Option<Process>> = HashMap::new();
    for &pid in owners.values().flatten() {
        // No start time: the pid exited during the walk, its details are
        // gone (or another process's).
        details.entry(pid).or_insert_with(|| {
            let start = *start_times.get(&pid)?;
            procfs::read_process(proc_root, pid, start, &mut users)
        });
    }
    let mut found: Vec<&mut Process> = details.values_mut().flatten().collect();
    warnings.extend(attribution::name_docker_containers(
        &mut found,
        Path::new(attribution::DOCKER_SOCKET),
    ));

    let mut sockets: Vec<Socket> = raw
        .into_iter()
        .map(|(netns, s)| {
            let processes = owners
                .get(&s.inode)
                .into_iter()
                .flatten()
                .filter_map(|pid| details.get(pid).cloned().flatten())
                .collect();
            Socket {
                proto: s.proto,
                address: s.address,
                port: s.port,
                dual_stack: s.dual_stack,
                uid: s.uid,
                user: s.uid.and_then(|u| users.name(u)),
                inode: (s.inode != 0).then_some(s.inode),
                processes,
                netns,
            }
        })
        .collect();
    // Our own namespace's sockets (netns None) before the others'.
    let key = |s: &Socket| {
        (
            s.proto,
            s.port,
            s.address,
            s.netns.as_ref().map(|n| n.inode),
            s.inode,
        )
    };
    sockets.sort_by_key(key);
    Ok(sockets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_proc_root_is_an_error_naming_it() {
        let e = scan_at(Path::new("/nonexistent-proc")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent-proc"), "{e}");
        let e = scan_procnet(Path::new("/nonexistent-proc")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent-proc/net/tcp"), "{e}");
    }

    #[test]
    fn no_warning_when_netlink_answers() {
        let (_, source, warning) =
            sockets_or_fallback(Path::new("/nonexistent-proc"), Ok::<_, String>(Vec::new()))
                .unwrap();
        assert_eq!(source, Source::Netlink);
        assert_eq!(warning, None);
    }

    #[test]
    fn a_failed_fallback_names_both_causes() {
        let e = sockets_or_fallback(Path::new("/nonexistent-proc"), Err("netlink socket: EPERM"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("netlink socket: EPERM"), "{e}");
        assert!(
            e.contains("fallback to /nonexistent-proc/net failed too"),
            "{e}"
        );
    }

    #[test]
    fn the_proc_net_fallback_is_a_warning_naming_the_cause() {
        let sock = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let cause = netlink::NetlinkError::Os {
            call: "socket",
            source: std::io::Error::from_raw_os_error(libc::EPERM),
        };
        let (inv, source) = scan_from(
            Path::new("/proc"),
            Path::new(netns::NAMED_DIR),
            &ScanOptions::default(),
            Err::<Vec<RawSocket>, _>(cause),
        )
        .unwrap();
        assert_eq!(source, Source::ProcNet);
        // The fallback still finds our listener, with us as its owner.
        let ours = inv
            .sockets
            .iter()
            .find(|s| s.proto == Proto::Tcp && s.port == port)
            .unwrap();
        assert!(ours.processes.iter().any(|p| p.pid == std::process::id()));
        let eperm = std::io::Error::from_raw_os_error(libc::EPERM);
        let expected = format!(
            "sockets read from /proc/net: netlink sock_diag failed (netlink socket: {eperm}); \
             dual-stack sockets show as IPv6 only"
        );
        // Docker naming may add its own line on a host with containers.
        assert_eq!(inv.warnings.first(), Some(&expected), "{:?}", inv.warnings);
        // The same scan with netlink working says nothing about netlink.
        let (inv, source) = scan_at(Path::new("/proc")).unwrap();
        if source == Source::Netlink {
            assert!(
                inv.warnings.iter().all(|w| !w.contains("netlink")),
                "{:?}",
                inv.warnings
            );
        } else {
            eprintln!("skipping the netlink half: sock_diag is unavailable here");
        }
        drop(sock);
    }
}
