//! `portwarden check --format json`: the whole evaluation as one object.
//!
//! ```text
//! {
//!   "schema_version": 1,
//!   "status": "ok" | "warning" | "critical",
//!   "policy": "/etc/portwarden/portwarden.toml" | null,   (null: built-in defaults)
//!   "baseline": "/root/.local/share/portwarden/baseline.json" | null,
//!   "privileged": bool,                                    (every owner was visible)
//!   "summary": { "listeners": N, "unexpected": N,          (unexpected: entries making check exit 1)
//!                "findings": { "<kind>": N, ... } },       (unexpected findings, every kind listed)
//!   "listeners": [ {
//!       "protocol": "tcp"|"udp", "address": "::1", "port": 22, "exposure": "loopback"|"wildcard"|"specific",
//!       "dual_stack": bool, "owner_visible": bool,
//!       "processes": [ { "pid", "name", "user", "uid", "exe", "cmdline": [..] } ],
//!       "registry": { "status", "services": [..], "description", "range" },
//!       "unexpected": bool,
//!       "expected_by": RULE | null,
//!       "findings": [ FINDING ] } ],
//!   "missing": [ { "protocol": "tcp"|"udp"|null, "port": 25, "expected": "OWNER", "rule": RULE, "finding": FINDING } ],
//!   "gone": [ { "protocol", "address", "port", "programs": [..], "users": [..], "finding": FINDING } ]
//! }
//! RULE    = { "kind": "allow"|"expect", "index": 1-based, "line": 1-based, "reason": string|null }
//! FINDING = { "finding": "<kind>", "severity": "info"|"warning"|"critical", "unexpected": bool,
//!             "waived_by": null | { "by": "rule", RULE fields } | { "by": "ignore-findings" }
//!                        | { "by": "dynamic-ports-expected" } | { "by": "ignore-loopback" },
//!             "expected": string|null, "detail": string|null }
//! ```

use crate::check::{Evaluation, Finding, RuleRef, Status, Waiver};
use crate::model::{Exposure, FindingKind, PortStatus, Process, Proto, RangeClass, Severity};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::Path;

/// Version of this JSON layout; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    status: Status,
    policy: Option<&'a Path>,
    baseline: Option<&'a Path>,
    privileged: bool,
    summary: Summary,
    listeners: Vec<ListenerView<'a>>,
    missing: Vec<MissingView<'a>>,
    gone: Vec<GoneView<'a>>,
}

#[derive(Serialize)]
struct Summary {
    listeners: usize,
    unexpected: usize,
    findings: BTreeMap<&'static str, usize>,
}

#[derive(Serialize)]
struct ListenerView<'a> {
    protocol: Proto,
    address: IpAddr,
    port: u16,
    exposure: Exposure,
    dual_stack: bool,
    owner_visible: bool,
    processes: &'a [Process],
    registry: RegistryView<'a>,
    unexpected: bool,
    expected_by: Option<&'a RuleRef>,
    findings: Vec<FindingView<'a>>,
}

#[derive(Serialize)]
struct RegistryView<'a> {
    status: PortStatus,
    services: &'a [String],
    description: Option<&'a str>,
    range: RangeClass,
}

#[derive(Serialize)]
struct FindingView<'a> {
    finding: FindingKind,
    severity: Severity,
    unexpected: bool,
    waived_by: Option<&'a Waiver>,
    expected: Option<&'a str>,
    detail: Option<&'a str>,
}

impl<'a> From<&'a Finding> for FindingView<'a> {
    fn from(f: &'a Finding) -> Self {
        FindingView {
            finding: f.kind,
            severity: f.severity,
            unexpected: f.unexpected(),
            waived_by: f.waived.as_ref(),
            expected: f.expected.as_deref(),
            detail: f.detail.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct MissingView<'a> {
    protocol: Option<Proto>,
    port: u16,
    expected: &'a str,
    rule: &'a RuleRef,
    finding: FindingView<'a>,
}

#[derive(Serialize)]
struct GoneView<'a> {
    protocol: Proto,
    address: IpAddr,
    port: u16,
    programs: &'a [String],
    users: &'a [String],
    finding: FindingView<'a>,
}

/// Writes the evaluation as one pretty-printed JSON object and a newline.
pub fn render(evaluation: &Evaluation, out: &mut dyn Write) -> io::Result<()> {
    let document = Document {
        schema_version: SCHEMA_VERSION,
        status: evaluation.status(),
        policy: evaluation.policy.as_deref(),
        baseline: evaluation.baseline.as_deref(),
        privileged: evaluation.privileged,
        summary: Summary {
            listeners: evaluation.listeners.len(),
            unexpected: evaluation.unexpected_count(),
            findings: evaluation
                .unexpected_by_kind()
                .into_iter()
                .map(|(k, n)| (k.as_str(), n))
                .collect(),
        },
        listeners: evaluation
            .listeners
            .iter()
            .map(|v| {
                let l = &v.listener;
                ListenerView {
                    protocol: l.socket.proto,
                    address: l.socket.address,
                    port: l.socket.port,
                    exposure: l.exposure,
                    dual_stack: l.socket.dual_stack,
                    owner_visible: l.socket.owner_visible(),
                    processes: &l.socket.processes,
                    registry: RegistryView {
                        status: l.registry.status,
                        services: &l.registry.services,
                        description: l.registry.description.as_deref(),
                        range: l.range,
                    },
                    unexpected: v.unexpected(),
                    expected_by: v.expected_by.as_ref(),
                    findings: v.findings.iter().map(FindingView::from).collect(),
                }
            })
            .collect(),
        missing: evaluation
            .missing
            .iter()
            .map(|m| MissingView {
                protocol: m.protocol,
                port: m.port,
                expected: &m.expected,
                rule: &m.rule,
                finding: FindingView::from(&m.finding),
            })
            .collect(),
        gone: evaluation
            .gone
            .iter()
            .map(|g| GoneView {
                protocol: g.identity.protocol,
                address: g.identity.address,
                port: g.identity.port,
                programs: &g.identity.programs,
                users: &g.identity.users,
                finding: FindingView::from(&g.finding),
            })
            .collect(),
    };
    serde_json::to_writer_pretty(&mut *out, &document).map_err(io::Error::from)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::check_text::tests::{ok_sample, sample};
    use serde_json::{json, Value};

    fn document(e: &Evaluation) -> Value {
        let mut out = Vec::new();
        render(e, &mut out).unwrap();
        assert!(out.ends_with(b"}\n"));
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn whole_evaluation_is_documented_json() {
        let doc = document(&sample());
        assert_eq!(doc["schema_version"], 1);
        assert_eq!(doc["status"], "critical");
        assert_eq!(doc["policy"], "/etc/portwarden/portwarden.toml");
        assert_eq!(doc["baseline"], "/var/lib/portwarden/baseline.json");
        assert_eq!(doc["privileged"], true);
        assert_eq!(doc["summary"]["listeners"], 4);
        assert_eq!(doc["summary"]["unexpected"], 5);
        assert_eq!(doc["summary"]["findings"]["new-listener"], 2);
        assert_eq!(doc["summary"]["findings"]["dynamic-port"], 0);
        assert_eq!(doc["summary"]["findings"].as_object().unwrap().len(), 8);

        let hijacked = &doc["listeners"][0];
        assert_eq!(hijacked["protocol"], "tcp");
        assert_eq!(hijacked["address"], "0.0.0.0");
        assert_eq!(hijacked["port"], 22);
        assert_eq!(hijacked["exposure"], "wildcard");
        assert_eq!(hijacked["owner_visible"], true);
        assert_eq!(hijacked["processes"][0]["exe"], "/tmp/sshd");
        assert_eq!(hijacked["registry"]["range"], "system");
        assert_eq!(hijacked["unexpected"], true);
        assert_eq!(hijacked["findings"][0]["finding"], "unexpected-owner");
        assert_eq!(hijacked["findings"][0]["severity"], "critical");
        assert_eq!(hijacked["findings"][0]["expected"], "/usr/sbin/sshd");

        let hostile = &doc["listeners"][1];
        assert_eq!(hostile["processes"][0]["name"], "ev il\u{1b}[31m\"\\");

        let x11 = &doc["listeners"][2];
        assert_eq!(x11["unexpected"], false);
        assert_eq!(
            x11["expected_by"],
            json!({"kind": "allow", "index": 1, "line": 1, "reason": "X11"})
        );
        assert_eq!(
            x11["findings"][0]["waived_by"],
            json!({"by": "rule", "kind": "allow", "index": 1, "line": 1, "reason": "X11"})
        );

        let dynamic = &doc["listeners"][3];
        assert_eq!(dynamic["owner_visible"], false);
        assert_eq!(dynamic["findings"][0]["finding"], "dynamic-port");
        assert_eq!(
            dynamic["findings"][0]["waived_by"],
            json!({"by": "dynamic-ports-expected"})
        );

        assert_eq!(doc["missing"][0]["port"], 25);
        assert_eq!(doc["missing"][0]["protocol"], "tcp");
        assert_eq!(doc["missing"][0]["expected"], "master");
        assert_eq!(doc["missing"][0]["rule"]["kind"], "expect");
        assert_eq!(doc["missing"][0]["finding"]["finding"], "missing-expected");
        assert_eq!(doc["gone"].as_array().unwrap().len(), 2);
        assert_eq!(doc["gone"][1]["address"], "::");
        assert_eq!(doc["gone"][1]["programs"][0], "/usr/sbin/avahi-daemon");
        assert_eq!(doc["gone"][1]["finding"]["unexpected"], true);
    }

    #[test]
    fn ok_evaluation() {
        let doc = document(&ok_sample());
        assert_eq!(doc["status"], "ok");
        assert_eq!(doc["policy"], Value::Null);
        assert_eq!(doc["baseline"], Value::Null);
        assert_eq!(doc["summary"]["unexpected"], 0);
        assert_eq!(doc["missing"], json!([]));
        assert_eq!(doc["gone"], json!([]));
    }
}
