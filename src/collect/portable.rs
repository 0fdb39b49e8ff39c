//! Collection on every OS through netstat2 (sockets and their pids) and
//! sysinfo (process details). The default on macOS and Windows; compiled
//! on Linux too, where tests compare it with the netlink path.
//!
//! Differences from the Linux path, all documented limits of the sources:
//! - `dual_stack` is always false: netstat2 does not report `IPV6_V6ONLY`.
//! - netstat2 does not report whether a UDP socket is connected, so on
//!   Linux a connected UDP socket is listed here (the Linux path drops it).
//!   Windows' and macOS's UDP tables hold only local endpoints anyway.
//! - Socket uid and inode are only known on Linux.
//! - User names come from `sysinfo::Users`, which on Unix skips accounts
//!   whose shell is `/bin/false` (their `user` stays empty; `uid` is set).
//! - `privileged` is the effective uid 0 on Unix, and false on Windows,
//!   where netstat2 reports every socket's pid without elevation.

use crate::error::{Error, Result};
use crate::model::{Inventory, Process, Proto, Socket};
use netstat2::{AddressFamilyFlags, ProtocolFlags, ProtocolSocketInfo, TcpState};
use std::collections::BTreeSet;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind, Users};

/// Scans the machine through netstat2 and sysinfo.
pub fn scan() -> Result<Inventory> {
    let infos = netstat2::get_sockets_info(
        AddressFamilyFlags::IPV4 | AddressFamilyFlags::IPV6,
        ProtocolFlags::TCP | ProtocolFlags::UDP,
    )
    .map_err(|e| Error::Collect(format!("netstat2: {e}")))?;

    let mut sockets = Vec::new();
    let mut pids = BTreeSet::new();
    for info in infos {
        let (proto, address, port) = match &info.protocol_socket_info {
            ProtocolSocketInfo::Tcp(t) if t.state == TcpState::Listen => {
                (Proto::Tcp, t.local_addr, t.local_port)
            }
            ProtocolSocketInfo::Udp(u) => (Proto::Udp, u.local_addr, u.local_port),
            ProtocolSocketInfo::Tcp(_) => continue,
        };
        pids.extend(info.associated_pids.iter().copied());
        sockets.push((proto, address, port, info));
    }

    let own = sysinfo::get_current_pid().ok();
    if let Some(own) = own {
        pids.insert(own.as_u32());
    }
    // Each pid once: sysinfo drops a pid listed twice as if it had exited.
    let wanted: Vec<Pid> = pids.iter().map(|&p| Pid::from_u32(p)).collect();
    let mut system = System::new();
    system.refresh_processes_specifics(
        ProcessesToUpdate::Some(&wanted),
        true,
        ProcessRefreshKind::nothing()
            .with_user(UpdateKind::Always)
            .with_exe(UpdateKind::Always)
            .with_cmd(UpdateKind::Always),
    );
    let users = Users::new_with_refreshed_list();
    let process = |pid: u32| -> Option<Process> {
        // A pid sysinfo cannot see any more exited mid-scan: skip it.
        let p = system.process(Pid::from_u32(pid))?;
        let uid = p.user_id();
        Some(Process {
            pid,
            name: p.name().to_string_lossy().into_owned(),
            user: uid
                .and_then(|u| users.get_user_by_id(u))
                .map(|u| u.name().to_owned()),
            uid: uid.and_then(numeric_uid),
            exe: p.exe().map(|e| e.to_string_lossy().into_owned()),
            cmdline: p
                .cmd()
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            // sysinfo reports neither systemd units nor containers.
            unit: None,
            container: None,
            proxy_for: None,
        })
    };

    let mut sockets: Vec<Socket> = sockets
        .into_iter()
        .map(|(proto, address, port, info)| {
            let mut owner_pids = info.associated_pids.clone();
            owner_pids.sort_unstable();
            owner_pids.dedup();
            let uid = socket_uid(&info);
            Socket {
                proto,
                address,
                port,
                dual_stack: false,
                uid,
                user: uid.and_then(|uid| {
                    users
                        .iter()
                        .find(|u| numeric_uid(u.id()) == Some(uid))
                        .map(|u| u.name().to_owned())
                }),
                inode: socket_inode(&info),
                processes: owner_pids.into_iter().filter_map(process).collect(),
                netns: None,
            }
        })
        .collect();
    sockets.sort_by(|a, b| {
        (a.proto, a.port, a.address, a.inode).cmp(&(b.proto, b.port, b.address, b.inode))
    });

    let privileged = own
        .and_then(|pid| system.process(pid))
        .and_then(|p| p.effective_user_id())
        .and_then(numeric_uid)
        == Some(0);
    Ok(Inventory {
        sockets,
        privileged,
        netns_skipped: Vec::new(),
        warnings: Vec::new(),
    })
}

#[cfg(unix)]
fn numeric_uid(uid: &sysinfo::Uid) -> Option<u32> {
    Some(**uid)
}

#[cfg(not(unix))]
fn numeric_uid(_uid: &sysinfo::Uid) -> Option<u32> {
    // Windows identifies users by SID, not by a number.
    None
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn socket_uid(info: &netstat2::SocketInfo) -> Option<u32> {
    Some(info.uid)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn socket_uid(_info: &netstat2::SocketInfo) -> Option<u32> {
    None
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn socket_inode(info: &netstat2::SocketInfo) -> Option<u64> {
    (info.inode != 0).then_some(info.inode.into())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn socket_inode(_info: &netstat2::SocketInfo) -> Option<u64> {
    None
}
