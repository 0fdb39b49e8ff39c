//! Counts over a set of classified listeners. Pure.

use crate::model::{FindingKind, Listener};
use serde::Serialize;
use std::collections::BTreeMap;

/// Totals shown at the end of a listing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Listeners counted.
    pub listeners: usize,
    /// Listeners with at least one finding.
    pub flagged: usize,
    /// Listeners per finding kind (a listener with two findings counts in both).
    pub findings: BTreeMap<FindingKind, usize>,
    /// Listeners whose owning process could not be seen.
    pub owners_not_visible: usize,
}

impl Summary {
    /// Counts `listeners`.
    pub fn of(listeners: &[Listener]) -> Summary {
        let mut s = Summary {
            listeners: listeners.len(),
            ..Summary::default()
        };
        for l in listeners {
            if !l.findings.is_empty() {
                s.flagged += 1;
            }
            for f in &l.findings {
                *s.findings.entry(*f).or_default() += 1;
            }
            if !l.socket.owner_visible() {
                s.owners_not_visible += 1;
            }
        }
        s
    }

    /// One line for people, e.g. "23 listeners, 3 flagged: 2 unassigned-port, 1 reserved-port".
    pub fn line(&self) -> String {
        let noun = if self.listeners == 1 {
            "listener"
        } else {
            "listeners"
        };
        let mut line = format!("{} {noun}, {} flagged", self.listeners, self.flagged);
        if !self.findings.is_empty() {
            let parts: Vec<String> = self
                .findings
                .iter()
                .map(|(k, n)| format!("{n} {}", k.as_str()))
                .collect();
            line.push_str(": ");
            line.push_str(&parts.join(", "));
        }
        line
    }
}
