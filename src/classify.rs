//! Classification: pure functions from an [`Inventory`] and the registry to
//! a [`Report`]. Knows nothing of the OS or the terminal.

use crate::model::{
    Exposure, FindingKind, Inventory, Listener, PortStatus, RangeClass, RegistryInfo, Report,
    Socket,
};
use crate::registry::{Registry, Transport};

/// The default findings for a port's registry standing and range.
/// Listeners on assigned ports carry none.
pub fn port_findings(status: PortStatus, range: RangeClass) -> Vec<FindingKind> {
    let mut findings = match status {
        PortStatus::Assigned | PortStatus::Dynamic => Vec::new(),
        PortStatus::Unassigned => vec![FindingKind::UnassignedPort],
        PortStatus::Reserved => vec![FindingKind::ReservedPort],
        PortStatus::Deregistered => vec![FindingKind::DeregisteredPort],
    };
    if range == RangeClass::Dynamic && status != PortStatus::Assigned {
        findings.push(FindingKind::DynamicPort);
    }
    findings.sort();
    findings.dedup();
    findings
}

/// Classifies one socket, given its registry answer.
pub fn classify_socket(socket: Socket, registry: RegistryInfo) -> Listener {
    let range = RangeClass::of(socket.port);
    let findings = port_findings(registry.status, range);
    Listener {
        exposure: Exposure::of(socket.address),
        range,
        registry,
        findings,
        socket,
    }
}

/// Classifies every socket of `inventory` and sorts the result by
/// protocol, port and address.
pub fn classify(inventory: Inventory, registry: &Registry) -> Report {
    let mut listeners: Vec<Listener> = inventory
        .sockets
        .into_iter()
        .map(|s| {
            let info = registry.lookup(s.port, Transport::from(s.proto)).info();
            classify_socket(s, info)
        })
        .collect();
    listeners.sort_by(|a, b| {
        (
            a.socket.proto,
            a.socket.port,
            a.socket.address,
            // Our own namespace (None) first, then the others by inode.
            a.socket.netns.as_ref().map(|n| n.inode),
            a.socket.inode,
        )
            .cmp(&(
                b.socket.proto,
                b.socket.port,
                b.socket.address,
                b.socket.netns.as_ref().map(|n| n.inode),
                b.socket.inode,
            ))
    });
    Report {
        listeners,
        privileged: inventory.privileged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Proto;

    fn socket(port: u16) -> Socket {
        Socket {
            proto: Proto::Tcp,
            address: "127.0.0.1".parse().unwrap(),
            port,
            dual_stack: false,
            uid: Some(0),
            user: Some("root".into()),
            inode: Some(1),
            processes: Vec::new(),
            netns: None,
        }
    }

    #[test]
    fn findings_follow_status_and_range() {
        use FindingKind::*;
        use PortStatus::*;
        assert!(port_findings(Assigned, RangeClass::System).is_empty());
        assert_eq!(
            port_findings(Unassigned, RangeClass::User),
            vec![UnassignedPort]
        );
        assert_eq!(
            port_findings(Reserved, RangeClass::System),
            vec![ReservedPort]
        );
        assert_eq!(
            port_findings(Deregistered, RangeClass::User),
            vec![DeregisteredPort]
        );
        assert_eq!(
            port_findings(Dynamic, RangeClass::Dynamic),
            vec![DynamicPort]
        );
    }

    #[test]
    fn embedded_registry_drives_findings() {
        let reg = Registry::embedded();
        let inv = Inventory {
            sockets: vec![socket(50000), socket(22), socket(1276)],
            privileged: true,
            netns_skipped: Vec::new(),
            warnings: Vec::new(),
        };
        let report = classify(inv, &reg);
        let ports: Vec<u16> = report.listeners.iter().map(|l| l.socket.port).collect();
        assert_eq!(ports, vec![22, 1276, 50000]);
        let ssh = &report.listeners[0];
        assert_eq!(ssh.registry.status, PortStatus::Assigned);
        assert!(ssh.registry.services.contains(&"ssh".to_string()));
        assert!(ssh.findings.is_empty());
        assert_eq!(ssh.exposure, Exposure::Loopback);
        assert_eq!(
            report.listeners[1].findings,
            vec![FindingKind::ReservedPort]
        );
        assert_eq!(report.listeners[2].findings, vec![FindingKind::DynamicPort]);
        assert_eq!(report.listeners[2].range, RangeClass::Dynamic);
    }

    #[test]
    fn our_namespace_sorts_before_the_others_on_the_same_address() {
        let in_ns = |inode: u64, socket_inode: u64| Socket {
            inode: Some(socket_inode),
            netns: Some(crate::model::NetNs {
                inode,
                name: None,
                pid: None,
            }),
            ..socket(8080)
        };
        let host = Socket {
            inode: Some(900),
            ..socket(8080)
        };
        let inv = Inventory {
            sockets: vec![in_ns(7, 3), host, in_ns(5, 4)],
            ..Inventory::default()
        };
        let report = classify(inv, &Registry::embedded());
        let order: Vec<Option<u64>> = report
            .listeners
            .iter()
            .map(|l| l.socket.netns.as_ref().map(|n| n.inode))
            .collect();
        assert_eq!(order, [None, Some(5), Some(7)]);
    }
}
