//! What `portwarden port QUERY` says: pure, over a registry and a list of
//! listeners. Rendering is in `crate::render::port`.

use super::{EntryRef, Registry, Transport};
use crate::error::{Error, Result};
use crate::model::{Listener, PortStatus, RangeClass};

/// What the user asked about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// One port.
    Port(u16),
    /// Ports `low..=high`.
    Range(u16, u16),
    /// A service name, as typed.
    Service(String),
}

impl Query {
    /// Parses `22`, `6000-6063` or a service name. Anything without a letter
    /// that is not a valid port or range is [`Error::InvalidPort`].
    pub fn parse(input: &str) -> Result<Query> {
        let text = input.trim();
        let invalid = || Error::InvalidPort(input.to_string());
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if text.is_empty() {
            return Err(invalid());
        }
        if numeric(text) {
            return text.parse().map(Query::Port).map_err(|_| invalid());
        }
        if let Some((low, high)) = text.split_once('-') {
            if numeric(low.trim()) && numeric(high.trim()) {
                let low: u16 = low.trim().parse().map_err(|_| invalid())?;
                let high: u16 = high.trim().parse().map_err(|_| invalid())?;
                if low > high {
                    return Err(invalid());
                }
                return Ok(if low == high {
                    Query::Port(low)
                } else {
                    Query::Range(low, high)
                });
            }
        }
        // RFC 6335 section 5.1: a service name has at least one letter (it may
        // start with a digit: 3com-tsmux, 9pfs).
        if !text.chars().any(|c| c.is_ascii_alphabetic()) {
            return Err(invalid());
        }
        Ok(Query::Service(text.to_string()))
    }
}

/// One protocol's answer for one port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolAnswer {
    /// The protocol.
    pub protocol: Transport,
    /// The port's standing for it.
    pub status: PortStatus,
    /// Service names assigned on it.
    pub services: Vec<String>,
}

/// The answer for one port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortAnswer {
    /// The port.
    pub port: u16,
    /// System, user or dynamic.
    pub range: RangeClass,
    /// Whether it lies in the OS's ephemeral range; `None` when unknown.
    pub ephemeral: Option<bool>,
    /// tcp and udp always; sctp and dccp when the registry has rows for them.
    pub protocols: Vec<ProtocolAnswer>,
}

/// Everything `portwarden port` shows.
#[derive(Clone, Debug)]
pub struct Explanation<'a> {
    /// The query as typed.
    pub input: String,
    /// The parsed query.
    pub query: Query,
    /// The OS's ephemeral port range, when known.
    pub ephemeral_range: Option<(u16, u16)>,
    /// Per-port answers for a port or a service query; `None` for a range.
    pub ports: Option<Vec<PortAnswer>>,
    /// The registry rows: covering the port, overlapping the range, or naming the service.
    pub entries: Vec<EntryRef<'a>>,
    /// Listeners on the port(s) right now; `None` when no scan was made.
    pub listeners: Option<Vec<&'a Listener>>,
}

impl Explanation<'_> {
    /// The lowest and highest port asked about (`None` for a service query).
    pub fn bounds(&self) -> Option<(u16, u16)> {
        match self.query {
            Query::Port(p) => Some((p, p)),
            Query::Range(l, h) => Some((l, h)),
            Query::Service(_) => None,
        }
    }

    /// Every range class the query touches, ascending.
    pub fn range_classes(&self) -> Vec<RangeClass> {
        let mut classes: Vec<RangeClass> = match (self.bounds(), &self.ports) {
            (Some((l, h)), _) => [RangeClass::System, RangeClass::User, RangeClass::Dynamic]
                .into_iter()
                .filter(|c| {
                    let (cl, ch) = class_bounds(*c);
                    cl <= h && l <= ch
                })
                .collect(),
            (None, Some(ports)) => ports.iter().map(|p| p.range).collect(),
            (None, None) => Vec::new(),
        };
        classes.sort();
        classes.dedup();
        classes
    }

    /// Whether any port asked about lies in the ephemeral range; `None` when unknown.
    pub fn in_ephemeral_range(&self) -> Option<bool> {
        let (el, eh) = self.ephemeral_range?;
        Some(match (self.bounds(), &self.ports) {
            (Some((l, h)), _) => l <= eh && el <= h,
            (None, Some(ports)) => ports.iter().any(|p| el <= p.port && p.port <= eh),
            (None, None) => false,
        })
    }
}

fn class_bounds(c: RangeClass) -> (u16, u16) {
    match c {
        RangeClass::System => (0, 1023),
        RangeClass::User => (1024, 49151),
        RangeClass::Dynamic => (49152, 65535),
    }
}

/// This OS's ephemeral (local) port range: on Linux from
/// /proc/sys/net/ipv4/ip_local_port_range; `None` elsewhere or when unreadable.
pub fn ephemeral_range() -> Option<(u16, u16)> {
    #[cfg(target_os = "linux")]
    {
        let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
        let mut it = text.split_whitespace().map(str::parse::<u16>);
        match (it.next(), it.next()) {
            (Some(Ok(low)), Some(Ok(high))) if low <= high => Some((low, high)),
            _ => None,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

fn answer(registry: &Registry, port: u16, ephemeral: Option<(u16, u16)>) -> PortAnswer {
    let has_specific = |t: Transport| registry.covering(port).any(|e| e.protocol() == Some(t));
    let protocols = Transport::ALL
        .into_iter()
        .filter(|&t| matches!(t, Transport::Tcp | Transport::Udp) || has_specific(t))
        .map(|t| {
            let info = registry.lookup(port, t).info();
            ProtocolAnswer {
                protocol: t,
                status: info.status,
                services: info.services,
            }
        })
        .collect();
    PortAnswer {
        port,
        range: RangeClass::of(port),
        ephemeral: ephemeral.map(|(l, h)| l <= port && port <= h),
        protocols,
    }
}

/// Builds the explanation of `query` from `registry` and the current
/// `listeners` (`None` when no scan was made).
pub fn explain<'a>(
    registry: &'a Registry,
    input: &str,
    listeners: Option<&'a [Listener]>,
    ephemeral: Option<(u16, u16)>,
) -> Result<Explanation<'a>> {
    let query = Query::parse(input)?;
    let scanned = listeners.unwrap_or(&[]);
    let (ports, entries, listening): (Option<Vec<PortAnswer>>, Vec<EntryRef<'a>>, Vec<&Listener>) =
        match &query {
            Query::Port(p) => (
                Some(vec![answer(registry, *p, ephemeral)]),
                registry.covering(*p).collect(),
                scanned.iter().filter(|l| l.socket.port == *p).collect(),
            ),
            Query::Range(low, high) => (
                None,
                registry.in_range(*low, *high),
                scanned
                    .iter()
                    .filter(|l| (*low..=*high).contains(&l.socket.port))
                    .collect(),
            ),
            Query::Service(name) => {
                let entries = registry.by_service(name);
                if entries.is_empty() {
                    return Err(Error::UnknownService(name.clone()));
                }
                let mut ports: Vec<u16> = entries
                    .iter()
                    .filter_map(|e| e.ports())
                    .flat_map(|(l, h)| l..=h)
                    .collect();
                ports.sort_unstable();
                ports.dedup();
                let listening = scanned
                    .iter()
                    .filter(|l| {
                        let t = Transport::from(l.socket.proto);
                        entries.iter().any(|e| e.covers(l.socket.port, t))
                    })
                    .collect();
                (
                    Some(
                        ports
                            .into_iter()
                            .map(|p| answer(registry, p, ephemeral))
                            .collect(),
                    ),
                    entries,
                    listening,
                )
            }
        };
    Ok(Explanation {
        input: input.to_string(),
        query,
        ephemeral_range: ephemeral,
        ports,
        entries,
        listeners: listeners.map(|_| listening),
    })
}
