//! NETLINK_SOCK_DIAG: ask the kernel for its inet sockets, filtered by state
//! in the kernel (`sock_diag(7)`, `include/uapi/linux/inet_diag.h`).
//!
//! The request encoder and the response parser are pure functions over
//! bytes so they can be tested on fixtures; only [`Dumper`] does I/O.

use super::RawSocket;
use crate::model::Proto;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `SOCK_DIAG_BY_FAMILY` message type (`linux/sock_diag.h`).
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLMSG_NOOP`, `NLMSG_ERROR`, `NLMSG_DONE`, `NLMSG_OVERRUN` (`linux/netlink.h`).
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
/// `NLM_F_REQUEST | NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
const NLM_F_REQUEST_DUMP: u16 = 0x001 | 0x300;
/// `sizeof(struct nlmsghdr)`.
const NLMSG_HDRLEN: usize = 16;
/// `sizeof(struct inet_diag_req_v2)`.
const REQ_V2_LEN: usize = 56;
/// `sizeof(struct inet_diag_msg)`.
const DIAG_MSG_LEN: usize = 72;
/// The whole request datagram: header plus `inet_diag_req_v2`.
pub(crate) const REQUEST_LEN: usize = NLMSG_HDRLEN + REQ_V2_LEN;
/// `INET_DIAG_SKV6ONLY` attribute: a `u8`, sent for every AF_INET6 socket.
const INET_DIAG_SKV6ONLY: u16 = 11;

/// TCP states as `include/net/tcp_states.h` numbers them; UDP reuses
/// them. Unconnected (for UDP: bound, no peer; connected UDP is 1,
/// ESTABLISHED).
pub(crate) const TCP_CLOSE: u8 = 7;
/// Listening.
pub(crate) const TCP_LISTEN: u8 = 10;

/// `AF_INET` and `AF_INET6` as the kernel numbers them.
pub(crate) const AF_INET: u8 = 2;
/// See [`AF_INET`].
pub(crate) const AF_INET6: u8 = 10;
/// `IPPROTO_TCP`, `IPPROTO_UDP`.
pub(crate) const IPPROTO_TCP: u8 = 6;
/// See [`IPPROTO_TCP`].
pub(crate) const IPPROTO_UDP: u8 = 17;

/// What went wrong while talking to sock_diag.
#[derive(Debug)]
pub(crate) enum NetlinkError {
    /// A system call failed.
    Os {
        /// Which call.
        call: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The kernel answered with `NLMSG_ERROR`.
    Kernel(std::io::Error),
    /// The answer does not parse.
    Malformed(String),
}

impl fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetlinkError::Os { call, source } => write!(f, "netlink {call}: {source}"),
            NetlinkError::Kernel(e) => write!(f, "sock_diag refused the request: {e}"),
            NetlinkError::Malformed(m) => write!(f, "malformed sock_diag answer: {m}"),
        }
    }
}

/// Encodes one dump request for a family and protocol, restricted in the
/// kernel to the sockets whose state bit is set in `states` (bit N = state N).
pub(crate) fn encode_request(family: u8, protocol: u8, states: u32, seq: u32) -> [u8; REQUEST_LEN] {
    let mut b = [0u8; REQUEST_LEN];
    // struct nlmsghdr, native endian.
    b[0..4].copy_from_slice(&(REQUEST_LEN as u32).to_ne_bytes());
    b[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    b[6..8].copy_from_slice(&NLM_F_REQUEST_DUMP.to_ne_bytes());
    b[8..12].copy_from_slice(&seq.to_ne_bytes());
    // nlmsg_pid 0: addressed to the kernel.
    // struct inet_diag_req_v2: family, protocol, idiag_ext (no extensions:
    // INET_DIAG_SKV6ONLY comes without asking), pad, idiag_states, then an
    // all-zero inet_diag_sockid (no address filter).
    b[16] = family;
    b[17] = protocol;
    b[20..24].copy_from_slice(&states.to_ne_bytes());
    b
}

/// One `inet_diag_msg` with the attributes we use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DiagRecord {
    /// `AF_INET` or `AF_INET6`.
    pub family: u8,
    /// TCP state number.
    pub state: u8,
    /// Local address.
    pub src: IpAddr,
    /// Local port.
    pub sport: u16,
    /// Remote address (unspecified when none).
    pub dst: IpAddr,
    /// Remote port (0 when none).
    pub dport: u16,
    /// Socket owner uid.
    pub uid: u32,
    /// Socket inode.
    pub inode: u32,
    /// `INET_DIAG_SKV6ONLY`, when the kernel sent it.
    pub v6only: Option<bool>,
}

/// What a parsed datagram says about the dump.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// More datagrams follow.
    More,
    /// `NLMSG_DONE` was seen.
    Done,
}

fn u16_ne(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_ne(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Rounds up to netlink's 4-byte alignment (`NLMSG_ALIGN`, `RTA_ALIGN`).
fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Parses one datagram of a dump answer, appending every socket message
/// with sequence number `seq` to `out`.
pub(crate) fn parse_datagram(
    buf: &[u8],
    seq: u32,
    out: &mut Vec<DiagRecord>,
) -> Result<Progress, NetlinkError> {
    let mut at = 0;
    while at < buf.len() {
        let rest = &buf[at..];
        if rest.len() < NLMSG_HDRLEN {
            return Err(NetlinkError::Malformed(format!(
                "{} trailing bytes, shorter than a header",
                rest.len()
            )));
        }
        let len = u32_ne(rest, 0) as usize;
        let kind = u16_ne(rest, 4);
        let msg_seq = u32_ne(rest, 8);
        if len < NLMSG_HDRLEN || len > rest.len() {
            return Err(NetlinkError::Malformed(format!(
                "message length {len} with {} bytes left",
                rest.len()
            )));
        }
        // NLM_F_DUMP_INTR in the flags would say the table changed during
        // the dump; like ss, take what was read: sockets that came or went
        // meanwhile may be missing or repeated (repeats are dropped later).
        let payload = &rest[NLMSG_HDRLEN..len];
        at += align4(len);
        if msg_seq != seq {
            // An answer to some earlier request on this socket: not ours.
            continue;
        }
        match kind {
            NLMSG_NOOP => {}
            NLMSG_DONE => {
                // Since Linux 4.x the payload is an int; negative = dump error.
                if payload.len() >= 4 {
                    let code = u32_ne(payload, 0) as i32;
                    if code < 0 {
                        return Err(NetlinkError::Kernel(std::io::Error::from_raw_os_error(
                            code.saturating_neg(),
                        )));
                    }
                }
                return Ok(Progress::Done);
            }
            NLMSG_ERROR => {
                if payload.len() < 4 {
                    return Err(NetlinkError::Malformed("short NLMSG_ERROR".into()));
                }
                let code = u32_ne(payload, 0) as i32;
                if code == 0 {
                    // An acknowledgement, not an error.
                    continue;
                }
                return Err(NetlinkError::Kernel(std::io::Error::from_raw_os_error(
                    code.saturating_neg(),
                )));
            }
            NLMSG_OVERRUN => {
                return Err(NetlinkError::Malformed("NLMSG_OVERRUN: data lost".into()));
            }
            SOCK_DIAG_BY_FAMILY => out.push(parse_diag_msg(payload)?),
            _ => {}
        }
    }
    Ok(Progress::More)
}

/// Parses one `struct inet_diag_msg` followed by its attributes.
fn parse_diag_msg(p: &[u8]) -> Result<DiagRecord, NetlinkError> {
    if p.len() < DIAG_MSG_LEN {
        return Err(NetlinkError::Malformed(format!(
            "inet_diag_msg of {} bytes, expected at least {DIAG_MSG_LEN}",
            p.len()
        )));
    }
    let family = p[0];
    let state = p[1];
    // struct inet_diag_sockid at offset 4: sport, dport (big endian),
    // src[16], dst[16] (network order), if, cookie[2].
    let sport = u16::from_be_bytes([p[4], p[5]]);
    let dport = u16::from_be_bytes([p[6], p[7]]);
    let addr = |at: usize| -> Result<IpAddr, NetlinkError> {
        match family {
            AF_INET => Ok(IpAddr::V4(Ipv4Addr::new(
                p[at],
                p[at + 1],
                p[at + 2],
                p[at + 3],
            ))),
            AF_INET6 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(&p[at..at + 16]);
                Ok(IpAddr::V6(Ipv6Addr::from(o)))
            }
            other => Err(NetlinkError::Malformed(format!(
                "unexpected address family {other}"
            ))),
        }
    };
    let src = addr(8)?;
    let dst = addr(24)?;
    // After the 48-byte sockid: expires, rqueue, wqueue, uid, inode.
    let uid = u32_ne(p, 64);
    let inode = u32_ne(p, 68);

    let mut v6only = None;
    let mut at = DIAG_MSG_LEN;
    while at + 4 <= p.len() {
        let len = u16_ne(p, at) as usize;
        let kind = u16_ne(p, at + 2) & 0x3fff; // drop NLA_F_NESTED / NLA_F_NET_BYTEORDER
        if len < 4 || at + len > p.len() {
            return Err(NetlinkError::Malformed(format!(
                "attribute length {len} at offset {at} of {}",
                p.len()
            )));
        }
        if kind == INET_DIAG_SKV6ONLY && len >= 5 {
            v6only = Some(p[at + 4] != 0);
        }
        at += align4(len);
    }
    Ok(DiagRecord {
        family,
        state,
        src,
        sport,
        dst,
        dport,
        uid,
        inode,
        v6only,
    })
}

/// Turns a record into a listening socket, or `None` when it is not one:
/// TCP must be LISTEN; UDP must be unconnected (CLOSE, no peer).
pub(crate) fn to_listener(r: &DiagRecord, proto: Proto) -> Option<RawSocket> {
    let listening = match proto {
        Proto::Tcp => r.state == TCP_LISTEN,
        Proto::Udp => r.state == TCP_CLOSE && r.dport == 0 && r.dst.is_unspecified(),
    };
    if !listening {
        return None;
    }
    Some(RawSocket {
        proto,
        address: r.src,
        port: r.sport,
        // One socket serving both families: `::` with IPV6_V6ONLY off.
        dual_stack: r.family == AF_INET6 && r.src.is_unspecified() && r.v6only == Some(false),
        uid: Some(r.uid),
        inode: r.inode.into(),
    })
}

/// A NETLINK_SOCK_DIAG socket that runs dumps one after another.
pub(crate) struct Dumper {
    fd: OwnedFd,
    buf: Vec<u8>,
    seq: u32,
}

/// The kernel never builds dump datagrams larger than 32 KiB
/// (`netlink_recvmsg` caps `max_recvmsg_len`); twice that leaves headroom.
const RECV_BUF: usize = 64 * 1024;

impl Dumper {
    /// Opens the netlink socket.
    pub(crate) fn open() -> Result<Dumper, NetlinkError> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_SOCK_DIAG,
            )
        };
        if fd < 0 {
            return Err(NetlinkError::Os {
                call: "socket",
                source: std::io::Error::last_os_error(),
            });
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Dumper {
            fd,
            buf: vec![0; RECV_BUF],
            seq: 0,
        })
    }

    /// Dumps the sockets of one family and protocol whose state bit is in
    /// `states`, appending them to `out`.
    pub(crate) fn dump(
        &mut self,
        family: u8,
        protocol: u8,
        states: u32,
        out: &mut Vec<DiagRecord>,
    ) -> Result<(), NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let req = encode_request(family, protocol, states, self.seq);
        // SAFETY: zeroed sockaddr_nl is valid; family set below. nl_pid 0 = kernel.
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        loop {
            // SAFETY: `req` and `kernel` outlive the call; lengths are theirs.
            let sent = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    req.as_ptr().cast(),
                    req.len(),
                    0,
                    (&kernel as *const libc::sockaddr_nl).cast(),
                    std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if sent >= 0 {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(NetlinkError::Os {
                    call: "sendto",
                    source: e,
                });
            }
        }
        loop {
            // MSG_TRUNC makes recv return the datagram's real length, so a
            // datagram larger than the buffer is detected, not cut silently.
            // SAFETY: the buffer is valid for `self.buf.len()` bytes.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    libc::MSG_TRUNC,
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(NetlinkError::Os {
                    call: "recv",
                    source: e,
                });
            }
            let n = n as usize;
            if n == 0 {
                return Err(NetlinkError::Malformed("empty datagram".into()));
            }
            if n > self.buf.len() {
                return Err(NetlinkError::Malformed(format!(
                    "datagram of {n} bytes exceeds the {}-byte buffer",
                    self.buf.len()
                )));
            }
            if parse_datagram(&self.buf[..n], self.seq, out)? == Progress::Done {
                return Ok(());
            }
        }
    }
}

/// Dumps TCP LISTEN and unconnected UDP sockets of both families.
pub(crate) fn listeners() -> Result<Vec<RawSocket>, NetlinkError> {
    let mut dumper = Dumper::open()?;
    let mut found = Vec::new();
    let mut records = Vec::new();
    for (proto, protocol, states) in [
        (Proto::Tcp, IPPROTO_TCP, 1u32 << TCP_LISTEN),
        (Proto::Udp, IPPROTO_UDP, 1u32 << TCP_CLOSE),
    ] {
        for family in [AF_INET, AF_INET6] {
            records.clear();
            dumper.dump(family, protocol, states, &mut records)?;
            found.extend(records.iter().filter_map(|r| to_listener(r, proto)));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// nlmsghdr bytes (little endian fixtures; the parser is native endian).
    fn header(len: u32, kind: u16, flags: u16, seq: u32) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&len.to_le_bytes());
        h.extend_from_slice(&kind.to_le_bytes());
        h.extend_from_slice(&flags.to_le_bytes());
        h.extend_from_slice(&seq.to_le_bytes());
        h.extend_from_slice(&4242u32.to_le_bytes());
        h
    }

    /// A TCP6 `[::]:8080` LISTEN socket, uid 1000, inode 0x01020304, with
    /// INET_DIAG_SHUTDOWN (type 8) and INET_DIAG_SKV6ONLY (type 11) = 0.
    #[rustfmt::skip]
    const TCP6_LISTEN_WILDCARD: [u8; 72 + 8 + 8] = [
        10, 10, 0, 0,                       // family AF_INET6, state LISTEN, timer, retrans
        0x1f, 0x90, 0x00, 0x00,             // sport 8080, dport 0 (big endian)
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // src ::
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // dst ::
        0, 0, 0, 0,                         // if
        1, 2, 3, 4, 5, 6, 7, 8,             // cookie
        0, 0, 0, 0,                         // expires
        0, 0, 0, 0,                         // rqueue
        128, 0, 0, 0,                       // wqueue
        0xe8, 0x03, 0, 0,                   // uid 1000
        0x04, 0x03, 0x02, 0x01,             // inode 0x01020304
        5, 0, 8, 0, 0, 0, 0, 0,             // INET_DIAG_SHUTDOWN len 5, u8 0, pad
        5, 0, 11, 0, 0, 0, 0, 0,            // INET_DIAG_SKV6ONLY len 5, u8 0, pad
    ];

    /// A UDP4 `127.0.0.1:5353` socket connected to 10.0.0.2:53, state ESTABLISHED.
    #[rustfmt::skip]
    const UDP4_CONNECTED: [u8; 72] = [
        2, 1, 0, 0,
        0x14, 0xe9, 0x00, 0x35,             // sport 5353, dport 53
        127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0,                         // uid 0
        0x39, 0x30, 0, 0,                   // inode 12345
    ];

    fn message(seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut m = header(16 + payload.len() as u32, 20, 2, seq);
        m.extend_from_slice(payload);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    #[test]
    fn request_layout() {
        let r = encode_request(AF_INET6, IPPROTO_UDP, 1 << TCP_CLOSE, 7);
        assert_eq!(r.len(), 72);
        assert_eq!(u32_ne(&r, 0), 72);
        assert_eq!(u16_ne(&r, 4), 20);
        assert_eq!(u16_ne(&r, 6), 0x301);
        assert_eq!(u32_ne(&r, 8), 7);
        assert_eq!(&r[16..18], &[10, 17]);
        assert_eq!(u32_ne(&r, 20), 0x80);
        assert!(r[24..].iter().all(|&b| b == 0));
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn parses_dual_stack_listener_then_done() {
        let mut dgram = message(9, &TCP6_LISTEN_WILDCARD);
        dgram.extend(header(20, NLMSG_DONE, 2, 9));
        dgram.extend_from_slice(&0u32.to_le_bytes());
        let mut out = Vec::new();
        assert_eq!(parse_datagram(&dgram, 9, &mut out).unwrap(), Progress::Done);
        assert_eq!(
            out,
            vec![DiagRecord {
                family: AF_INET6,
                state: TCP_LISTEN,
                src: "::".parse().unwrap(),
                sport: 8080,
                dst: "::".parse().unwrap(),
                dport: 0,
                uid: 1000,
                inode: 0x0102_0304,
                v6only: Some(false),
            }]
        );
        let s = to_listener(&out[0], Proto::Tcp).unwrap();
        assert!(s.dual_stack);
        assert_eq!((s.port, s.inode, s.uid), (8080, 0x0102_0304, Some(1000)));
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn v6only_wildcard_is_not_dual_stack() {
        let mut p = TCP6_LISTEN_WILDCARD;
        p[84] = 1;
        let mut out = Vec::new();
        assert_eq!(
            parse_datagram(&message(1, &p), 1, &mut out).unwrap(),
            Progress::More
        );
        assert_eq!(out[0].v6only, Some(true));
        assert!(!to_listener(&out[0], Proto::Tcp).unwrap().dual_stack);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn connected_udp_is_not_a_listener() {
        let mut out = Vec::new();
        parse_datagram(&message(3, &UDP4_CONNECTED), 3, &mut out).unwrap();
        assert_eq!(out[0].src, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(
            (out[0].sport, out[0].dport, out[0].inode),
            (5353, 53, 12345)
        );
        assert_eq!(out[0].v6only, None);
        assert!(to_listener(&out[0], Proto::Udp).is_none());
        // Same socket, unconnected: a listener.
        let mut p = UDP4_CONNECTED;
        p[1] = TCP_CLOSE;
        p[6] = 0;
        p[7] = 0;
        p[24..28].fill(0);
        out.clear();
        parse_datagram(&message(3, &p), 3, &mut out).unwrap();
        let s = to_listener(&out[0], Proto::Udp).unwrap();
        assert_eq!((s.port, s.dual_stack), (5353, false));
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn other_sequence_numbers_are_ignored() {
        let mut out = Vec::new();
        parse_datagram(&message(2, &UDP4_CONNECTED), 3, &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn kernel_errors_are_reported() {
        let mut dgram = header(36, NLMSG_ERROR, 0, 5);
        dgram.extend_from_slice(&(-1i32).to_le_bytes()); // -EPERM
        dgram.extend(header(72, 20, 0x301, 5));
        let mut out = Vec::new();
        match parse_datagram(&dgram, 5, &mut out) {
            Err(NetlinkError::Kernel(e)) => assert_eq!(e.raw_os_error(), Some(1)),
            other => panic!("expected a kernel error, got {other:?}"),
        }
        let mut done = header(20, NLMSG_DONE, 2, 5);
        done.extend_from_slice(&(-4i32).to_le_bytes()); // -EINTR
        assert!(matches!(
            parse_datagram(&done, 5, &mut out),
            Err(NetlinkError::Kernel(_))
        ));
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn truncated_input_is_malformed_not_a_panic() {
        let full = message(1, &TCP6_LISTEN_WILDCARD);
        for cut in 1..full.len() {
            let mut out = Vec::new();
            // Every prefix either parses (cut on a boundary) or is rejected.
            let _ = parse_datagram(&full[..cut], 1, &mut out);
        }
        let mut bad = full.clone();
        bad[0] = 200; // length beyond the buffer
        assert!(matches!(
            parse_datagram(&bad, 1, &mut Vec::new()),
            Err(NetlinkError::Malformed(_))
        ));
        let mut short_attr = full;
        short_attr[16 + 72] = 2; // attribute length below 4
        assert!(matches!(
            parse_datagram(&short_attr, 1, &mut Vec::new()),
            Err(NetlinkError::Malformed(_))
        ));
    }
}
