//! `list --format plain`: one listener per line, nine space-separated
//! fields, no header, no colour, for grep and awk:
//!
//! `PROTO ADDRESS PORT STATUS SERVICES PIDS PROCESSES USERS FINDINGS`
//!
//! Empty fields are `-`; lists inside a field are comma-separated; spaces
//! inside untrusted text are written `\x20` so the field count never changes.

use super::{findings_cell, owner_cells};
use crate::model::Report;
use crate::sanitize::sanitize;
use std::io::{self, Write};

fn field(s: &str) -> String {
    if s.is_empty() {
        return "-".to_string();
    }
    sanitize(s).replace(' ', "\\x20")
}

/// Writes one line per listener.
pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    for l in &report.listeners {
        let s = &l.socket;
        let owners = owner_cells(l);
        let process = if s.owner_visible() {
            field(&owners.process)
        } else {
            "?".to_string()
        };
        writeln!(
            out,
            "{} {} {} {} {} {} {} {} {}",
            s.proto,
            if s.dual_stack {
                "*".to_string()
            } else {
                s.address.to_string()
            },
            s.port,
            l.registry.status.as_str(),
            field(&l.registry.services.join(",")),
            owners.pids,
            process,
            field(&owners.user),
            findings_cell(l),
        )?;
    }
    Ok(())
}
