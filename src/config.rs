//! Configuration resolved once from the command line and the environment.
//! Everything after this reads [`Config`], never the environment.

use crate::cli::{ColorWhen, FilterArgs, ListArgs, ListFormat};
use crate::filter::Filter;
use crate::model::Proto;
use crate::render::Style;
use std::ffi::OsStr;
use std::path::PathBuf;

/// Whether to colour: `auto` colours only a terminal, with `NO_COLOR` unset
/// or empty (no-color.org) and `TERM` not `dumb`.
pub fn color_enabled(
    when: ColorWhen,
    is_terminal: bool,
    no_color: Option<&OsStr>,
    term: Option<&OsStr>,
) -> bool {
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => {
            is_terminal && no_color.is_none_or(|v| v.is_empty()) && term.is_none_or(|t| t != "dumb")
        }
    }
}

/// The filter selected by the `list` flags.
pub fn filter_from(args: &FilterArgs) -> Filter {
    let mut protos = Vec::new();
    if args.tcp {
        protos.push(Proto::Tcp);
    }
    if args.udp {
        protos.push(Proto::Udp);
    }
    Filter {
        protos,
        ipv4: args.ipv4,
        ipv6: args.ipv6,
        ports: args.port.clone(),
        pids: args.pid.clone(),
        process: args.process.clone(),
        user: args.user.clone(),
        flagged: args.flagged,
        exposed: args.exposed,
    }
}

/// Everything the commands need from the command line and environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// Colour human output.
    pub color: bool,
    /// Standard output is a terminal.
    pub stdout_is_terminal: bool,
    /// Standard error is a terminal (progress bars).
    pub stderr_is_terminal: bool,
    /// Terminal width when standard output is a terminal.
    pub width: Option<usize>,
    /// `--registry FILE`.
    pub registry: Option<PathBuf>,
    /// `$PORTWARDEN_CONFIG`: the policy file when `--config` is not given.
    pub policy_env: Option<std::ffi::OsString>,
}

impl Config {
    /// Reads the terminal state and the environment once.
    pub fn from_env(color: ColorWhen, registry: Option<PathBuf>) -> Config {
        use std::io::IsTerminal;
        let stdout_is_terminal = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR");
        let term = std::env::var_os("TERM");
        let width = if stdout_is_terminal {
            stdout_size().map(|(columns, _)| columns)
        } else {
            None
        };
        Config {
            color: color_enabled(
                color,
                stdout_is_terminal,
                no_color.as_deref(),
                term.as_deref(),
            ),
            stdout_is_terminal,
            stderr_is_terminal: std::io::stderr().is_terminal(),
            width,
            registry,
            policy_env: std::env::var_os("PORTWARDEN_CONFIG"),
        }
    }

    /// The style of `list` output for `args`.
    pub fn list_style(&self, args: &ListArgs) -> Style {
        Style {
            color: self.color && list_format(args) == ListFormat::Table,
            width: self.width,
            wide: args.wide,
        }
    }
}

/// The size of the terminal on standard output, as (columns, rows); `None`
/// when standard output is not a terminal. Read again by `watch` each round,
/// so that its live view follows a resized window.
pub fn stdout_size() -> Option<(usize, usize)> {
    terminal_size::terminal_size().map(|(w, h)| (usize::from(w.0), usize::from(h.0)))
}

/// The `list` format: `--json` means json; the default is the table.
pub fn list_format(args: &ListArgs) -> ListFormat {
    if args.json {
        ListFormat::Json
    } else {
        args.format.unwrap_or(ListFormat::Table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn color_auto_rules() {
        let auto = |tty, nc: Option<&str>, term: Option<&str>| {
            color_enabled(
                ColorWhen::Auto,
                tty,
                nc.map(OsStr::new),
                term.map(OsStr::new),
            )
        };
        assert!(auto(true, None, Some("xterm-256color")));
        assert!(!auto(false, None, Some("xterm")));
        assert!(!auto(true, Some("1"), Some("xterm")));
        assert!(auto(true, Some(""), Some("xterm")));
        assert!(!auto(true, None, Some("dumb")));
        assert!(color_enabled(
            ColorWhen::Always,
            false,
            Some(OsStr::new("1")),
            None
        ));
        assert!(!color_enabled(ColorWhen::Never, true, None, None));
    }
}
