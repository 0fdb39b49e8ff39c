//! Output of `portwarden port`: text for people, and a stable JSON object.
//!
//! # JSON (schema_version 1)
//!
//! ```text
//! {
//!   "schema_version": 1,
//!   "query": {"input": "6003", "kind": "port"|"range"|"service",
//!             "low": 6003|null, "high": 6003|null, "service": null|"ssh"},
//!   "range_classes": ["user"],             // classes the port(s) fall in
//!   "ephemeral_range": {"low": 32768, "high": 60999} | null,   // null: unknown on this OS
//!   "in_ephemeral_range": false | null,    // any queried port inside it
//!   "ports": [                             // null for a range query
//!     {"port": 6003, "range_class": "user", "ephemeral": false|null,
//!      "protocols": [{"protocol": "tcp", "status": "assigned", "services": ["x11"]}, ...]}
//!   ],
//!   "entries": [                           // registry rows, IANA's columns
//!     {"protocol": "tcp"|null (null: every protocol), "low": 6000|null, "high": 6063|null,
//!      "status": "assigned"|"reserved"|"unassigned"|"deregistered",
//!      "service", "description", "assignee", "contact", "registration_date",
//!      "modification_date", "reference", "service_code", "unauthorized_use",
//!      "notes": string|null}
//!   ],
//!   "listeners": [                         // null when no scan was made
//!     {"protocol": "tcp", "address": "127.0.0.1", "port": 6003, "exposure": "loopback",
//!      "owner_visible": true, "processes": [{"pid": 1, "name": "x", "user": "root"|null}],
//!      "netns": null|{"inode": 4026532281, "name": "web"|null, "pid": 812|null}}
//!   ]
//! }
//! ```

use crate::model::{Listener, RangeClass};
use crate::registry::{EntryRef, Explanation, PortAnswer, Query};
use crate::sanitize::sanitize;
use serde_json::{json, Value};
use std::io::{self, Write};

/// Version of the JSON object; bumped only on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// Writes the explanation as the JSON object documented above.
pub fn json(ex: &Explanation<'_>, out: &mut dyn Write) -> io::Result<()> {
    let value = to_json(ex);
    serde_json::to_writer_pretty(&mut *out, &value)?;
    writeln!(out)
}

/// The JSON value of an explanation.
pub fn to_json(ex: &Explanation<'_>) -> Value {
    let (kind, service) = match &ex.query {
        Query::Port(_) => ("port", None),
        Query::Range(..) => ("range", None),
        Query::Service(s) => ("service", Some(s.as_str())),
    };
    let bounds = ex.bounds();
    json!({
        "schema_version": SCHEMA_VERSION,
        "query": {
            "input": ex.input,
            "kind": kind,
            "low": bounds.map(|b| b.0),
            "high": bounds.map(|b| b.1),
            "service": service,
        },
        "range_classes": ex.range_classes(),
        "ephemeral_range": ex.ephemeral_range.map(|(l, h)| json!({"low": l, "high": h})),
        "in_ephemeral_range": ex.in_ephemeral_range(),
        "ports": ex.ports.as_ref().map(|ports| ports.iter().map(port_json).collect::<Vec<_>>()),
        "entries": ex.entries.iter().map(|e| entry_json(e)).collect::<Vec<_>>(),
        "listeners": ex.listeners.as_ref().map(|ls| ls.iter().map(|l| listener_json(l)).collect::<Vec<_>>()),
    })
}

fn port_json(p: &PortAnswer) -> Value {
    json!({
        "port": p.port,
        "range_class": p.range,
        "ephemeral": p.ephemeral,
        "protocols": p.protocols.iter().map(|a| json!({
            "protocol": a.protocol,
            "status": a.status,
            "services": a.services,
        })).collect::<Vec<_>>(),
    })
}

/// One registry row as JSON (null where IANA has nothing).
pub fn entry_json(e: &EntryRef<'_>) -> Value {
    json!({
        "protocol": e.protocol(),
        "low": e.low(),
        "high": e.high(),
        "status": e.status(),
        "service": e.service(),
        "description": e.description(),
        "assignee": e.assignee(),
        "contact": e.contact(),
        "registration_date": e.registration_date(),
        "modification_date": e.modification_date(),
        "reference": e.reference(),
        "service_code": e.service_code(),
        "unauthorized_use": e.unauthorized_use(),
        "notes": e.notes(),
    })
}

fn listener_json(l: &Listener) -> Value {
    json!({
        "protocol": l.socket.proto,
        "address": l.socket.address.to_string(),
        "port": l.socket.port,
        "exposure": l.exposure,
        "owner_visible": l.socket.owner_visible(),
        "processes": l.socket.processes.iter().map(|p| json!({
            "pid": p.pid, "name": p.name, "user": p.user,
        })).collect::<Vec<_>>(),
        "netns": l.socket.netns,
    })
}

fn class_text(c: RangeClass) -> &'static str {
    match c {
        RangeClass::System => "system port (0-1023)",
        RangeClass::User => "user port (1024-49151)",
        RangeClass::Dynamic => "dynamic port (49152-65535)",
    }
}

fn ephemeral_text(inside: Option<bool>, range: Option<(u16, u16)>) -> String {
    match (inside, range) {
        (Some(true), Some((l, h))) => format!("in this system's ephemeral range ({l}-{h})"),
        (Some(false), Some((l, h))) => format!("not in this system's ephemeral range ({l}-{h})"),
        _ => "ephemeral range of this system unknown".to_string(),
    }
}

fn write_port_block(
    out: &mut dyn Write,
    p: &PortAnswer,
    range: Option<(u16, u16)>,
) -> io::Result<()> {
    writeln!(
        out,
        "port {}: {}, {}",
        p.port,
        class_text(p.range),
        ephemeral_text(p.ephemeral, range)
    )?;
    for a in &p.protocols {
        let services = if a.services.is_empty() {
            String::new()
        } else {
            format!(": {}", sanitize(&a.services.join(", ")))
        };
        writeln!(
            out,
            "  {:<5} {}{}",
            a.protocol.as_str(),
            a.status.as_str(),
            services
        )?;
    }
    Ok(())
}

fn protocol_text(e: &EntryRef<'_>) -> &'static str {
    e.protocol().map_or("all protocols", |p| p.as_str())
}

fn write_entry_detail(out: &mut dyn Write, e: &EntryRef<'_>) -> io::Result<()> {
    let ports = e.ports_text();
    let head = match (e.service(), ports.is_empty()) {
        (Some(s), false) => format!("{} {}/{}", sanitize(s), ports, protocol_text(e)),
        (Some(s), true) => format!("{} (no port), {}", sanitize(s), protocol_text(e)),
        (None, _) => format!("{}/{}", ports, protocol_text(e)),
    };
    let head = head.replace("/all protocols", ", all protocols");
    writeln!(out, "  {head} [{}]", e.status().as_str())?;
    let fields: [(&str, Option<&str>); 9] = [
        ("description", e.description()),
        ("assignee", e.assignee()),
        ("contact", e.contact()),
        ("registered", e.registration_date()),
        ("modified", e.modification_date()),
        ("reference", e.reference()),
        ("service code", e.service_code()),
        ("unauthorized use reported", e.unauthorized_use()),
        ("note", e.notes()),
    ];
    for (label, value) in fields {
        if let Some(v) = value {
            let mut lines = v.lines().map(str::trim).filter(|l| !l.is_empty());
            if let Some(first) = lines.next() {
                writeln!(out, "      {label}: {}", sanitize(first))?;
            }
            for more in lines {
                writeln!(out, "        {}", sanitize(more))?;
            }
        }
    }
    Ok(())
}

fn write_entry_line(out: &mut dyn Write, e: &EntryRef<'_>, width: usize) -> io::Result<()> {
    let description = e.description().and_then(|d| d.lines().next()).unwrap_or("");
    writeln!(
        out,
        "  {:<width$}  {:<5} {:<12}  {:<16}  {}",
        e.ports_text(),
        e.protocol().map_or("all", |p| p.as_str()),
        e.status().as_str(),
        sanitize(e.service().unwrap_or("-")),
        sanitize(description.trim()),
    )
}

fn write_listeners(out: &mut dyn Write, ex: &Explanation<'_>) -> io::Result<()> {
    let Some(listeners) = &ex.listeners else {
        return writeln!(out, "listening now: not scanned");
    };
    if listeners.is_empty() {
        return writeln!(out, "listening now: nothing");
    }
    writeln!(out, "listening now:")?;
    for l in listeners {
        let address = match l.socket.address {
            std::net::IpAddr::V6(a) => format!("[{a}]:{}", l.socket.port),
            a => format!("{a}:{}", l.socket.port),
        };
        let owners = if l.socket.processes.is_empty() {
            "owner not visible".to_string()
        } else {
            l.socket
                .processes
                .iter()
                .map(|p| {
                    format!(
                        "pid {} {} ({})",
                        p.pid,
                        sanitize(&super::attributed_name(p)),
                        sanitize(p.user.as_deref().unwrap_or("?"))
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        // Another network namespace is named after the owners.
        let netns = match &l.socket.netns {
            Some(ns) => format!(" in netns {}", sanitize(&ns.label())),
            None => String::new(),
        };
        writeln!(
            out,
            "  {:<4} {:<24} {}{netns}",
            l.socket.proto.as_str(),
            address,
            owners
        )?;
    }
    Ok(())
}

/// Writes the explanation for people.
pub fn text(ex: &Explanation<'_>, out: &mut dyn Write) -> io::Result<()> {
    match &ex.query {
        Query::Port(_) | Query::Service(_) => {
            if let Query::Service(name) = &ex.query {
                let n = ex.ports.as_ref().map_or(0, Vec::len);
                writeln!(
                    out,
                    "service {}: {} port{}",
                    sanitize(name),
                    n,
                    if n == 1 { "" } else { "s" }
                )?;
            }
            for p in ex.ports.iter().flatten() {
                write_port_block(out, p, ex.ephemeral_range)?;
            }
            writeln!(out)?;
            if ex.entries.is_empty() {
                writeln!(out, "registry entries: none (IANA does not list this port)")?;
            } else {
                writeln!(out, "registry entries:")?;
                for e in &ex.entries {
                    write_entry_detail(out, e)?;
                }
            }
        }
        Query::Range(low, high) => {
            let classes: Vec<&str> = ex
                .range_classes()
                .into_iter()
                .map(RangeClass::as_str)
                .collect();
            writeln!(
                out,
                "ports {low}-{high}: {} ports, {}",
                classes.join(" and "),
                ephemeral_text(ex.in_ephemeral_range(), ex.ephemeral_range)
                    .replace("in this", "overlapping this")
                    .replace("not overlapping", "not in")
            )?;
            writeln!(out)?;
            writeln!(out, "registry entries ({}):", ex.entries.len())?;
            let width = ex
                .entries
                .iter()
                .map(|e| e.ports_text().len())
                .max()
                .unwrap_or(0);
            for e in &ex.entries {
                write_entry_line(out, e, width)?;
            }
        }
    }
    writeln!(out)?;
    write_listeners(out, ex)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Exposure, PortStatus, Process, RegistryInfo, Socket};
    use crate::registry::{explain, Registry};

    fn listener(port: u16, name: &str) -> Listener {
        let address = "127.0.0.1".parse().unwrap();
        Listener {
            socket: Socket {
                proto: crate::model::Proto::Tcp,
                address,
                port,
                dual_stack: false,
                uid: Some(0),
                user: Some("root".to_string()),
                inode: Some(1),
                processes: vec![Process {
                    pid: 4242,
                    name: name.to_string(),
                    user: Some("root".to_string()),
                    uid: Some(0),
                    exe: None,
                    cmdline: Vec::new(),
                    unit: None,
                    container: None,
                    proxy_for: None,
                }],
                netns: None,
            },
            exposure: Exposure::of(address),
            range: RangeClass::of(port),
            registry: RegistryInfo {
                status: PortStatus::Assigned,
                services: vec!["ssh".to_string()],
                description: None,
            },
            findings: Vec::new(),
        }
    }

    #[test]
    fn listeners_are_shown_and_escaped() {
        let registry = Registry::embedded();
        let listeners = [listener(22, "sshd\u{1b}[31m"), listener(23, "telnetd")];
        let ex = explain(&registry, "22", Some(&listeners), None).unwrap();
        let mut out = Vec::new();
        text(&ex, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("port 22: system port (0-1023), ephemeral range of this system unknown"),
            "{out}"
        );
        assert!(out.contains("  tcp   assigned: ssh"), "{out}");
        assert!(out.contains("listening now:\n  tcp  127.0.0.1:22"), "{out}");
        assert!(out.contains("pid 4242 sshd\\e[31m (root)"), "{out}");

        assert!(!out.contains('\u{1b}'));
        assert!(!out.contains("telnetd"));

        let v = to_json(&ex);
        assert_eq!(v["listeners"][0]["processes"][0]["name"], "sshd\u{1b}[31m");
        assert_eq!(v["listeners"][0]["exposure"], "loopback");
        assert_eq!(v["listeners"].as_array().unwrap().len(), 1);
        assert_eq!(v["ephemeral_range"], Value::Null);

        // The unit an owner runs in follows its name.
        let mut with_unit = listener(22, "sshd");
        with_unit.socket.processes[0].unit = Some("ssh.service".to_string());
        let with_unit = [with_unit];
        let ex = explain(&registry, "22", Some(&with_unit), None).unwrap();
        let mut out = Vec::new();
        text(&ex, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("pid 4242 sshd (ssh.service) (root)"), "{out}");
    }

    #[test]
    fn unscanned_and_empty_listeners_differ() {
        let registry = Registry::embedded();
        let mut out = Vec::new();
        text(&explain(&registry, "1596", None, None).unwrap(), &mut out).unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("listening now: not scanned\n"));
        let mut out = Vec::new();
        text(
            &explain(&registry, "1596", Some(&[]), None).unwrap(),
            &mut out,
        )
        .unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.ends_with("listening now: nothing\n"), "{out}");
        assert!(out.contains("radio-sm 1596/tcp [assigned]"), "{out}");
    }
}
