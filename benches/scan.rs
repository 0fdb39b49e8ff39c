//! Linux scan against `ss` on a busy host, timed alternately in one run.
//!
//! Run: `cargo bench --bench scan` (options after `--`: `--listeners N`,
//! `--connections N`, `--processes N`, `--files N` extra non-socket fds per
//! process, `--rounds N`). It builds the load itself: N TCP listeners and a
//! tenth as many UDP sockets on 127.0.0.1, N established loopback
//! connections (both ends), all handed out to P `sleep` children together
//! with F plain file descriptors each. Then it times, alternately and in
//! rotating order, ROUNDS times each:
//! - `portwarden`: this binary re-executed to run `collect::scan()` once
//!   and write the inventory as JSON to a pipe (process start included,
//!   as when a user runs the tool);
//! - `in-process`: `collect::scan()` called directly;
//! - `ss -ltnup` and `ss -lunp` (iproute2), output to a pipe.
//!
//! It prints each median and the ratio `ss / portwarden` (above 1 means
//! portwarden is faster). Nothing is asserted: timings are reported, never
//! tested.

#[cfg(target_os = "linux")]
fn main() {
    linux::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("skipping: the scan benchmark compares against Linux `ss`");
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream, UdpSocket};
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    const SCAN_ONCE: &str = "--scan-once";

    struct Options {
        listeners: usize,
        connections: usize,
        processes: usize,
        files: usize,
        rounds: usize,
    }

    fn options() -> Options {
        let mut o = Options {
            listeners: 2000,
            connections: 5000,
            processes: 300,
            files: 16,
            rounds: 21,
        };
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut i = 0;
        while i < args.len() {
            let value = || -> usize {
                args.get(i + 1)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("{} needs a number", args[i]))
            };
            match args[i].as_str() {
                "--listeners" => o.listeners = value(),
                "--connections" => o.connections = value(),
                "--processes" => o.processes = value(),
                "--files" => o.files = value(),
                "--rounds" => o.rounds = value(),
                // `cargo bench` passes `--bench`; ignore anything unknown.
                _ => {
                    i += 1;
                    continue;
                }
            }
            i += 2;
        }
        o
    }

    fn set_cloexec(fd: &OwnedFd, on: bool) {
        // SAFETY: fcntl on a descriptor we own; F_GETFD/F_SETFD touch no memory.
        unsafe {
            let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFD);
            assert!(flags >= 0, "fcntl F_GETFD");
            let flags = if on {
                flags | libc::FD_CLOEXEC
            } else {
                flags & !libc::FD_CLOEXEC
            };
            assert!(libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, flags) == 0);
        }
    }

    /// Spawns `sleep` inheriting `fds` (their close-on-exec flag cleared
    /// just for the spawn).
    fn spawn_with(fds: &[OwnedFd]) -> Child {
        for fd in fds {
            set_cloexec(fd, false);
        }
        let child = Command::new("sleep")
            .arg("3600")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn sleep: {e}"));
        for fd in fds {
            set_cloexec(fd, true);
        }
        child
    }

    struct Load {
        children: Vec<Child>,
        sockets: usize,
        fds: usize,
    }

    impl Drop for Load {
        fn drop(&mut self) {
            for c in &mut self.children {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    fn build_load(o: &Options) -> Load {
        let mut fds: Vec<OwnedFd> = Vec::new();
        let mut listeners = Vec::new();
        for _ in 0..o.listeners {
            let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
            listeners.push(l);
        }
        for _ in 0..o.listeners / 10 {
            let u = UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind udp: {e}"));
            fds.push(u.into());
        }
        for i in 0..o.connections {
            let l = &listeners[i % listeners.len().max(1)];
            let addr = l.local_addr().unwrap_or_else(|e| panic!("local_addr: {e}"));
            let c = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect: {e}"));
            let (s, _) = l.accept().unwrap_or_else(|e| panic!("accept: {e}"));
            fds.push(c.into());
            fds.push(s.into());
        }
        let sockets = listeners.len() + fds.len();
        fds.extend(listeners.into_iter().map(OwnedFd::from));
        let per_child = fds.len().div_ceil(o.processes.max(1)).max(1);
        let mut children = Vec::new();
        let mut total = 0;
        while !fds.is_empty() || children.len() < o.processes {
            let take = per_child.min(fds.len());
            let mut chunk: Vec<OwnedFd> = fds.drain(..take).collect();
            for _ in 0..o.files {
                let f = std::fs::File::open("/dev/null").unwrap_or_else(|e| panic!("open: {e}"));
                chunk.push(f.into());
            }
            total += chunk.len();
            children.push(spawn_with(&chunk));
            // `chunk` drops here: the child holds the only copies.
        }
        Load {
            children,
            sockets,
            fds: total,
        }
    }

    fn run(cmd: &mut Command) -> Duration {
        let start = Instant::now();
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let mut sink = Vec::new();
        if let Some(mut out) = child.stdout.take() {
            let _ = out.read_to_end(&mut sink);
        }
        let status = child.wait().unwrap_or_else(|e| panic!("wait: {e}"));
        let took = start.elapsed();
        assert!(status.success(), "{cmd:?} failed");
        assert!(!sink.is_empty(), "{cmd:?} printed nothing");
        took
    }

    fn median(v: &mut [Duration]) -> Duration {
        v.sort();
        v[v.len() / 2]
    }

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }

    pub fn main() {
        if std::env::args().any(|a| a == SCAN_ONCE) {
            let inv = portwarden::collect::scan().unwrap_or_else(|e| panic!("{e}"));
            let json = serde_json::to_vec(&inv).unwrap_or_else(|e| panic!("{e}"));
            std::io::stdout()
                .write_all(&json)
                .unwrap_or_else(|e| panic!("{e}"));
            return;
        }
        if Command::new("ss").arg("-V").output().is_err() {
            eprintln!("skipping: `ss` (iproute2) is not installed");
            return;
        }
        let o = options();

        let me = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
        let load = build_load(&o);
        let inv = portwarden::collect::scan().unwrap_or_else(|e| panic!("{e}"));
        let owned = inv.sockets.iter().filter(|s| s.owner_visible()).count();
        let pids = std::fs::read_dir("/proc")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                    .count()
            })
            .unwrap_or(0);
        println!(
            "load: {} sockets ({} listeners + {} udp + {} connection ends) and {} fds in {} children; {pids} processes on the host",
            load.sockets,
            o.listeners,
            o.listeners / 10,
            2 * o.connections,
            load.fds,
            load.children.len()
        );
        let ss_rows = Command::new("ss")
            .args(["-H", "-ltun"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
            .unwrap_or(0);
        println!(
            "portwarden sees {} listening sockets, {owned} with a visible owner; `ss -H -ltun` prints {ss_rows} rows",
            inv.sockets.len()
        );

        let mut times: [Vec<Duration>; 4] = Default::default();
        let names = [
            "portwarden (exec)",
            "in-process scan",
            "ss -ltnup",
            "ss -lunp",
        ];
        for round in 0..o.rounds {
            for k in 0..4 {
                let which = (round + k) % 4;
                let t = match which {
                    0 => run(Command::new(&me).arg(SCAN_ONCE)),
                    1 => {
                        let start = Instant::now();
                        let inv = portwarden::collect::scan().unwrap_or_else(|e| panic!("{e}"));
                        let took = start.elapsed();
                        assert!(!inv.sockets.is_empty());
                        took
                    }
                    2 => run(Command::new("ss").arg("-ltnup")),
                    _ => run(Command::new("ss").arg("-lunp")),
                };
                times[which].push(t);
            }
        }
        let m: Vec<Duration> = times.iter_mut().map(|v| median(v)).collect();
        for (name, d) in names.iter().zip(&m) {
            println!(
                "{name:>18}: median {:8.2} ms over {} rounds",
                ms(*d),
                o.rounds
            );
        }
        println!(
            "ratio ss -ltnup / portwarden (exec): {:.2}x; ss -ltnup / in-process: {:.2}x; ss -lunp / portwarden (exec): {:.2}x",
            ms(m[2]) / ms(m[0]),
            ms(m[2]) / ms(m[1]),
            ms(m[3]) / ms(m[0])
        );
        drop(load);
    }
}
