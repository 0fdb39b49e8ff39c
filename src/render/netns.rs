//! Network namespaces in human output: the NETNS cell of a listener, and
//! the note about namespaces that could not be scanned.

use crate::model::{Listener, NetNsSkipped};
use crate::sanitize::sanitize;
use std::io::{self, Write};

/// The NETNS cell: the namespace's `/run/netns` name, else `net:[INODE]`,
/// with `(pid N)` when a process in it was seen; `-` for our own namespace.
pub fn cell(l: &Listener) -> String {
    match &l.socket.netns {
        None => "-".to_string(),
        Some(ns) => sanitize(&ns.label()).into_owned(),
    }
}

/// Writes one line per reason why namespaces were skipped, naming them:
/// `2 network namespaces not scanned (setns: ...): net:[4026532281] (pid 812), web`,
/// then, when the scan ran without root, a line saying to run as root.
pub fn skipped_note(
    skipped: &[NetNsSkipped],
    privileged: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut reasons: Vec<&str> = skipped.iter().map(|s| s.reason.as_str()).collect();
    reasons.sort_unstable();
    reasons.dedup();
    for reason in reasons {
        let names: Vec<String> = skipped
            .iter()
            .filter(|s| s.reason == reason)
            .map(|s| match s.netns.pid {
                Some(pid) => format!("{} (pid {pid})", sanitize(&s.netns.label())),
                None => sanitize(&s.netns.label()).into_owned(),
            })
            .collect();
        let n = names.len();
        let what = if n == 1 { "namespace" } else { "namespaces" };
        writeln!(
            out,
            "{n} network {what} not scanned ({}): {}",
            sanitize(reason),
            names.join(", ")
        )?;
    }
    if !skipped.is_empty() && !privileged {
        writeln!(out, "run as root to scan every network namespace")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NetNs;

    #[test]
    fn skipped_namespaces_are_grouped_by_reason_and_escaped() {
        let skip = |inode, name: Option<&str>, pid, reason: &str| NetNsSkipped {
            netns: NetNs {
                inode,
                name: name.map(str::to_string),
                pid,
            },
            reason: reason.to_string(),
        };
        let skipped = [
            skip(7, None, Some(12), "setns: denied"),
            skip(8, Some("we\u{1b}b"), None, "gone"),
            skip(9, None, None, "setns: denied"),
        ];
        let mut out = Vec::new();
        skipped_note(&skipped, true, &mut out).unwrap();
        let root = "1 network namespace not scanned (gone): we\\eb\n\
                    2 network namespaces not scanned (setns: denied): net:[7] (pid 12), net:[9]\n";
        assert_eq!(String::from_utf8(out).unwrap(), root);
        let mut out = Vec::new();
        skipped_note(&skipped, false, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{root}run as root to scan every network namespace\n")
        );
        let mut out = Vec::new();
        skipped_note(&[], false, &mut out).unwrap();
        assert!(out.is_empty());
    }

    fn rendered(report: &crate::model::Report, style: &super::super::Style) -> String {
        let mut out = Vec::new();
        super::super::table::render(report, style, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_table_shows_netns_only_when_a_socket_is_in_another_namespace() {
        let mut report = super::super::fixtures::report();
        let style = super::super::Style::default();
        assert!(!rendered(&report, &style).contains("NETNS"));
        report.listeners[1].socket.netns = Some(NetNs {
            inode: 4026532281,
            name: None,
            pid: Some(812),
        });
        report.listeners[2].socket.netns = Some(NetNs {
            inode: 4026532300,
            name: Some("we\u{202e}b".into()),
            pid: None,
        });
        let text = rendered(&report, &style);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with(" NETNS"), "{text}");
        assert!(lines[1].ends_with(" -"), "{text}");
        assert!(lines[2].ends_with(" net:[4026532281]"), "{text}");
        assert!(lines[3].ends_with(" we\\u{202e}b"), "{text}");
        // A terminal with room shows it whole; a narrow one trims it to no
        // less than 10 columns, so the namespace stays recognisable.
        let roomy = super::super::Style {
            width: Some(100),
            ..style
        };
        let text = rendered(&report, &roomy);
        assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
        assert!(text.contains(" net:[4026532281]"), "{text}");
        let narrow = super::super::Style {
            width: Some(80),
            ..style
        };
        let text = rendered(&report, &narrow);
        assert!(text.contains(" net:[4026…\n"), "{text}");
    }
}
