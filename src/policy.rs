//! The policy file: which listeners are expected, which must exist, and what
//! counts as unexpected by default. TOML, strict: an unknown key or a value of
//! the wrong shape is an error naming the file, line and column.
//!
//! ```toml
//! [settings]
//! ignore_loopback = false            # loopback-only listeners never count as unexpected
//! dynamic_ports_unexpected = false   # `dynamic-port` findings count as unexpected
//! ignore_findings = []               # finding kinds that never count, e.g. ["reserved-port"]
//!
//! [[allow]]                          # a listener matching every given key is expected
//! port = "6000-6063"                 # required: an integer or "LOW-HIGH"
//! protocol = "tcp"                   # "tcp" or "udp"
//! process = "Xorg"                   # process name (or the file name of its executable)
//! exe = "/usr/lib/xorg/Xorg"         # absolute executable path
//! user = "root"                      # user name, or a numeric uid
//! address = "loopback"               # loopback | wildcard | specific | an IP address
//! reason = "X11 display server"
//!
//! [[expect]]                         # something must listen here, owned by this program
//! port = 22                          # required: one port
//! protocol = "tcp"
//! exe = "/usr/sbin/sshd"             # and/or process = "sshd"
//! reason = "remote administration"
//! ```

use crate::baseline::Identity;
use crate::error::{Error, Result};
use crate::model::{Exposure, FindingKind, Listener, Process, Proto, Report, Socket};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// An inclusive port range; a single port has `low == high`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortSpec {
    /// First port of the range.
    pub low: u16,
    /// Last port of the range (inclusive).
    pub high: u16,
}

impl PortSpec {
    /// Whether `port` lies in the range.
    pub fn contains(&self, port: u16) -> bool {
        self.low <= port && port <= self.high
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.low == self.high {
            write!(f, "{}", self.low)
        } else {
            write!(f, "{}-{}", self.low, self.high)
        }
    }
}

impl<'de> Deserialize<'de> for PortSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct PortVisitor;

        impl Visitor<'_> for PortVisitor {
            type Value = PortSpec;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port 0-65535 or a range string \"LOW-HIGH\"")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<PortSpec, E> {
                let port = u16::try_from(v)
                    .map_err(|_| E::custom(format!("port {v} is out of range 0-65535")))?;
                Ok(PortSpec {
                    low: port,
                    high: port,
                })
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<PortSpec, E> {
                let port = u16::try_from(v)
                    .map_err(|_| E::custom(format!("port {v} is out of range 0-65535")))?;
                Ok(PortSpec {
                    low: port,
                    high: port,
                })
            }

            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<PortSpec, E> {
                parse_port_spec(v).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(PortVisitor)
    }
}

/// Parses `"22"` or `"6000-6063"`.
fn parse_port_spec(text: &str) -> std::result::Result<PortSpec, String> {
    let bad = || format!("invalid port {text:?}: expected a port 0-65535 or \"LOW-HIGH\"");
    let one = |s: &str| s.trim().parse::<u16>().map_err(|_| bad());
    let spec = match text.split_once('-') {
        Some((low, high)) => PortSpec {
            low: one(low)?,
            high: one(high)?,
        },
        None => {
            let port = one(text)?;
            PortSpec {
                low: port,
                high: port,
            }
        }
    };
    if spec.low > spec.high {
        return Err(format!(
            "invalid port range {text:?}: {} is greater than {}",
            spec.low, spec.high
        ));
    }
    Ok(spec)
}

/// The `address` key of an allow rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressMatch {
    /// 127.0.0.0/8 or ::1.
    Loopback,
    /// 0.0.0.0 or ::.
    Wildcard,
    /// Any address that is neither loopback nor wildcard.
    Specific,
    /// Exactly this address (an IPv4-mapped IPv6 address equals its IPv4 form).
    Ip(IpAddr),
}

impl AddressMatch {
    /// Whether a socket bound to `address` matches.
    pub fn matches(&self, address: IpAddr) -> bool {
        match self {
            AddressMatch::Loopback => Exposure::of(address) == Exposure::Loopback,
            AddressMatch::Wildcard => Exposure::of(address) == Exposure::Wildcard,
            AddressMatch::Specific => Exposure::of(address) == Exposure::Specific,
            AddressMatch::Ip(ip) => canonical(*ip) == canonical(address),
        }
    }
}

impl fmt::Display for AddressMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressMatch::Loopback => f.write_str("loopback"),
            AddressMatch::Wildcard => f.write_str("wildcard"),
            AddressMatch::Specific => f.write_str("specific"),
            AddressMatch::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

impl<'de> Deserialize<'de> for AddressMatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "loopback" => Ok(AddressMatch::Loopback),
            "wildcard" => Ok(AddressMatch::Wildcard),
            "specific" => Ok(AddressMatch::Specific),
            other => other.parse::<IpAddr>().map(AddressMatch::Ip).map_err(|_| {
                de::Error::custom(format!(
                    "invalid address {other:?}: expected \"loopback\", \"wildcard\", \"specific\" or an IP address"
                ))
            }),
        }
    }
}

/// `[settings]`: what counts as unexpected when no rule says otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Listeners reachable only from this machine (127.0.0.0/8, ::1) never count
    /// as unexpected through their registry findings or `new-listener`, nor do
    /// `gone-listener` entries on loopback. Expect rules still apply. Default false.
    pub ignore_loopback: bool,
    /// `dynamic-port` findings (49152-65535) count as unexpected. Default false:
    /// many ordinary programs listen on ephemeral ports.
    pub dynamic_ports_unexpected: bool,
    /// Finding kinds that never count as unexpected (still reported in JSON).
    pub ignore_findings: Vec<FindingKind>,
}

/// One `[[allow]]` rule: a listener matching every key given is expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowRule {
    /// 1-based position among the allow rules.
    pub index: usize,
    /// 1-based line of the rule in the policy file.
    pub line: usize,
    /// Ports covered.
    pub port: PortSpec,
    /// Only this protocol; `None` for both.
    pub protocol: Option<Proto>,
    /// An owning process with this name (or executable file name).
    pub process: Option<String>,
    /// An owning process with this executable path.
    pub exe: Option<String>,
    /// An owning process of this user (name or numeric uid).
    pub user: Option<String>,
    /// Local address class or exact address.
    pub address: Option<AddressMatch>,
    /// Why it is allowed; shown in JSON output.
    pub reason: Option<String>,
}

/// One `[[expect]]` rule: something must listen on `port`, owned by the given program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectRule {
    /// 1-based position among the expect rules.
    pub index: usize,
    /// 1-based line of the rule in the policy file.
    pub line: usize,
    /// The port.
    pub port: u16,
    /// Only this protocol; `None` for either.
    pub protocol: Option<Proto>,
    /// The owner's process name (or executable file name).
    pub process: Option<String>,
    /// The owner's executable path.
    pub exe: Option<String>,
    /// Why it is expected.
    pub reason: Option<String>,
}

/// A parsed, validated policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// The file it came from; `None` for the built-in defaults.
    pub path: Option<PathBuf>,
    /// Defaults for what counts as unexpected.
    pub settings: Settings,
    /// Allow rules, in file order.
    pub allow: Vec<AllowRule>,
    /// Expect rules, in file order.
    pub expect: Vec<ExpectRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    settings: Settings,
    #[serde(default)]
    allow: Vec<Spanned<RawAllow>>,
    #[serde(default)]
    expect: Vec<Spanned<RawExpect>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllow {
    port: PortSpec,
    protocol: Option<Proto>,
    process: Option<Spanned<String>>,
    exe: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    address: Option<AddressMatch>,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    port: Spanned<PortSpec>,
    protocol: Option<Proto>,
    process: Option<Spanned<String>>,
    exe: Option<Spanned<String>>,
    reason: Option<String>,
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    fn error(&self, offset: usize, message: impl Into<String>) -> Error {
        let (line, column) = line_column(self.text, offset);
        Error::Policy {
            path: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }

    fn line(&self, offset: usize) -> usize {
        line_column(self.text, offset).0
    }

    /// Rejects empty names; with `absolute`, also relative paths.
    fn name(
        &self,
        key: &str,
        value: Option<Spanned<String>>,
        absolute: bool,
    ) -> Result<Option<String>> {
        let Some(value) = value else {
            return Ok(None);
        };
        let start = value.span().start;
        let text = value.into_inner();
        if text.is_empty() {
            return Err(self.error(start, format!("`{key}` must not be empty")));
        }
        if absolute && !text.starts_with('/') && !looks_like_windows_path(&text) {
            return Err(self.error(
                start,
                format!("`{key}` must be an absolute path, got {text:?}"),
            ));
        }
        Ok(Some(text))
    }
}

fn looks_like_windows_path(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 3
        && bytes[0].is_ascii_alphabetic()
        && bytes[1] == b':'
        && (bytes[2] == b'\\' || bytes[2] == b'/')
}

impl Policy {
    /// Parses policy text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Policy> {
        let source = Source { path, text };
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            source.error(offset, e.message().trim_end().to_string())
        })?;

        let mut allow = Vec::with_capacity(raw.allow.len());
        for (i, spanned) in raw.allow.into_iter().enumerate() {
            let line = source.line(spanned.span().start);
            let rule = spanned.into_inner();
            allow.push(AllowRule {
                index: i + 1,
                line,
                port: rule.port,
                protocol: rule.protocol,
                process: source.name("process", rule.process, false)?,
                exe: source.name("exe", rule.exe, true)?,
                user: source.name("user", rule.user, false)?,
                address: rule.address,
                reason: rule.reason,
            });
        }

        let mut expect = Vec::with_capacity(raw.expect.len());
        for (i, spanned) in raw.expect.into_iter().enumerate() {
            let line = source.line(spanned.span().start);
            let rule = spanned.into_inner();
            let port_start = rule.port.span().start;
            let port = rule.port.into_inner();
            if port.low != port.high {
                return Err(source.error(
                    port_start,
                    format!("an expect rule needs one port, not the range {port}"),
                ));
            }
            expect.push(ExpectRule {
                index: i + 1,
                line,
                port: port.low,
                protocol: rule.protocol,
                process: source.name("process", rule.process, false)?,
                exe: source.name("exe", rule.exe, true)?,
                reason: rule.reason,
            });
        }

        Ok(Policy {
            path: Some(path.to_path_buf()),
            settings: raw.settings,
            allow,
            expect,
        })
    }

    /// Reads and parses a policy file. A missing or unreadable file is an
    /// error: a policy that was asked for is never silently replaced by defaults.
    pub fn load(path: &Path) -> Result<Policy> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = e.utf8_error().valid_up_to();
            let prefix = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
            let (line, column) = line_column(&prefix, prefix.len());
            Error::Policy {
                path: path.to_path_buf(),
                line,
                column,
                message: "the file is not valid UTF-8".to_string(),
            }
        })?;
        Policy::parse(&text, path)
    }
}

/// Picks the policy file: `--config`, else `$PORTWARDEN_CONFIG` (when set and
/// not empty), else the user's policy file if it exists, else the system-wide
/// one if it exists; `None` means the built-in defaults. An explicitly named
/// file is returned even when it does not exist, so loading it reports the error.
pub fn locate(
    explicit: Option<&Path>,
    env: Option<&OsStr>,
    user: Option<&Path>,
    system: &Path,
) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_path_buf());
    }
    if let Some(env) = env.filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(env));
    }
    if let Some(user) = user.filter(|p| p.exists()) {
        return Some(user.to_path_buf());
    }
    if system.exists() {
        return Some(system.to_path_buf());
    }
    None
}

/// Whether `name` names the process: its short name or its executable's file
/// name. The second form matters on Linux, where the short name is cut to 15
/// bytes (`systemd-resolved` shows as `systemd-resolve`).
fn process_named(p: &Process, name: &str) -> bool {
    p.name == name
        || p.exe
            .as_deref()
            .and_then(|exe| Path::new(exe).file_name())
            .is_some_and(|file| file == OsStr::new(name))
}

fn user_matches(p: &Process, user: &str) -> bool {
    p.user.as_deref() == Some(user)
        || user
            .parse::<u32>()
            .ok()
            .is_some_and(|uid| p.uid == Some(uid))
}

impl AllowRule {
    /// Whether the rule matches the listener. Owner keys (`process`, `exe`,
    /// `user`) must all hold for one and the same owning process, so a rule
    /// with an owner key never matches a listener whose owner is not visible.
    pub fn matches(&self, listener: &Listener) -> bool {
        let socket = &listener.socket;
        if !self.port.contains(socket.port) {
            return false;
        }
        if self.protocol.is_some_and(|p| p != socket.proto) {
            return false;
        }
        if self.address.is_some_and(|a| !a.matches(socket.address)) {
            return false;
        }
        if self.process.is_none() && self.exe.is_none() && self.user.is_none() {
            return true;
        }
        socket.processes.iter().any(|p| {
            self.process.as_deref().is_none_or(|n| process_named(p, n))
                && self
                    .exe
                    .as_deref()
                    .is_none_or(|e| p.exe.as_deref() == Some(e))
                && self.user.as_deref().is_none_or(|u| user_matches(p, u))
        })
    }
}

impl AllowRule {
    /// Whether the rule matches a baseline entry (for `gone-listener`).
    /// Owner keys are checked against the entry's programs and users: an
    /// entry records no pairing of program and user, so each key may be met
    /// by a different owner.
    pub fn matches_identity(&self, id: &Identity) -> bool {
        if !self.port.contains(id.port) {
            return false;
        }
        if self.protocol.is_some_and(|p| p != id.protocol) {
            return false;
        }
        if self.address.is_some_and(|a| !a.matches(id.address)) {
            return false;
        }
        let program_named = |name: &str| {
            id.programs.iter().any(|p| {
                p == name
                    || Path::new(p)
                        .file_name()
                        .is_some_and(|f| f == OsStr::new(name))
            })
        };
        self.process.as_deref().is_none_or(program_named)
            && self
                .exe
                .as_deref()
                .is_none_or(|e| id.programs.iter().any(|p| p == e))
            && self
                .user
                .as_deref()
                .is_none_or(|u| id.users.iter().any(|x| x == u))
    }
}

impl ExpectRule {
    /// Whether the socket is on the rule's port and protocol.
    pub fn covers(&self, socket: &Socket) -> bool {
        socket.port == self.port && self.protocol.is_none_or(|p| p == socket.proto)
    }

    /// Whether one owning process is the expected program. A rule without
    /// `process` and `exe` accepts any owner, even an invisible one; a rule
    /// with them never accepts an owner it cannot see.
    pub fn owner_matches(&self, socket: &Socket) -> bool {
        if self.process.is_none() && self.exe.is_none() {
            return true;
        }
        socket.processes.iter().any(|p| {
            self.process.as_deref().is_none_or(|n| process_named(p, n))
                && self
                    .exe
                    .as_deref()
                    .is_none_or(|e| p.exe.as_deref() == Some(e))
        })
    }

    /// The expected owner for messages: the exe, else the process name, else "any".
    pub fn owner_description(&self) -> String {
        match (&self.exe, &self.process) {
            (Some(exe), Some(name)) => format!("{exe} ({name})"),
            (Some(exe), None) => exe.clone(),
            (None, Some(name)) => name.clone(),
            (None, None) => "any".to_string(),
        }
    }
}

/// A TOML basic string literal for `text`. Quotes and backslashes are
/// escaped, and so is every character a terminal would act on or hide
/// (controls, bidi overrides, zero-width), as `\uXXXX`, so that reading the
/// policy with `cat` shows what it really matches.
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if crate::sanitize::is_dangerous(c) => {
                out.push_str(&format!("\\u{:04X}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text safe to put in a TOML comment: one line, no control characters.
fn comment_text(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The commented starter policy written by `portwarden policy init`: the
/// settings at their defaults, documented, and one allow rule per distinct
/// listener in `report`, pinned to its protocol, address class, program and
/// user, so that `portwarden check` passes until something changes.
pub fn starter(report: &Report) -> String {
    let mut out = String::new();
    out.push_str(
        "# portwarden policy, written by `portwarden policy init`.\n\
         # It allows everything that was listening when it was written: prune what\n\
         # should not be there, then run `portwarden check` (exit 0 = nothing\n\
         # unexpected, 1 = something unexpected, 2 = error).\n\
         # Unknown keys are errors. Reference: the README, section \"The policy file\".\n\
         \n\
         [settings]\n\
         # true: listeners on 127.0.0.0/8 or ::1 never count as unexpected\n\
         # (expect rules still apply).\n\
         ignore_loopback = false\n\
         # true: listeners on dynamic ports 49152-65535 count as unexpected.\n\
         dynamic_ports_unexpected = false\n\
         # Finding kinds that never count as unexpected, e.g. [\"reserved-port\"].\n\
         ignore_findings = []\n\
         \n\
         # Something must listen on an expected port, owned by the given program;\n\
         # absence is `missing-expected`, another owner is `unexpected-owner`:\n\
         # [[expect]]\n\
         # port = 22\n\
         # protocol = \"tcp\"\n\
         # exe = \"/usr/sbin/sshd\"\n\
         # reason = \"remote administration\"\n",
    );
    if !report.privileged {
        out.push_str(
            "\n# Written without root: owners of other users' sockets were not visible,\n\
             # so their rules allow any owner. Run `sudo portwarden policy init` to pin them.\n",
        );
    }

    let mut seen = BTreeSet::new();
    for listener in &report.listeners {
        let socket = &listener.socket;
        let address = match listener.exposure {
            Exposure::Loopback => "loopback".to_string(),
            Exposure::Wildcard => "wildcard".to_string(),
            Exposure::Specific => socket.address.to_string(),
        };
        // A master and its workers share the socket; the first (lowest pid)
        // owner is enough for the rule to match, since owner keys are checked
        // against any one owning process.
        let owner = socket
            .processes
            .first()
            .map(|p| {
                let name = if p.exe.is_some() {
                    None
                } else {
                    Some(p.name.clone())
                };
                (p.exe.clone(), name, p.user.clone())
            })
            .unwrap_or((None, None, None));
        let key = (socket.proto, socket.port, address.clone(), owner.clone());
        if !seen.insert(key) {
            continue;
        }

        out.push_str("\n[[allow]]\n");
        let service = if listener.registry.services.is_empty() {
            listener.registry.status.as_str().to_string()
        } else {
            listener.registry.services.join(", ")
        };
        out.push_str(&format!(
            "# {} {} port {}: {}\n",
            socket.proto,
            listener.exposure.as_str(),
            socket.port,
            comment_text(&service)
        ));
        out.push_str(&format!("port = {}\n", socket.port));
        out.push_str(&format!(
            "protocol = {}\n",
            toml_string(socket.proto.as_str())
        ));
        out.push_str(&format!("address = {}\n", toml_string(&address)));
        match owner {
            (None, None, _) => {
                out.push_str("# owner not visible when this policy was written\n");
            }
            (exe, name, user) => {
                if let Some(exe) = exe {
                    out.push_str(&format!("exe = {}\n", toml_string(&exe)));
                }
                if let Some(name) = name {
                    out.push_str(&format!("process = {}\n", toml_string(&name)));
                }
                if let Some(user) = user {
                    out.push_str(&format!("user = {}\n", toml_string(&user)));
                }
            }
        }
        out.push_str("reason = \"listening when the policy was written\"\n");
    }
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn toml_strings_round_trip_and_hide_nothing() {
        let nasty = "/tmp/ev\u{1b}[31mil\u{202e}X \"q\" \\ \u{200b}\u{7f}\u{9b}ü";
        let literal = toml_string(nasty);
        assert!(
            !literal.chars().any(crate::sanitize::is_dangerous),
            "{literal}"
        );
        let parsed: toml::Table = toml::from_str(&format!("v = {literal}")).unwrap();
        assert_eq!(parsed["v"].as_str(), Some(nasty));
    }
    use super::*;
    use crate::model::{PortStatus, RangeClass, RegistryInfo};

    fn parse(text: &str) -> Result<Policy> {
        Policy::parse(text, Path::new("/etc/pw.toml"))
    }

    fn policy_error(text: &str) -> (usize, usize, String) {
        match parse(text) {
            Err(Error::Policy {
                path,
                line,
                column,
                message,
            }) => {
                assert_eq!(path, Path::new("/etc/pw.toml"));
                (line, column, message)
            }
            other => panic!("expected a policy error, got {other:?}"),
        }
    }

    pub(crate) fn process(
        pid: u32,
        name: &str,
        exe: Option<&str>,
        user: &str,
        uid: u32,
    ) -> Process {
        Process {
            pid,
            name: name.to_string(),
            user: Some(user.to_string()),
            uid: Some(uid),
            exe: exe.map(str::to_string),
            cmdline: vec![name.to_string()],
            unit: None,
            container: None,
            proxy_for: None,
        }
    }

    pub(crate) fn listener(
        proto: Proto,
        address: &str,
        port: u16,
        processes: Vec<Process>,
    ) -> Listener {
        let address: IpAddr = address.parse().unwrap();
        Listener {
            socket: Socket {
                proto,
                address,
                port,
                dual_stack: false,
                uid: processes.first().and_then(|p| p.uid),
                user: None,
                inode: Some(1000 + u64::from(port)),
                processes,
                netns: None,
            },
            exposure: Exposure::of(address),
            range: RangeClass::of(port),
            registry: RegistryInfo {
                status: PortStatus::Unassigned,
                services: vec![],
                description: None,
            },
            findings: vec![FindingKind::UnassignedPort],
        }
    }

    #[test]
    fn empty_file_is_the_defaults() {
        let policy = parse("").unwrap();
        assert_eq!(policy.settings, Settings::default());
        assert!(policy.allow.is_empty() && policy.expect.is_empty());
        assert_eq!(policy.path.as_deref(), Some(Path::new("/etc/pw.toml")));
    }

    #[test]
    fn full_file_parses() {
        let policy = parse(
            r#"
[settings]
ignore_loopback = true
dynamic_ports_unexpected = true
ignore_findings = ["reserved-port"]

[[allow]]
port = "6000-6063"
protocol = "tcp"
process = "Xorg"
exe = "/usr/lib/xorg/Xorg"
user = "root"
address = "loopback"
reason = "X11"

[[allow]]
port = 5353
address = "224.0.0.251"

[[expect]]
port = 22
protocol = "tcp"
exe = "/usr/sbin/sshd"
"#,
        )
        .unwrap();
        assert!(policy.settings.ignore_loopback);
        assert!(policy.settings.dynamic_ports_unexpected);
        assert_eq!(
            policy.settings.ignore_findings,
            vec![FindingKind::ReservedPort]
        );
        assert_eq!(policy.allow.len(), 2);
        let x = &policy.allow[0];
        assert_eq!((x.index, x.line), (1, 7));
        assert_eq!(
            x.port,
            PortSpec {
                low: 6000,
                high: 6063
            }
        );
        assert_eq!(x.protocol, Some(Proto::Tcp));
        assert_eq!(x.address, Some(AddressMatch::Loopback));
        assert_eq!(x.reason.as_deref(), Some("X11"));
        let mdns = &policy.allow[1];
        assert_eq!((mdns.index, mdns.line), (2, 16));
        assert_eq!(
            mdns.address,
            Some(AddressMatch::Ip("224.0.0.251".parse().unwrap()))
        );
        let ssh = &policy.expect[0];
        assert_eq!((ssh.index, ssh.line, ssh.port), (1, 20, 22));
        assert_eq!(ssh.exe.as_deref(), Some("/usr/sbin/sshd"));
        assert_eq!(ssh.process, None);
    }

    #[test]
    fn unknown_key_is_an_error_at_its_position() {
        let (line, column, message) = policy_error("[[allow]]\nport = 22\nprocesss = \"sshd\"\n");
        assert_eq!((line, column), (3, 1));
        assert!(message.contains("processs"), "{message}");
        let (line, column, message) = policy_error("[setings]\n");
        assert_eq!((line, column), (1, 2));
        assert!(message.contains("setings"), "{message}");
        let (line, _, message) = policy_error("[settings]\nignore_loopbak = true\n");
        assert_eq!(line, 2);
        assert!(message.contains("ignore_loopbak"), "{message}");
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let (line, column, _) = policy_error("[[allow]]\nport = 22\nreason = \"unterminated\n");
        assert_eq!(line, 3);
        assert!(column >= 10, "column {column}");
    }

    #[test]
    fn bad_values_are_errors_at_the_value() {
        let (line, column, message) = policy_error("[[allow]]\nport = 70000\n");
        assert_eq!((line, column), (2, 8));
        assert!(message.contains("70000"), "{message}");
        let (line, _, message) = policy_error("[[allow]]\nport = \"9-3\"\n");
        assert_eq!(line, 2);
        assert!(message.contains("greater"), "{message}");
        let (_, _, message) = policy_error("[[allow]]\nport = \"http\"\n");
        assert!(message.contains("invalid port"), "{message}");
        let (line, _, message) = policy_error("[[allow]]\nport = 1\nprotocol = \"sctp\"\n");
        assert_eq!(line, 3);
        assert!(message.contains("sctp"), "{message}");
        let (_, _, message) = policy_error("[[allow]]\nport = 1\naddress = \"lan\"\n");
        assert!(message.contains("loopback"), "{message}");
        let (line, column, message) = policy_error("[[allow]]\nport = 1\nexe = \"sshd\"\n");
        assert_eq!((line, column), (3, 7));
        assert!(message.contains("absolute"), "{message}");
        let (_, _, message) = policy_error("[[allow]]\nport = 1\nuser = \"\"\n");
        assert!(message.contains("empty"), "{message}");
        let (line, _, message) = policy_error("[settings]\nignore_findings = [\"odd-port\"]\n");
        assert_eq!(line, 2);
        assert!(message.contains("odd-port"), "{message}");
    }

    #[test]
    fn missing_port_and_expect_ranges_are_errors() {
        let (line, _, message) = policy_error("[[allow]]\nprocess = \"x\"\n");
        assert_eq!(line, 1);
        assert!(message.contains("port"), "{message}");
        let (line, column, message) = policy_error("\n[[expect]]\nport = \"20-22\"\n");
        assert_eq!((line, column), (3, 8));
        assert!(message.contains("one port"), "{message}");
    }

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("é=\n", 2), (1, 2));
        assert_eq!(line_column("abc", 99), (1, 4));
    }

    #[test]
    fn locate_order() {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("user.toml");
        let system = dir.path().join("system.toml");
        let explicit = Path::new("/nonexistent/explicit.toml");
        assert_eq!(locate(None, None, Some(&user), &system), None);
        std::fs::write(&system, "").unwrap();
        assert_eq!(
            locate(None, None, Some(&user), &system),
            Some(system.clone())
        );
        std::fs::write(&user, "").unwrap();
        assert_eq!(locate(None, None, Some(&user), &system), Some(user.clone()));
        assert_eq!(
            locate(None, Some(OsStr::new("")), Some(&user), &system),
            Some(user.clone())
        );
        assert_eq!(
            locate(
                None,
                Some(OsStr::new("/nonexistent/env.toml")),
                Some(&user),
                &system
            ),
            Some(PathBuf::from("/nonexistent/env.toml"))
        );
        assert_eq!(
            locate(
                Some(explicit),
                Some(OsStr::new("/e.toml")),
                Some(&user),
                &system
            ),
            Some(explicit.to_path_buf())
        );
    }

    #[test]
    fn load_reports_missing_and_non_utf8_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.toml");
        assert!(matches!(Policy::load(&missing), Err(Error::Io { path, .. }) if path == missing));
        let binary = dir.path().join("bin.toml");
        std::fs::write(&binary, b"[settings]\nignore_loopback = \xff\n").unwrap();
        match Policy::load(&binary) {
            Err(Error::Policy { line, column, .. }) => assert_eq!((line, column), (2, 19)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn allow_rule_matching() {
        let sshd = process(10, "sshd", Some("/usr/sbin/sshd"), "root", 0);
        let l = listener(Proto::Tcp, "0.0.0.0", 22, vec![sshd.clone()]);
        let rule = |text: &str| parse(text).unwrap().allow.remove(0);
        assert!(rule("[[allow]]\nport = 22").matches(&l));
        assert!(rule("[[allow]]\nport = \"20-30\"\nprotocol = \"tcp\"").matches(&l));
        assert!(!rule("[[allow]]\nport = 22\nprotocol = \"udp\"").matches(&l));
        assert!(!rule("[[allow]]\nport = 23").matches(&l));
        assert!(rule("[[allow]]\nport = 22\naddress = \"wildcard\"").matches(&l));
        assert!(!rule("[[allow]]\nport = 22\naddress = \"loopback\"").matches(&l));
        assert!(rule("[[allow]]\nport = 22\naddress = \"0.0.0.0\"").matches(&l));
        assert!(rule("[[allow]]\nport = 22\nprocess = \"sshd\"\nuser = \"root\"").matches(&l));
        assert!(rule("[[allow]]\nport = 22\nuser = \"0\"").matches(&l));
        assert!(!rule("[[allow]]\nport = 22\nuser = \"alice\"").matches(&l));
        assert!(rule("[[allow]]\nport = 22\nexe = \"/usr/sbin/sshd\"").matches(&l));
        assert!(!rule("[[allow]]\nport = 22\nexe = \"/usr/bin/sshd\"").matches(&l));

        // Owner keys must hold for one process, not be spread over several.
        let shared = listener(
            Proto::Tcp,
            "::1",
            80,
            vec![
                process(1, "nginx", Some("/usr/sbin/nginx"), "root", 0),
                process(2, "helper", Some("/usr/bin/helper"), "www-data", 33),
            ],
        );
        assert!(rule("[[allow]]\nport = 80\nprocess = \"nginx\"").matches(&shared));
        assert!(rule("[[allow]]\nport = 80\nuser = \"www-data\"").matches(&shared));
        assert!(
            !rule("[[allow]]\nport = 80\nprocess = \"nginx\"\nuser = \"www-data\"")
                .matches(&shared)
        );
        assert!(rule("[[allow]]\nport = 80\naddress = \"::1\"").matches(&shared));
        assert!(rule("[[allow]]\nport = 80\naddress = \"loopback\"").matches(&shared));

        // An owner that cannot be seen matches only owner-less rules.
        let hidden = listener(Proto::Udp, "192.0.2.7", 5000, vec![]);
        assert!(rule("[[allow]]\nport = 5000\naddress = \"specific\"").matches(&hidden));
        assert!(!rule("[[allow]]\nport = 5000\nuser = \"root\"").matches(&hidden));
    }

    #[test]
    fn process_name_matches_truncated_comm_by_exe_file_name() {
        let resolved = process(
            5,
            "systemd-resolve",
            Some("/usr/lib/systemd/systemd-resolved"),
            "systemd-resolve",
            990,
        );
        let l = listener(Proto::Udp, "127.0.0.53", 53, vec![resolved]);
        let rule = parse("[[allow]]\nport = 53\nprocess = \"systemd-resolved\"").unwrap();
        assert!(rule.allow[0].matches(&l));
    }

    #[test]
    fn expect_rule_matching() {
        let policy = parse(
            "[[expect]]\nport = 22\nprotocol = \"tcp\"\nexe = \"/usr/sbin/sshd\"\n\
             [[expect]]\nport = 53\n",
        )
        .unwrap();
        let ssh = &policy.expect[0];
        let sshd = listener(
            Proto::Tcp,
            "0.0.0.0",
            22,
            vec![process(10, "sshd", Some("/usr/sbin/sshd"), "root", 0)],
        );
        let impostor = listener(
            Proto::Tcp,
            "0.0.0.0",
            22,
            vec![process(11, "sshd", Some("/tmp/sshd"), "nobody", 65534)],
        );
        let hidden = listener(Proto::Tcp, "0.0.0.0", 22, vec![]);
        let udp = listener(Proto::Udp, "0.0.0.0", 22, vec![]);
        assert!(ssh.covers(&sshd.socket) && ssh.owner_matches(&sshd.socket));
        assert!(ssh.covers(&impostor.socket) && !ssh.owner_matches(&impostor.socket));
        assert!(!ssh.owner_matches(&hidden.socket));
        assert!(!ssh.covers(&udp.socket));
        assert_eq!(ssh.owner_description(), "/usr/sbin/sshd");
        let dns = &policy.expect[1];
        let dns_udp = listener(Proto::Udp, "127.0.0.53", 53, vec![]);
        assert!(dns.covers(&dns_udp.socket) && dns.owner_matches(&dns_udp.socket));
        assert_eq!(dns.owner_description(), "any");
    }

    #[test]
    fn starter_policy_parses_and_allows_what_it_was_written_from() {
        let mut hostile = process(
            30,
            "evil\"\n[[allow]]\nport = \"0-65535\"",
            None,
            "mallory",
            1000,
        );
        hostile.exe = None;
        let report = Report {
            listeners: vec![
                listener(
                    Proto::Tcp,
                    "0.0.0.0",
                    22,
                    vec![process(10, "sshd", Some("/usr/sbin/sshd"), "root", 0)],
                ),
                listener(
                    Proto::Tcp,
                    "127.0.0.1",
                    5432,
                    vec![process(
                        20,
                        "postgres",
                        Some("/usr/lib/postgresql/15/bin/postgres"),
                        "postgres",
                        110,
                    )],
                ),
                listener(Proto::Udp, "192.0.2.10", 9999, vec![hostile]),
                listener(Proto::Udp, "::", 5353, vec![]),
            ],
            privileged: false,
        };
        let text = starter(&report);
        let policy = parse(&text).unwrap();
        assert_eq!(policy.settings, Settings::default());
        assert_eq!(policy.allow.len(), 4, "{text}");
        for l in &report.listeners {
            assert!(
                policy.allow.iter().any(|r| r.matches(l)),
                "{l:?} not allowed by\n{text}"
            );
        }
        // The hostile name stays inside one string value.
        assert!(policy.allow.iter().all(|r| r.port.low == r.port.high));
        assert!(text.contains("sudo portwarden policy init"));
        // A changed owner is no longer allowed.
        let other = listener(
            Proto::Tcp,
            "0.0.0.0",
            22,
            vec![process(99, "sshd", Some("/tmp/sshd"), "root", 0)],
        );
        assert!(!policy.allow.iter().any(|r| r.matches(&other)));
    }

    /// Every file in tests/fixtures/policy/ is invalid; its first line says
    /// where: `# error: LINE:COLUMN text-in-the-message`.
    #[test]
    fn invalid_fixtures_fail_where_they_say() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policy");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let header = text
                .lines()
                .next()
                .unwrap()
                .strip_prefix("# error: ")
                .unwrap();
            let (position, needle) = header.split_once(' ').unwrap();
            let (line, column) = position.split_once(':').unwrap();
            match Policy::load(&path) {
                Err(Error::Policy {
                    path: p,
                    line: l,
                    column: c,
                    message,
                }) => {
                    assert_eq!(p, path);
                    assert_eq!(
                        (l.to_string(), c.to_string()),
                        (line.to_string(), column.to_string()),
                        "{}: {message}",
                        path.display()
                    );
                    assert!(
                        message.contains(needle.trim()),
                        "{}: {message}",
                        path.display()
                    );
                }
                other => panic!("{}: {other:?}", path.display()),
            }
            checked += 1;
        }
        assert!(checked >= 9, "only {checked} fixtures");
    }

    #[test]
    fn contrib_example_policy_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/portwarden.toml");
        let policy = Policy::load(&path).unwrap();
        assert_eq!(policy.expect.len(), 1);
        assert_eq!(policy.allow.len(), 3);
        assert_eq!(policy.settings, Settings::default());
    }

    #[test]
    fn allow_rule_matches_baseline_identities() {
        let id = Identity {
            protocol: Proto::Tcp,
            port: 5432,
            address: "127.0.0.1".parse().unwrap(),
            programs: vec!["/usr/lib/postgresql/15/bin/postgres".into()],
            users: vec!["postgres".into()],
        };
        let rule = |text: &str| parse(text).unwrap().allow.remove(0);
        assert!(rule("[[allow]]\nport = 5432").matches_identity(&id));
        assert!(rule("[[allow]]\nport = 5432\nprocess = \"postgres\"\nuser = \"postgres\"\naddress = \"loopback\"").matches_identity(&id));
        assert!(
            rule("[[allow]]\nport = 5432\nexe = \"/usr/lib/postgresql/15/bin/postgres\"")
                .matches_identity(&id)
        );
        assert!(!rule("[[allow]]\nport = 5432\nprotocol = \"udp\"").matches_identity(&id));
        assert!(!rule("[[allow]]\nport = 5433").matches_identity(&id));
        assert!(!rule("[[allow]]\nport = 5432\naddress = \"wildcard\"").matches_identity(&id));
        assert!(!rule("[[allow]]\nport = 5432\nuser = \"root\"").matches_identity(&id));
        assert!(!rule("[[allow]]\nport = 5432\nprocess = \"mysqld\"").matches_identity(&id));
    }
}
