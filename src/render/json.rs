//! `list --json`: one stable object, `schema_version` 1 (documented in README.md).

use crate::model::{Container, Listener, NetNs, NetNsSkipped, ProxyTarget, Report};
use crate::summary::Summary;
use serde::Serialize;
use std::io::{self, Write};

/// Version of the `list --json` schema; bumped only on incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    privileged: bool,
    listeners: Vec<JsonListener<'a>>,
    summary: Summary,
    netns_skipped: Vec<JsonSkipped<'a>>,
    warnings: &'a [String],
}

#[derive(Serialize)]
struct JsonSkipped<'a> {
    inode: u64,
    name: Option<&'a str>,
    pid: Option<u32>,
    reason: &'a str,
}

/// One listener as `list --json` writes it (also used by `watch --json`).
#[derive(Serialize)]
pub(crate) struct JsonListener<'a> {
    protocol: &'static str,
    address: String,
    port: u16,
    dual_stack: bool,
    exposure: &'static str,
    socket_uid: Option<u32>,
    socket_user: Option<&'a str>,
    inode: Option<u64>,
    owner_visible: bool,
    processes: Vec<JsonProcess<'a>>,
    registry: JsonRegistry<'a>,
    findings: Vec<&'static str>,
    netns: Option<&'a NetNs>,
}

#[derive(Serialize)]
struct JsonProcess<'a> {
    pid: u32,
    name: &'a str,
    user: Option<&'a str>,
    uid: Option<u32>,
    exe: Option<&'a str>,
    cmdline: &'a [String],
    unit: Option<&'a str>,
    container: Option<&'a Container>,
    proxy_for: Option<&'a ProxyTarget>,
}

#[derive(Serialize)]
struct JsonRegistry<'a> {
    status: &'static str,
    services: &'a [String],
    description: Option<&'a str>,
    range: &'static str,
}

/// The `list --json` object of `l`.
pub(crate) fn listener(l: &Listener) -> JsonListener<'_> {
    let s = &l.socket;
    JsonListener {
        protocol: s.proto.as_str(),
        address: s.address.to_string(),
        port: s.port,
        dual_stack: s.dual_stack,
        exposure: l.exposure.as_str(),
        socket_uid: s.uid,
        socket_user: s.user.as_deref(),
        inode: s.inode,
        owner_visible: s.owner_visible(),
        processes: s
            .processes
            .iter()
            .map(|p| JsonProcess {
                pid: p.pid,
                name: &p.name,
                user: p.user.as_deref(),
                uid: p.uid,
                exe: p.exe.as_deref(),
                cmdline: &p.cmdline,
                unit: p.unit.as_deref(),
                container: p.container.as_ref(),
                proxy_for: p.proxy_for.as_ref(),
            })
            .collect(),
        registry: JsonRegistry {
            status: l.registry.status.as_str(),
            services: &l.registry.services,
            description: l.registry.description.as_deref(),
            range: l.range.as_str(),
        },
        findings: l.findings.iter().map(|f| f.as_str()).collect(),
        netns: s.netns.as_ref(),
    }
}

/// Writes `report` (already filtered) as the `list --json` document, with
/// the network namespaces that could not be scanned and the scan's warnings
/// (both empty arrays when nothing degraded).
pub fn render(
    report: &Report,
    netns_skipped: &[NetNsSkipped],
    warnings: &[String],
    out: &mut dyn Write,
) -> io::Result<()> {
    let doc = Document {
        schema_version: SCHEMA_VERSION,
        privileged: report.privileged,
        listeners: report.listeners.iter().map(listener).collect(),
        summary: Summary::of(&report.listeners),
        netns_skipped: netns_skipped
            .iter()
            .map(|s| JsonSkipped {
                inode: s.netns.inode,
                name: s.netns.name.as_deref(),
                pid: s.netns.pid,
                reason: &s.reason,
            })
            .collect(),
        warnings,
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}
