//! Fallback when sock_diag is unavailable (e.g. netlink blocked by a
//! seccomp profile): the text tables `/proc/net/{tcp,tcp6,udp,udp6}`
//! (format: `net/ipv4/tcp_ipv4.c` `get_tcp4_sock`, `net/ipv4/udp.c`).
//!
//! These tables do not say whether an IPv6 socket is `IPV6_V6ONLY`, so
//! sockets found here always have `dual_stack: false`.

use super::netlink::{TCP_CLOSE, TCP_LISTEN};
use super::RawSocket;
use crate::error::{Error, Result};
use crate::model::Proto;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// One parsed row of a `/proc/net` socket table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    /// Local address and port.
    pub local: (IpAddr, u16),
    /// Remote address and port.
    pub remote: (IpAddr, u16),
    /// TCP state number.
    pub state: u8,
    /// Socket owner uid.
    pub uid: u32,
    /// Socket inode.
    pub inode: u64,
}

/// Parses `ADDR:PORT` as the kernel prints it: the address is the raw
/// in-memory words printed with `%08X` (so host byte order per 32-bit
/// word), the port is `%04X` of the host-order value.
fn parse_endpoint(s: &str) -> Option<(IpAddr, u16)> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = addr.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut o = [0u8; 16];
            for i in 0..4 {
                o[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(o))
        }
        _ => return None,
    };
    Some((ip, port))
}

/// Parses one data line (not the header). `None` for a line that does not
/// have the expected shape.
pub(crate) fn parse_line(line: &str) -> Option<Row> {
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
    let mut f = line.split_ascii_whitespace();
    let _sl = f.next()?;
    let local = parse_endpoint(f.next()?)?;
    let remote = parse_endpoint(f.next()?)?;
    let state = u8::from_str_radix(f.next()?, 16).ok()?;
    let _queues = f.next()?;
    let _timer = f.next()?;
    let _retransmits = f.next()?;
    let uid = f.next()?.parse().ok()?;
    let _timeout = f.next()?;
    let inode = f.next()?.parse().ok()?;
    Some(Row {
        local,
        remote,
        state,
        uid,
        inode,
    })
}

/// Turns a row into a listening socket, or `None` when it is not one.
pub(crate) fn to_listener(row: &Row, proto: Proto) -> Option<RawSocket> {
    let listening = match proto {
        Proto::Tcp => row.state == TCP_LISTEN,
        Proto::Udp => row.state == TCP_CLOSE && row.remote.1 == 0 && row.remote.0.is_unspecified(),
    };
    listening.then_some(RawSocket {
        proto,
        address: row.local.0,
        port: row.local.1,
        dual_stack: false,
        uid: Some(row.uid),
        inode: row.inode,
    })
}

/// Parses a whole table, skipping the header line. A malformed data line
/// is an error naming the file and line: the format is the kernel's ABI.
pub(crate) fn parse_table(text: &str, proto: Proto, origin: &Path) -> Result<Vec<RawSocket>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let row = parse_line(line).ok_or_else(|| {
            Error::Collect(format!(
                "{}: line {}: unexpected format: {line:?}",
                origin.display(),
                i + 1
            ))
        })?;
        out.extend(to_listener(&row, proto));
    }
    Ok(out)
}

/// Reads the four tables under `proc_root/net`. A missing `tcp6`/`udp6`
/// (IPv6 disabled) is not an error.
pub(crate) fn listeners(proc_root: &Path) -> Result<Vec<RawSocket>> {
    let mut out = Vec::new();
    for (name, proto, optional) in [
        ("tcp", Proto::Tcp, false),
        ("tcp6", Proto::Tcp, true),
        ("udp", Proto::Udp, false),
        ("udp6", Proto::Udp, true),
    ] {
        let path = proc_root.join("net").join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => out.extend(parse_table(&text, proto, &path)?),
            Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(out)
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    // Lines in the exact shape of a little-endian kernel's output.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 424242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 424243 1 0000000000000000 20 4 30 10 -1
   2: 00000000:0016 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 7 1 0000000000000000 100 0 0 10 0
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31338 1 0000000000000000 100 0 0 10 0
";
    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 555 2 0000000000000000 0
  101: 0100007F:14E9 0200000A:0035 01 00000000:00000000 00:00000000 00000000     0        0 556 2 0000000000000000 0
";

    #[test]
    fn tcp_keeps_listen_only() {
        let got = parse_table(TCP, Proto::Tcp, Path::new("tcp")).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].address, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(
            (got[0].port, got[0].uid, got[0].inode),
            (8080, Some(1000), 424242)
        );
    }

    #[test]
    fn tcp6_addresses_including_v4_mapped() {
        let got = parse_table(TCP6, Proto::Tcp, Path::new("tcp6")).unwrap();
        let addrs: Vec<String> = got
            .iter()
            .map(|s| format!("{}:{}", s.address, s.port))
            .collect();
        assert_eq!(addrs, ["::1:22", "::ffff:127.0.0.1:8081"]);
        assert!(got.iter().all(|s| !s.dual_stack));
    }

    #[test]
    fn udp_keeps_unconnected_only() {
        let got = parse_table(UDP, Proto::Udp, Path::new("udp")).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].port, got[0].inode), (68, 555));
        let connected = parse_line(UDP.lines().nth(2).unwrap()).unwrap();
        assert_eq!(connected.remote, ("10.0.0.2".parse().unwrap(), 53));
    }

    #[test]
    fn malformed_lines_are_errors_with_position() {
        let text = format!("{}\n   9: 0100007F:ZZZZ\n", TCP.lines().next().unwrap());
        let e = parse_table(&text, Proto::Tcp, Path::new("/proc/net/tcp")).unwrap_err();
        assert!(e.to_string().contains("/proc/net/tcp: line 2"), "{e}");
        assert!(parse_endpoint("0100007F").is_none());
        assert!(parse_endpoint("01007F:0016").is_none());
    }

    #[test]
    fn live_tables_parse() {
        // The running kernel's own tables must parse without error.
        listeners(Path::new("/proc")).unwrap();
    }
}
