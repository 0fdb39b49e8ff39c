//! Selection of listeners by the `list` filters. Pure.

use crate::model::{Exposure, Listener, Proto};

/// Resolved filters; every set filter must match (they combine with AND).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Protocols to keep; empty keeps both.
    pub protos: Vec<Proto>,
    /// Keep sockets that accept IPv4 (IPv4 ones and dual-stack IPv6 wildcards).
    pub ipv4: bool,
    /// Keep IPv6 sockets. With `ipv4` too, both are kept.
    pub ipv6: bool,
    /// Ports to keep; empty keeps all.
    pub ports: Vec<u16>,
    /// Keep sockets held by one of these pids; empty keeps all.
    pub pids: Vec<u32>,
    /// Keep sockets held by a process of this exact name.
    pub process: Option<String>,
    /// Keep sockets held by a process of this user, or owned by this user.
    pub user: Option<String>,
    /// Keep only listeners with findings.
    pub flagged: bool,
    /// Keep only listeners not bound to loopback.
    pub exposed: bool,
}

impl Filter {
    /// Whether `l` passes every filter.
    pub fn matches(&self, l: &Listener) -> bool {
        let s = &l.socket;
        if !self.protos.is_empty() && !self.protos.contains(&s.proto) {
            return false;
        }
        if self.ipv4 || self.ipv6 {
            let family_ok = (self.ipv4 && s.accepts_v4()) || (self.ipv6 && s.accepts_v6());
            if !family_ok {
                return false;
            }
        }
        if !self.ports.is_empty() && !self.ports.contains(&s.port) {
            return false;
        }
        if !self.pids.is_empty() && !s.processes.iter().any(|p| self.pids.contains(&p.pid)) {
            return false;
        }
        if let Some(name) = &self.process {
            if !s.processes.iter().any(|p| &p.name == name) {
                return false;
            }
        }
        if let Some(user) = &self.user {
            let by_process = s
                .processes
                .iter()
                .any(|p| p.user.as_deref() == Some(user.as_str()));
            let by_socket = s.user.as_deref() == Some(user.as_str());
            if !by_process && !by_socket {
                return false;
            }
        }
        if self.flagged && l.findings.is_empty() {
            return false;
        }
        if self.exposed && l.exposure == Exposure::Loopback {
            return false;
        }
        true
    }

    /// Keeps the listeners that pass.
    pub fn apply(&self, listeners: Vec<Listener>) -> Vec<Listener> {
        listeners.into_iter().filter(|l| self.matches(l)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::fixtures;

    fn ports(f: &Filter) -> Vec<u16> {
        f.apply(fixtures::report().listeners)
            .iter()
            .map(|l| l.socket.port)
            .collect()
    }

    #[test]
    fn each_filter_selects() {
        assert_eq!(ports(&Filter::default()), vec![22, 1276, 2024, 50000]);
        let f = |mut f: Filter, edit: &dyn Fn(&mut Filter)| {
            edit(&mut f);
            ports(&f)
        };
        let d = Filter::default;
        assert_eq!(f(d(), &|f| f.protos = vec![Proto::Udp]), vec![50000]);
        assert_eq!(
            f(d(), &|f| f.protos = vec![Proto::Tcp]),
            vec![22, 1276, 2024]
        );
        // The dual-stack :: socket accepts IPv4 too.
        assert_eq!(f(d(), &|f| f.ipv4 = true), vec![22, 1276, 2024, 50000]);
        assert_eq!(f(d(), &|f| f.ipv6 = true), vec![50000]);
        assert_eq!(f(d(), &|f| f.ports = vec![22, 2024]), vec![22, 2024]);
        assert_eq!(f(d(), &|f| f.pids = vec![101]), vec![22]);
        assert_eq!(
            f(d(), &|f| f.process = Some("resolver".into())),
            vec![50000]
        );
        assert_eq!(
            f(d(), &|f| f.user = Some("alice".into())),
            vec![1276, 50000]
        );
        // A hidden owner still matches its socket's user.
        assert_eq!(f(d(), &|f| f.user = Some("root".into())), vec![22, 2024]);
        assert_eq!(f(d(), &|f| f.flagged = true), vec![1276, 2024, 50000]);
        assert_eq!(f(d(), &|f| f.exposed = true), vec![22, 2024, 50000]);
        // Filters combine.
        assert_eq!(
            f(d(), &|f| {
                f.flagged = true;
                f.exposed = true;
                f.protos = vec![Proto::Tcp];
            }),
            vec![2024]
        );
    }
}
