//! Command-line grammar (clap derive). Parsed once, then resolved into
//! [`crate::config::Config`]; nothing else reads the environment.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// What is listening on this machine, who owns it, and should it be there?
#[derive(Debug, Parser)]
#[command(name = "portwarden", version, about, max_term_width = 100)]
pub struct Cli {
    /// When to colour human output: auto (a terminal, NO_COLOR unset, TERM not dumb), always, never.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto, global = true)]
    pub color: ColorWhen,

    /// Use this IANA registry CSV instead of the installed or embedded one.
    #[arg(long, value_name = "FILE", global = true)]
    pub registry: Option<PathBuf>,

    /// The subcommand; none means `list`.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Options of `list`, also accepted without the subcommand name.
    #[command(flatten)]
    pub list: ListArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every listener with its owners and registry standing (the default).
    List(ListArgs),
    /// Explain a port, a range LOW-HIGH or a service name from IANA's registry, and who listens on it now.
    Port(PortArgs),
    /// Show or refresh the IANA registry in use.
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Evaluate listeners against the policy (and a baseline); exit 1 when something is unexpected.
    Check(CheckArgs),
    /// Record the current listeners as the expected set.
    #[command(subcommand)]
    Baseline(BaselineCommand),
    /// Manage the policy file.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Rescan every few seconds and show what appears, goes or changes owner.
    Watch(WatchArgs),
}

/// Output formats of `list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// Aligned table for people.
    Table,
    /// One stable JSON object (see README).
    Json,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// One listener per line, space separated, no colour: for grep and awk.
    Plain,
}

/// `--color` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    /// Colour on a terminal unless NO_COLOR is set or TERM is dumb.
    Auto,
    /// Always colour human output.
    Always,
    /// Never colour.
    Never,
}

/// Options of `list`.
#[derive(Debug, Args, Default, Clone)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<ListFormat>,
    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Do not trim columns to the terminal; show full command lines.
    #[arg(long)]
    pub wide: bool,
    /// Scan every network namespace on the host, not only this one (Linux; needs root).
    #[arg(long)]
    pub all_netns: bool,
    /// Selection of listeners.
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// Filters; all given filters must match.
#[derive(Debug, Args, Default, Clone)]
pub struct FilterArgs {
    /// Only TCP listeners.
    #[arg(long)]
    pub tcp: bool,
    /// Only UDP sockets.
    #[arg(long)]
    pub udp: bool,
    /// Only sockets that accept IPv4 (including dual-stack IPv6 wildcards).
    #[arg(short = '4', long = "ipv4")]
    pub ipv4: bool,
    /// Only IPv6 sockets.
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
    /// Only these ports (comma separated, or repeated).
    #[arg(long, value_delimiter = ',', value_name = "N[,N...]")]
    pub port: Vec<u16>,
    /// Only sockets held by one of these pids.
    #[arg(long, value_delimiter = ',', value_name = "PID[,PID...]")]
    pub pid: Vec<u32>,
    /// Only sockets held by a process of this name (exact, case-sensitive).
    #[arg(long, value_name = "NAME")]
    pub process: Option<String>,
    /// Only sockets held by a process of this user (or owned by this user).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Only listeners with findings.
    #[arg(long)]
    pub flagged: bool,
    /// Only listeners not bound to loopback.
    #[arg(long)]
    pub exposed: bool,
}

/// Options of `port`.
#[derive(Debug, Args)]
pub struct PortArgs {
    /// A port (22), a range (6000-6063) or a service name (ssh).
    pub query: String,
    /// Print the documented JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Look for listeners in every network namespace on the host (Linux; needs root).
    #[arg(long)]
    pub all_netns: bool,
}

/// `registry` subcommands.
#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Where the registry in use comes from, its entry counts and newest date.
    Info {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Download IANA's CSV, validate it and install it for every later command.
    Update {
        /// Read from this file or URL instead of IANA's.
        #[arg(long, value_name = "FILE|URL")]
        from: Option<String>,
    },
}

/// Output formats of `check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// One greppable line per unexpected listener.
    Text,
    /// The whole evaluation as one JSON object.
    Json,
    /// node_exporter textfile-collector metrics.
    Prometheus,
    /// A Nagios plugin status line with perfdata; plugin exit codes.
    Nagios,
}

/// Options of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Policy file (else $PORTWARDEN_CONFIG, the user's config dir, /etc/portwarden/portwarden.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Compare with a saved baseline; without PATH, the default baseline.
    // `Some(None)` is the flag without a path.
    #[arg(long, value_name = "PATH", num_args = 0..=1)]
    pub baseline: Option<Option<PathBuf>>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,
    /// Write the output to FILE atomically (temp file, then rename).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also print a line when everything is as expected.
    #[arg(long, short)]
    pub verbose: bool,
}

/// `baseline` subcommands.
#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Save the current listeners (by identity, not pid) to PATH or the default baseline.
    Save {
        /// Where to write; default in the user's data directory.
        path: Option<PathBuf>,
    },
}

/// `policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Write a commented starter policy allowing everything listening now.
    Init {
        /// Where to write; `-` for standard output. Default: the user's config directory.
        path: Option<PathBuf>,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
}

/// Output formats of `watch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WatchFormat {
    /// Redraw the table and the latest changes each round (even off a terminal).
    Table,
    /// A stream: the listeners, then one line per change, like `list --format plain`.
    Plain,
    /// A stream of JSON objects, one per line (see README).
    Json,
}

/// Options of `watch`.
#[derive(Debug, Args, Clone)]
pub struct WatchArgs {
    /// Seconds between scans (at least 0.2).
    #[arg(long, value_name = "SECS", default_value = "2", value_parser = parse_interval)]
    pub interval: Duration,
    /// Stop after N scans.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Output format; default: table on a terminal, plain otherwise.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<WatchFormat>,
    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Do not trim the table to the terminal; show full command lines.
    #[arg(long)]
    pub wide: bool,
    /// Selection of listeners.
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// The shortest `--interval`: a scan of a busy host takes tens of milliseconds.
pub const MIN_INTERVAL: Duration = Duration::from_millis(200);

/// Parses `--interval`: seconds, fractions allowed, at least [`MIN_INTERVAL`].
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    let interval = Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("{s:?} is not a usable number of seconds"))?;
    if interval < MIN_INTERVAL {
        return Err(format!("{s:?} is shorter than the minimum of 0.2 seconds"));
    }
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_bounds() {
        assert_eq!(parse_interval("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_interval("0.2"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_interval("1.5"), Ok(Duration::from_millis(1500)));
        for bad in ["0.1", "0", "-1", "NaN", "inf", "1e30", "two", ""] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }
}
