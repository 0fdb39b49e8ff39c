//! Network namespaces: finding every one on the host, and dumping the
//! listeners inside each.
//!
//! sock_diag answers for the namespace its netlink socket was created in,
//! so a socket is opened from a worker thread that first enters the
//! namespace with `setns(2)`; the calling thread never changes namespace.
//! Socket inodes are global, so owners are still found by the one pass
//! over `/proc/*/fd` made for the whole scan.

use super::{netlink, procfs, procnet, RawSocket};
use crate::model::{NetNs, NetNsSkipped};
use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where `ip netns` keeps its named namespaces (bind mounts of nsfs files).
pub(crate) const NAMED_DIR: &str = "/run/netns";

/// `NSFS_MAGIC` (`include/uapi/linux/magic.h`): the file system of
/// namespace files, what a live `/run/netns/NAME` bind mount reports.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Parses a namespace link target, `net:[INODE]`, as `readlink` gives it
/// for `/proc/PID/ns/net`.
pub(crate) fn parse_ns_link(target: &[u8]) -> Option<u64> {
    let digits = target.strip_prefix(b"net:[")?.strip_suffix(b"]")?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A namespace to scan, with every way found to enter it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// The namespace as it is reported.
    pub netns: NetNs,
    /// Every pid seen in it, ascending (`netns.pid` is the first).
    pub pids: Vec<u32>,
    /// Its `/run/netns` file, when it has a name.
    pub path: Option<PathBuf>,
}

/// Groups what was found by namespace inode: `by_pid` is (pid, inode) for
/// each process, `named` is (name, file, inode) for each `/run/netns`
/// entry. The namespace `own` is left out. Sorted by inode; a namespace
/// with several names keeps the smallest.
pub(crate) fn merge(
    own: u64,
    by_pid: &[(u32, u64)],
    named: &[(String, PathBuf, u64)],
) -> Vec<Candidate> {
    let mut found: BTreeMap<u64, Candidate> = BTreeMap::new();
    for &(pid, inode) in by_pid {
        if inode == own {
            continue;
        }
        found
            .entry(inode)
            .or_insert_with(|| blank(inode))
            .pids
            .push(pid);
    }
    for (name, path, inode) in named {
        if *inode == own {
            continue;
        }
        let c = found.entry(*inode).or_insert_with(|| blank(*inode));
        if c.netns.name.as_ref().is_none_or(|n| name < n) {
            c.netns.name = Some(name.clone());
            c.path = Some(path.clone());
        }
    }
    found
        .into_values()
        .map(|mut c| {
            c.pids.sort_unstable();
            c.pids.dedup();
            c.netns.pid = c.pids.first().copied();
            c
        })
        .collect()
}

fn blank(inode: u64) -> Candidate {
    Candidate {
        netns: NetNs {
            inode,
            name: None,
            pid: None,
        },
        pids: Vec::new(),
        path: None,
    }
}

/// The inode of the network namespace `/proc/.../ns/net` link at `link`.
fn link_inode(link: &Path) -> io::Result<u64> {
    let target = std::fs::read_link(link)?;
    parse_ns_link(target.as_os_str().as_bytes()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected link target {:?}", target),
        )
    })
}

/// The calling thread's network namespace inode.
pub(crate) fn own_inode(proc_root: &Path) -> io::Result<u64> {
    link_inode(&proc_root.join("thread-self/ns/net"))
}

/// Whether `path` is on nsfs (a live namespace file, not a stale entry).
fn on_nsfs(path: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: an all-zero statfs is a valid value to be overwritten.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `st` is valid for writes.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    #[allow(clippy::unnecessary_cast)] // f_type's width differs by target
    let magic = st.f_type as i64;
    rc == 0 && magic == NSFS_MAGIC
}

/// Every network namespace other than the calling thread's: those of the
/// processes under `proc_root` (as far as their links can be read) and the
/// named ones in `named_dir`. A missing `named_dir` has no names.
pub(crate) fn enumerate(proc_root: &Path, named_dir: &Path) -> io::Result<Vec<Candidate>> {
    let own = own_inode(proc_root)?;
    let mut by_pid = Vec::new();
    for pid in procfs::pids(proc_root)? {
        // Unreadable (another user's process when not root) or gone: skip.
        if let Ok(inode) = link_inode(&proc_root.join(format!("{pid}/ns/net"))) {
            by_pid.push((pid, inode));
        }
    }
    let mut named = Vec::new();
    match std::fs::read_dir(named_dir) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let path = entry.path();
                // A file left behind after its namespace was unmounted is on
                // the tmpfs, not nsfs: no namespace there.
                if !on_nsfs(&path) {
                    continue;
                }
                if let Ok(meta) = std::fs::metadata(&path) {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    named.push((name, path, meta.ino()));
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(merge(own, &by_pid, &named))
}

/// Opens a handle on the namespace: its `/run/netns` file, else the link
/// of one of its processes, checking that it is still that namespace (a
/// pid may have exited and been reused).
fn open(proc_root: &Path, c: &Candidate) -> Result<OwnedFd, String> {
    let mut paths: Vec<PathBuf> = c.path.iter().cloned().collect();
    paths.extend(c.pids.iter().map(|p| proc_root.join(format!("{p}/ns/net"))));
    let mut last = String::from("no process in it is left");
    for path in paths {
        match std::fs::File::open(&path) {
            Ok(f) => match f.metadata() {
                Ok(m) if m.ino() == c.netns.inode => return Ok(OwnedFd::from(f)),
                Ok(_) => last = "its processes exited during the scan".into(),
                Err(e) => last = format!("{}: {e}", path.display()),
            },
            Err(e) if is_gone(&e) => last = "its processes exited during the scan".into(),
            Err(e) => last = format!("{}: {e}", path.display()),
        }
    }
    Err(last)
}

fn is_gone(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ESRCH))
}

/// Enters the namespace of `fd` (this thread only) and dumps its
/// listeners; when netlink fails there, reads `/proc/PID/net` of a process
/// in it instead, with a scan warning saying so.
fn dump_inside(
    proc_root: &Path,
    c: &Candidate,
    fd: &OwnedFd,
) -> Result<(Vec<RawSocket>, Option<String>), String> {
    // SAFETY: setns(2) on an open namespace descriptor; it changes only the
    // calling thread, a worker that ends after the scan.
    if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!("setns: {}", io::Error::last_os_error()));
    }
    match netlink::listeners() {
        Ok(raw) => Ok((raw, None)),
        Err(netlink_error) => {
            let Some(pid) = c.netns.pid else {
                return Err(netlink_error.to_string());
            };
            let pid_root = proc_root.join(pid.to_string());
            let raw = procnet::listeners(&pid_root)
                .map_err(|e| format!("{netlink_error}; fallback failed too: {e}"))?;
            let warning = super::fallback_warning(&pid_root, &netlink_error);
            Ok((
                raw,
                Some(format!("network namespace {}: {warning}", c.netns.label())),
            ))
        }
    }
}

/// What scanning the other namespaces found.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// Listeners, each with its namespace.
    pub sockets: Vec<(Option<NetNs>, RawSocket)>,
    /// Namespaces that could not be scanned.
    pub skipped: Vec<NetNsSkipped>,
    /// Scan warnings: namespaces listed from `/proc/PID/net` for want of
    /// netlink there.
    pub warnings: Vec<String>,
}

/// Dumps the listeners of every namespace in `candidates`, from one worker
/// thread that enters each in turn. Never fails as a whole: a namespace
/// that cannot be scanned (even for want of a thread) is reported skipped.
pub(crate) fn scan_all(proc_root: &Path, candidates: &[Candidate]) -> Found {
    if candidates.is_empty() {
        return Found::default();
    }
    let worker = || {
        let mut found = Found::default();
        for c in candidates {
            match open(proc_root, c).and_then(|fd| dump_inside(proc_root, c, &fd)) {
                Ok((raw, warning)) => {
                    found
                        .sockets
                        .extend(raw.into_iter().map(|r| (Some(c.netns.clone()), r)));
                    found.warnings.extend(warning);
                }
                Err(reason) => found.skipped.push(NetNsSkipped {
                    netns: c.netns.clone(),
                    reason,
                }),
            }
        }
        found
    };
    let outcome = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("portwarden-netns".into())
            .spawn_scoped(scope, worker)
            .map_err(|e| format!("cannot start a thread to enter it: {e}"))?
            .join()
            .map_err(|_| "the thread entering it panicked".to_string())
    });
    outcome.unwrap_or_else(|reason| Found {
        sockets: Vec::new(),
        warnings: Vec::new(),
        skipped: candidates
            .iter()
            .map(|c| NetNsSkipped {
                netns: c.netns.clone(),
                reason: reason.clone(),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_links() {
        assert_eq!(parse_ns_link(b"net:[4026531840]"), Some(4026531840));
        assert_eq!(parse_ns_link(b"net:[0]"), Some(0));
        assert_eq!(parse_ns_link(b"net:[]"), None);
        assert_eq!(parse_ns_link(b"net:[12a]"), None);
        assert_eq!(parse_ns_link(b"net:[-1]"), None);
        assert_eq!(parse_ns_link(b"net:[123"), None);
        assert_eq!(parse_ns_link(b"mnt:[4026531840]"), None);
        assert_eq!(parse_ns_link(b"net:[18446744073709551616]"), None);
    }

    #[test]
    fn merge_groups_by_inode_and_leaves_our_own_out() {
        let p = |s: &str| PathBuf::from(s);
        let got = merge(
            1,
            &[(30, 7), (5, 1), (12, 7), (40, 9), (12, 7)],
            &[
                ("web".into(), p("/run/netns/web"), 9),
                ("a-web".into(), p("/run/netns/a-web"), 9),
                ("idle".into(), p("/run/netns/idle"), 11),
                ("host".into(), p("/run/netns/host"), 1),
            ],
        );
        let ns = |inode, name: Option<&str>, pid| NetNs {
            inode,
            name: name.map(str::to_string),
            pid,
        };
        assert_eq!(
            got,
            [
                Candidate {
                    netns: ns(7, None, Some(12)),
                    pids: vec![12, 30],
                    path: None
                },
                Candidate {
                    netns: ns(9, Some("a-web"), Some(40)),
                    pids: vec![40],
                    path: Some(p("/run/netns/a-web"))
                },
                Candidate {
                    netns: ns(11, Some("idle"), None),
                    pids: vec![],
                    path: Some(p("/run/netns/idle"))
                },
            ]
        );
        assert!(merge(1, &[(1, 1)], &[]).is_empty());
    }

    #[test]
    fn enumerate_finds_our_own_and_no_stale_names() {
        let dir = tempfile::tempdir().unwrap();
        // A plain file where a bind mount would be: not a namespace.
        std::fs::write(dir.path().join("stale"), b"").unwrap();
        let own = own_inode(Path::new("/proc")).unwrap();
        let found = enumerate(Path::new("/proc"), dir.path()).unwrap();
        assert!(found.iter().all(|c| c.netns.inode != own), "{found:?}");
        assert!(found.iter().all(|c| c.netns.name.is_none()), "{found:?}");
        let missing = enumerate(Path::new("/proc"), &dir.path().join("absent")).unwrap();
        assert_eq!(missing.len(), found.len());
    }

    #[test]
    fn namespaces_that_cannot_be_entered_are_reported_not_fatal() {
        let gone = |pids: Vec<u32>| Candidate {
            netns: NetNs {
                // Never a real namespace inode.
                inode: u64::MAX,
                name: None,
                pid: pids.first().copied(),
            },
            pids,
            path: None,
        };
        let candidates = [
            // Our pid is alive but in another namespace: as if the process
            // had exited and its pid been reused.
            gone(vec![std::process::id()]),
            // Above PID_MAX_LIMIT: exited.
            gone(vec![999_999_999]),
            gone(vec![]),
        ];
        let found = scan_all(Path::new("/proc"), &candidates);
        assert!(found.sockets.is_empty());
        let reasons: Vec<&str> = found.skipped.iter().map(|s| s.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "its processes exited during the scan",
                "its processes exited during the scan",
                "no process in it is left"
            ]
        );
        assert_eq!(found.skipped[0].netns, candidates[0].netns);
        assert!(scan_all(Path::new("/proc"), &[]).skipped.is_empty());
    }
}
