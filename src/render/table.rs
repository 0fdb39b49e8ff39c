//! The default listing: an aligned table for people, with a summary line.

use super::{display_address, findings_cell, netns, owner_cells, service_cell, Style};
use crate::model::{Listener, Report, Severity};
use crate::summary::Summary;
use owo_colors::OwoColorize;
use std::io::{self, Write};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Columns, in order. The marker column carries `!` on flagged rows so that
/// nothing depends on colour. NETNS shows only when a listed socket is in
/// another network namespace.
const HEADERS: [&str; 11] = [
    "", "PROTO", "ADDRESS", "PORT", "SERVICE", "PID", "PROCESS", "USER", "FINDINGS", "NETNS",
    "COMMAND",
];
const NETNS: usize = 9;
const COMMAND: usize = 10;
/// Columns that may be shortened to fit, most expendable first, with the
/// narrowest each may become. The command column is fitted last, into what
/// room is left.
const SHRINKABLE: [(usize, usize); 5] = [(6, 8), (4, 10), (7, 6), (2, 15), (NETNS, 10)];
/// The command column is shown only when at least this much room is left.
const MIN_COMMAND: usize = 12;

/// Cuts `s` to `width` display columns, ending in `…` when cut.
pub(crate) fn trim(s: &str, width: usize) -> String {
    if s.width() <= width {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

fn row(l: &Listener) -> [String; 11] {
    let owners = owner_cells(l);
    [
        if l.findings.is_empty() { " " } else { "!" }.to_string(),
        l.socket.proto.as_str().to_string(),
        display_address(l.socket.address, l.socket.dual_stack),
        l.socket.port.to_string(),
        service_cell(l),
        owners.pids,
        owners.attributed,
        owners.user,
        findings_cell(l),
        netns::cell(l),
        owners.command,
    ]
}

/// Width of a row: the columns plus one space between shown columns.
fn total(w: &[usize; 11]) -> usize {
    let shown = w.iter().filter(|&&x| x > 0).count();
    w.iter().sum::<usize>() + shown.saturating_sub(1)
}

/// Column widths: natural widths, then shrunk until the row fits
/// `style.width`; the command column takes what room is left, if enough.
fn widths(
    rows: &[[String; 11]],
    style: &Style,
    show_command: bool,
    show_netns: bool,
) -> [usize; 11] {
    let mut w = [0usize; 11];
    for (i, h) in HEADERS.iter().enumerate() {
        w[i] = h.width();
    }
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            w[i] = w[i].max(cell.width());
        }
    }
    let natural_command = w[COMMAND];
    w[COMMAND] = 0;
    if !show_netns {
        w[NETNS] = 0;
    }
    let Some(limit) = style.width.filter(|_| !style.wide) else {
        if show_command {
            w[COMMAND] = natural_command;
        }
        return w;
    };
    for (col, min) in SHRINKABLE {
        let over = total(&w).saturating_sub(limit);
        if over == 0 {
            break;
        }
        if w[col] > min {
            w[col] -= over.min(w[col] - min);
        }
    }
    let room = limit.saturating_sub(total(&w) + 1);
    if show_command && room >= MIN_COMMAND {
        w[COMMAND] = natural_command.min(room);
    }
    w
}

/// Writes the table and the summary line.
pub fn render(report: &Report, style: &Style, out: &mut dyn Write) -> io::Result<()> {
    let rows: Vec<[String; 11]> = report.listeners.iter().map(row).collect();
    // The command column shows in --wide, or when the terminal has room for it.
    let show_command = style.wide || style.width.is_some();
    let show_netns = report.listeners.iter().any(|l| l.socket.netns.is_some());
    let w = widths(&rows, style, show_command, show_netns);
    let format_row = |cells: &[String; 11]| -> Vec<String> {
        cells
            .iter()
            .enumerate()
            .filter(|(i, _)| w[*i] > 0)
            .map(|(i, c)| {
                let c = if style.wide { c.clone() } else { trim(c, w[i]) };
                let pad = w[i].saturating_sub(c.width());
                if i == 3 {
                    format!("{}{c}", " ".repeat(pad))
                } else {
                    format!("{c}{}", " ".repeat(pad))
                }
            })
            .collect()
    };
    let headers: [String; 11] = HEADERS.map(str::to_string);
    let header = format_row(&headers).join(" ");
    let header = header.trim_end();
    if style.color {
        writeln!(out, "{}", header.bold())?;
    } else {
        writeln!(out, "{header}")?;
    }
    for (l, cells) in report.listeners.iter().zip(&rows) {
        let cols = format_row(cells);
        let mut line = String::new();
        for (i, text) in cols.iter().enumerate() {
            if i > 0 {
                line.push(' ');
            }
            line.push_str(&paint(l, i, text, style.color));
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    let summary = Summary::of(&report.listeners);
    writeln!(out)?;
    writeln!(out, "{}", summary.line())?;
    if summary.owners_not_visible > 0 {
        let n = summary.owners_not_visible;
        let owners = if n == 1 { "owner" } else { "owners" };
        if report.privileged {
            writeln!(
                out,
                "{n} {owners} not visible even to root: another pid namespace or a hidden /proc"
            )?;
        } else {
            writeln!(
                out,
                "{n} {owners} not visible: run as root to see the owners of every socket"
            )?;
        }
    }
    Ok(())
}

/// Colours one visible column of a row. Flagged rows are coloured by their
/// worst finding; the `!` marker and the findings text carry the meaning too.
fn paint(l: &Listener, visible_index: usize, text: &str, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    let worst = l.findings.iter().map(|f| f.severity()).max();
    let hidden = !l.socket.owner_visible();
    match (visible_index, worst) {
        (0 | 8, Some(Severity::Critical)) => text.red().bold().to_string(),
        (0 | 8, Some(Severity::Warning)) => text.yellow().bold().to_string(),
        (0 | 8, Some(Severity::Info)) => text.cyan().to_string(),
        (3, Some(_)) => text.bold().to_string(),
        (6, _) if hidden => text.magenta().to_string(),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_cuts_with_ellipsis() {
        assert_eq!(trim("nginx", 10), "nginx");
        assert_eq!(trim("postgres-writer", 8), "postgre…");
        assert_eq!(trim("日本語のプロセス", 7), "日本語…");
    }
}
