//! `portwarden watch` output: the live view redrawn each round, and the two
//! streams (plain lines, JSON lines) for scripts.

use super::table::{self, trim};
use super::{display_address, owner_cells, plain, Style};
use crate::model::{Listener, Report};
use crate::watch::{Event, EventKind, History};
use owo_colors::OwoColorize;
use serde::Serialize;
use std::io::{self, Write};
use std::time::{Duration, SystemTime};
use unicode_width::UnicodeWidthStr;

pub use jiff::tz::TimeZone;

/// `t` as an RFC 3339 UTC timestamp with milliseconds: `2026-11-23T08:05:39.120Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let ts = jiff::Timestamp::try_from(t).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    format!("{ts:.3}")
}

/// `t` as a wall-clock time in `tz`: `14:02:11`.
pub fn clock(t: SystemTime, tz: &TimeZone) -> String {
    let ts = jiff::Timestamp::try_from(t).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.to_zoned(tz.clone()).strftime("%H:%M:%S").to_string()
}

/// An interval as people write it: `2s`, `0.5s`.
pub fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// `ADDRESS:PORT`, IPv6 in brackets, a dual-stack wildcard as `*`.
fn endpoint(l: &Listener) -> String {
    let address = display_address(l.socket.address, l.socket.dual_stack);
    if address.contains(':') {
        format!("[{address}]:{}", l.socket.port)
    } else {
        format!("{address}:{}", l.socket.port)
    }
}

/// `nginx (1234,1235)`, or `(owner not visible)`; sanitized.
fn owners(l: &Listener) -> String {
    let cells = owner_cells(l);
    if l.socket.owner_visible() {
        format!("{} ({})", cells.process, cells.pids)
    } else {
        cells.process
    }
}

/// One event for people, without colour:
/// `+ 14:02:11 tcp 0.0.0.0:8080 nginx (1234)`; an owner change shows both
/// owners: `~ 14:02:20 tcp 0.0.0.0:8080 nginx (1234) -> nginx (5678)`.
pub fn event_line(e: &Event, tz: &TimeZone) -> String {
    let l = &e.listener;
    let mut line = format!(
        "{} {} {} {} ",
        e.kind.marker(),
        clock(e.time, tz),
        l.socket.proto,
        endpoint(l)
    );
    if let Some(previous) = &e.previous {
        line.push_str(&owners(previous));
        line.push_str(" -> ");
    }
    line.push_str(&owners(l));
    line
}

fn paint_marker(kind: EventKind, text: &str, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    match kind {
        EventKind::Appeared => text.green().bold().to_string(),
        EventKind::Gone => text.red().bold().to_string(),
        EventKind::OwnerChanged => text.yellow().bold().to_string(),
        EventKind::Present => text.to_string(),
    }
}

/// What the live view's header says about the round.
#[derive(Clone, Debug)]
pub struct Round<'a> {
    /// Round number, from 1.
    pub number: u64,
    /// When its scan ran.
    pub time: SystemTime,
    /// The pause between scans.
    pub interval: Duration,
    /// Time zone for wall-clock times.
    pub tz: &'a TimeZone,
    /// Terminal rows, when known: the frame is cut to fit.
    pub height: Option<usize>,
}

/// How many events the live view lists.
pub const EVENTS_SHOWN: usize = 10;

/// The live view's content, without cursor movement: a header line, the
/// `list` table (listeners that appeared or changed owners in the last few
/// rounds marked `+` or `~` in an extra first column), then the newest
/// changes, newest first. `report` is already filtered. With
/// [`Round::height`], table rows that do not fit are left out and counted,
/// so the header and the changes stay on screen.
pub fn frame(
    report: &Report,
    history: &History,
    round: &Round<'_>,
    style: &Style,
    out: &mut dyn Write,
) -> io::Result<()> {
    let fit = |line: String| match style.width.filter(|_| !style.wide) {
        Some(w) if line.width() > w => trim(&line, w),
        _ => line,
    };
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let header = fit(format!(
        "portwarden watch, every {}: round {} at {}, {}, {} so far",
        seconds(round.interval),
        round.number,
        clock(round.time, round.tz),
        plural(report.listeners.len() as u64, "listener", "listeners"),
        plural(history.total(), "change", "changes"),
    ));
    let header = if style.color {
        header.bold().to_string()
    } else {
        header
    };

    // The table, two columns narrower, behind a marker column: one header
    // line, then exactly one line per listener (cells never hold a newline:
    // they are sanitized), then the summary.
    let inner = Style {
        width: style.width.map(|w| w.saturating_sub(2)),
        ..*style
    };
    let mut table_text = Vec::new();
    table::render(report, &inner, &mut table_text)?;
    let table_text = String::from_utf8_lossy(&table_text);
    let mut table_lines = table_text.lines();
    let table_header = format!("  {}", table_lines.next().unwrap_or_default());
    let mut rows: Vec<String> = report
        .listeners
        .iter()
        .zip(table_lines.by_ref())
        .map(|(l, line)| {
            let marker = match history.mark(round.number, l) {
                Some(kind) => paint_marker(kind, &kind.marker().to_string(), style.color),
                None => " ".to_string(),
            };
            format!("{marker} {line}")
        })
        .collect();
    let table_tail: Vec<String> = table_lines.map(str::to_string).collect();

    let mut changes = vec![String::new()];
    let mut events = history.events().take(EVENTS_SHOWN).peekable();
    changes.push(
        if events.peek().is_none() {
            "no changes yet"
        } else {
            "latest changes, newest first:"
        }
        .to_string(),
    );
    for e in events {
        let line = fit(event_line(e, round.tz));
        // The marker is the line's first character (ASCII), unless a very
        // narrow terminal cut the line down to the ellipsis.
        match line.split_at_checked(1) {
            Some((marker, rest)) if marker.is_ascii() => changes.push(format!(
                "{}{rest}",
                paint_marker(e.kind, marker, style.color)
            )),
            _ => changes.push(line),
        }
    }

    // The last line's newline would scroll a full screen by one.
    let budget = round.height.map(|h| h.saturating_sub(1).max(1));
    if let Some(budget) = budget {
        let fixed = 3 + table_tail.len() + changes.len();
        if fixed + rows.len() > budget {
            let keep = budget.saturating_sub(fixed + 1).min(rows.len());
            let hidden = rows.len() - keep;
            rows.truncate(keep);
            rows.push(fit(format!(
                "  ... {}: enlarge the window or filter",
                plural(hidden as u64, "more listener", "more listeners")
            )));
        }
    }
    let lines = [header, String::new(), table_header]
        .into_iter()
        .chain(rows)
        .chain(table_tail)
        .chain(changes)
        .take(budget.unwrap_or(usize::MAX));
    for line in lines {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Writes `frame` over the previous one: cursor home, each line followed by
/// erase-to-end-of-line, then erase below. Nothing flickers, and nothing
/// needs restoring afterwards (the cursor stays visible; no alternate screen).
pub fn redraw(frame: &[u8], out: &mut dyn Write) -> io::Result<()> {
    let mut screen = Vec::with_capacity(frame.len() + 256);
    screen.extend_from_slice(b"\x1b[H");
    for line in frame.split_inclusive(|&b| b == b'\n') {
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        screen.extend_from_slice(text);
        screen.extend_from_slice(b"\x1b[K\n");
    }
    screen.extend_from_slice(b"\x1b[J");
    // One write, so an interrupted program leaves a whole frame.
    out.write_all(&screen)
}

/// One event as a plain line: the marker (`=` present, `+` appeared, `-`
/// gone, `~` owner-changed), the RFC 3339 time, then the nine fields of
/// `list --format plain` (for `~`, the new owners).
pub fn plain_event(e: &Event, out: &mut dyn Write) -> io::Result<()> {
    let one = Report {
        listeners: vec![e.listener.clone()],
        privileged: false,
    };
    let mut fields = Vec::new();
    plain::render(&one, &mut fields)?;
    write!(out, "{} {} ", e.kind.marker(), rfc3339(e.time))?;
    out.write_all(&fields)
}

#[derive(Serialize)]
struct JsonEvent<'a> {
    event: &'static str,
    time: String,
    listener: super::json::JsonListener<'a>,
    previous: Option<super::json::JsonListener<'a>>,
}

/// One event as one line of JSON:
/// `{"event":KIND,"time":RFC3339,"listener":{...},"previous":{...}|null}`,
/// the listener objects as in `list --json`.
pub fn json_event(e: &Event, out: &mut dyn Write) -> io::Result<()> {
    let doc = JsonEvent {
        event: e.kind.as_str(),
        time: rfc3339(e.time),
        listener: super::json::listener(&e.listener),
        previous: e.previous.as_ref().map(super::json::listener),
    };
    serde_json::to_writer(&mut *out, &doc)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::fixtures;
    use crate::watch::{diff, present};

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000 + secs)
    }

    fn text(f: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> String {
        let mut buf = Vec::new();
        f(&mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339(at(0)), "2026-11-18T11:06:40.000Z");
        let t = at(0) + Duration::from_millis(1234);
        assert_eq!(rfc3339(t), "2026-11-18T11:06:41.234Z");
        assert_eq!(clock(t, &TimeZone::UTC), "11:06:41");
        let plus2 = TimeZone::fixed(jiff::tz::offset(2));
        assert_eq!(clock(t, &plus2), "13:06:41");
        assert_eq!(seconds(Duration::from_millis(200)), "0.2s");
        assert_eq!(seconds(Duration::from_secs(2)), "2s");
    }

    /// Round 1: the fixture without its first listener; round 2: the whole
    /// fixture, with the evil listener's owner replaced.
    fn two_rounds() -> (Report, History) {
        let full = fixtures::report();
        let first = full.listeners[1..].to_vec();
        let mut second = full.clone();
        second.listeners[1].socket.processes[0].pid = 201;
        let mut h = History::new(10);
        h.record(1, &present(&first, at(0)));
        h.record(2, &diff(&first, &second.listeners, at(2)));
        (second, h)
    }

    #[test]
    fn event_lines_name_owners_and_escape_them() {
        let (_, h) = two_rounds();
        let lines: Vec<String> = h.events().map(|e| event_line(e, &TimeZone::UTC)).collect();
        assert_eq!(
            lines,
            [
                "+ 11:06:42 tcp 0.0.0.0:22 sshd (100,101)",
                "~ 11:06:42 tcp 127.0.0.1:1276 evil\\e[31m (200) -> evil\\e[31m (201)",
            ]
        );
        let mut gone = h.events().next().unwrap().clone();
        gone.kind = EventKind::Gone;
        gone.listener = fixtures::report().listeners[3].clone();
        assert_eq!(
            event_line(&gone, &TimeZone::UTC),
            "- 11:06:42 udp *:50000 resolver (300)"
        );
        gone.listener = fixtures::report().listeners[2].clone();
        assert_eq!(
            event_line(&gone, &TimeZone::UTC),
            "- 11:06:42 tcp 10.0.0.5:2024 (owner not visible)"
        );
    }

    #[test]
    fn frame_marks_new_rows_and_lists_changes() {
        let (report, h) = two_rounds();
        let round = Round {
            number: 2,
            time: at(2),
            interval: Duration::from_secs(2),
            tz: &TimeZone::UTC,
            height: None,
        };
        let out = text(|b| frame(&report, &h, &round, &Style::default(), b));
        let expected = [
            "portwarden watch, every 2s: round 2 at 11:06:42, 4 listeners, 2 changes so far",
            "",
            "    PROTO ADDRESS    PORT SERVICE      PID     PROCESS             USER  FINDINGS",
            "+   tcp   0.0.0.0      22 ssh          100,101 sshd                root  -",
            "~ ! tcp   127.0.0.1  1276 (reserved)   201     evil\\e[31m          alice reserved-port",
            "  ! tcp   10.0.0.5   2024 (unassigned) -       (owner not visible) root  unassigned-port",
            "  ! udp   *         50000 (dynamic)    300     resolver            alice dynamic-port",
            "",
            "4 listeners, 3 flagged: 1 unassigned-port, 1 reserved-port, 1 dynamic-port",
            "1 owner not visible even to root: another pid namespace or a hidden /proc",
            "",
            "latest changes, newest first:",
            "+ 11:06:42 tcp 0.0.0.0:22 sshd (100,101)",
            "~ 11:06:42 tcp 127.0.0.1:1276 evil\\e[31m (200) -> evil\\e[31m (201)",
            "",
        ]
        .join("\n");
        assert_eq!(out, expected);
        assert!(!out.contains('\u{1b}'));
    }

    #[test]
    fn frame_fits_the_width_and_colours_only_when_asked() {
        let (report, h) = two_rounds();
        let round = Round {
            number: 2,
            time: at(2),
            interval: Duration::from_millis(500),
            tz: &TimeZone::UTC,
            height: None,
        };
        let narrow = Style {
            width: Some(80),
            ..Style::default()
        };
        let out = text(|b| frame(&report, &h, &round, &narrow, b));
        for line in out.lines() {
            assert!(line.width() <= 80, "{line:?}");
        }
        let coloured = Style {
            color: true,
            ..Style::default()
        };
        let out = text(|b| frame(&report, &h, &round, &coloured, b));
        assert!(out.contains("\u{1b}[32m"), "appeared rows are green");
        // The process's own escape sequence is still escaped.
        assert!(out.contains("evil\\e[31m"));
        // Several rounds later the marks are gone, the events stay.
        let mut later = h.clone();
        for n in 3..=5 {
            later.record(n, &[]);
        }
        let round = Round { number: 5, ..round };
        let out = text(|b| frame(&report, &later, &round, &Style::default(), b));
        assert!(!out
            .lines()
            .any(|l| l.starts_with('+') && !l.starts_with("+ 11:")));
        assert!(out.contains("+ 11:06:42 tcp 0.0.0.0:22"));
        let empty = History::new(10);
        let out = text(|b| frame(&report, &empty, &round, &Style::default(), b));
        assert!(out.ends_with("no changes yet\n"), "{out}");
    }

    #[test]
    fn frame_survives_terminals_a_few_columns_wide() {
        let (report, h) = two_rounds();
        let round = Round {
            number: 2,
            time: at(2),
            interval: Duration::from_secs(2),
            tz: &TimeZone::UTC,
            height: None,
        };
        for width in 0..=3 {
            let style = Style {
                width: Some(width),
                color: true,
                ..Style::default()
            };
            let out = text(|b| frame(&report, &h, &round, &style, b));
            assert!(out.contains("latest changes") || out.contains('…'), "{out}");
        }
    }

    #[test]
    fn frame_is_cut_to_the_terminal_height() {
        let (report, h) = two_rounds();
        let utc = TimeZone::UTC;
        let round = |height| Round {
            number: 2,
            time: at(2),
            interval: Duration::from_secs(2),
            tz: &utc,
            height: Some(height),
        };
        let full = text(|b| frame(&report, &h, &round(100), &Style::default(), b));
        assert_eq!(full.lines().count(), 14);
        // 14 lines need 15 rows (the last newline scrolls); with 14 rows two
        // listeners give way to a line that counts them.
        let cut = text(|b| frame(&report, &h, &round(14), &Style::default(), b));
        let lines: Vec<&str> = cut.lines().collect();
        assert_eq!(lines.len(), 13, "{cut}");
        assert!(lines[3].starts_with("+   tcp   0.0.0.0      22"), "{cut}");
        assert!(lines[4].starts_with("~ ! tcp   127.0.0.1  1276"), "{cut}");
        assert_eq!(
            lines[5],
            "  ... 2 more listeners: enlarge the window or filter"
        );
        assert!(lines[7].starts_with("4 listeners, 3 flagged"), "{cut}");
        assert!(cut.ends_with("-> evil\\e[31m (201)\n"), "{cut}");
        // A tiny window still gets the header first.
        let tiny = text(|b| frame(&report, &h, &round(2), &Style::default(), b));
        assert_eq!(tiny.lines().count(), 1);
        assert!(tiny.starts_with("portwarden watch, every 2s"));
    }

    #[test]
    fn redraw_homes_and_erases() {
        let out = text(|b| redraw(b"one\ntwo\n", b));
        assert_eq!(out, "\u{1b}[Hone\u{1b}[K\ntwo\u{1b}[K\n\u{1b}[J");
    }

    #[test]
    fn plain_and_json_streams() {
        let (_, h) = two_rounds();
        let events: Vec<&Event> = h.events().collect();
        let plain = text(|b| {
            for e in &events {
                plain_event(e, b)?;
            }
            Ok(())
        });
        assert_eq!(
            plain,
            "+ 2026-11-18T11:06:42.000Z tcp 0.0.0.0 22 assigned ssh 100,101 sshd root -\n\
             ~ 2026-11-18T11:06:42.000Z tcp 127.0.0.1 1276 reserved - 201 evil\\e[31m alice reserved-port\n"
        );
        for line in plain.lines() {
            assert_eq!(line.split(' ').count(), 11, "{line}");
        }
        let json = text(|b| json_event(events[1], b));
        assert_eq!(json.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["event"], "owner-changed");
        assert_eq!(v["time"], "2026-11-18T11:06:42.000Z");
        assert_eq!(v["listener"]["port"], 1276);
        assert_eq!(v["listener"]["processes"][0]["pid"], 201);
        // JSON keeps the raw name; only JSON escaping applies.
        assert_eq!(v["listener"]["processes"][0]["name"], "evil\u{1b}[31m");
        assert_eq!(v["previous"]["processes"][0]["pid"], 200);
        let json = text(|b| json_event(events[0], b));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["event"], "appeared");
        assert!(v["previous"].is_null());
        assert_eq!(v["listener"]["registry"]["services"][0], "ssh");
    }
}
