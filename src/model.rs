//! Plain data shared by collect, classify and render. No I/O here.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// Transport protocol of a listening socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP socket in LISTEN state.
    Tcp,
    /// UDP socket that is bound and not connected.
    Udp,
}

impl Proto {
    /// Lower-case name, as used in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One process that holds a listening socket open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// Process id.
    pub pid: u32,
    /// Short process name (`comm` on Linux). Untrusted text.
    pub name: String,
    /// Name of the process's real user, when it can be resolved. Untrusted text.
    pub user: Option<String>,
    /// Numeric real uid of the process, when known.
    pub uid: Option<u32>,
    /// Executable path, when readable. Untrusted text.
    pub exe: Option<String>,
    /// Command line, argument by argument. Untrusted text; empty when unreadable.
    pub cmdline: Vec<String>,
    /// The systemd unit the process runs in (`nginx.service`, `session-2.scope`),
    /// from its cgroup; `None` without systemd or when unreadable. Untrusted text.
    #[serde(default)]
    pub unit: Option<String>,
    /// The container the process runs in, from its cgroup.
    #[serde(default)]
    pub container: Option<Container>,
    /// For a container runtime's userland proxy (`docker-proxy`), which holds
    /// a published host port: where it forwards to.
    #[serde(default)]
    pub proxy_for: Option<ProxyTarget>,
}

/// A container, as its runtime names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// `docker`, `podman`, `containerd`, `cri-o` or `kubernetes` (a pod
    /// container whose runtime the cgroup does not name).
    pub runtime: String,
    /// The full container id (64 hex digits).
    pub id: String,
    /// The container's name, when the runtime's API gave it. Untrusted text.
    pub name: Option<String>,
}

/// Where a userland proxy forwards a published port to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyTarget {
    /// The container's address the proxy connects to.
    pub container_ip: IpAddr,
    /// The container's port the proxy connects to.
    pub container_port: u16,
    /// The container with that address, when the runtime's API could be asked.
    pub container: Option<Container>,
}

/// One listening socket as the OS reports it, with its owners.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Socket {
    /// Transport protocol.
    pub proto: Proto,
    /// Local address the socket is bound to.
    pub address: IpAddr,
    /// Local port.
    pub port: u16,
    /// An IPv6 wildcard socket that also accepts IPv4 (`IPV6_V6ONLY` off).
    pub dual_stack: bool,
    /// Owning uid of the socket itself, when the OS gives it.
    pub uid: Option<u32>,
    /// Name of the socket's owning user, when the uid resolves. Untrusted text.
    pub user: Option<String>,
    /// Socket inode, when the OS gives it.
    pub inode: Option<u64>,
    /// Every process holding the socket open, sorted by pid. Empty when no
    /// owner could be seen (not root, another pid namespace, exited mid-scan,
    /// or a kernel socket): never guessed.
    pub processes: Vec<Process>,
    /// The network namespace the socket lives in; `None` for the scanner's
    /// own namespace (the only one scanned unless every one is asked for).
    #[serde(default)]
    pub netns: Option<NetNs>,
}

/// A network namespace other than the scanner's own.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NetNs {
    /// The namespace's inode (`net:[INODE]` in `/proc/PID/ns/net`).
    pub inode: u64,
    /// Its name under `/run/netns` (as `ip netns` creates), when it has one.
    /// Untrusted text.
    pub name: Option<String>,
    /// The lowest pid of a process in it, when one could be seen.
    pub pid: Option<u32>,
}

impl NetNs {
    /// How a person names it: the `/run/netns` name, else `net:[INODE]`.
    /// Untrusted text (the name).
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("net:[{}]", self.inode),
        }
    }
}

/// A network namespace that could not be scanned, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetNsSkipped {
    /// The namespace.
    pub netns: NetNs,
    /// Why (e.g. "setns: Operation not permitted (os error 1)").
    pub reason: String,
}

impl Socket {
    /// Whether at least one owning process could be seen.
    pub fn owner_visible(&self) -> bool {
        !self.processes.is_empty()
    }

    /// An IPv6 socket bound to an IPv4-mapped address (`::ffff:a.b.c.d`),
    /// which carries IPv4 traffic only.
    fn v4_mapped(&self) -> bool {
        matches!(self.address, IpAddr::V6(a) if a.to_ipv4_mapped().is_some())
    }

    /// Whether the socket accepts IPv4 traffic.
    pub fn accepts_v4(&self) -> bool {
        self.address.is_ipv4() || self.dual_stack || self.v4_mapped()
    }

    /// Whether the socket accepts IPv6 traffic.
    pub fn accepts_v6(&self) -> bool {
        self.address.is_ipv6() && !self.v4_mapped()
    }
}

/// What one scan of the machine found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// Every listening socket found.
    pub sockets: Vec<Socket>,
    /// True when the scan ran with enough privilege to see every process's
    /// file descriptors (root on Unix). Owners can still be hidden then.
    pub privileged: bool,
    /// Network namespaces that were asked for but could not be scanned
    /// (not root, or every process in one exited mid-scan). Empty when
    /// only the scanner's own namespace was asked for.
    #[serde(default)]
    pub netns_skipped: Vec<NetNsSkipped>,
    /// What the scan could not do as well as it should, one line each,
    /// naming the cause (a fallback that loses information, a helper that
    /// refused). Empty when nothing degraded. Plain text, untrusted: it may
    /// quote OS errors and paths.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Where a listener can be reached from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Exposure {
    /// 127.0.0.0/8 or ::1 (and IPv4-mapped loopback).
    Loopback,
    /// 0.0.0.0 or ::: every interface.
    Wildcard,
    /// Any other local address.
    Specific,
}

impl Exposure {
    /// The exposure of a local address.
    pub fn of(address: IpAddr) -> Exposure {
        let address = match address {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            },
            v4 => v4,
        };
        if address.is_loopback() {
            Exposure::Loopback
        } else if address.is_unspecified() {
            Exposure::Wildcard
        } else {
            Exposure::Specific
        }
    }

    /// Lower-case name, as used in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            Exposure::Loopback => "loopback",
            Exposure::Wildcard => "wildcard",
            Exposure::Specific => "specific",
        }
    }
}

/// IANA's three port ranges (RFC 6335 section 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RangeClass {
    /// 0-1023, the system (well-known) ports.
    System,
    /// 1024-49151, the user (registered) ports.
    User,
    /// 49152-65535, the dynamic (private, ephemeral) ports; IANA never assigns them.
    Dynamic,
}

impl RangeClass {
    /// The range a port falls in.
    pub fn of(port: u16) -> RangeClass {
        match port {
            0..=1023 => RangeClass::System,
            1024..=49151 => RangeClass::User,
            _ => RangeClass::Dynamic,
        }
    }

    /// Lower-case name, as used in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            RangeClass::System => "system",
            RangeClass::User => "user",
            RangeClass::Dynamic => "dynamic",
        }
    }
}

/// A port's standing in IANA's registry, for one transport protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortStatus {
    /// At least one service name is assigned on this port and protocol.
    Assigned,
    /// IANA lists the port as Reserved.
    Reserved,
    /// IANA lists the port as Unassigned, or does not list it at all.
    Unassigned,
    /// The assignment was removed: IANA's "De-registered", "Removed",
    /// "Deprecated", "De-Commissioned" and similar.
    Deregistered,
    /// 49152-65535, which IANA never assigns (RFC 6335 section 6).
    Dynamic,
}

impl PortStatus {
    /// Lower-case name, as used in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            PortStatus::Assigned => "assigned",
            PortStatus::Reserved => "reserved",
            PortStatus::Unassigned => "unassigned",
            PortStatus::Deregistered => "deregistered",
            PortStatus::Dynamic => "dynamic",
        }
    }
}

/// How much a finding matters. Ordered: `Critical` is the greatest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; not a problem by itself.
    Info,
    /// Deserves a look.
    Warning,
    /// Almost certainly wrong.
    Critical,
}

/// Something about a listener (or an expected one) that deserves a look.
/// New kinds are added here; every output names them by [`FindingKind::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// Listening on a port IANA lists as unassigned.
    UnassignedPort,
    /// Listening on a port IANA lists as reserved.
    ReservedPort,
    /// Listening on a port whose assignment IANA removed.
    DeregisteredPort,
    /// Listening on a port in the dynamic range 49152-65535.
    DynamicPort,
    /// A policy `[[expect]]` port that nothing listens on.
    MissingExpected,
    /// A policy `[[expect]]` port owned by another process than expected.
    UnexpectedOwner,
    /// A listener absent from the baseline.
    NewListener,
    /// A baseline listener that no longer listens.
    GoneListener,
}

impl FindingKind {
    /// Stable kebab-case name, as used in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::UnassignedPort => "unassigned-port",
            FindingKind::ReservedPort => "reserved-port",
            FindingKind::DeregisteredPort => "deregistered-port",
            FindingKind::DynamicPort => "dynamic-port",
            FindingKind::MissingExpected => "missing-expected",
            FindingKind::UnexpectedOwner => "unexpected-owner",
            FindingKind::NewListener => "new-listener",
            FindingKind::GoneListener => "gone-listener",
        }
    }

    /// Default severity of the kind.
    pub fn severity(self) -> Severity {
        match self {
            FindingKind::DynamicPort => Severity::Info,
            FindingKind::UnassignedPort
            | FindingKind::ReservedPort
            | FindingKind::DeregisteredPort
            | FindingKind::NewListener
            | FindingKind::GoneListener => Severity::Warning,
            FindingKind::MissingExpected | FindingKind::UnexpectedOwner => Severity::Critical,
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A listener's registry answer, for its own protocol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryInfo {
    /// The port's standing.
    pub status: PortStatus,
    /// Every service name IANA assigns on this port and protocol.
    pub services: Vec<String>,
    /// The first assigned entry's description (or the status row's, e.g. "Reserved").
    pub description: Option<String>,
}

/// A listening socket with its registry standing, exposure and findings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    /// What the OS reported.
    pub socket: Socket,
    /// Where it can be reached from.
    pub exposure: Exposure,
    /// IANA range the port falls in.
    pub range: RangeClass,
    /// Registry answer for the port and protocol.
    pub registry: RegistryInfo,
    /// Findings, sorted, without duplicates. Empty for an unremarkable listener.
    pub findings: Vec<FindingKind>,
}

/// Every listener of one scan, classified, sorted by protocol, port, address.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The listeners.
    pub listeners: Vec<Listener>,
    /// Copied from [`Inventory::privileged`].
    pub privileged: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposure_classes() {
        let of = |s: &str| Exposure::of(s.parse().unwrap());
        assert_eq!(of("127.0.0.1"), Exposure::Loopback);
        assert_eq!(of("127.3.2.1"), Exposure::Loopback);
        assert_eq!(of("::1"), Exposure::Loopback);
        assert_eq!(of("::ffff:127.0.0.1"), Exposure::Loopback);
        assert_eq!(of("0.0.0.0"), Exposure::Wildcard);
        assert_eq!(of("::"), Exposure::Wildcard);
        assert_eq!(of("192.168.1.5"), Exposure::Specific);
        assert_eq!(of("fe80::1"), Exposure::Specific);
    }

    #[test]
    fn address_families_accepted() {
        let socket = |addr: &str, dual_stack: bool| Socket {
            proto: Proto::Tcp,
            address: addr.parse().unwrap(),
            port: 1,
            dual_stack,
            uid: None,
            user: None,
            inode: None,
            processes: Vec::new(),
            netns: None,
        };
        let fams = |s: Socket| (s.accepts_v4(), s.accepts_v6());
        assert_eq!(fams(socket("127.0.0.1", false)), (true, false));
        assert_eq!(fams(socket("::1", false)), (false, true));
        assert_eq!(fams(socket("::", false)), (false, true));
        assert_eq!(fams(socket("::", true)), (true, true));
        assert_eq!(fams(socket("::ffff:127.0.0.1", false)), (true, false));
    }

    #[test]
    fn range_classes() {
        assert_eq!(RangeClass::of(0), RangeClass::System);
        assert_eq!(RangeClass::of(1023), RangeClass::System);
        assert_eq!(RangeClass::of(1024), RangeClass::User);
        assert_eq!(RangeClass::of(49151), RangeClass::User);
        assert_eq!(RangeClass::of(49152), RangeClass::Dynamic);
        assert_eq!(RangeClass::of(65535), RangeClass::Dynamic);
    }
}
