//! `portwarden check --format text`: one line per unexpected entry, stable
//! and greppable; nothing at all when nothing is unexpected (so cron mails
//! only on trouble), unless `verbose` asks for the summary line.
//!
//! Each line has seven space-separated fields, then an optional `expected=`
//! field:
//!
//! ```text
//! FINDINGS PROTO ADDRESS:PORT PIDS PROCESSES USERS REGISTRY [expected=OWNER]
//! unassigned-port tcp 127.0.0.1:4444 2211 nc alice unassigned
//! unexpected-owner tcp 0.0.0.0:22 3100 sshd nobody assigned expected=/usr/sbin/sshd
//! missing-expected tcp *:22 - - - - expected=/usr/sbin/sshd
//! gone-listener,… udp [::]:5353 - /usr/sbin/avahi-daemon avahi -
//! ```
//!
//! FINDINGS lists the listener's unexpected findings, comma separated; list
//! fields (pids, processes, users) are comma separated too; `-` stands for
//! nothing known. PROTO of a missing listener is `tcp/udp` when the rule
//! names no protocol. For a gone listener, PROCESSES shows the baseline's
//! programs. Untrusted text is escaped: control, bidi and zero-width
//! characters become visible escapes (`\e`, `\n`, `\xNN`, `\u{NNNN}`) and
//! spaces `\x20`, so every line splits into the same fields.
//!
//! The verbose summary line starts with `portwarden: ` and follows the entries.

use crate::check::{Evaluation, ListenerVerdict, Status};
use crate::model::Socket;
use crate::sanitize::sanitize;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::IpAddr;

/// Escapes untrusted text for one whitespace-free output field: control,
/// bidi and zero-width characters as [`sanitize`] writes them, and spaces as
/// `\x20`; empty text becomes `-`.
pub fn field(text: &str) -> String {
    if text.is_empty() {
        return "-".to_string();
    }
    sanitize(text).replace(' ', "\\x20")
}

/// `address:port`, IPv6 in brackets.
pub fn endpoint(address: IpAddr, port: u16) -> String {
    match address {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// Joins distinct escaped values with commas; `-` when there are none.
fn joined<I: IntoIterator<Item = String>>(values: I) -> String {
    let mut seen = BTreeSet::new();
    let list: Vec<String> = values
        .into_iter()
        .filter(|v| seen.insert(v.clone()))
        .map(|v| field(&v))
        .collect();
    if list.is_empty() {
        "-".to_string()
    } else {
        list.join(",")
    }
}

/// Comma-separated pids of the socket's owners, or `-`.
pub fn pids(socket: &Socket) -> String {
    joined(socket.processes.iter().map(|p| p.pid.to_string()))
}

/// Comma-separated distinct process names of the owners, escaped, or `-`.
pub fn process_names(socket: &Socket) -> String {
    joined(socket.processes.iter().map(|p| p.name.clone()))
}

/// Comma-separated distinct users of the owners, escaped, or `-`.
pub fn users(socket: &Socket) -> String {
    joined(socket.processes.iter().filter_map(|p| p.user.clone()))
}

fn listener_line(v: &ListenerVerdict) -> String {
    let socket = &v.listener.socket;
    let findings: Vec<&str> = v.unexpected_findings().map(|f| f.kind.as_str()).collect();
    let mut line = format!(
        "{} {} {} {} {} {} {}",
        findings.join(","),
        socket.proto,
        endpoint(socket.address, socket.port),
        pids(socket),
        process_names(socket),
        users(socket),
        v.listener.registry.status.as_str(),
    );
    if let Some(expected) = v.unexpected_findings().find_map(|f| f.expected.as_deref()) {
        let _ = write!(line, " expected={}", field(expected));
    }
    line
}

/// The lines for every unexpected entry, in order: present listeners, missing
/// expected listeners, gone baseline listeners.
pub fn entry_lines(evaluation: &Evaluation) -> Vec<String> {
    let mut lines: Vec<String> = evaluation
        .unexpected_listeners()
        .map(listener_line)
        .collect();
    for m in evaluation.unexpected_missing() {
        lines.push(format!(
            "{} {} *:{} - - - - expected={}",
            m.finding.kind,
            m.protocol.map_or("tcp/udp", |p| p.as_str()),
            m.port,
            field(&m.expected)
        ));
    }
    for g in evaluation.unexpected_gone() {
        let id = &g.identity;
        lines.push(format!(
            "{} {} {} - {} {} -",
            g.finding.kind,
            id.protocol,
            id.endpoint(),
            joined(id.programs.iter().cloned()),
            joined(id.users.iter().cloned()),
        ));
    }
    lines
}

/// One line summing the evaluation up, e.g.
/// `OK - 12 listeners, nothing unexpected` or
/// `WARNING - 2 unexpected (1 unassigned-port, 1 new-listener); 12 listeners`.
pub fn summary(evaluation: &Evaluation) -> String {
    let status = evaluation.status();
    let total = evaluation.listeners.len();
    let noun = if total == 1 { "listener" } else { "listeners" };
    let word = match status {
        Status::Ok => "OK",
        Status::Warning => "WARNING",
        Status::Critical => "CRITICAL",
    };
    if status == Status::Ok {
        return format!("{word} - {total} {noun}, nothing unexpected");
    }
    let kinds: Vec<String> = evaluation
        .unexpected_by_kind()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    format!(
        "{word} - {} unexpected ({}); {total} {noun}",
        evaluation.unexpected_count(),
        kinds.join(", ")
    )
}

/// Writes the text output.
pub fn render(evaluation: &Evaluation, verbose: bool, out: &mut dyn Write) -> io::Result<()> {
    for line in entry_lines(evaluation) {
        writeln!(out, "{line}")?;
    }
    if verbose {
        writeln!(out, "portwarden: {}", summary(evaluation))?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::baseline::Baseline;
    use crate::check::evaluate;
    use crate::check::tests::{listener, owner};
    use crate::model::{PortStatus, Proto, Report};
    use crate::policy::Policy;
    use std::path::Path;

    /// An evaluation with one of everything: an unexpected listener with a
    /// hostile process name, a hijacked expected port, a missing expected
    /// listener, a gone and a new baseline listener, an allowed and a clean one.
    pub(crate) fn sample() -> Evaluation {
        let before = Report {
            listeners: vec![
                listener(
                    Proto::Tcp,
                    "0.0.0.0",
                    22,
                    PortStatus::Assigned,
                    vec![owner(10, "sshd", "/usr/sbin/sshd", "root")],
                ),
                listener(
                    Proto::Udp,
                    "::",
                    5353,
                    PortStatus::Assigned,
                    vec![owner(20, "avahi-daemon", "/usr/sbin/avahi-daemon", "avahi")],
                ),
                listener(Proto::Udp, "0.0.0.0", 50000, PortStatus::Dynamic, vec![]),
            ],
            privileged: true,
        };
        let baseline = Baseline::from_report(&before);
        let mut hostile = owner(31, "ev il\u{1b}[31m\"\\", "/tmp/x y", "mal\nlory");
        hostile.cmdline = vec!["ev il".into()];
        let now = Report {
            listeners: vec![
                listener(
                    Proto::Tcp,
                    "0.0.0.0",
                    22,
                    PortStatus::Assigned,
                    vec![owner(11, "sshd", "/tmp/sshd", "nobody")],
                ),
                listener(
                    Proto::Tcp,
                    "127.0.0.1",
                    4444,
                    PortStatus::Unassigned,
                    vec![hostile, owner(32, "helper", "/usr/bin/helper", "bob")],
                ),
                listener(
                    Proto::Tcp,
                    "::1",
                    6000,
                    PortStatus::Assigned,
                    vec![owner(40, "Xorg", "/usr/lib/xorg/Xorg", "root")],
                ),
                listener(Proto::Udp, "0.0.0.0", 50000, PortStatus::Dynamic, vec![]),
            ],
            privileged: true,
        };
        let policy = Policy::parse(
            "[[allow]]\nport = \"6000-6063\"\nprocess = \"Xorg\"\nreason = \"X11\"\n\
             [[expect]]\nport = 22\nprotocol = \"tcp\"\nexe = \"/usr/sbin/sshd\"\n\
             [[expect]]\nport = 25\nprotocol = \"tcp\"\nprocess = \"master\"\n",
            Path::new("/etc/portwarden/portwarden.toml"),
        )
        .unwrap();
        let mut e = evaluate(&now, &policy, Some(&baseline));
        e.baseline = Some("/var/lib/portwarden/baseline.json".into());
        e
    }

    pub(crate) fn ok_sample() -> Evaluation {
        let report = Report {
            listeners: vec![listener(
                Proto::Tcp,
                "0.0.0.0",
                22,
                PortStatus::Assigned,
                vec![owner(10, "sshd", "/usr/sbin/sshd", "root")],
            )],
            privileged: false,
        };
        evaluate(&report, &Policy::default(), None)
    }

    fn text(e: &Evaluation, verbose: bool) -> String {
        let mut out = Vec::new();
        render(e, verbose, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn silent_on_success_unless_verbose() {
        let e = ok_sample();
        assert_eq!(text(&e, false), "");
        assert_eq!(
            text(&e, true),
            "portwarden: OK - 1 listener, nothing unexpected\n"
        );
    }

    #[test]
    fn one_line_per_unexpected_entry() {
        let e = sample();
        let out = text(&e, true);
        let expected = "\
unexpected-owner,new-listener tcp 0.0.0.0:22 11 sshd nobody assigned expected=/usr/sbin/sshd
unassigned-port,new-listener tcp 127.0.0.1:4444 31,32 ev\\x20il\\e[31m\"\\,helper mal\\nlory,bob unassigned
missing-expected tcp *:25 - - - - expected=master
gone-listener tcp 0.0.0.0:22 - /usr/sbin/sshd root -
gone-listener udp [::]:5353 - /usr/sbin/avahi-daemon avahi -
portwarden: CRITICAL - 5 unexpected (1 unassigned-port, 1 missing-expected, 1 unexpected-owner, 2 new-listener, 2 gone-listener); 4 listeners
";
        assert_eq!(out, expected);
        for line in out.lines().filter(|l| !l.starts_with("portwarden:")) {
            let fields = line.split(' ').count();
            assert!(fields == 7 || fields == 8, "{line}");
            assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
        }
    }

    #[test]
    fn field_escapes_untrusted_text() {
        assert_eq!(field(""), "-");
        assert_eq!(field("a b"), "a\\x20b");
        assert_eq!(field("\u{1b}\u{7f}\n"), "\\e\\x7f\\n");
        assert_eq!(field("x\u{202e}y\u{200b}"), "x\\u{202e}y\\u{200b}");
        assert_eq!(field("naïve"), "naïve");
    }
}
