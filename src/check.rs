//! Pure evaluation for `portwarden check`: a classified [`Report`], a
//! [`Policy`] and an optional [`Baseline`] in, an [`Evaluation`] out.
//!
//! Every finding is kept; each is either *unexpected* (it counts: `check`
//! exits 1) or *waived* with the reason, in this order:
//!
//! 1. `unexpected-owner` and `missing-expected` (from `[[expect]]` rules)
//!    are never waived by allow rules;
//! 2. a listener matched by an `[[allow]]` rule, or on an `[[expect]]` port
//!    with the expected owner, is expected: its registry findings and
//!    `new-listener` are waived; so is the `gone-listener` of a baseline
//!    entry an allow rule matches (allowed means it may come and go; an
//!    `[[expect]]` rule is how to say it must stay);
//! 3. kinds listed in `settings.ignore_findings` are waived;
//! 4. `dynamic-port` is waived unless `settings.dynamic_ports_unexpected`;
//! 5. with `settings.ignore_loopback`, every finding of a loopback listener
//!    except `unexpected-owner`, and `gone-listener` entries on loopback, are waived.
//!
//! The overall [`Status`] is `critical` if any unexpected finding is critical
//! (`missing-expected`, `unexpected-owner`), else `warning` if anything is
//! unexpected (every other kind, `dynamic-port` included when it counts),
//! else `ok`.

use crate::baseline::{Baseline, Identity};
use crate::model::{Exposure, FindingKind, Listener, Proto, Report, Severity};
use crate::policy::{ExpectRule, Policy};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Every finding kind, in their stable output order.
pub const ALL_FINDINGS: [FindingKind; 8] = [
    FindingKind::UnassignedPort,
    FindingKind::ReservedPort,
    FindingKind::DeregisteredPort,
    FindingKind::DynamicPort,
    FindingKind::MissingExpected,
    FindingKind::UnexpectedOwner,
    FindingKind::NewListener,
    FindingKind::GoneListener,
];

/// Overall outcome of a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing unexpected.
    Ok,
    /// Something unexpected, nothing critical.
    Warning,
    /// A critical finding: an expected listener is missing or has another owner.
    Critical,
}

impl Status {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Critical => "critical",
        }
    }
}

/// Which kind of policy rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// An `[[allow]]` rule.
    Allow,
    /// An `[[expect]]` rule.
    Expect,
}

/// A reference to one rule of the policy file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    /// Allow or expect.
    pub kind: RuleKind,
    /// 1-based position among the rules of its kind.
    pub index: usize,
    /// 1-based line in the policy file.
    pub line: usize,
    /// The rule's `reason`, if any.
    pub reason: Option<String>,
}

impl RuleRef {
    fn expect(rule: &ExpectRule) -> RuleRef {
        RuleRef {
            kind: RuleKind::Expect,
            index: rule.index,
            line: rule.line,
            reason: rule.reason.clone(),
        }
    }
}

/// Why a finding does not count as unexpected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "kebab-case")]
pub enum Waiver {
    /// The listener matches this allow or expect rule.
    Rule(RuleRef),
    /// The kind is in `settings.ignore_findings`.
    IgnoreFindings,
    /// `dynamic-port` while `settings.dynamic_ports_unexpected` is false.
    DynamicPortsExpected,
    /// A loopback listener while `settings.ignore_loopback` is true.
    IgnoreLoopback,
}

impl Waiver {
    /// A short human explanation.
    pub fn describe(&self) -> String {
        match self {
            Waiver::Rule(r) => {
                let kind = match r.kind {
                    RuleKind::Allow => "allow",
                    RuleKind::Expect => "expect",
                };
                format!("{kind} rule {} (line {})", r.index, r.line)
            }
            Waiver::IgnoreFindings => "settings.ignore_findings".to_string(),
            Waiver::DynamicPortsExpected => "settings.dynamic_ports_unexpected = false".to_string(),
            Waiver::IgnoreLoopback => "settings.ignore_loopback = true".to_string(),
        }
    }
}

/// One finding with its verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What was found.
    pub kind: FindingKind,
    /// How much it matters ([`FindingKind::severity`]).
    pub severity: Severity,
    /// Why it does not count; `None` means it is unexpected.
    pub waived: Option<Waiver>,
    /// The expected owner, for `unexpected-owner` and `missing-expected`.
    pub expected: Option<String>,
    /// Extra context in words.
    pub detail: Option<String>,
}

impl Finding {
    fn new(kind: FindingKind, detail: Option<String>) -> Finding {
        Finding {
            kind,
            severity: kind.severity(),
            waived: None,
            expected: None,
            detail,
        }
    }

    /// Whether the finding counts.
    pub fn unexpected(&self) -> bool {
        self.waived.is_none()
    }
}

/// A present listener and its verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerVerdict {
    /// The classified listener.
    pub listener: Listener,
    /// The rule that makes it expected, if any.
    pub expected_by: Option<RuleRef>,
    /// All findings, sorted by kind.
    pub findings: Vec<Finding>,
}

impl ListenerVerdict {
    /// Whether any finding counts.
    pub fn unexpected(&self) -> bool {
        self.findings.iter().any(Finding::unexpected)
    }

    /// The findings that count.
    pub fn unexpected_findings(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.unexpected())
    }
}

/// An `[[expect]]` rule nothing satisfies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingVerdict {
    /// The rule's port.
    pub port: u16,
    /// The rule's protocol; `None` for either.
    pub protocol: Option<Proto>,
    /// The expected owner, as [`ExpectRule::owner_description`] gives it.
    pub expected: String,
    /// The rule.
    pub rule: RuleRef,
    /// The `missing-expected` finding.
    pub finding: Finding,
}

/// A baseline entry that no longer listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoneVerdict {
    /// The baseline entry.
    pub identity: Identity,
    /// The `gone-listener` finding.
    pub finding: Finding,
}

/// The outcome of `portwarden check`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    /// Every present listener, in report order.
    pub listeners: Vec<ListenerVerdict>,
    /// Expect rules nothing satisfies.
    pub missing: Vec<MissingVerdict>,
    /// Baseline entries no longer listening.
    pub gone: Vec<GoneVerdict>,
    /// Whether the scan could see every owner.
    pub privileged: bool,
    /// The policy file used; `None` for the defaults.
    pub policy: Option<PathBuf>,
    /// The baseline file compared with, set by the caller.
    pub baseline: Option<PathBuf>,
}

impl Evaluation {
    /// Every finding that counts, with the listener it belongs to (if present).
    fn unexpected_findings(&self) -> impl Iterator<Item = &Finding> {
        self.listeners
            .iter()
            .flat_map(|l| l.unexpected_findings())
            .chain(
                self.missing
                    .iter()
                    .map(|m| &m.finding)
                    .filter(|f| f.unexpected()),
            )
            .chain(
                self.gone
                    .iter()
                    .map(|g| &g.finding)
                    .filter(|f| f.unexpected()),
            )
    }

    /// Overall status (see the module documentation).
    pub fn status(&self) -> Status {
        self.unexpected_findings()
            .map(|f| match f.severity {
                Severity::Critical => Status::Critical,
                Severity::Warning | Severity::Info => Status::Warning,
            })
            .max()
            .unwrap_or(Status::Ok)
    }

    /// Present listeners with at least one unexpected finding.
    pub fn unexpected_listeners(&self) -> impl Iterator<Item = &ListenerVerdict> {
        self.listeners.iter().filter(|l| l.unexpected())
    }

    /// Missing expected listeners that count.
    pub fn unexpected_missing(&self) -> impl Iterator<Item = &MissingVerdict> {
        self.missing.iter().filter(|m| m.finding.unexpected())
    }

    /// Gone baseline listeners that count.
    pub fn unexpected_gone(&self) -> impl Iterator<Item = &GoneVerdict> {
        self.gone.iter().filter(|g| g.finding.unexpected())
    }

    /// Entries that make `check` exit 1: unexpected present listeners, plus
    /// missing expected listeners and gone baseline listeners that count.
    pub fn unexpected_count(&self) -> usize {
        self.unexpected_listeners().count()
            + self.unexpected_missing().count()
            + self.unexpected_gone().count()
    }

    /// Unexpected findings per kind; every kind is present, most with 0.
    pub fn unexpected_by_kind(&self) -> BTreeMap<FindingKind, usize> {
        let mut counts: BTreeMap<FindingKind, usize> =
            ALL_FINDINGS.iter().map(|&k| (k, 0)).collect();
        for f in self.unexpected_findings() {
            *counts.entry(f.kind).or_insert(0) += 1;
        }
        counts
    }
}

/// Evaluates a report against a policy and, optionally, a baseline.
pub fn evaluate(report: &Report, policy: &Policy, baseline: Option<&Baseline>) -> Evaluation {
    let settings = &policy.settings;
    let ignored: BTreeSet<FindingKind> = settings.ignore_findings.iter().copied().collect();

    // Expect rules: which listeners are covered, and which rules are satisfied.
    let mut satisfied = vec![false; policy.expect.len()];
    let mut listeners = Vec::with_capacity(report.listeners.len());
    let mut owner_flagged = vec![false; policy.expect.len()];

    for listener in &report.listeners {
        let socket = &listener.socket;
        let mut findings: Vec<Finding> = listener
            .findings
            .iter()
            .map(|&k| Finding::new(k, None))
            .collect();

        let covering: Vec<(usize, &ExpectRule)> = policy
            .expect
            .iter()
            .enumerate()
            .filter(|(_, r)| r.covers(socket))
            .collect();
        let owner_match = covering.iter().find(|(_, r)| r.owner_matches(socket));
        for (i, rule) in &covering {
            if rule.owner_matches(socket) {
                satisfied[*i] = true;
            }
        }
        if let (None, Some((_, first))) = (owner_match, covering.first()) {
            for (i, _) in &covering {
                owner_flagged[*i] = true;
            }
            let why = if socket.owner_visible() {
                format!("expected {}", first.owner_description())
            } else {
                format!(
                    "expected {}; owner not visible (run as root to see it)",
                    first.owner_description()
                )
            };
            let mut finding = Finding::new(
                FindingKind::UnexpectedOwner,
                Some(format!(
                    "{why} (expect rule {}, line {})",
                    first.index, first.line
                )),
            );
            finding.expected = Some(first.owner_description());
            findings.push(finding);
        }

        if let Some(baseline) = baseline {
            if !baseline.contains(&Identity::of(listener)) {
                findings.push(Finding::new(FindingKind::NewListener, None));
            }
        }

        let expected_by = policy
            .allow
            .iter()
            .find(|r| r.matches(listener))
            .map(|r| RuleRef {
                kind: RuleKind::Allow,
                index: r.index,
                line: r.line,
                reason: r.reason.clone(),
            })
            .or_else(|| owner_match.map(|(_, r)| RuleRef::expect(r)));

        for finding in &mut findings {
            finding.waived = waiver(
                finding.kind,
                listener.exposure,
                expected_by.as_ref(),
                settings,
                &ignored,
            );
        }
        findings.sort_by_key(|f| f.kind);
        findings.dedup_by_key(|f| f.kind);
        listeners.push(ListenerVerdict {
            listener: listener.clone(),
            expected_by,
            findings,
        });
    }

    let missing = policy
        .expect
        .iter()
        .enumerate()
        // A rule whose port is held by a wrong owner is already reported as
        // `unexpected-owner`; missing means no right owner and no such report.
        .filter(|(i, _)| !satisfied[*i] && !owner_flagged[*i])
        .map(|(_, rule)| {
            let anything = report.listeners.iter().any(|l| rule.covers(&l.socket));
            let proto = rule.protocol.map_or("tcp/udp", Proto::as_str);
            let detail = if anything {
                format!(
                    "{proto} port {} is not held by {}",
                    rule.port,
                    rule.owner_description()
                )
            } else {
                format!("nothing listens on {proto} port {}", rule.port)
            };
            let mut finding = Finding::new(FindingKind::MissingExpected, Some(detail));
            finding.expected = Some(rule.owner_description());
            if ignored.contains(&FindingKind::MissingExpected) {
                finding.waived = Some(Waiver::IgnoreFindings);
            }
            MissingVerdict {
                port: rule.port,
                protocol: rule.protocol,
                expected: rule.owner_description(),
                rule: RuleRef::expect(rule),
                finding,
            }
        })
        .collect();

    let gone = match baseline {
        None => Vec::new(),
        Some(baseline) => {
            let present: BTreeSet<Identity> = report.listeners.iter().map(Identity::of).collect();
            baseline
                .listeners
                .iter()
                .filter(|id| !present.contains(*id))
                .map(|id| {
                    let mut finding = Finding::new(FindingKind::GoneListener, None);
                    if let Some(rule) = policy.allow.iter().find(|r| r.matches_identity(id)) {
                        finding.waived = Some(Waiver::Rule(RuleRef {
                            kind: RuleKind::Allow,
                            index: rule.index,
                            line: rule.line,
                            reason: rule.reason.clone(),
                        }));
                    } else if ignored.contains(&FindingKind::GoneListener) {
                        finding.waived = Some(Waiver::IgnoreFindings);
                    } else if settings.ignore_loopback
                        && Exposure::of(id.address) == Exposure::Loopback
                    {
                        finding.waived = Some(Waiver::IgnoreLoopback);
                    }
                    GoneVerdict {
                        identity: id.clone(),
                        finding,
                    }
                })
                .collect()
        }
    };

    Evaluation {
        listeners,
        missing,
        gone,
        privileged: report.privileged,
        policy: policy.path.clone(),
        baseline: None,
    }
}

fn waiver(
    kind: FindingKind,
    exposure: Exposure,
    expected_by: Option<&RuleRef>,
    settings: &crate::policy::Settings,
    ignored: &BTreeSet<FindingKind>,
) -> Option<Waiver> {
    let rule_waivable = !matches!(
        kind,
        FindingKind::UnexpectedOwner | FindingKind::MissingExpected
    );
    if rule_waivable {
        if let Some(rule) = expected_by {
            return Some(Waiver::Rule(rule.clone()));
        }
    }
    if ignored.contains(&kind) {
        return Some(Waiver::IgnoreFindings);
    }
    if kind == FindingKind::DynamicPort && !settings.dynamic_ports_unexpected {
        return Some(Waiver::DynamicPortsExpected);
    }
    if settings.ignore_loopback
        && exposure == Exposure::Loopback
        && kind != FindingKind::UnexpectedOwner
    {
        return Some(Waiver::IgnoreLoopback);
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{PortStatus, Process, RangeClass, RegistryInfo, Socket};
    use std::net::IpAddr;
    use std::path::Path;

    /// Every kind appears in [`ALL_FINDINGS`]; this match stops compiling when a kind is added.
    #[test]
    fn all_findings_is_complete() {
        for kind in ALL_FINDINGS {
            let position = match kind {
                FindingKind::UnassignedPort => 0,
                FindingKind::ReservedPort => 1,
                FindingKind::DeregisteredPort => 2,
                FindingKind::DynamicPort => 3,
                FindingKind::MissingExpected => 4,
                FindingKind::UnexpectedOwner => 5,
                FindingKind::NewListener => 6,
                FindingKind::GoneListener => 7,
            };
            assert_eq!(ALL_FINDINGS[position], kind);
        }
    }

    pub(crate) fn owner(pid: u32, name: &str, exe: &str, user: &str) -> Process {
        Process {
            pid,
            name: name.to_string(),
            user: Some(user.to_string()),
            uid: Some(1000),
            exe: Some(exe.to_string()),
            cmdline: vec![exe.to_string()],
            unit: None,
            container: None,
            proxy_for: None,
        }
    }

    /// A classified listener as `classify` would produce it.
    pub(crate) fn listener(
        proto: Proto,
        address: &str,
        port: u16,
        status: PortStatus,
        processes: Vec<Process>,
    ) -> Listener {
        let address: IpAddr = address.parse().unwrap();
        let mut findings = match status {
            PortStatus::Assigned => vec![],
            PortStatus::Reserved => vec![FindingKind::ReservedPort],
            PortStatus::Unassigned => vec![FindingKind::UnassignedPort],
            PortStatus::Deregistered => vec![FindingKind::DeregisteredPort],
            PortStatus::Dynamic => vec![],
        };
        if RangeClass::of(port) == RangeClass::Dynamic {
            findings.push(FindingKind::DynamicPort);
        }
        Listener {
            socket: Socket {
                proto,
                address,
                port,
                dual_stack: false,
                uid: processes.first().and_then(|p| p.uid),
                user: None,
                inode: Some(u64::from(port)),
                processes,
                netns: None,
            },
            exposure: Exposure::of(address),
            range: RangeClass::of(port),
            registry: RegistryInfo {
                status,
                services: if status == PortStatus::Assigned {
                    vec!["svc".into()]
                } else {
                    vec![]
                },
                description: None,
            },
            findings,
        }
    }

    fn policy(text: &str) -> Policy {
        Policy::parse(text, Path::new("/p.toml")).unwrap()
    }

    fn report(listeners: Vec<Listener>) -> Report {
        Report {
            listeners,
            privileged: true,
        }
    }

    fn kinds(v: &ListenerVerdict) -> Vec<(FindingKind, bool)> {
        v.findings
            .iter()
            .map(|f| (f.kind, f.unexpected()))
            .collect()
    }

    #[test]
    fn defaults_count_registry_findings_but_not_dynamic_ports() {
        let r = report(vec![
            listener(
                Proto::Tcp,
                "0.0.0.0",
                22,
                PortStatus::Assigned,
                vec![owner(1, "sshd", "/usr/sbin/sshd", "root")],
            ),
            listener(
                Proto::Tcp,
                "127.0.0.1",
                4444,
                PortStatus::Unassigned,
                vec![owner(2, "nc", "/usr/bin/nc", "eve")],
            ),
            listener(
                Proto::Udp,
                "0.0.0.0",
                50000,
                PortStatus::Dynamic,
                vec![owner(3, "app", "/usr/bin/app", "bob")],
            ),
        ]);
        let e = evaluate(&r, &Policy::default(), None);
        assert_eq!(e.status(), Status::Warning);
        assert_eq!(e.unexpected_count(), 1);
        assert!(kinds(&e.listeners[0]).is_empty());
        assert_eq!(
            kinds(&e.listeners[1]),
            vec![(FindingKind::UnassignedPort, true)]
        );
        assert_eq!(
            kinds(&e.listeners[2]),
            vec![(FindingKind::DynamicPort, false)]
        );
        assert_eq!(
            e.listeners[2].findings[0].waived,
            Some(Waiver::DynamicPortsExpected)
        );
        assert_eq!(e.unexpected_by_kind()[&FindingKind::UnassignedPort], 1);
        assert_eq!(e.unexpected_by_kind()[&FindingKind::DynamicPort], 0);
        assert_eq!(e.policy, None);

        let strict = policy("[settings]\ndynamic_ports_unexpected = true\n");
        let e = evaluate(&r, &strict, None);
        assert_eq!(e.unexpected_count(), 2);
        // An info-severity finding that counts still makes the check a warning.
        assert_eq!(e.status(), Status::Warning);
    }

    #[test]
    fn empty_report_is_ok() {
        let e = evaluate(&report(vec![]), &Policy::default(), None);
        assert_eq!(e.status(), Status::Ok);
        assert_eq!(e.unexpected_count(), 0);
    }

    #[test]
    fn allow_rules_waive_registry_findings() {
        let r = report(vec![
            listener(
                Proto::Tcp,
                "127.0.0.1",
                4444,
                PortStatus::Unassigned,
                vec![owner(2, "nc", "/usr/bin/nc", "eve")],
            ),
            listener(
                Proto::Tcp,
                "0.0.0.0",
                1023,
                PortStatus::Reserved,
                vec![owner(3, "odd", "/usr/bin/odd", "bob")],
            ),
        ]);
        let p =
            policy("[[allow]]\nport = \"4000-4999\"\nprocess = \"nc\"\nreason = \"debugging\"\n");
        let e = evaluate(&r, &p, None);
        assert!(!e.listeners[0].unexpected());
        let rule = e.listeners[0].expected_by.clone().unwrap();
        assert_eq!((rule.kind, rule.index, rule.line), (RuleKind::Allow, 1, 1));
        assert_eq!(rule.reason.as_deref(), Some("debugging"));
        assert_eq!(e.listeners[0].findings[0].waived, Some(Waiver::Rule(rule)));
        assert!(e.listeners[1].unexpected());
        assert_eq!(e.status(), Status::Warning);
        assert_eq!(e.policy.as_deref(), Some(Path::new("/p.toml")));
    }

    #[test]
    fn settings_waive_loopback_and_ignored_kinds() {
        let r = report(vec![
            listener(
                Proto::Tcp,
                "127.0.0.1",
                4444,
                PortStatus::Unassigned,
                vec![],
            ),
            listener(Proto::Tcp, "::", 1023, PortStatus::Reserved, vec![]),
            listener(
                Proto::Tcp,
                "192.0.2.1",
                4445,
                PortStatus::Unassigned,
                vec![],
            ),
        ]);
        let p =
            policy("[settings]\nignore_loopback = true\nignore_findings = [\"reserved-port\"]\n");
        let e = evaluate(&r, &p, None);
        assert_eq!(
            e.listeners[0].findings[0].waived,
            Some(Waiver::IgnoreLoopback)
        );
        assert_eq!(
            e.listeners[1].findings[0].waived,
            Some(Waiver::IgnoreFindings)
        );
        assert!(e.listeners[2].unexpected());
        assert_eq!(e.unexpected_count(), 1);
    }

    #[test]
    fn expect_rules_give_missing_and_unexpected_owner() {
        let sshd = owner(10, "sshd", "/usr/sbin/sshd", "root");
        let p = policy(
            "[[expect]]\nport = 22\nprotocol = \"tcp\"\nexe = \"/usr/sbin/sshd\"\n\
             [[expect]]\nport = 53\n",
        );

        // The right owner: expected, nothing missing.
        let good = report(vec![listener(
            Proto::Tcp,
            "0.0.0.0",
            22,
            PortStatus::Assigned,
            vec![sshd.clone()],
        )]);
        let e = evaluate(&good, &p, None);
        assert_eq!(
            e.listeners[0].expected_by.as_ref().map(|r| r.kind),
            Some(RuleKind::Expect)
        );
        assert_eq!(e.missing.len(), 1);
        assert_eq!(e.missing[0].port, 53);
        assert_eq!(e.missing[0].expected, "any");
        assert_eq!(
            e.missing[0].finding.detail.as_deref(),
            Some("nothing listens on tcp/udp port 53")
        );
        assert_eq!(e.status(), Status::Critical);

        // Another owner on port 22: the port-hijack case.
        let hijack = report(vec![
            listener(
                Proto::Tcp,
                "0.0.0.0",
                22,
                PortStatus::Assigned,
                vec![owner(66, "sshd", "/tmp/.x/sshd", "nobody")],
            ),
            listener(Proto::Udp, "127.0.0.53", 53, PortStatus::Assigned, vec![]),
        ]);
        let e = evaluate(&hijack, &p, None);
        assert!(e.missing.is_empty(), "{:?}", e.missing);
        assert_eq!(
            kinds(&e.listeners[0]),
            vec![(FindingKind::UnexpectedOwner, true)]
        );
        let detail = e.listeners[0].findings[0].detail.clone().unwrap();
        assert!(
            detail.contains("expected /usr/sbin/sshd") && detail.contains("line 1"),
            "{detail}"
        );
        assert_eq!(e.listeners[0].expected_by, None);
        assert_eq!(
            e.listeners[1].expected_by.as_ref().map(|r| r.index),
            Some(2)
        );
        assert_eq!(e.status(), Status::Critical);

        // An allow rule does not excuse a wrong owner.
        let lenient =
            policy("[[allow]]\nport = 22\n[[expect]]\nport = 22\nexe = \"/usr/sbin/sshd\"\n");
        let e = evaluate(&hijack, &lenient, None);
        assert!(e.listeners[0]
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::UnexpectedOwner && f.unexpected()));

        // An owner that cannot be seen cannot be verified.
        let hidden = report(vec![listener(
            Proto::Tcp,
            "0.0.0.0",
            22,
            PortStatus::Assigned,
            vec![],
        )]);
        let e = evaluate(&hidden, &p, None);
        let f = &e.listeners[0].findings[0];
        assert_eq!(f.kind, FindingKind::UnexpectedOwner);
        assert!(f.detail.as_deref().unwrap().contains("run as root"));

        // With ignore_loopback, an impostor on loopback still counts.
        let p2 = policy(
            "[settings]\nignore_loopback = true\n[[expect]]\nport = 22\nprocess = \"sshd\"\n",
        );
        let lo = report(vec![listener(
            Proto::Tcp,
            "127.0.0.1",
            22,
            PortStatus::Assigned,
            vec![owner(5, "nc", "/usr/bin/nc", "eve")],
        )]);
        assert_eq!(evaluate(&lo, &p2, None).status(), Status::Critical);
    }

    #[test]
    fn two_expect_rules_on_one_port() {
        let p = policy(
            "[[expect]]\nport = 53\nprocess = \"named\"\n[[expect]]\nport = 53\nprocess = \"dnsmasq\"\n",
        );
        let r = report(vec![listener(
            Proto::Udp,
            "0.0.0.0",
            53,
            PortStatus::Assigned,
            vec![owner(1, "dnsmasq", "/usr/sbin/dnsmasq", "dnsmasq")],
        )]);
        let e = evaluate(&r, &p, None);
        assert!(!e.listeners[0].unexpected());
        assert_eq!(e.missing.len(), 1);
        assert_eq!(e.missing[0].rule.index, 1);
        assert_eq!(
            e.missing[0].finding.detail.as_deref(),
            Some("tcp/udp port 53 is not held by named")
        );
    }

    #[test]
    fn baseline_gives_new_and_gone_listeners() {
        let web = listener(
            Proto::Tcp,
            "0.0.0.0",
            80,
            PortStatus::Assigned,
            vec![owner(1, "nginx", "/usr/sbin/nginx", "root")],
        );
        let dns = listener(
            Proto::Udp,
            "127.0.0.1",
            53,
            PortStatus::Assigned,
            vec![owner(2, "dnsmasq", "/usr/sbin/dnsmasq", "root")],
        );
        let shell = listener(
            Proto::Tcp,
            "0.0.0.0",
            31337,
            PortStatus::Unassigned,
            vec![owner(3, "sh", "/bin/sh", "www-data")],
        );
        let baseline = Baseline::from_report(&report(vec![web.clone(), dns.clone()]));

        let same = evaluate(
            &report(vec![web.clone(), dns.clone()]),
            &Policy::default(),
            Some(&baseline),
        );
        assert_eq!(same.status(), Status::Ok);

        let changed = evaluate(
            &report(vec![web.clone(), shell.clone()]),
            &Policy::default(),
            Some(&baseline),
        );
        assert_eq!(
            kinds(&changed.listeners[1]),
            vec![
                (FindingKind::UnassignedPort, true),
                (FindingKind::NewListener, true)
            ]
        );
        assert_eq!(changed.gone.len(), 1);
        assert_eq!(changed.gone[0].identity.port, 53);
        assert!(changed.gone[0].finding.unexpected());
        assert_eq!(changed.unexpected_count(), 2);
        assert_eq!(changed.status(), Status::Warning);
        let by_kind = changed.unexpected_by_kind();
        assert_eq!(by_kind[&FindingKind::NewListener], 1);
        assert_eq!(by_kind[&FindingKind::GoneListener], 1);

        // A restart with new pids is not a change.
        let mut restarted = web.clone();
        restarted.socket.processes[0].pid = 999;
        let e = evaluate(
            &report(vec![restarted, dns.clone()]),
            &Policy::default(),
            Some(&baseline),
        );
        assert_eq!(e.status(), Status::Ok);

        // ignore_loopback waives the gone loopback entry; allow rules waive new-listener.
        let p = policy("[settings]\nignore_loopback = true\n[[allow]]\nport = 31337\n");
        let e = evaluate(
            &report(vec![web.clone(), shell.clone()]),
            &p,
            Some(&baseline),
        );
        assert_eq!(e.gone[0].finding.waived, Some(Waiver::IgnoreLoopback));
        assert_eq!(e.status(), Status::Ok);

        // An allow rule matching the gone entry waives it too.
        let p = policy("[[allow]]\nport = 53\nprocess = \"dnsmasq\"\n[[allow]]\nport = 31337\n");
        let e = evaluate(&report(vec![web, shell]), &p, Some(&baseline));
        assert!(matches!(&e.gone[0].finding.waived, Some(Waiver::Rule(r)) if r.index == 1));
        assert_eq!(e.status(), Status::Ok);
    }
}
