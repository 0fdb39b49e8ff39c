//! `list --format csv`: RFC 4180 with a header row, for spreadsheets.
//! Multi-valued cells (several owning processes) are joined with `;`.
//!
//! Cells are written raw (the csv crate quotes as needed); a cell a
//! spreadsheet would read as a formula (`=`, `+`, `-`, `@` first) gets a
//! leading `'` so that a process name cannot run a formula when opened.

use super::display_address;
use crate::model::{Listener, Report};
use std::io::{self, Write};

const HEADER: [&str; 17] = [
    "protocol",
    "address",
    "port",
    "dual_stack",
    "exposure",
    "registry_status",
    "services",
    "description",
    "range",
    "owner_visible",
    "pids",
    "processes",
    "users",
    "exes",
    "cmdlines",
    "socket_uid",
    "findings",
];

fn defuse(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@']) {
        format!("'{cell}")
    } else {
        cell
    }
}

fn record(l: &Listener) -> [String; 17] {
    let s = &l.socket;
    let join = |f: &dyn Fn(&crate::model::Process) -> String| -> String {
        s.processes.iter().map(f).collect::<Vec<_>>().join(";")
    };
    [
        s.proto.as_str().to_string(),
        display_address(s.address, false),
        s.port.to_string(),
        s.dual_stack.to_string(),
        l.exposure.as_str().to_string(),
        l.registry.status.as_str().to_string(),
        defuse(l.registry.services.join(";")),
        defuse(l.registry.description.clone().unwrap_or_default()),
        l.range.as_str().to_string(),
        s.owner_visible().to_string(),
        join(&|p| p.pid.to_string()),
        defuse(join(&|p| p.name.clone())),
        defuse(join(&|p| p.user.clone().unwrap_or_default())),
        defuse(join(&|p| p.exe.clone().unwrap_or_default())),
        defuse(join(&|p| p.cmdline.join(" "))),
        s.uid.map(|u| u.to_string()).unwrap_or_default(),
        l.findings
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join(";"),
    ]
}

/// Writes the header and one record per listener.
pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut w = ::csv::Writer::from_writer(out);
    w.write_record(HEADER)?;
    for l in &report.listeners {
        w.write_record(record(l))?;
    }
    w.flush()
}
