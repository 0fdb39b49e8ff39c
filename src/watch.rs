//! What changed between two scans, for `portwarden watch`. Pure: plain
//! model data in, events out; no clock, no terminal.
//!
//! A listener's identity is its protocol, port, local address and whether it
//! is a dual-stack wildcard ([`Key`]); its owning pids are its state. So an
//! identity that is new is `appeared`, one that vanished is `gone`, and one
//! whose set of owning pids differs is `owner-changed` (a restart, a worker
//! forked or reaped, an owner that exited or became invisible): one event
//! that names the old and new owners, whether the restart fell between two
//! scans or inside one, rather than a `gone` and an `appeared` that a reader
//! would have to pair up. Several sockets may share an identity
//! (`SO_REUSEPORT`): they are matched by owners first, and only the
//! unmatched ones are paired as owner changes.

use crate::model::{Listener, Proto};
use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::SystemTime;

/// What happened to a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// Listening when the watch started (the initial state of a stream).
    Present,
    /// A new listener.
    Appeared,
    /// A listener that no longer listens.
    Gone,
    /// Same listener, another set of owning pids.
    OwnerChanged,
}

impl EventKind {
    /// Stable kebab-case name, as used in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Present => "present",
            EventKind::Appeared => "appeared",
            EventKind::Gone => "gone",
            EventKind::OwnerChanged => "owner-changed",
        }
    }

    /// One-character marker used in human and plain output: `=`, `+`, `-`, `~`.
    pub fn marker(self) -> char {
        match self {
            EventKind::Present => '=',
            EventKind::Appeared => '+',
            EventKind::Gone => '-',
            EventKind::OwnerChanged => '~',
        }
    }
}

/// The identity of a listener across scans. Ordered as reports are sorted:
/// protocol, port, address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// Transport protocol.
    pub proto: Proto,
    /// Local port.
    pub port: u16,
    /// Local address.
    pub address: IpAddr,
    /// A dual-stack IPv6 wildcard (a different socket from a v6-only `::`).
    pub dual_stack: bool,
}

impl Key {
    /// The identity of `l`.
    pub fn of(l: &Listener) -> Key {
        Key {
            proto: l.socket.proto,
            port: l.socket.port,
            address: l.socket.address,
            dual_stack: l.socket.dual_stack,
        }
    }
}

/// The owning pids of `l`, sorted; empty when no owner is visible.
pub fn pids(l: &Listener) -> Vec<u32> {
    let mut pids: Vec<u32> = l.socket.processes.iter().map(|p| p.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// One change (or, for [`EventKind::Present`], one listener of the initial state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// When the scan that saw it ran.
    pub time: SystemTime,
    /// The listener: as it is now, or as it was last seen for `gone`.
    pub listener: Listener,
    /// For `owner-changed`, the listener as it was before; otherwise `None`.
    pub previous: Option<Listener>,
}

/// The initial state: one `present` event per listener, in report order.
pub fn present(listeners: &[Listener], time: SystemTime) -> Vec<Event> {
    listeners
        .iter()
        .map(|l| Event {
            kind: EventKind::Present,
            time,
            listener: l.clone(),
            previous: None,
        })
        .collect()
}

fn group(listeners: &[Listener]) -> BTreeMap<Key, Vec<&Listener>> {
    let mut groups: BTreeMap<Key, Vec<&Listener>> = BTreeMap::new();
    for l in listeners {
        groups.entry(Key::of(l)).or_default().push(l);
    }
    groups
}

/// The events that turn `old` into `new`, ordered by identity (protocol,
/// port, address); within one identity: gone, owner-changed, appeared.
/// A listener whose identity and owning pids are unchanged yields nothing,
/// even if, say, its command line changed.
pub fn diff(old: &[Listener], new: &[Listener], time: SystemTime) -> Vec<Event> {
    let before = group(old);
    let after = group(new);
    let mut keys: Vec<&Key> = before.keys().chain(after.keys()).collect();
    keys.sort_unstable();
    keys.dedup();
    let event = |kind, listener: &Listener, previous: Option<&Listener>| Event {
        kind,
        time,
        listener: listener.clone(),
        previous: previous.cloned(),
    };
    let mut events = Vec::new();
    for key in keys {
        let mut olds: Vec<&Listener> = before.get(key).cloned().unwrap_or_default();
        let mut news: Vec<&Listener> = Vec::new();
        for l in after.get(key).into_iter().flatten() {
            // Same owners: the same listener, unchanged.
            match olds.iter().position(|o| pids(o) == pids(l)) {
                Some(i) => {
                    olds.remove(i);
                }
                None => news.push(l),
            }
        }
        let paired = olds.len().min(news.len());
        for o in &olds[paired..] {
            events.push(event(EventKind::Gone, o, None));
        }
        for (o, n) in olds.iter().zip(&news) {
            events.push(event(EventKind::OwnerChanged, n, Some(o)));
        }
        for n in &news[paired..] {
            events.push(event(EventKind::Appeared, n, None));
        }
    }
    events
}

/// How many rounds a new or changed listener stays marked in the live view.
pub const RECENT_ROUNDS: u64 = 3;

/// What the live view remembers: the newest events, and which listeners
/// appeared or changed owners in the last [`RECENT_ROUNDS`] rounds.
#[derive(Clone, Debug)]
pub struct History {
    capacity: usize,
    /// Changes recorded so far.
    total: u64,
    /// Newest first.
    events: VecDeque<Event>,
    /// Round, identity and owners of recent `appeared` / `owner-changed` events.
    recent: Vec<(u64, Key, Vec<u32>, EventKind)>,
}

impl History {
    /// Keeps the newest `capacity` events.
    pub fn new(capacity: usize) -> History {
        History {
            capacity,
            total: 0,
            events: VecDeque::new(),
            recent: Vec::new(),
        }
    }

    /// Records the events of round `round` (rounds count from 1).
    pub fn record(&mut self, round: u64, events: &[Event]) {
        self.recent
            .retain(|(r, ..)| round.saturating_sub(*r) < RECENT_ROUNDS);
        // Pushed oldest-first at the front, so that a round's events keep
        // their report order under newer rounds.
        for e in events.iter().rev() {
            if matches!(e.kind, EventKind::Appeared | EventKind::OwnerChanged) {
                self.recent
                    .push((round, Key::of(&e.listener), pids(&e.listener), e.kind));
            }
            if e.kind != EventKind::Present {
                self.total += 1;
                self.events.push_front(e.clone());
            }
        }
        self.events.truncate(self.capacity);
    }

    /// How many changes were recorded in all (not only the kept ones).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The kept events, newest first.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter()
    }

    /// `Appeared` or `OwnerChanged` when `l`, with its current owners,
    /// appeared or changed owners within the last [`RECENT_ROUNDS`] rounds
    /// before and including `round`.
    pub fn mark(&self, round: u64, l: &Listener) -> Option<EventKind> {
        let key = Key::of(l);
        let owners = pids(l);
        self.recent
            .iter()
            .rev()
            .find(|(r, k, p, _)| {
                round.saturating_sub(*r) < RECENT_ROUNDS && *k == key && *p == owners
            })
            .map(|(.., kind)| *kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::tests::{listener, owner};
    use crate::model::PortStatus;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn l(proto: Proto, addr: &str, port: u16, pids: &[u32]) -> Listener {
        listener(
            proto,
            addr,
            port,
            PortStatus::Assigned,
            pids.iter()
                .map(|&p| owner(p, "nginx", "/usr/sbin/nginx", "www"))
                .collect(),
        )
    }

    /// Kind, port, owners and previous owners of one event.
    type Brief = (EventKind, u16, Vec<u32>, Option<Vec<u32>>);

    fn summary(events: &[Event]) -> Vec<Brief> {
        events
            .iter()
            .map(|e| {
                (
                    e.kind,
                    e.listener.socket.port,
                    pids(&e.listener),
                    e.previous.as_ref().map(pids),
                )
            })
            .collect()
    }

    #[test]
    fn nothing_changed_means_no_events() {
        let a = vec![l(Proto::Tcp, "0.0.0.0", 80, &[1, 2])];
        assert!(diff(&a, &a.clone(), at(1)).is_empty());
        assert!(diff(&[], &[], at(1)).is_empty());
    }

    #[test]
    fn appeared_and_gone() {
        let old = vec![l(Proto::Tcp, "0.0.0.0", 80, &[1])];
        let new = vec![l(Proto::Tcp, "127.0.0.1", 8080, &[9])];
        let events = diff(&old, &new, at(5));
        assert_eq!(
            summary(&events),
            vec![
                (EventKind::Gone, 80, vec![1], None),
                (EventKind::Appeared, 8080, vec![9], None),
            ]
        );
        assert!(events.iter().all(|e| e.time == at(5)));
        // The gone event carries the listener as it was last seen.
        assert_eq!(events[0].listener, old[0]);
    }

    #[test]
    fn another_owner_is_owner_changed() {
        let old = vec![l(Proto::Tcp, "0.0.0.0", 80, &[1, 2])];
        let restarted = vec![l(Proto::Tcp, "0.0.0.0", 80, &[7, 8])];
        assert_eq!(
            summary(&diff(&old, &restarted, at(1))),
            vec![(EventKind::OwnerChanged, 80, vec![7, 8], Some(vec![1, 2]))]
        );
        // A worker reaped, and an owner becoming invisible, are changes too.
        let fewer = vec![l(Proto::Tcp, "0.0.0.0", 80, &[1])];
        assert_eq!(diff(&old, &fewer, at(1))[0].kind, EventKind::OwnerChanged);
        let hidden = vec![l(Proto::Tcp, "0.0.0.0", 80, &[])];
        assert_eq!(
            summary(&diff(&old, &hidden, at(1))),
            vec![(EventKind::OwnerChanged, 80, vec![], Some(vec![1, 2]))]
        );
    }

    #[test]
    fn identity_is_protocol_address_port_and_dual_stack() {
        let tcp = vec![l(Proto::Tcp, "127.0.0.1", 53, &[1])];
        let udp = vec![l(Proto::Udp, "127.0.0.1", 53, &[1])];
        let kinds = |e: Vec<Event>| e.iter().map(|e| e.kind).collect::<Vec<_>>();
        assert_eq!(
            kinds(diff(&tcp, &udp, at(1))),
            [EventKind::Gone, EventKind::Appeared]
        );
        let v4 = vec![l(Proto::Tcp, "0.0.0.0", 53, &[1])];
        // Ordered by address within a port: 0.0.0.0 before 127.0.0.1.
        assert_eq!(
            kinds(diff(&tcp, &v4, at(1))),
            [EventKind::Appeared, EventKind::Gone]
        );
        let v6only = vec![l(Proto::Tcp, "::", 53, &[1])];
        let mut dual = v6only.clone();
        dual[0].socket.dual_stack = true;
        assert_eq!(
            kinds(diff(&v6only, &dual, at(1))),
            [EventKind::Gone, EventKind::Appeared]
        );
    }

    #[test]
    fn reuseport_sockets_match_by_owner_first() {
        // Two sockets on one identity; one worker is replaced, one more added.
        let old = vec![
            l(Proto::Udp, "0.0.0.0", 5353, &[10]),
            l(Proto::Udp, "0.0.0.0", 5353, &[11]),
        ];
        let new = vec![
            l(Proto::Udp, "0.0.0.0", 5353, &[11]),
            l(Proto::Udp, "0.0.0.0", 5353, &[12]),
            l(Proto::Udp, "0.0.0.0", 5353, &[13]),
        ];
        assert_eq!(
            summary(&diff(&old, &new, at(1))),
            vec![
                (EventKind::OwnerChanged, 5353, vec![12], Some(vec![10])),
                (EventKind::Appeared, 5353, vec![13], None),
            ]
        );
        assert_eq!(
            summary(&diff(&new, &old, at(1))),
            vec![
                (EventKind::Gone, 5353, vec![13], None),
                (EventKind::OwnerChanged, 5353, vec![10], Some(vec![12])),
            ]
        );
    }

    #[test]
    fn events_come_in_report_order() {
        let new = vec![
            l(Proto::Tcp, "0.0.0.0", 443, &[1]),
            l(Proto::Tcp, "0.0.0.0", 22, &[1]),
            l(Proto::Udp, "0.0.0.0", 53, &[1]),
        ];
        let ports: Vec<u16> = diff(&[], &new, at(1))
            .iter()
            .map(|e| e.listener.socket.port)
            .collect();
        assert_eq!(ports, [22, 443, 53]);
        let initial = present(&new, at(0));
        assert!(initial.iter().all(|e| e.kind == EventKind::Present));
        assert_eq!(initial.len(), 3);
    }

    #[test]
    fn history_keeps_newest_first_and_marks_recent_rounds() {
        let mut h = History::new(2);
        let web = l(Proto::Tcp, "0.0.0.0", 80, &[1]);
        h.record(1, &present(std::slice::from_ref(&web), at(0)));
        assert_eq!(h.events().count(), 0, "the initial state is not an event");
        assert_eq!(h.mark(1, &web), None);

        let ssh = l(Proto::Tcp, "0.0.0.0", 22, &[5]);
        let round2 = vec![web.clone(), ssh.clone()];
        h.record(2, &diff(std::slice::from_ref(&web), &round2, at(2)));
        assert_eq!(h.mark(2, &ssh), Some(EventKind::Appeared));
        assert_eq!(h.mark(2, &web), None);
        // Still marked for RECENT_ROUNDS rounds, then not.
        h.record(3, &[]);
        h.record(4, &[]);
        assert_eq!(h.mark(4, &ssh), Some(EventKind::Appeared));
        h.record(5, &[]);
        assert_eq!(h.mark(5, &ssh), None);

        let web2 = l(Proto::Tcp, "0.0.0.0", 80, &[2]);
        h.record(6, &diff(&round2, std::slice::from_ref(&web2), at(6)));
        assert_eq!(h.mark(6, &web2), Some(EventKind::OwnerChanged));
        // The old owners of the same identity are not the marked listener.
        assert_eq!(h.mark(6, &web), None);
        let kinds: Vec<EventKind> = h.events().map(|e| e.kind).collect();
        // Round 6 (gone 22, then owner-changed 80, in report order) pushed
        // round 2's event out of the two kept.
        assert_eq!(kinds, [EventKind::Gone, EventKind::OwnerChanged]);
        assert_eq!(h.total(), 3);
    }
}
