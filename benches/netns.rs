//! The cost of `--all-netns`: a scan of this namespace against a scan of
//! every namespace, on a host with N extra network namespaces.
//!
//! Run as root: `cargo bench --bench netns` (options after `--`:
//! `--namespaces N`, default 20; `--rounds N`, default 31). It makes N
//! namespaces itself (`unshare` from a thread), each with loopback up and
//! two TCP listeners and one UDP socket on 127.0.0.1 held by a `sleep`
//! child living there, checks that the all-namespace scan sees all 3N of
//! them, then times `collect::scan_with` both ways, alternately, and prints
//! the medians. Nothing is asserted about time.

#[cfg(target_os = "linux")]
fn main() {
    linux::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("skipping: network namespaces are Linux only");
}

#[cfg(target_os = "linux")]
mod linux {
    use portwarden::collect::{scan_with, ScanOptions};
    use std::net::{TcpListener, UdpSocket};
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    fn option(name: &str, default: usize) -> usize {
        let args: Vec<String> = std::env::args().collect();
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("{name} needs a number, not {v}"))
            })
            .unwrap_or(default)
    }

    /// Brings `lo` up in this thread's namespace (netdevice(7)).
    fn loopback_up() {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap_or_else(|e| panic!("socket: {e}"));
        // SAFETY: a zeroed ifreq with a NUL-terminated name; the ioctls
        // read and write only it.
        unsafe {
            let mut ifr: libc::ifreq = std::mem::zeroed();
            for (d, s) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
                *d = *s as libc::c_char;
            }
            let ok = libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) == 0 && {
                ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
                libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) == 0
            };
            assert!(ok, "lo up: {}", std::io::Error::last_os_error());
        }
    }

    /// A new namespace with three listeners, held by a `sleep` child in it.
    fn namespace() -> Child {
        std::thread::spawn(|| {
            // SAFETY: changes only this short-lived thread's namespace.
            let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "unshare: {}", std::io::Error::last_os_error());
            loopback_up();
            let tcp = || -> OwnedFd {
                TcpListener::bind("127.0.0.1:0")
                    .unwrap_or_else(|e| panic!("bind: {e}"))
                    .into()
            };
            let udp: OwnedFd = UdpSocket::bind("127.0.0.1:0")
                .unwrap_or_else(|e| panic!("bind: {e}"))
                .into();
            Command::new("sleep")
                .arg("600")
                .stdin(Stdio::from(tcp()))
                .stdout(Stdio::from(tcp()))
                .stderr(Stdio::from(udp))
                .spawn()
                .unwrap_or_else(|e| panic!("spawn sleep: {e}"))
        })
        .join()
        .unwrap_or_else(|_| panic!("namespace thread panicked"))
    }

    fn median(mut v: Vec<Duration>) -> Duration {
        v.sort();
        v[v.len() / 2]
    }

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }

    pub fn main() {
        // SAFETY: geteuid(2) cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipping: creating network namespaces needs root");
            return;
        }
        let n = option("--namespaces", 20);
        let rounds = option("--rounds", 31).max(1);
        let children = Children((0..n).map(|_| namespace()).collect());

        let own = ScanOptions::default();
        let all = ScanOptions { all_netns: true };
        let scan = |o: &ScanOptions| scan_with(o).unwrap_or_else(|e| panic!("scan: {e}"));
        let pids: Vec<u32> = children.0.iter().map(Child::id).collect();
        let theirs = scan(&all)
            .sockets
            .iter()
            .filter(|s| {
                s.netns
                    .as_ref()
                    .and_then(|ns| ns.pid)
                    .is_some_and(|p| pids.contains(&p))
            })
            .count();
        println!(
            "{n} extra namespaces, {theirs} of their {} listeners seen; {} listeners here",
            3 * n,
            scan(&own).sockets.len()
        );

        let (mut t_own, mut t_all) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            // Alternate which goes first, so neither always runs warm.
            for which in [round % 2, 1 - round % 2] {
                let (o, into) = if which == 0 {
                    (&own, &mut t_own)
                } else {
                    (&all, &mut t_all)
                };
                let start = Instant::now();
                let inv = scan(o);
                into.push(start.elapsed());
                std::hint::black_box(inv);
            }
        }
        let (a, b) = (median(t_own), median(t_all));
        println!("median of {rounds} rounds (in-process collect::scan_with):");
        println!("  this namespace only: {:8.2} ms", ms(a));
        println!("  --all-netns:         {:8.2} ms", ms(b));
        println!(
            "  difference:          {:8.2} ms ({:.3} ms per namespace)",
            ms(b) - ms(a),
            (ms(b) - ms(a)) / n.max(1) as f64
        );
        drop(children);
    }

    /// The holders; killed and reaped on drop, also when the bench panics.
    struct Children(Vec<Child>);

    impl Drop for Children {
        fn drop(&mut self) {
            for c in &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}
