//! `portwarden check --format nagios`: a Nagios/Icinga plugin.
//!
//! The first line is `PORTWARDEN OK|WARNING|CRITICAL|UNKNOWN - text | perfdata`;
//! further lines list every unexpected entry (the plugin "long output"), in
//! the `--format text` layout. The exit status is the plugin's:
//!
//! | state    | exit | when |
//! |----------|------|------|
//! | OK       | 0    | nothing unexpected |
//! | WARNING  | 1    | only warning-level findings count: `unassigned-port`, `reserved-port`, `deregistered-port`, `new-listener`, `gone-listener`, and `dynamic-port` when `dynamic_ports_unexpected = true` |
//! | CRITICAL | 2    | a critical finding counts: `missing-expected`, `unexpected-owner` |
//! | UNKNOWN  | 3    | the check could not run (bad policy or baseline, sockets not enumerable) |
//!
//! Perfdata (no thresholds; the state above decides):
//! `listeners=N;;;0 unexpected=N;;;0` then one `<kind>=N;;;0` per finding
//! kind with `-` written `_` (e.g. `unassigned_port=1;;;0`).

use crate::check::{Evaluation, Status};
use crate::exit::Exit;
use crate::render::check_text;
use crate::sanitize::sanitize;
use std::io::{self, Write};

/// How many entries the status line names before "and N more".
const NAMED_IN_STATUS: usize = 3;

/// A Nagios plugin state; [`NagiosState::exit`] maps it to the process exit
/// status, whose numbers live in [`crate::exit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NagiosState {
    /// Nothing unexpected.
    Ok,
    /// Something unexpected, nothing critical.
    Warning,
    /// A critical finding counts.
    Critical,
    /// The check could not run.
    Unknown,
}

impl NagiosState {
    /// The exit status (Nagios plugin API: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).
    pub fn exit(self) -> Exit {
        match self {
            NagiosState::Ok => Exit::Ok,
            NagiosState::Warning => Exit::Findings,
            NagiosState::Critical => Exit::Error,
            NagiosState::Unknown => Exit::Unknown,
        }
    }

    /// The upper-case word of the status line.
    pub fn as_str(self) -> &'static str {
        match self {
            NagiosState::Ok => "OK",
            NagiosState::Warning => "WARNING",
            NagiosState::Critical => "CRITICAL",
            NagiosState::Unknown => "UNKNOWN",
        }
    }
}

impl From<Status> for NagiosState {
    fn from(status: Status) -> Self {
        match status {
            Status::Ok => NagiosState::Ok,
            Status::Warning => NagiosState::Warning,
            Status::Critical => NagiosState::Critical,
        }
    }
}

/// `|` separates perfdata from text in plugin output; it must not appear in text.
fn plugin_text(text: &str) -> String {
    text.replace('|', "\\x7c")
}

/// Writes the plugin output and returns the state to exit with.
pub fn render(evaluation: &Evaluation, out: &mut dyn Write) -> io::Result<NagiosState> {
    let state = NagiosState::from(evaluation.status());
    let total = evaluation.listeners.len();
    let unexpected = evaluation.unexpected_count();
    let lines = check_text::entry_lines(evaluation);
    let noun = if total == 1 { "listener" } else { "listeners" };

    let text = if unexpected == 0 {
        format!("{total} {noun}, nothing unexpected")
    } else {
        let named: Vec<String> = lines
            .iter()
            .take(NAMED_IN_STATUS)
            .map(|line| {
                // finding(s), proto and endpoint: the first three fields.
                line.splitn(4, ' ').take(3).collect::<Vec<_>>().join(" ")
            })
            .collect();
        let more = lines.len().saturating_sub(NAMED_IN_STATUS);
        let tail = if more > 0 {
            format!(", and {more} more")
        } else {
            String::new()
        };
        format!(
            "{unexpected} unexpected of {total} {noun}: {}{tail}",
            named.join(", ")
        )
    };

    let mut perf = format!("listeners={total};;;0 unexpected={unexpected};;;0");
    for (kind, n) in evaluation.unexpected_by_kind() {
        perf.push_str(&format!(" {}={n};;;0", kind.as_str().replace('-', "_")));
    }

    writeln!(
        out,
        "PORTWARDEN {} - {} | {perf}",
        state.as_str(),
        plugin_text(&text)
    )?;
    for line in &lines {
        writeln!(out, "{}", plugin_text(line))?;
    }
    Ok(state)
}

/// Writes the UNKNOWN line for a check that could not run; returns [`NagiosState::Unknown`].
pub fn render_unknown(message: &str, out: &mut dyn Write) -> io::Result<NagiosState> {
    writeln!(
        out,
        "PORTWARDEN UNKNOWN - {}",
        plugin_text(&sanitize(message))
    )?;
    Ok(NagiosState::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::check_text::tests::{ok_sample, sample};

    fn output(e: &Evaluation) -> (String, NagiosState) {
        let mut out = Vec::new();
        let state = render(e, &mut out).unwrap();
        (String::from_utf8(out).unwrap(), state)
    }

    #[test]
    fn exit_codes_follow_the_plugin_api() {
        assert_eq!(NagiosState::Ok.exit().code(), 0);
        assert_eq!(NagiosState::Warning.exit().code(), 1);
        assert_eq!(NagiosState::Critical.exit().code(), 2);
        assert_eq!(NagiosState::Unknown.exit().code(), 3);
        assert_eq!(NagiosState::from(Status::Warning), NagiosState::Warning);
    }

    #[test]
    fn ok_line_with_perfdata() {
        let (text, state) = output(&ok_sample());
        assert_eq!(state, NagiosState::Ok);
        assert_eq!(
            text,
            "PORTWARDEN OK - 1 listener, nothing unexpected | listeners=1;;;0 unexpected=0;;;0 \
             unassigned_port=0;;;0 reserved_port=0;;;0 deregistered_port=0;;;0 dynamic_port=0;;;0 \
             missing_expected=0;;;0 unexpected_owner=0;;;0 new_listener=0;;;0 gone_listener=0;;;0\n"
        );
    }

    #[test]
    fn critical_line_names_entries_and_long_output_lists_them() {
        let (text, state) = output(&sample());
        assert_eq!(state, NagiosState::Critical);
        let mut lines = text.lines();
        let first = lines.next().unwrap();
        assert!(
            first.starts_with(
                "PORTWARDEN CRITICAL - 5 unexpected of 4 listeners: \
                 unexpected-owner,new-listener tcp 0.0.0.0:22, \
                 unassigned-port,new-listener tcp 127.0.0.1:4444, \
                 missing-expected tcp *:25, and 2 more | listeners=4;;;0 unexpected=5;;;0 "
            ),
            "{first}"
        );
        assert!(
            first.contains(" unexpected_owner=1;;;0 new_listener=2;;;0 gone_listener=2;;;0"),
            "{first}"
        );
        assert_eq!(first.matches('|').count(), 1);
        assert_eq!(lines.count(), 5);
    }

    #[test]
    fn unknown_is_one_clean_line() {
        let mut out = Vec::new();
        let state = render_unknown(
            "portwarden: /p.toml:3:1: unknown field `x` | oops\nsecond",
            &mut out,
        )
        .unwrap();
        assert_eq!(state, NagiosState::Unknown);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "PORTWARDEN UNKNOWN - portwarden: /p.toml:3:1: unknown field `x` \\x7c oops\\nsecond\n"
        );
    }
}
