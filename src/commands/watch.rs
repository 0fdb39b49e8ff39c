//! `portwarden watch`: scan, show, wait, rescan, show what changed.
//!
//! The loop takes its scan, its pause and its clock from the caller, so it
//! runs in tests without sleeping and with fixed times.

use crate::cli::{WatchArgs, WatchFormat};
use crate::config::{self, filter_from, Config};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::model::Report;
use crate::render::watch::{self as view, Round, TimeZone};
use crate::render::Style;
use crate::watch::{diff, present, Event, History};
use std::io::Write;
use std::time::{Duration, SystemTime};

/// How the watch shows itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Redraw the live view each round.
    Redraw,
    /// Stream plain lines.
    Plain,
    /// Stream JSON lines.
    Json,
}

/// The mode for `args`: `--json` / `--format` when given; otherwise the live
/// view on a terminal and the plain stream elsewhere.
pub fn mode(args: &WatchArgs, stdout_is_terminal: bool) -> Mode {
    match (args.json, args.format) {
        (true, _) | (_, Some(WatchFormat::Json)) => Mode::Json,
        (_, Some(WatchFormat::Plain)) => Mode::Plain,
        (_, Some(WatchFormat::Table)) => Mode::Redraw,
        (_, None) if stdout_is_terminal => Mode::Redraw,
        (_, None) => Mode::Plain,
    }
}

/// What the loop needs from the world.
pub struct Hooks<'a> {
    /// One classified scan of the machine.
    pub scan: &'a mut dyn FnMut() -> Result<Report>,
    /// Waits between rounds; `false` ends the watch (its reader is gone).
    pub sleep: &'a mut dyn FnMut(Duration) -> bool,
    /// The current time.
    pub now: &'a mut dyn FnMut() -> SystemTime,
    /// Time zone for the live view's wall-clock times.
    pub tz: TimeZone,
    /// The terminal's (columns, rows) now, when output is a terminal; read
    /// each round so the live view follows a resized window.
    pub terminal: &'a mut dyn FnMut() -> Option<(usize, usize)>,
}

/// Runs `portwarden watch` for real: sleeping threads, the system clock and
/// time zone. Returns [`Exit::Ok`] after `--count` rounds; without
/// `--count` it runs until interrupted or its output is closed.
pub fn run(
    config: &Config,
    args: &WatchArgs,
    scan: &mut dyn FnMut() -> Result<Report>,
    out: &mut dyn Write,
) -> Result<Exit> {
    let is_terminal = config.stdout_is_terminal;
    let mut hooks = Hooks {
        scan,
        sleep: &mut pause,
        now: &mut SystemTime::now,
        tz: TimeZone::system(),
        // A pty nobody sized reports 0x0: unknown, not zero.
        terminal: &mut || {
            config::stdout_size().filter(|&(columns, rows)| is_terminal && columns > 0 && rows > 0)
        },
    };
    run_with(config, args, &mut hooks, out)
}

/// The loop of [`run`], with the world injected.
pub fn run_with(
    config: &Config,
    args: &WatchArgs,
    hooks: &mut Hooks<'_>,
    out: &mut dyn Write,
) -> Result<Exit> {
    let mode = mode(args, config.stdout_is_terminal);
    let filter = filter_from(&args.filter);
    let mut history = History::new(view::EVENTS_SHOWN);
    let mut previous: Option<Report> = None;
    let mut round: u64 = 0;
    loop {
        round += 1;
        let scanned = (hooks.scan)()?;
        let time = (hooks.now)();
        let report = Report {
            listeners: filter.apply(scanned.listeners),
            privileged: scanned.privileged,
        };
        let events = match &previous {
            None => present(&report.listeners, time),
            Some(before) => diff(&before.listeners, &report.listeners, time),
        };
        history.record(round, &events);
        match mode {
            Mode::Redraw => {
                let size = (hooks.terminal)();
                let style = Style {
                    color: config.color,
                    width: size.map(|(columns, _)| columns).or(config.width),
                    wide: args.wide,
                };
                let mut frame = Vec::new();
                let info = Round {
                    number: round,
                    time,
                    interval: args.interval,
                    tz: &hooks.tz,
                    height: size.map(|(_, rows)| rows),
                };
                view::frame(&report, &history, &info, &style, &mut frame)
                    .and_then(|()| view::redraw(&frame, out))
                    .map_err(Error::Write)?;
            }
            Mode::Plain | Mode::Json => stream(mode, &events, out)?,
        }
        out.flush().map_err(Error::Write)?;
        previous = Some(report);
        if args.count.is_some_and(|n| round >= n) {
            return Ok(Exit::Ok);
        }
        if !(hooks.sleep)(args.interval) {
            // Nobody reads any more (`watch | head`): done, as on a broken pipe.
            return Ok(Exit::Ok);
        }
    }
}

/// How often a pause checks that the output is still read.
const PAUSE_SLICE: Duration = Duration::from_millis(200);

/// Sleeps `d`; `false` early when standard output is a pipe whose reader
/// has gone. A stream writes only when something changes, so without this
/// `portwarden watch | head -3` on a quiet host would never end.
fn pause(d: Duration) -> bool {
    let deadline = std::time::Instant::now() + d;
    loop {
        if output_reader_gone() {
            return false;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(PAUSE_SLICE));
    }
}

/// Whether standard output is a pipe with no reader left: Linux reports
/// POLLERR on a pipe's write end once every read end is closed
/// (fs/pipe.c, pipe_poll). Files and terminals never report it.
#[cfg(target_os = "linux")]
fn output_reader_gone() -> bool {
    let mut fd = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid, initialised pollfd; a zero timeout never blocks.
    let ready = unsafe { libc::poll(&mut fd, 1, 0) };
    ready == 1 && fd.revents & libc::POLLERR != 0
}

/// Elsewhere a closed pipe is noticed at the next write.
#[cfg(not(target_os = "linux"))]
fn output_reader_gone() -> bool {
    false
}

fn stream(mode: Mode, events: &[Event], out: &mut dyn Write) -> Result<()> {
    for e in events {
        match mode {
            Mode::Json => view::json_event(e, out),
            _ => view::plain_event(e, out),
        }
        .map_err(Error::Write)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::tests::{listener, owner};
    use crate::cli::Cli;
    use crate::model::{PortStatus, Proto};
    use clap::Parser;

    fn args(extra: &[&str]) -> WatchArgs {
        let mut argv = vec!["portwarden", "watch"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Some(crate::cli::Command::Watch(a)) => a,
            other => panic!("{other:?}"),
        }
    }

    fn config(terminal: bool) -> Config {
        Config {
            color: false,
            stdout_is_terminal: terminal,
            stderr_is_terminal: false,
            width: None,
            registry: None,
            policy_env: None,
        }
    }

    fn report(ports: &[(u16, u32)]) -> Report {
        Report {
            listeners: ports
                .iter()
                .map(|&(port, pid)| {
                    listener(
                        Proto::Tcp,
                        "127.0.0.1",
                        port,
                        PortStatus::Assigned,
                        vec![owner(pid, "web", "/usr/bin/web", "www")],
                    )
                })
                .collect(),
            privileged: true,
        }
    }

    /// Runs the loop over `scans` (one per round); returns the output, the
    /// pauses asked for, and the result.
    fn run_rounds(
        a: &WatchArgs,
        terminal: bool,
        scans: Vec<Result<Report>>,
    ) -> (String, Vec<Duration>, Result<Exit>) {
        let mut scans = scans.into_iter();
        let mut scan = || {
            scans
                .next()
                .unwrap_or_else(|| Err(Error::Collect("no more scans".into())))
        };
        let mut slept = Vec::new();
        let mut sleep = |d| {
            slept.push(d);
            true
        };
        let mut tick = 0u64;
        let mut now = || {
            tick += 1;
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000 + tick)
        };
        let mut hooks = Hooks {
            scan: &mut scan,
            sleep: &mut sleep,
            now: &mut now,
            tz: TimeZone::UTC,
            terminal: &mut || None,
        };
        let mut out = Vec::new();
        let result = run_with(&config(terminal), a, &mut hooks, &mut out);
        (String::from_utf8(out).unwrap(), slept, result)
    }

    #[test]
    fn modes() {
        assert_eq!(mode(&args(&[]), true), Mode::Redraw);
        assert_eq!(mode(&args(&[]), false), Mode::Plain);
        assert_eq!(mode(&args(&["--json"]), true), Mode::Json);
        assert_eq!(mode(&args(&["--format", "json"]), true), Mode::Json);
        assert_eq!(mode(&args(&["--format", "plain"]), true), Mode::Plain);
        assert_eq!(mode(&args(&["--format", "table"]), false), Mode::Redraw);
    }

    #[test]
    fn plain_stream_prints_the_state_then_changes() {
        let a = args(&["--count", "3", "--interval", "0.5"]);
        let scans = vec![
            Ok(report(&[(80, 1)])),
            Ok(report(&[(80, 1), (8080, 2)])),
            Ok(report(&[(8080, 3)])),
        ];
        let (out, slept, result) = run_rounds(&a, false, scans);
        assert_eq!(result.unwrap(), Exit::Ok);
        assert_eq!(
            out,
            "= 2026-11-18T11:06:41.000Z tcp 127.0.0.1 80 assigned svc 1 web www -\n\
             + 2026-11-18T11:06:42.000Z tcp 127.0.0.1 8080 assigned svc 2 web www -\n\
             - 2026-11-18T11:06:43.000Z tcp 127.0.0.1 80 assigned svc 1 web www -\n\
             ~ 2026-11-18T11:06:43.000Z tcp 127.0.0.1 8080 assigned svc 3 web www -\n"
        );
        // No pause after the last round.
        assert_eq!(slept, vec![Duration::from_millis(500); 2]);
    }

    #[test]
    fn json_stream_and_filters() {
        let a = args(&["--count", "2", "--json", "--port", "8080"]);
        let scans = vec![Ok(report(&[(80, 1)])), Ok(report(&[(80, 9), (8080, 2)]))];
        let (out, _, result) = run_rounds(&a, true, scans);
        assert_eq!(result.unwrap(), Exit::Ok);
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // Port 80 is filtered out: its owner change is not reported.
        assert_eq!(lines.len(), 1, "{out}");
        assert_eq!(lines[0]["event"], "appeared");
        assert_eq!(lines[0]["listener"]["port"], 8080);
        assert_eq!(lines[0]["time"], "2026-11-18T11:06:42.000Z");
    }

    #[test]
    fn redraw_draws_each_round_over_the_last() {
        let a = args(&["--count", "2"]);
        let scans = vec![Ok(report(&[(80, 1)])), Ok(report(&[(80, 1), (8080, 2)]))];
        let (out, _, result) = run_rounds(&a, true, scans);
        assert_eq!(result.unwrap(), Exit::Ok);
        let frames: Vec<&str> = out.split("\u{1b}[H").skip(1).collect();
        assert_eq!(frames.len(), 2);
        assert!(frames[0].contains("round 1 at 11:06:41"), "{}", frames[0]);
        assert!(frames[0].contains("no changes yet"));
        assert!(frames[1].contains("+ 11:06:42 tcp 127.0.0.1:8080 web (2)"));
        assert!(frames.iter().all(|f| f.ends_with("\u{1b}[J")));
    }

    #[test]
    fn the_live_view_follows_the_terminal_size() {
        let a = args(&["--count", "2", "--format", "table"]);
        let mut scan = || Ok(report(&[(80, 1), (443, 1), (8080, 2)]));
        let mut sleep = |_| true;
        let mut now = SystemTime::now;
        let mut sizes = vec![Some((40, 100)), Some((200, 6))].into_iter();
        let mut terminal = || sizes.next().flatten();
        let mut hooks = Hooks {
            scan: &mut scan,
            sleep: &mut sleep,
            now: &mut now,
            tz: TimeZone::UTC,
            terminal: &mut terminal,
        };
        let mut out = Vec::new();
        run_with(&config(true), &a, &mut hooks, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        let frames: Vec<&str> = out.split("\u{1b}[H").skip(1).collect();
        // The header is cut to 40 columns, then not at 200.
        let first_line = |f: &str| f.lines().next().unwrap().replace("\u{1b}[K", "");
        assert_eq!(first_line(frames[0]).chars().count(), 40, "{}", frames[0]);
        assert!(first_line(frames[0]).ends_with('…'));
        assert!(first_line(frames[1]).ends_with("0 changes so far"));
        assert_eq!(frames[1].matches('\n').count(), 5, "{}", frames[1]);
        assert!(frames[1].contains("... 3 more listeners"), "{}", frames[1]);
    }

    #[test]
    fn an_unread_output_ends_the_watch() {
        let a = args(&[]);
        let mut scan = || Ok(report(&[(80, 1)]));
        let mut pauses = 0;
        let mut sleep = |_| {
            pauses += 1;
            pauses < 3
        };
        let mut now = SystemTime::now;
        let mut hooks = Hooks {
            scan: &mut scan,
            sleep: &mut sleep,
            now: &mut now,
            tz: TimeZone::UTC,
            terminal: &mut || None,
        };
        let mut out = Vec::new();
        let exit = run_with(&config(false), &a, &mut hooks, &mut out).unwrap();
        assert_eq!(exit, Exit::Ok);
        assert_eq!(pauses, 3);
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 1);
    }

    #[test]
    fn a_failed_scan_is_an_error() {
        let a = args(&["--count", "5"]);
        let scans = vec![
            Ok(report(&[(80, 1)])),
            Err(Error::Collect("netlink refused".into())),
        ];
        let (out, slept, result) = run_rounds(&a, false, scans);
        assert!(matches!(result, Err(Error::Collect(_))), "{result:?}");
        assert_eq!(out.lines().count(), 1, "the first round was written");
        assert_eq!(slept.len(), 1);
    }

    #[test]
    fn a_closed_output_ends_the_watch() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let a = args(&[]);
        let mut scan = || Ok(report(&[(80, 1)]));
        let mut sleep = |_| true;
        let mut now = SystemTime::now;
        let mut hooks = Hooks {
            scan: &mut scan,
            sleep: &mut sleep,
            now: &mut now,
            tz: TimeZone::UTC,
            terminal: &mut || None,
        };
        match run_with(&config(false), &a, &mut hooks, &mut Closed) {
            Err(Error::Write(e)) => assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe),
            other => panic!("{other:?}"),
        }
    }
}
