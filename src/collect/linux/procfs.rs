//! Which processes hold which sockets, and who those processes are, from
//! `/proc` (`proc(5)`).
//!
//! One pass over `/proc/*/fd`: each fd link is read relative to an open
//! directory descriptor (`readlinkat`), so the kernel resolves one path
//! component per fd instead of four, and only links naming a wanted socket
//! inode are kept. Process details (with the cgroup, for the systemd unit
//! and container) are then read only for the few pids that own a wanted
//! socket.

use super::attribution;
use crate::model::Process;
use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Socket inode -> pids holding it, ascending, without duplicates.
pub(crate) type Owners = HashMap<u64, Vec<u32>>;

/// Pid -> start time of the process whose fds were walked (field 22 of
/// `/proc/PID/stat`, clock ticks after boot), for owning pids only.
pub(crate) type StartTimes = HashMap<u32, u64>;

/// What the fd walk found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Walked {
    /// Which pids hold each wanted socket.
    pub owners: Owners,
    /// The start time of each of those pids, when it could be read: a pid
    /// missing here exited during the walk.
    pub start_times: StartTimes,
}

/// The start time (field 22, `starttime`) in a `/proc/PID/stat` line.
/// Field 2 is the command name in parentheses, which may itself hold
/// spaces, parentheses and newlines, so fields are counted after the last
/// `)`: nothing after it can be one (see `proc_pid_stat(5)`).
pub(crate) fn stat_start_time(stat: &[u8]) -> Option<u64> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(stat.get(close + 1..)?).ok()?;
    // After `)` come field 3 (state) onwards: field 22 is the 20th.
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// Parses a `/proc/PID/fd/N` link target: `socket:[INODE]` -> INODE.
pub(crate) fn socket_inode(link: &[u8]) -> Option<u64> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Parses a buffer filled by `getdents64(2)`: `struct linux_dirent64`
/// records (u64 ino, i64 off, u16 reclen, u8 type, NUL-terminated name).
/// Calls `f` with each name, NUL included, except `.` and `..`.
pub(crate) fn for_each_dirent(buf: &[u8], mut f: impl FnMut(&CStr)) {
    const NAME_AT: usize = 19;
    let mut at = 0;
    while at + NAME_AT < buf.len() {
        let reclen = u16::from_ne_bytes([buf[at + 16], buf[at + 17]]) as usize;
        if reclen <= NAME_AT || at + reclen > buf.len() {
            return;
        }
        if let Ok(name) = CStr::from_bytes_until_nul(&buf[at + NAME_AT..at + reclen]) {
            let b = name.to_bytes();
            if b != b"." && b != b".." {
                f(name);
            }
        }
        at += reclen;
    }
}

fn last_errno() -> io::Error {
    io::Error::last_os_error()
}

/// `openat(dir, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)`.
fn open_dir_at(dir: Option<&OwnedFd>, path: &CStr) -> io::Result<OwnedFd> {
    let base = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: `path` is NUL-terminated; `base` is an open fd or AT_FDCWD.
    let fd = unsafe {
        libc::openat(
            base,
            path.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(last_errno());
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads every entry name of an open directory, calling `f` on each.
fn read_dir_names(dir: &OwnedFd, buf: &mut [u8], mut f: impl FnMut(&CStr)) -> io::Result<()> {
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        if n < 0 {
            let e = last_errno();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(());
        }
        for_each_dirent(&buf[..n as usize], &mut f);
    }
}

/// `readlinkat(dir, name)` into `buf`; the target, possibly truncated to
/// the buffer (long targets cannot be sockets anyway).
fn read_link_at<'b>(dir: &OwnedFd, name: &CStr, buf: &'b mut [u8]) -> io::Result<&'b [u8]> {
    // SAFETY: `name` is NUL-terminated; `buf` is valid for `buf.len()` bytes.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(last_errno());
    }
    Ok(&buf[..n as usize])
}

/// Whether an error means the process is gone (exited mid-scan).
fn is_gone(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ESRCH))
}

/// Lists the numeric entries (pids) of the proc root.
pub(crate) fn pids(proc_root: &Path) -> io::Result<Vec<u32>> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir(proc_root)? {
        let entry = entry?;
        if let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    Ok(pids)
}

/// Most threads the fd walk uses; more buys nothing on procfs.
const MAX_WALKERS: usize = 8;
/// Below this many pids one thread is quicker than starting more.
const PARALLEL_MIN_PIDS: usize = 64;
/// Pids a walker claims at a time.
const CLAIM: usize = 8;

/// Walks `/proc/PID/fd` of `pids` and records which of them hold a socket
/// whose inode is in `wanted`. A pid that vanished, or whose fds cannot be
/// read (permission denied), is skipped: its sockets keep fewer owners.
///
/// The walk is spread over up to one thread per CPU: each claims the next
/// few pids from a shared counter, so one process with a huge fd table
/// does not hold the others up.
pub(crate) fn find_owners(
    proc_root: &Path,
    pids: &[u32],
    wanted: &HashSet<u64>,
) -> io::Result<Walked> {
    if wanted.is_empty() {
        return Ok(Walked::default());
    }
    let root = CString::new(proc_root.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let root = open_dir_at(None, &root)?;
    let next = AtomicUsize::new(0);
    let walkers = if pids.len() < PARALLEL_MIN_PIDS {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_WALKERS)
    };
    let parts = std::thread::scope(|scope| {
        // Helpers that fail to start just leave more work to this thread.
        let helpers: Vec<_> = (1..walkers)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("portwarden-fd-walk".into())
                    .spawn_scoped(scope, || walk(&root, pids, wanted, &next))
                    .ok()
            })
            .collect();
        let mut parts = vec![walk(&root, pids, wanted, &next)];
        for h in helpers {
            // A walker cannot panic short of a bug; if one did, its pids
            // were claimed and are lost, which `join` tells us.
            match h.join() {
                Ok(part) => parts.push(part),
                Err(_) => return Err(io::Error::other("a /proc fd walker thread panicked")),
            }
        }
        Ok(parts)
    })?;
    let mut walked = Walked::default();
    for part in parts {
        for (inode, mut found) in part.owners {
            walked.owners.entry(inode).or_default().append(&mut found);
        }
        walked.start_times.extend(part.start_times);
    }
    for found in walked.owners.values_mut() {
        found.sort_unstable();
        found.dedup();
    }
    Ok(walked)
}

/// The start time of the process whose fd directory `fd_dir` is. Read
/// through `fd_dir/..`, which stays that process's directory even if the
/// pid is reused (it then fails: the process is gone), so the time is
/// never a successor's.
fn start_time_of(fd_dir: &OwnedFd, buf: &mut Vec<u8>) -> Option<u64> {
    use std::io::Read;
    // SAFETY: the path is NUL-terminated; `fd_dir` is an open directory.
    let fd = unsafe {
        libc::openat(
            fd_dir.as_raw_fd(),
            c"../stat".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    buf.clear();
    file.read_to_end(buf).ok()?;
    stat_start_time(buf)
}

/// One walker: claims pids from `next` until none are left.
fn walk(root: &OwnedFd, pids: &[u32], wanted: &HashSet<u64>, next: &AtomicUsize) -> Walked {
    let mut owners = Owners::new();
    let mut start_times = StartTimes::new();
    let mut stat = Vec::with_capacity(512);
    let mut dents = vec![0u8; 32 * 1024];
    let mut link = [0u8; 64];
    let mut path = Vec::with_capacity(32);
    loop {
        let from = next.fetch_add(CLAIM, Ordering::Relaxed);
        let Some(claimed) = pids.get(from..(from + CLAIM).min(pids.len())) else {
            return Walked {
                owners,
                start_times,
            };
        };
        if claimed.is_empty() {
            return Walked {
                owners,
                start_times,
            };
        }
        for &pid in claimed {
            path.clear();
            path.extend_from_slice(pid.to_string().as_bytes());
            path.extend_from_slice(b"/fd\0");
            let Ok(path) = CStr::from_bytes_with_nul(&path) else {
                continue;
            };
            // Gone (ENOENT/ESRCH), denied (EACCES) or anything else about
            // this one pid: skip it, its sockets stay without this owner.
            let Ok(fd_dir) = open_dir_at(Some(root), path) else {
                continue;
            };
            // A listing cut short by an error keeps what was read before it.
            let mut owns = false;
            let _ = read_dir_names(&fd_dir, &mut dents, |name| {
                let Ok(target) = read_link_at(&fd_dir, name, &mut link) else {
                    return;
                };
                if let Some(inode) = socket_inode(target) {
                    if wanted.contains(&inode) {
                        owns = true;
                        let pids = owners.entry(inode).or_default();
                        // Several fds of one pid may share a socket.
                        if pids.last() != Some(&pid) {
                            pids.push(pid);
                        }
                    }
                }
            });
            // Only owners: one more read for a few pids, not for all.
            if owns {
                if let Some(t) = start_time_of(&fd_dir, &mut stat) {
                    start_times.insert(pid, t);
                }
            }
        }
    }
}

/// Splits `/proc/PID/cmdline` (NUL-terminated arguments) into arguments.
pub(crate) fn split_cmdline(raw: &[u8]) -> Vec<String> {
    let raw = raw.strip_suffix(b"\0").unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The real uid from `/proc/PID/status` (`Uid:\treal\teffective\tsaved\tfs`).
pub(crate) fn status_real_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Resolves uids to user names through the C library (so NSS sources such
/// as LDAP or systemd's dynamic users count), once per uid.
#[derive(Debug, Default)]
pub(crate) struct UserNames {
    cache: HashMap<u32, Option<String>>,
}

impl UserNames {
    /// The name of `uid`, or `None` when no user database knows it.
    pub(crate) fn name(&mut self, uid: u32) -> Option<String> {
        self.cache
            .entry(uid)
            .or_insert_with(|| lookup_user(uid))
            .clone()
    }
}

fn lookup_user(uid: u32) -> Option<String> {
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: an all-zero passwd is a valid value to be overwritten.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; `buf.len()` is its size.
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success pw_name points to a NUL-terminated string in `buf`.
        let name = unsafe { CStr::from_ptr(pwd.pw_name) };
        return Some(name.to_string_lossy().into_owned());
    }
}

/// Reads one process's details. `None` when it exited before we got there,
/// or when `pid` now names another process than the one started at
/// `start_time` (the pid was reused after the fd walk): no owner is
/// better than a wrong one. Fields that cannot be read (permission) are
/// left empty, never guessed.
pub(crate) fn read_process(
    proc_root: &Path,
    pid: u32,
    start_time: u64,
    users: &mut UserNames,
) -> Option<Process> {
    let dir = proc_root.join(pid.to_string());
    let name = match std::fs::read(dir.join("comm")) {
        Ok(mut b) => {
            if b.last() == Some(&b'\n') {
                b.pop();
            }
            String::from_utf8_lossy(&b).into_owned()
        }
        Err(e) if is_gone(&e) => return None,
        Err(_) => String::new(),
    };
    let uid = match std::fs::read_to_string(dir.join("status")) {
        Ok(s) => status_real_uid(&s),
        Err(e) if is_gone(&e) => return None,
        Err(_) => None,
    };
    let exe = std::fs::read_link(dir.join("exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    let cmdline = std::fs::read(dir.join("cmdline"))
        .map(|b| split_cmdline(&b))
        .unwrap_or_default();
    // Readable by anyone; empty (no unit, no container) if it is not.
    let cgroup = std::fs::read(dir.join("cgroup"))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    // dockerd runs its port proxy as root; any user can name a program
    // docker-proxy, so only root's is believed.
    let proxy_for = if uid == Some(0) {
        attribution::proxy_target(&name, &cmdline)
    } else {
        None
    };
    // Checked last: if it still matches, every read above was of the
    // process that was walked, since a reused pid gets a new start time.
    let now = std::fs::read(dir.join("stat")).ok()?;
    if stat_start_time(&now) != Some(start_time) {
        return None;
    }
    Some(Process {
        pid,
        user: uid.and_then(|u| users.name(u)),
        uid,
        exe,
        unit: attribution::unit_from_cgroup(&cgroup),
        container: attribution::container_from_cgroup(&cgroup),
        proxy_for,
        name,
        cmdline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_links() {
        assert_eq!(socket_inode(b"socket:[12345]"), Some(12345));
        assert_eq!(
            socket_inode(b"socket:[18446744073709551615]"),
            Some(u64::MAX)
        );
        assert_eq!(socket_inode(b"socket:[]"), None);
        assert_eq!(socket_inode(b"socket:[12a]"), None);
        assert_eq!(socket_inode(b"socket:[+1]"), None);
        assert_eq!(socket_inode(b"socket:[123"), None);
        assert_eq!(socket_inode(b"pipe:[12345]"), None);
        assert_eq!(socket_inode(b"/dev/null"), None);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn dirents() {
        fn rec(name: &str) -> Vec<u8> {
            let reclen = (19 + name.len() + 1).div_ceil(8) * 8;
            let mut r = vec![0u8; reclen];
            r[16..18].copy_from_slice(&(reclen as u16).to_le_bytes());
            r[18] = 10; // DT_LNK
            r[19..19 + name.len()].copy_from_slice(name.as_bytes());
            r
        }
        let mut buf = Vec::new();
        for n in [".", "..", "0", "1", "255"] {
            buf.extend(rec(n));
        }
        let mut names = Vec::new();
        for_each_dirent(&buf, |n| names.push(n.to_str().unwrap().to_owned()));
        assert_eq!(names, ["0", "1", "255"]);
        // A record claiming to run past the end stops the walk, no panic.
        let mut bad = rec("7");
        bad[16] = 200;
        names.clear();
        for_each_dirent(&bad, |n| names.push(n.to_str().unwrap().to_owned()));
        assert!(names.is_empty());
    }

    #[test]
    fn cmdlines() {
        assert_eq!(split_cmdline(b"sleep\x0030\x00"), ["sleep", "30"]);
        assert_eq!(split_cmdline(b"a\x00\x00b\x00"), ["a", "", "b"]);
        // A process that rewrote its argv without the final NUL.
        assert_eq!(
            split_cmdline(b"nginx: worker process"),
            ["nginx: worker process"]
        );
        assert!(split_cmdline(b"").is_empty());
    }

    #[test]
    fn status_uid() {
        let s = "Name:\tsleep\nUmask:\t0022\nState:\tS\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n";
        assert_eq!(status_real_uid(s), Some(1000));
        assert_eq!(status_real_uid("Name:\tx\n"), None);
    }

    #[test]
    fn walk_finds_our_socket_once_serial_and_parallel() {
        use std::os::unix::fs::MetadataExt;
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let dup = sock.try_clone().unwrap(); // two fds, one socket
                                             // fstat on a socket fd gives the socket inode, as in "socket:[N]".
        let inode = std::fs::File::from(std::os::fd::OwnedFd::from(sock))
            .metadata()
            .unwrap()
            .ino();
        let wanted = HashSet::from([inode]);
        let me = std::process::id();
        let started = stat_start_time(&std::fs::read("/proc/self/stat").unwrap()).unwrap();
        for pids in [vec![me], vec![me; PARALLEL_MIN_PIDS * 3]] {
            let walked = find_owners(Path::new("/proc"), &pids, &wanted).unwrap();
            assert_eq!(
                walked,
                Walked {
                    owners: HashMap::from([(inode, vec![me])]),
                    start_times: HashMap::from([(me, started)]),
                },
                "{} pids",
                pids.len()
            );
        }
        assert_eq!(
            find_owners(Path::new("/proc"), &[me], &HashSet::new()).unwrap(),
            Walked::default()
        );
        drop(dup);
    }

    #[test]
    fn process_details_and_a_process_that_is_gone() {
        let mut users = UserNames::default();
        let started = stat_start_time(&std::fs::read("/proc/self/stat").unwrap()).unwrap();
        let me = read_process(Path::new("/proc"), std::process::id(), started, &mut users).unwrap();
        let exe = std::env::current_exe().unwrap();
        assert_eq!(me.exe.as_deref(), exe.to_str());
        assert_eq!(me.cmdline.first().map(String::as_str), exe.to_str());
        assert!(!me.name.is_empty() && me.name.len() <= 15, "{me:?}");
        // Above PID_MAX_LIMIT (2^22), so never a live pid: exited mid-scan.
        assert_eq!(
            read_process(Path::new("/proc"), 999_999_999, started, &mut users),
            None
        );
        // Our pid, but a process started at another time: the pid was
        // reused since the walk, so the details are not ours to give.
        assert_eq!(
            read_process(
                Path::new("/proc"),
                std::process::id(),
                started + 1,
                &mut users
            ),
            None
        );
    }

    #[test]
    fn stat_start_time_counts_fields_after_the_last_paren() {
        // Field 22 is 777 in each; comm is whatever the process named itself.
        let tail =
            "S 1 2 3 0 -1 4194560 10 0 0 0 1 2 0 0 20 0 1 0 777 5000 100 18446744073709551615";
        for comm in [
            "sleep",
            "a) b (c",
            "with space",
            "new\nline",
            ") 9 9 9 (",
            "",
            "))",
        ] {
            let stat = format!("4242 ({comm}) {tail}\n");
            assert_eq!(stat_start_time(stat.as_bytes()), Some(777), "comm {comm:?}");
        }
        // Not UTF-8 in comm is fine: only the tail is read as text.
        let mut raw = b"4242 (\xff\xfe)) ".to_vec();
        raw.extend_from_slice(tail.as_bytes());
        assert_eq!(stat_start_time(&raw), Some(777));
        // Cut short, no parenthesis, or not a number: no start time.
        assert_eq!(stat_start_time(b"4242 (sleep) S 1 2 3"), None);
        assert_eq!(stat_start_time(tail.as_bytes()), None);
        assert_eq!(stat_start_time(b""), None);
        let bad = format!("1 (x) {}", tail.replace("777", "7x7"));
        assert_eq!(stat_start_time(bad.as_bytes()), None);
    }

    /// Spawns `sleep 30` under the program name `name` (a symlink), so its
    /// comm is `name`.
    fn sleeper(dir: &Path, name: &str) -> std::process::Child {
        let link = dir.join(name);
        let sleep = ["/bin/sleep", "/usr/bin/sleep"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap();
        std::os::unix::fs::symlink(sleep, &link).unwrap();
        std::process::Command::new(&link).arg("30").spawn().unwrap()
    }

    #[test]
    fn start_times_of_a_hostile_name_and_of_a_process_that_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = sleeper(dir.path(), "a) 1 (c");
        let pid = child.id();
        let proc_dir = Path::new("/proc").join(pid.to_string());
        // The kernel sets comm at exec; wait for it.
        for _ in 0..200 {
            if std::fs::read(proc_dir.join("comm")).unwrap() == b"a) 1 (c\n" {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(std::fs::read(proc_dir.join("comm")).unwrap(), b"a) 1 (c\n");
        let ours = stat_start_time(&std::fs::read("/proc/self/stat").unwrap()).unwrap();
        let path = CString::new(proc_dir.join("fd").as_os_str().as_bytes()).unwrap();
        let fd_dir = open_dir_at(None, &path).unwrap();
        let mut buf = Vec::new();
        let theirs = start_time_of(&fd_dir, &mut buf).unwrap();
        // Started after us; a parser fooled by the name would read another field.
        assert!(theirs >= ours, "{theirs} < {ours}");
        assert_eq!(
            stat_start_time(&std::fs::read(proc_dir.join("stat")).unwrap()),
            Some(theirs)
        );
        let mut users = UserNames::default();
        let p = read_process(Path::new("/proc"), pid, theirs, &mut users).unwrap();
        assert_eq!(p.name, "a) 1 (c");
        // Once it is gone, its old fd directory gives no start time, even if
        // the pid were reused: the walk never records a successor's.
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(start_time_of(&fd_dir, &mut buf), None);
        assert_eq!(
            read_process(Path::new("/proc"), pid, theirs, &mut users),
            None
        );
    }

    #[test]
    fn root_user_name() {
        assert_eq!(UserNames::default().name(0).as_deref(), Some("root"));
    }
}
