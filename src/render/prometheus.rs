//! `portwarden check --format prometheus`: metrics in the Prometheus text
//! exposition format, for node_exporter's textfile collector.
//!
//! | metric | type | labels | meaning |
//! |--------|------|--------|---------|
//! | `portwarden_listeners` | gauge | | listening sockets found |
//! | `portwarden_unexpected_listeners` | gauge | | entries making `check` exit 1: listeners with an unexpected finding, missing expected listeners, gone baseline listeners |
//! | `portwarden_findings` | gauge | `finding`, `severity` | unexpected findings per kind (every kind, most 0) |
//! | `portwarden_check_status` | gauge | | 0 ok, 1 warning, 2 critical |
//! | `portwarden_privileged` | gauge | | 1 when the scan could see every owner (root) |
//! | `portwarden_listener_info` | gauge | `protocol`, `address`, `port`, `process`, `user`, `exposure`, `registry`, `finding`, `unexpected` | 1 per listener; `finding` lists its unexpected findings comma separated, `none` when it has none |
//! | `portwarden_missing_expected_info` | gauge | `protocol`, `port`, `expected` | 1 per `[[expect]]` rule nothing satisfies |
//! | `portwarden_gone_listener_info` | gauge | `protocol`, `address`, `port`, `process`, `user` | 1 per baseline listener no longer listening |
//! | `portwarden_last_check_timestamp_seconds` | gauge | | when the check ran, Unix time |
//!
//! `process` and `user` join distinct values with commas, and are empty when
//! no owner was visible. Label values are escaped as the exposition format
//! requires (backslash, double quote, line feed). Identical label sets (several
//! sockets bound with `SO_REUSEPORT`) are written once, as duplicate series
//! would make node_exporter reject the whole file.

use crate::check::{Evaluation, ListenerVerdict, Status};
use crate::model::Severity;
use std::collections::BTreeSet;
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

/// Escapes a label value: `\` -> `\\`, `"` -> `\"`, line feed -> `\n`.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn labels(pairs: &[(&str, String)]) -> String {
    let body: Vec<String> = pairs
        .iter()
        .map(|(name, value)| format!("{name}=\"{}\"", escape_label(value)))
        .collect();
    format!("{{{}}}", body.join(","))
}

fn distinct<I: IntoIterator<Item = String>>(values: I) -> String {
    let mut seen = BTreeSet::new();
    values
        .into_iter()
        .filter(|v| seen.insert(v.clone()))
        .collect::<Vec<_>>()
        .join(",")
}

fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

fn family(out: &mut dyn Write, name: &str, help: &str) -> io::Result<()> {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} gauge")
}

fn listener_labels(v: &ListenerVerdict) -> String {
    let l = &v.listener;
    let socket = &l.socket;
    let findings: Vec<&str> = v.unexpected_findings().map(|f| f.kind.as_str()).collect();
    labels(&[
        ("protocol", socket.proto.as_str().to_string()),
        ("address", socket.address.to_string()),
        ("port", socket.port.to_string()),
        (
            "process",
            distinct(socket.processes.iter().map(|p| p.name.clone())),
        ),
        (
            "user",
            distinct(socket.processes.iter().filter_map(|p| p.user.clone())),
        ),
        ("exposure", l.exposure.as_str().to_string()),
        ("registry", l.registry.status.as_str().to_string()),
        (
            "finding",
            if findings.is_empty() {
                "none".to_string()
            } else {
                findings.join(",")
            },
        ),
        ("unexpected", v.unexpected().to_string()),
    ])
}

/// Writes the metrics; `now` becomes `portwarden_last_check_timestamp_seconds`.
pub fn render(evaluation: &Evaluation, now: SystemTime, out: &mut dyn Write) -> io::Result<()> {
    family(
        out,
        "portwarden_listeners",
        "Listening sockets found by the last check.",
    )?;
    writeln!(out, "portwarden_listeners {}", evaluation.listeners.len())?;

    family(
        out,
        "portwarden_unexpected_listeners",
        "Entries that make portwarden check exit 1: listeners with an unexpected finding, missing expected listeners, gone baseline listeners.",
    )?;
    writeln!(
        out,
        "portwarden_unexpected_listeners {}",
        evaluation.unexpected_count()
    )?;

    family(out, "portwarden_findings", "Unexpected findings by kind.")?;
    for (kind, n) in evaluation.unexpected_by_kind() {
        let l = labels(&[
            ("finding", kind.as_str().to_string()),
            ("severity", severity_name(kind.severity()).to_string()),
        ]);
        writeln!(out, "portwarden_findings{l} {n}")?;
    }

    family(
        out,
        "portwarden_check_status",
        "Overall check status: 0 ok, 1 warning, 2 critical.",
    )?;
    let status = match evaluation.status() {
        Status::Ok => 0,
        Status::Warning => 1,
        Status::Critical => 2,
    };
    writeln!(out, "portwarden_check_status {status}")?;

    family(
        out,
        "portwarden_privileged",
        "1 when the check could see every socket owner (ran as root), else 0.",
    )?;
    writeln!(
        out,
        "portwarden_privileged {}",
        u8::from(evaluation.privileged)
    )?;

    family(
        out,
        "portwarden_listener_info",
        "One series per listener; finding lists its unexpected findings, none when it has none.",
    )?;
    let mut seen = BTreeSet::new();
    for v in &evaluation.listeners {
        let l = listener_labels(v);
        if seen.insert(l.clone()) {
            writeln!(out, "portwarden_listener_info{l} 1")?;
        }
    }

    if !evaluation.missing.is_empty() {
        family(
            out,
            "portwarden_missing_expected_info",
            "One series per expect rule that nothing satisfies.",
        )?;
        let mut seen = BTreeSet::new();
        for m in &evaluation.missing {
            let l = labels(&[
                (
                    "protocol",
                    m.protocol.map_or("tcp/udp", |p| p.as_str()).to_string(),
                ),
                ("port", m.port.to_string()),
                ("expected", m.expected.clone()),
            ]);
            if seen.insert(l.clone()) {
                writeln!(out, "portwarden_missing_expected_info{l} 1")?;
            }
        }
    }

    if !evaluation.gone.is_empty() {
        family(
            out,
            "portwarden_gone_listener_info",
            "One series per baseline listener that no longer listens.",
        )?;
        let mut seen = BTreeSet::new();
        for g in &evaluation.gone {
            let id = &g.identity;
            let l = labels(&[
                ("protocol", id.protocol.as_str().to_string()),
                ("address", id.address.to_string()),
                ("port", id.port.to_string()),
                ("process", id.programs.join(",")),
                ("user", id.users.join(",")),
            ]);
            if seen.insert(l.clone()) {
                writeln!(out, "portwarden_gone_listener_info{l} 1")?;
            }
        }
    }

    family(
        out,
        "portwarden_last_check_timestamp_seconds",
        "When the last check ran, in seconds since the Unix epoch.",
    )?;
    let seconds = now
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    writeln!(out, "portwarden_last_check_timestamp_seconds {seconds:.3}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::check_text::tests::{ok_sample, sample};
    use std::time::Duration;

    fn metrics(e: &Evaluation) -> String {
        let mut out = Vec::new();
        render(
            e,
            UNIX_EPOCH + Duration::from_millis(1_763_884_800_250),
            &mut out,
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    fn sample_lines(text: &str, name: &str) -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn label_escaping() {
        assert_eq!(escape_label("plain"), "plain");
        assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    }

    #[test]
    fn every_family_has_help_and_type() {
        let text = metrics(&sample());
        let mut families = BTreeSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(text.contains(&format!("# HELP {name} ")), "{name}");
                assert!(families.insert(name.to_string()), "duplicate family {name}");
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(families.contains(name), "sample before its TYPE: {line}");
            }
        }
        assert_eq!(families.len(), 9);
    }

    #[test]
    fn sample_metrics() {
        let text = metrics(&sample());
        assert_eq!(
            sample_lines(&text, "portwarden_listeners"),
            vec!["portwarden_listeners 4"]
        );
        assert_eq!(
            sample_lines(&text, "portwarden_unexpected_listeners"),
            vec!["portwarden_unexpected_listeners 5"]
        );
        assert_eq!(
            sample_lines(&text, "portwarden_check_status"),
            vec!["portwarden_check_status 2"]
        );
        assert_eq!(
            sample_lines(&text, "portwarden_privileged"),
            vec!["portwarden_privileged 1"]
        );
        assert!(text
            .contains("portwarden_findings{finding=\"gone-listener\",severity=\"warning\"} 2\n"));
        assert!(text.contains(
            "portwarden_findings{finding=\"unexpected-owner\",severity=\"critical\"} 1\n"
        ));
        assert_eq!(sample_lines(&text, "portwarden_findings").len(), 8);
        let info = sample_lines(&text, "portwarden_listener_info");
        assert_eq!(info.len(), 4);
        assert_eq!(
            info[1],
            "portwarden_listener_info{protocol=\"tcp\",address=\"127.0.0.1\",port=\"4444\",\
             process=\"ev il\u{1b}[31m\\\"\\\\,helper\",user=\"mal\\nlory,bob\",exposure=\"loopback\",\
             registry=\"unassigned\",finding=\"unassigned-port,new-listener\",unexpected=\"true\"} 1"
        );
        assert!(
            info[2].contains("address=\"::1\",port=\"6000\"")
                && info[2].contains("finding=\"none\",unexpected=\"false\"")
        );
        assert!(info[3].contains("process=\"\",user=\"\""));
        assert_eq!(
            sample_lines(&text, "portwarden_missing_expected_info"),
            vec!["portwarden_missing_expected_info{protocol=\"tcp\",port=\"25\",expected=\"master\"} 1"]
        );
        assert_eq!(
            sample_lines(&text, "portwarden_gone_listener_info").len(),
            2
        );
        assert_eq!(
            sample_lines(&text, "portwarden_last_check_timestamp_seconds"),
            vec!["portwarden_last_check_timestamp_seconds 1763884800.250"]
        );
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn duplicate_label_sets_are_written_once() {
        let mut e = ok_sample();
        let copy = e.listeners[0].clone();
        e.listeners.push(copy);
        let text = metrics(&e);
        assert_eq!(sample_lines(&text, "portwarden_listener_info").len(), 1);
        assert_eq!(
            sample_lines(&text, "portwarden_listeners"),
            vec!["portwarden_listeners 2"]
        );
        assert!(!text.contains("portwarden_missing_expected_info"));
        assert!(!text.contains("portwarden_gone_listener_info"));
    }

    /// The real parser accepts the hostile sample (escaped labels, every family).
    #[test]
    fn promtool_accepts_the_sample() {
        use std::process::{Command, Stdio};
        let promtool = Command::new("promtool")
            .arg("check")
            .arg("metrics")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match promtool {
            Ok(child) => child,
            Err(e) => {
                eprintln!("skipping: promtool not runnable ({e}); install the Debian package `prometheus`");
                return;
            }
        };
        let text = metrics(&sample());
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "promtool rejected:\n{text}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
