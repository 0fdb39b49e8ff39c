//! IANA's Service Name and Transport Protocol Port Number Registry.
//!
//! The snapshot in `data/iana/` is compiled in by `build.rs` as static tables
//! ([`Registry::embedded`] does no parsing): one text blob and pointer-free
//! integer records (`table::Record`), so the table is read-only data that
//! costs no relocation at start-up. A loaded file is packed the same way at
//! run time, and both are read through [`EntryRef`].
//!
//! A newer copy can be installed with `portwarden registry update`
//! ([`install`]) or given with `--registry FILE`; [`Registry::resolve`] picks
//! one.
//!
//! # Status of a row ([`EntryRef::status`])
//!
//! IANA's CSV has no status column; it is read from the row, in this order:
//! 1. the Description says the assignment is gone: it contains "de-registered",
//!    "deregistered", "removed", "deprecated", "de-commissioned" /
//!    "decommissioned" (also IANA's misspelling "decomissioned"), "withdrawn"
//!    or "revoked" -> `deregistered` (named or not: `sua 14001/udp De-Registered`);
//! 2. the row names a service -> `assigned`;
//! 3. the Description starts with "Unassigned" -> `deregistered` when the
//!    Assignment Notes contain one of the words of rule 1 (IANA's
//!    "Unassigned ... De-registered (28 March 2006)"), else `unassigned`;
//! 4. any other unnamed row ("Reserved", "IANA Reserved", "any private mail
//!    system", ...) -> `reserved`: IANA set the port aside without naming a
//!    service. A "Reserved" row whose note says the entry was removed
//!    (1276/tcp) stays `reserved`: IANA reserves it now.
//!
//! # Status of a port ([`Registry::lookup`])
//!
//! Over every row covering the port for the protocol (rows with an empty
//! protocol cover them all): any `assigned` -> assigned; else any
//! `deregistered` -> deregistered; else any `reserved` -> reserved; else
//! 49152-65535 -> dynamic (RFC 6335 section 6); else unassigned (also when no
//! row covers the port).

mod explain;
mod install;
mod table;

pub use explain::{ephemeral_range, explain, Explanation, PortAnswer, ProtocolAnswer, Query};
pub use install::{default_url, install, installed_path, read_source, DEFAULT_URL};

use crate::error::{Error, Result};
use crate::model::{PortStatus, Proto, RegistryInfo};
use serde::Serialize;
use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

mod generated {
    use super::table::Record;
    include!(concat!(env!("OUT_DIR"), "/registry_table.rs"));
}

/// A transport protocol IANA assigns ports for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
    /// DCCP.
    Dccp,
}

impl Transport {
    /// Every protocol, in IANA's order.
    pub const ALL: [Transport; 4] = [
        Transport::Tcp,
        Transport::Udp,
        Transport::Sctp,
        Transport::Dccp,
    ];

    /// Lower-case name, as IANA writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Sctp => "sctp",
            Transport::Dccp => "dccp",
        }
    }

    fn from_index(i: usize) -> Option<Transport> {
        Transport::ALL.get(i).copied()
    }
}

impl From<Proto> for Transport {
    fn from(proto: Proto) -> Transport {
        match proto {
            Proto::Tcp => Transport::Tcp,
            Proto::Udp => Transport::Udp,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of IANA's registry: a view into the registry's text blob and
/// its pointer-free record, cheap to copy. Every text field is `None` where
/// IANA has nothing.
#[derive(Clone, Copy)]
pub struct EntryRef<'a> {
    text: &'a str,
    record: &'a table::Record,
}

/// Indices of the text fields in [`table::Record::bounds`].
const SERVICE: usize = 0;
const DESCRIPTION: usize = 1;
const ASSIGNEE: usize = 2;
const CONTACT: usize = 3;
const REGISTRATION_DATE: usize = 4;
const MODIFICATION_DATE: usize = 5;
const REFERENCE: usize = 6;
const SERVICE_CODE: usize = 7;
const UNAUTHORIZED_USE: usize = 8;
const NOTES: usize = 9;

/// Words that say an assignment is gone (see the module docs).
const GONE_WORDS: [&str; 9] = [
    "de-registered",
    "deregistered",
    "removed",
    "deprecated",
    "de-commissioned",
    "decommissioned",
    "decomissioned",
    "withdrawn",
    "revoked",
];

fn says_gone(text: Option<&str>) -> bool {
    text.is_some_and(|t| {
        let t = t.to_ascii_lowercase();
        GONE_WORDS.iter().any(|w| t.contains(w))
    })
}

/// A row's own status from its Service Name, Description and Assignment
/// Notes (see the module docs for the rule). Never `Dynamic`.
pub fn row_status(
    service: Option<&str>,
    description: Option<&str>,
    notes: Option<&str>,
) -> PortStatus {
    if says_gone(description) {
        return PortStatus::Deregistered;
    }
    if service.is_some() {
        return PortStatus::Assigned;
    }
    let lower = description
        .unwrap_or("")
        .trim_start_matches('(')
        .to_ascii_lowercase();
    if lower.starts_with("unassigned") || description.is_none() {
        if says_gone(notes) {
            PortStatus::Deregistered
        } else {
            PortStatus::Unassigned
        }
    } else {
        PortStatus::Reserved
    }
}

impl<'a> EntryRef<'a> {
    fn field(&self, i: usize) -> Option<&'a str> {
        let start = *self.record.bounds.get(i)? as usize;
        let end = *self.record.bounds.get(i + 1)? as usize;
        self.text.get(start..end).filter(|s| !s.is_empty())
    }

    /// Service Name.
    pub fn service(&self) -> Option<&'a str> {
        self.field(SERVICE)
    }

    /// First port; `None` for a port-less row (a service name without a port).
    pub fn low(&self) -> Option<u16> {
        self.record.has_ports.then_some(self.record.low)
    }

    /// Last port; equal to `low` for a single port.
    pub fn high(&self) -> Option<u16> {
        self.record.has_ports.then_some(self.record.high)
    }

    /// `(low, high)`, or `None` for a port-less row.
    pub fn ports(&self) -> Option<(u16, u16)> {
        self.record
            .has_ports
            .then_some((self.record.low, self.record.high))
    }

    /// Transport Protocol; `None` means the row covers every protocol.
    pub fn protocol(&self) -> Option<Transport> {
        usize::from(self.record.protocol)
            .checked_sub(1)
            .and_then(Transport::from_index)
    }

    /// Description.
    pub fn description(&self) -> Option<&'a str> {
        self.field(DESCRIPTION)
    }

    /// Assignee.
    pub fn assignee(&self) -> Option<&'a str> {
        self.field(ASSIGNEE)
    }

    /// Contact.
    pub fn contact(&self) -> Option<&'a str> {
        self.field(CONTACT)
    }

    /// Registration Date.
    pub fn registration_date(&self) -> Option<&'a str> {
        self.field(REGISTRATION_DATE)
    }

    /// Modification Date.
    pub fn modification_date(&self) -> Option<&'a str> {
        self.field(MODIFICATION_DATE)
    }

    /// Reference.
    pub fn reference(&self) -> Option<&'a str> {
        self.field(REFERENCE)
    }

    /// Service Code.
    pub fn service_code(&self) -> Option<&'a str> {
        self.field(SERVICE_CODE)
    }

    /// Unauthorized Use Reported.
    pub fn unauthorized_use(&self) -> Option<&'a str> {
        self.field(UNAUTHORIZED_USE)
    }

    /// Assignment Notes.
    pub fn notes(&self) -> Option<&'a str> {
        self.field(NOTES)
    }

    /// The row's own status (see the module docs for the rule). Never `Dynamic`.
    pub fn status(&self) -> PortStatus {
        row_status(self.service(), self.description(), self.notes())
    }

    /// Whether the row covers `port` for `proto`.
    pub fn covers(&self, port: u16, proto: Transport) -> bool {
        self.ports().is_some_and(|(l, h)| l <= port && port <= h)
            && self.protocol().is_none_or(|p| p == proto)
    }

    /// The port column as IANA writes it: "22", "6000-6063", or "" for a port-less row.
    pub fn ports_text(&self) -> String {
        match self.ports() {
            Some((l, h)) if l == h => l.to_string(),
            Some((l, h)) => format!("{l}-{h}"),
            None => String::new(),
        }
    }

    /// Every text field, Service Name first, then IANA's columns 4-12.
    fn texts(&self) -> [Option<&'a str>; table::TEXT_FIELDS] {
        std::array::from_fn(|i| self.field(i))
    }
}

/// Rows are equal when every column is: text compared by value, whichever
/// registry they come from.
impl PartialEq for EntryRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.ports() == other.ports()
            && self.record.protocol == other.record.protocol
            && self.texts() == other.texts()
    }
}

impl Eq for EntryRef<'_> {}

impl std::hash::Hash for EntryRef<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (
            self.service(),
            self.ports(),
            self.record.protocol,
            self.description(),
            self.notes(),
        )
            .hash(state);
    }
}

impl fmt::Debug for EntryRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("service", &self.service())
            .field("low", &self.low())
            .field("high", &self.high())
            .field("protocol", &self.protocol())
            .field("description", &self.description())
            .field("assignee", &self.assignee())
            .field("contact", &self.contact())
            .field("registration_date", &self.registration_date())
            .field("modification_date", &self.modification_date())
            .field("reference", &self.reference())
            .field("service_code", &self.service_code())
            .field("unauthorized_use", &self.unauthorized_use())
            .field("notes", &self.notes())
            .finish()
    }
}

/// Where the registry in use comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// The snapshot compiled into the binary.
    Embedded,
    /// A file installed by `portwarden registry update`.
    Installed,
    /// A file given with `--registry FILE`.
    File,
}

impl SourceKind {
    /// Lower-case name, as used in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Embedded => "embedded",
            SourceKind::Installed => "installed",
            SourceKind::File => "file",
        }
    }
}

/// Provenance of a registry, for `portwarden registry info`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Source {
    /// Embedded, installed or a file.
    pub kind: SourceKind,
    /// The file it was read from; `None` for the embedded snapshot.
    pub path: Option<PathBuf>,
    /// Where the data came from (packages, URL or file it was installed from).
    pub provenance: String,
    /// Date (YYYY-MM-DD) the data is from: the embedded snapshot's date, or
    /// the day an installed file was installed. `None` for `--registry FILE`.
    pub as_of: Option<String>,
}

/// The IANA registry in use: the embedded static table or a loaded copy.
#[derive(Clone, Debug)]
pub struct Registry {
    /// Every row's text, concatenated (see [`table::pack`]).
    text: Cow<'static, str>,
    /// One record per row, in file order, pointing into `text` by offset.
    records: Cow<'static, [table::Record]>,
    seg_starts: Cow<'static, [u16]>,
    seg_spans: Cow<'static, [(u32, u32)]>,
    seg_items: Cow<'static, [u32]>,
    newest_date: Option<Cow<'static, str>>,
    source: Source,
}

/// The registry's answer for one port and protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup<'a> {
    /// The port's standing (see the module docs).
    pub status: PortStatus,
    /// Every row covering the port for the protocol, in registry order.
    pub entries: Vec<EntryRef<'a>>,
}

impl Lookup<'_> {
    /// The summary carried by each listener: status, every assigned service
    /// name (in registry order, without duplicates) and one description.
    pub fn info(&self) -> RegistryInfo {
        let mut services: Vec<String> = Vec::new();
        for e in &self.entries {
            if e.status() == PortStatus::Assigned {
                if let Some(s) = e.service() {
                    if !services.iter().any(|known| known == s) {
                        services.push(s.to_string());
                    }
                }
            }
        }
        let description = self
            .entries
            .iter()
            .find(|e| e.status() == self.status)
            .or(self.entries.first())
            .and_then(|e| e.description())
            .map(str::to_string);
        RegistryInfo {
            status: self.status,
            services,
            description,
        }
    }
}

/// Row counts of a registry, for `portwarden registry info`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Every row.
    pub entries: usize,
    /// Rows for TCP only.
    pub tcp: usize,
    /// Rows for UDP only.
    pub udp: usize,
    /// Rows for SCTP only.
    pub sctp: usize,
    /// Rows for DCCP only.
    pub dccp: usize,
    /// Rows with a port and an empty protocol (every protocol).
    pub all_protocols: usize,
    /// Rows without a port (a service name only).
    pub portless: usize,
    /// Rows that are ranges of more than one port.
    pub ranges: usize,
    /// Distinct service names (case-insensitive).
    pub service_names: usize,
}

impl Registry {
    /// The snapshot compiled into the binary. No parsing: static tables.
    pub fn embedded() -> Registry {
        Registry {
            text: Cow::Borrowed(generated::TEXT),
            records: Cow::Borrowed(generated::RECORDS),
            seg_starts: Cow::Borrowed(generated::SEG_STARTS),
            seg_spans: Cow::Borrowed(generated::SEG_SPANS),
            seg_items: Cow::Borrowed(generated::SEG_ITEMS),
            newest_date: generated::SNAPSHOT_NEWEST_DATE.map(Cow::Borrowed),
            source: Source {
                kind: SourceKind::Embedded,
                path: None,
                provenance: generated::SNAPSHOT_SOURCE.to_string(),
                as_of: Some(generated::SNAPSHOT_AS_OF.to_string()),
            },
        }
    }

    /// The date (YYYY-MM-DD) the embedded snapshot is from.
    pub fn embedded_as_of() -> &'static str {
        generated::SNAPSHOT_AS_OF
    }

    /// Parses and validates a registry in IANA's CSV layout (see
    /// [`table::parse`]: RFC 4180, BOM, embedded newlines, port-less rows).
    /// `origin` names the file or URL in errors and in [`Registry::source`].
    pub fn from_csv(text: &str, origin: &str) -> Result<Registry> {
        let rows = table::parse(text).map_err(|e| Error::RegistryParse {
            origin: origin.to_string(),
            line: e.line,
            message: e.message,
        })?;
        let newest_date = table::newest_date(&rows).map(Cow::Owned);
        let ranges: Vec<Option<(u16, u16)>> = rows.iter().map(|r| r.low.zip(r.high)).collect();
        let index = table::build_index(&ranges).map_err(|message| Error::RegistryInvalid {
            origin: origin.to_string(),
            message,
        })?;
        let (text, records) = table::pack(&rows).map_err(|message| Error::RegistryInvalid {
            origin: origin.to_string(),
            message,
        })?;
        Ok(Registry {
            text: Cow::Owned(text),
            records: Cow::Owned(records),
            seg_starts: Cow::Owned(index.starts),
            seg_spans: Cow::Owned(index.spans),
            seg_items: Cow::Owned(index.items),
            newest_date,
            source: Source {
                kind: SourceKind::File,
                path: None,
                provenance: origin.to_string(),
                as_of: None,
            },
        })
    }

    /// Reads a registry file in IANA's CSV layout.
    pub fn from_path(path: &Path) -> Result<Registry> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut registry = Registry::from_csv(&text, &path.display().to_string())?;
        registry.source.path = Some(path.to_path_buf());
        Ok(registry)
    }

    /// The registry every command uses: `explicit` (`--registry FILE`) if
    /// given; else the installed file when it was installed on or after the
    /// embedded snapshot's date; else the embedded snapshot.
    pub fn resolve(explicit: Option<&Path>) -> Result<Registry> {
        if let Some(path) = explicit {
            return Registry::from_path(path);
        }
        let Some(path) = installed_path() else {
            return Ok(Registry::embedded());
        };
        match install::installed_as_of(&path) {
            Some(as_of) if as_of.as_str() >= Registry::embedded_as_of() => {
                let mut registry = Registry::from_path(&path)?;
                registry.source = Source {
                    kind: SourceKind::Installed,
                    path: Some(path.clone()),
                    provenance: read_source(&path).unwrap_or_else(|| "unknown".to_string()),
                    as_of: Some(as_of),
                };
                Ok(registry)
            }
            _ => Ok(Registry::embedded()),
        }
    }

    /// Every row, in file order.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = EntryRef<'_>> + Clone + '_ {
        self.records.iter().map(|record| self.entry(record))
    }

    fn entry<'a>(&'a self, record: &'a table::Record) -> EntryRef<'a> {
        EntryRef {
            text: &self.text,
            record,
        }
    }

    /// Where this registry comes from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The newest Registration or Modification Date in the data.
    pub fn newest_date(&self) -> Option<&str> {
        self.newest_date.as_deref()
    }

    /// The rows covering `port` for any protocol.
    fn covering(&self, port: u16) -> impl Iterator<Item = EntryRef<'_>> {
        table::covering(&self.seg_starts, &self.seg_spans, &self.seg_items, port)
            .iter()
            .filter_map(|&i| self.records.get(i as usize))
            .map(|record| self.entry(record))
    }

    /// The registry's answer for one port and protocol (see the module docs).
    pub fn lookup(&self, port: u16, proto: Transport) -> Lookup<'_> {
        let entries: Vec<EntryRef<'_>> = self
            .covering(port)
            .filter(|e| e.protocol().is_none_or(|p| p == proto))
            .collect();
        let has = |s: PortStatus| entries.iter().any(|e| e.status() == s);
        let status = if has(PortStatus::Assigned) {
            PortStatus::Assigned
        } else if has(PortStatus::Deregistered) {
            PortStatus::Deregistered
        } else if has(PortStatus::Reserved) {
            PortStatus::Reserved
        } else if port >= 49152 {
            PortStatus::Dynamic
        } else {
            PortStatus::Unassigned
        };
        Lookup { status, entries }
    }

    /// Every row naming this service, compared case-insensitively.
    pub fn by_service(&self, name: &str) -> Vec<EntryRef<'_>> {
        let name = name.trim();
        self.entries()
            .filter(|e| e.service().is_some_and(|s| s.eq_ignore_ascii_case(name)))
            .collect()
    }

    /// Every row with a port inside `low..=high` (overlapping it), in registry order.
    pub fn in_range(&self, low: u16, high: u16) -> Vec<EntryRef<'_>> {
        self.entries()
            .filter(|e| e.ports().is_some_and(|(l, h)| l <= high && low <= h))
            .collect()
    }

    /// Row counts.
    pub fn counts(&self) -> Counts {
        let mut c = Counts {
            entries: self.records.len(),
            ..Counts::default()
        };
        let mut names = std::collections::BTreeSet::new();
        for e in self.entries() {
            match (e.low(), e.protocol()) {
                (None, _) => c.portless += 1,
                (Some(_), None) => c.all_protocols += 1,
                (Some(_), Some(Transport::Tcp)) => c.tcp += 1,
                (Some(_), Some(Transport::Udp)) => c.udp += 1,
                (Some(_), Some(Transport::Sctp)) => c.sctp += 1,
                (Some(_), Some(Transport::Dccp)) => c.dccp += 1,
            }
            if e.low() != e.high() {
                c.ranges += 1;
            }
            if let Some(s) = e.service() {
                names.insert(s.to_ascii_lowercase());
            }
        }
        c.service_names = names.len();
        c
    }

    /// Checks that a parsed file looks like IANA's whole registry before it is
    /// installed: 5,000 to 200,000 rows (IANA had about 14,000 in 2015 and
    /// 2026) and no more than 1% of rows exact duplicates of another.
    pub fn validate_for_install(&self, origin: &str) -> Result<()> {
        const MIN_ROWS: usize = 5_000;
        const MAX_ROWS: usize = 200_000;
        let n = self.records.len();
        let invalid = |message: String| Error::RegistryInvalid {
            origin: origin.to_string(),
            message,
        };
        if n < MIN_ROWS {
            return Err(invalid(format!(
                "only {n} rows, IANA's registry has over {MIN_ROWS} (truncated download?)"
            )));
        }
        if n > MAX_ROWS {
            return Err(invalid(format!("{n} rows, more than {MAX_ROWS}")));
        }
        let mut seen = std::collections::HashSet::with_capacity(n);
        let duplicates = self.entries().filter(|e| !seen.insert(*e)).count();
        if duplicates * 100 > n {
            return Err(invalid(format!("{duplicates} of {n} rows are duplicates")));
        }
        let assigned = self
            .entries()
            .filter(|e| e.status() == PortStatus::Assigned)
            .count();
        if assigned * 2 < n {
            return Err(invalid(format!(
                "only {assigned} of {n} rows assign a service; IANA's assign most"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
