//! Helpers shared by the integration tests: real sockets on loopback (port
//! chosen by the kernel), and child processes that hold such sockets.
//!
//! A child is the system's `sleep`, handed the socket as its stdin: the
//! socket stays open (and listening) in the child until the child is killed,
//! without any helper program of our own. Keeping our copy as well gives a
//! socket shared by two processes, as a master and its workers share one.
//!
//! IPv6 may be disabled on a CI host: the `*_v6` helpers then print why and
//! return `None`, and the caller skips that part.

#![allow(dead_code)] // every test binary uses a different subset

use portwarden::model::Proto;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};

/// 127.0.0.1
pub const LOOPBACK_V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// ::1
pub const LOOPBACK_V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);
/// 0.0.0.0
pub const WILDCARD_V4: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
/// ::
pub const WILDCARD_V6: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

fn port_of(s: &Socket) -> u16 {
    s.local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.port())
        .unwrap_or_else(|| panic!("bound socket without a local port"))
}

/// A socket of `ty` bound to `addr:0`; for IPv6, `v6only` sets
/// IPV6_V6ONLY. `Err` when the address family is unavailable on this host.
pub fn bound(ty: Type, addr: IpAddr, v6only: bool) -> io::Result<(Socket, u16)> {
    let domain = Domain::for_address(SocketAddr::new(addr, 0));
    let protocol = if ty == Type::STREAM {
        Protocol::TCP
    } else {
        Protocol::UDP
    };
    let s = Socket::new(domain, ty, Some(protocol))?;
    if addr.is_ipv6() {
        s.set_only_v6(v6only)?;
    }
    s.bind(&SockAddr::from(SocketAddr::new(addr, 0)))?;
    let port = port_of(&s);
    Ok((s, port))
}

/// Whether this host can bind `[::1]:0`; prints a skip reason when not.
pub fn ipv6_available() -> bool {
    match UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)) {
        Ok(_) => true,
        Err(e) => {
            eprintln!("skipping IPv6 checks: cannot bind [::1]:0: {e}");
            false
        }
    }
}

/// A TCP listener on `addr:0` (IPv6: `v6only` as given). `None`, with the
/// reason printed, when the family is unavailable.
pub fn tcp_listener_on(addr: IpAddr, v6only: bool) -> Option<(TcpListener, u16)> {
    let (s, port) = match bound(Type::STREAM, addr, v6only) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("skipping: cannot bind tcp {addr}:0: {e}");
            return None;
        }
    };
    s.listen(16)
        .unwrap_or_else(|e| panic!("listen on {addr}:{port}: {e}"));
    Some((s.into(), port))
}

/// A TCP listener on 127.0.0.1 and its port.
pub fn tcp_listener_v4() -> (TcpListener, u16) {
    tcp_listener_on(LOOPBACK_V4, false).unwrap_or_else(|| panic!("cannot listen on 127.0.0.1"))
}

/// A TCP listener on ::1 and its port, when IPv6 is available.
pub fn tcp_listener_v6() -> Option<(TcpListener, u16)> {
    tcp_listener_on(LOOPBACK_V6, true)
}

/// A TCP listener on 0.0.0.0 and its port.
pub fn tcp_wildcard_v4() -> (TcpListener, u16) {
    tcp_listener_on(WILDCARD_V4, false).unwrap_or_else(|| panic!("cannot listen on 0.0.0.0"))
}

/// A TCP listener on `::` with IPV6_V6ONLY off (one socket, both families).
pub fn tcp_dual_stack() -> Option<(TcpListener, u16)> {
    tcp_listener_on(WILDCARD_V6, false)
}

/// A TCP socket bound to 127.0.0.1 that never listens: not a listener.
pub fn tcp_bound_not_listening_v4() -> (Socket, u16) {
    bound(Type::STREAM, LOOPBACK_V4, false).unwrap_or_else(|e| panic!("bind 127.0.0.1:0: {e}"))
}

/// A bound, unconnected UDP socket on `addr:0`, when the family is available.
pub fn udp_socket_on(addr: IpAddr) -> Option<(UdpSocket, u16)> {
    match bound(Type::DGRAM, addr, true) {
        Ok((s, port)) => Some((s.into(), port)),
        Err(e) => {
            eprintln!("skipping: cannot bind udp {addr}:0: {e}");
            None
        }
    }
}

/// A bound, unconnected UDP socket on 127.0.0.1 and its port.
pub fn udp_socket_v4() -> (UdpSocket, u16) {
    udp_socket_on(LOOPBACK_V4).unwrap_or_else(|| panic!("cannot bind udp 127.0.0.1"))
}

/// A bound, unconnected UDP socket on ::1, when IPv6 is available.
pub fn udp_socket_v6() -> Option<(UdpSocket, u16)> {
    udp_socket_on(LOOPBACK_V6)
}

/// A UDP socket on 127.0.0.1 connected to `peer` (not a listener), and its port.
pub fn udp_connected_v4(peer: SocketAddr) -> (UdpSocket, u16) {
    let (s, port) = udp_socket_v4();
    s.connect(peer)
        .unwrap_or_else(|e| panic!("connect udp to {peer}: {e}"));
    (s, port)
}

/// The `sleep` program on PATH, resolved through symlinks (as the kernel
/// reports `/proc/PID/exe`). `None`, with the reason printed, when absent.
pub fn sleep_program() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|d| d.join("sleep"))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok());
    if found.is_none() {
        eprintln!("skipping: no `sleep` program on PATH to hold a socket in a child process");
    }
    found
}

static FORKS: Mutex<()> = Mutex::new(());

/// Held while a test thread forks, and while a test scans and checks exact
/// owners. Between fork and exec a child briefly holds a copy of every
/// descriptor of this process (close-on-exec acts only at exec), so a scan
/// running meanwhile would rightly list it as one more owner of the other
/// tests' sockets. Spawn through [`spawn`] (or hold this) to keep those
/// scans exact.
pub fn fork_guard() -> MutexGuard<'static, ()> {
    FORKS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `cmd.spawn()` under [`fork_guard`].
pub fn spawn(cmd: &mut Command) -> io::Result<Child> {
    let _guard = fork_guard();
    cmd.spawn()
}

/// `cmd.output()` with the fork under [`fork_guard`].
pub fn output(cmd: &mut Command) -> io::Result<std::process::Output> {
    let child = spawn(cmd.stdout(Stdio::piped()).stderr(Stdio::piped()))?;
    child.wait_with_output()
}

/// How long a holding child sleeps at most, in seconds (it is killed
/// earlier, when its guard drops).
pub const CHILD_SLEEP_SECS: &str = "600";

/// A child process holding a socket; killed and reaped on drop.
#[derive(Debug)]
pub struct ChildGuard {
    /// The child's pid.
    pub pid: u32,
    /// The port of the socket it holds.
    pub port: u16,
    /// The executable it runs (canonical path).
    pub exe: PathBuf,
    child: Child,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (up to 5 s) until `/proc/PID/cmdline` is not empty.
fn wait_for_cmdline(pid: u32) {
    if !cfg!(target_os = "linux") {
        return;
    }
    let path = format!("/proc/{pid}/cmdline");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::fs::read(&path).map(|c| c.is_empty()).unwrap_or(false)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Spawns `sleep` holding `socket` as its stdin. `None` when there is no
/// `sleep` to run.
pub fn spawn_holding(socket: OwnedFd, port: u16) -> Option<ChildGuard> {
    let exe = sleep_program()?;
    let child = spawn(
        Command::new("sleep")
            .arg(CHILD_SLEEP_SECS)
            .stdin(Stdio::from(socket))
            .stdout(Stdio::null()),
    )
    .unwrap_or_else(|e| panic!("spawn sleep: {e}"));
    // spawn() returns once exec passed its point of no return, but the
    // kernel fills in the new command line a moment later (its argument
    // pointers are set while the ELF loads): wait for it, so the child's
    // name, exe and cmdline are final before anything scans it.
    wait_for_cmdline(child.id());
    Some(ChildGuard {
        pid: child.id(),
        port,
        exe,
        child,
    })
}

/// A listening socket (TCP LISTEN, or a bound UDP socket) on `addr:0`.
pub fn listening_socket(proto: Proto, addr: IpAddr) -> Option<(OwnedFd, u16)> {
    match proto {
        Proto::Tcp => tcp_listener_on(addr, true).map(|(l, p)| (OwnedFd::from(l), p)),
        Proto::Udp => udp_socket_on(addr).map(|(u, p)| (OwnedFd::from(u), p)),
    }
}

/// A listener on `addr:0` held only by a child process: this process
/// closes its own copy. `None` when the family or `sleep` is unavailable.
pub fn child_listener(proto: Proto, addr: IpAddr) -> Option<ChildGuard> {
    let (fd, port) = listening_socket(proto, addr)?;
    spawn_holding(fd, port)
}

/// A listener on `addr:0` held both by this process and by a child, as a
/// master shares its socket with a worker. Keep the returned fd alive.
pub fn shared_listener(proto: Proto, addr: IpAddr) -> Option<(OwnedFd, ChildGuard)> {
    let (fd, port) = listening_socket(proto, addr)?;
    let theirs = fd.try_clone().unwrap_or_else(|e| panic!("dup socket: {e}"));
    spawn_holding(theirs, port).map(|child| (fd, child))
}

/// The kernel's short name (`comm`) of this test binary: its file name cut
/// to 15 bytes (TASK_COMM_LEN - 1).
pub fn own_comm() -> String {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    let name = exe
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.bytes().take(15).map(char::from).collect()
}

/// A TCP listener that no process holds: its only descriptor is in flight
/// inside a Unix socket's queue (sent with SCM_RIGHTS, never received),
/// like a socket whose owner cannot be seen. Linux only.
#[cfg(target_os = "linux")]
pub struct InFlight {
    /// The listener's port.
    pub port: u16,
    _queue: (
        std::os::unix::net::UnixDatagram,
        std::os::unix::net::UnixDatagram,
    ),
}

/// Creates an [`InFlight`] listener on 127.0.0.1.
#[cfg(target_os = "linux")]
pub fn listener_in_flight_v4() -> InFlight {
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixDatagram;

    let (listener, port) = tcp_listener_v4();
    let (tx, rx) = UnixDatagram::pair().unwrap_or_else(|e| panic!("socketpair: {e}"));
    let fd = listener.as_raw_fd();
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // Room for one cmsghdr carrying one int, u64-aligned.
    let mut control = [0u64; 4];
    // SAFETY: msghdr/cmsghdr built per cmsg(3); every pointer refers to a
    // live local buffer of the stated length.
    let sent = unsafe {
        let space = libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) as usize;
        assert!(space <= std::mem::size_of_val(&control));
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), fd);
        libc::sendmsg(tx.as_raw_fd(), &msg, 0)
    };
    assert_eq!(
        sent,
        1,
        "sendmsg SCM_RIGHTS: {}",
        io::Error::last_os_error()
    );
    drop(listener);
    InFlight {
        port,
        _queue: (tx, rx),
    }
}
