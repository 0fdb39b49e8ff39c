//! IANA's CSV layout: parsing, validation and the port index.
//!
//! Shared verbatim by `build.rs` (which turns the snapshot into static tables)
//! and by the library (which loads `--registry FILE` and installed files), so
//! the embedded table and a loaded one are checked by the same rules. Only
//! `std` and `csv` may be used here.

use std::collections::BTreeSet;

/// IANA's column names, in order (the first line of IANA's CSV).
pub const HEADER: [&str; 12] = [
    "Service Name",
    "Port Number",
    "Transport Protocol",
    "Description",
    "Assignee",
    "Contact",
    "Registration Date",
    "Modification Date",
    "Reference",
    "Service Code",
    "Unauthorized Use Reported",
    "Assignment Notes",
];

/// The transport protocols IANA assigns ports for, lower case.
pub const PROTOCOLS: [&str; 4] = ["tcp", "udp", "sctp", "dccp"];

/// One data row of the CSV, validated. Text fields are trimmed; empty is `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// 1-based line where the record starts.
    pub line: u64,
    /// Service Name.
    pub service: Option<String>,
    /// First port, `None` for a port-less row.
    pub low: Option<u16>,
    /// Last port (equal to `low` for a single port).
    pub high: Option<u16>,
    /// Index into [`PROTOCOLS`]; `None` means every protocol.
    pub protocol: Option<usize>,
    /// Description ... Assignment Notes, in [`HEADER`] order (columns 4-12).
    pub text: [Option<String>; 9],
}

/// What is wrong with a registry CSV, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line, 0 when about the whole file.
    pub line: u64,
    /// Lower-case description of the problem.
    pub message: String,
}

fn err(line: u64, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

/// Parses a port column: "", "22" or "6000-6063".
pub fn parse_ports(text: &str) -> Result<Option<(u16, u16)>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let number = |s: &str| -> Result<u16, String> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("port number {text:?} is not a number or range"));
        }
        s.parse::<u16>()
            .map_err(|_| format!("port number {text:?} is outside 0-65535"))
    };
    match text.split_once('-') {
        None => number(text).map(|p| Some((p, p))),
        Some((low, high)) => {
            let (low, high) = (number(low)?, number(high)?);
            if low > high {
                return Err(format!("port range {text:?} runs backwards"));
            }
            Ok(Some((low, high)))
        }
    }
}

/// Parses and validates IANA's CSV: RFC 4180 quoting (commas, quotes and
/// newlines inside quoted fields), an optional UTF-8 byte-order mark, IANA's
/// exact header, twelve fields per record, ports and ranges within 0-65535,
/// known protocols, and a service name or a port on every row.
pub fn parse(text: &str) -> Result<Vec<Row>, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let start = text.trim_start();
    if start.is_empty() {
        return Err(err(0, "the file is empty"));
    }
    if start.starts_with('<') {
        return Err(err(1, "this is HTML (an error page?), not IANA's CSV"));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => return Err(err(1, format!("cannot read the header: {e}"))),
        None => return Err(err(0, "the file is empty")),
    };
    let names: Vec<&str> = header.iter().map(str::trim).collect();
    if names != HEADER {
        return Err(err(
            1,
            format!(
                "the header is not IANA's column layout (expected {:?})",
                HEADER.join(",")
            ),
        ));
    }
    let mut rows = Vec::new();
    let mut lines = LineCounter {
        text: text.as_bytes(),
        byte: 0,
        line: 1,
    };
    for record in records {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| lines.line_at(p.byte()));
            let message = match e.kind() {
                csv::ErrorKind::UnequalLengths { len, .. } => {
                    format!("{len} fields instead of 12 (truncated or not IANA's layout)")
                }
                csv::ErrorKind::Utf8 { .. } => "invalid UTF-8".to_string(),
                _ => e.to_string(),
            };
            err(line, message)
        })?;
        let line = record.position().map_or(0, |p| lines.line_at(p.byte()));
        let field = |i: usize| -> Option<String> {
            record
                .get(i)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let ports = parse_ports(record.get(1).unwrap_or("")).map_err(|m| err(line, m))?;
        let protocol = match field(2) {
            None => None,
            Some(p) => Some(
                PROTOCOLS
                    .iter()
                    .position(|known| known.eq_ignore_ascii_case(&p))
                    .ok_or_else(|| err(line, format!("unknown transport protocol {p:?}")))?,
            ),
        };
        let service = field(0);
        if service.is_none() && ports.is_none() {
            return Err(err(line, "row has neither a service name nor a port"));
        }
        rows.push(Row {
            line,
            service,
            low: ports.map(|p| p.0),
            high: ports.map(|p| p.1),
            protocol,
            text: [
                field(3),
                field(4),
                field(5),
                field(6),
                field(7),
                field(8),
                field(9),
                field(10),
                field(11),
            ],
        });
    }
    if rows.is_empty() {
        return Err(err(0, "the file has a header but no rows"));
    }
    Ok(rows)
}

/// Maps byte offsets to 1-based line numbers, moving forward only. The csv
/// crate's own line count is one short after a CRLF (the record "starts" at
/// the previous line's '\n'), so lines are counted here, skipping line ends.
struct LineCounter<'a> {
    text: &'a [u8],
    byte: usize,
    line: u64,
}

impl LineCounter<'_> {
    fn line_at(&mut self, byte: u64) -> u64 {
        let mut target = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        while matches!(self.text.get(target), Some(b'\r' | b'\n')) {
            target += 1;
        }
        if target < self.byte {
            // Only for an error after the last record: count from the start.
            self.byte = 0;
            self.line = 1;
        }
        let newlines = self
            .text
            .get(self.byte..target)
            .map_or(0, |s| s.iter().filter(|&&b| b == b'\n').count());
        self.line += newlines as u64;
        self.byte = target;
        self.line
    }
}

/// An interval index over rows' port ranges: the ports 0-65535 are cut into
/// segments at every range boundary; each segment lists the rows covering it.
/// A lookup is one binary search, with no per-port table of 65536 slots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Index {
    /// First port of each segment, ascending; the first is 0.
    pub starts: Vec<u16>,
    /// For each segment, `(offset, len)` into `items`.
    pub spans: Vec<(u32, u32)>,
    /// Row indices, ascending within a segment.
    pub items: Vec<u32>,
}

/// Most row indices the index may hold (16 MiB). Every segment lists every
/// range active in it, so many overlapping ranges grow it quadratically: a
/// hostile file of 30,000 rows `N-65535` would need gigabytes. IANA's whole
/// registry needs about 30,000.
pub const MAX_INDEX_ITEMS: usize = 4 << 20;

/// Builds the index for rows given as `(low, high)` port ranges (`None` for
/// port-less rows, which are never found by port). Fails, rather than
/// exhausting memory, when the ranges overlap too much.
pub fn build_index(ranges: &[Option<(u16, u16)>]) -> Result<Index, String> {
    // Boundaries: every range start, and the port after every range end.
    let mut cuts: BTreeSet<u32> = BTreeSet::new();
    cuts.insert(0);
    for (low, high) in ranges.iter().flatten() {
        cuts.insert(u32::from(*low));
        cuts.insert(u32::from(*high) + 1);
    }
    cuts.retain(|&c| c <= u32::from(u16::MAX));
    let starts: Vec<u32> = cuts.into_iter().collect();
    // Rows starting at each cut, and rows ending just before each cut.
    let mut opening: Vec<Vec<u32>> = vec![Vec::new(); starts.len()];
    let mut closing: Vec<Vec<u32>> = vec![Vec::new(); starts.len()];
    let seg_of = |port: u32| starts.partition_point(|&s| s <= port) - 1;
    for (i, r) in ranges.iter().enumerate() {
        if let Some((low, high)) = r {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            opening[seg_of(u32::from(*low))].push(i);
            let end = u32::from(*high) + 1;
            if end <= u32::from(u16::MAX) {
                closing[seg_of(end)].push(i);
            }
        }
    }
    let mut index = Index::default();
    let mut active: BTreeSet<u32> = BTreeSet::new();
    for (seg, start) in starts.iter().enumerate() {
        for i in &closing[seg] {
            active.remove(i);
        }
        active.extend(opening[seg].iter().copied());
        if index.items.len() + active.len() > MAX_INDEX_ITEMS {
            return Err(format!(
                "too many overlapping port ranges (port {start} is covered by {} rows)",
                active.len()
            ));
        }
        let offset = u32::try_from(index.items.len()).unwrap_or(u32::MAX);
        index.items.extend(active.iter().copied());
        let len = u32::try_from(active.len()).unwrap_or(u32::MAX);
        index.starts.push(u16::try_from(*start).unwrap_or(u16::MAX));
        index.spans.push((offset, len));
    }
    Ok(index)
}

/// The row indices whose range covers `port` (any protocol).
pub fn covering<'a>(
    starts: &[u16],
    spans: &[(u32, u32)],
    items: &'a [u32],
    port: u16,
) -> &'a [u32] {
    let seg = starts.partition_point(|&s| s <= port);
    let Some(&(offset, len)) = seg.checked_sub(1).and_then(|s| spans.get(s)) else {
        return &[];
    };
    let (offset, len) = (offset as usize, len as usize);
    items.get(offset..offset + len).unwrap_or(&[])
}

/// The newest Registration or Modification Date in the rows (IANA writes
/// YYYY-MM-DD, older rows YYYY-MM; both order correctly as text).
pub fn newest_date(rows: &[Row]) -> Option<String> {
    rows.iter()
        .flat_map(|r| [&r.text[3], &r.text[4]])
        .flatten()
        .filter(|d| d.len() >= 7 && d.bytes().all(|b| b.is_ascii_digit() || b == b'-'))
        .max()
        .cloned()
}

/// Number of text fields in a row: Service Name, then Description ... Assignment Notes.
pub const TEXT_FIELDS: usize = 10;

/// One row as plain integers, its text kept in a separate blob. With no
/// pointer inside, the embedded table is read-only data the dynamic loader
/// never has to relocate (an `Option<&str>` per field would cost one
/// relocation each: megabytes touched at every start).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Record {
    /// Byte offsets into the blob: text field `i` is `bounds[i]..bounds[i + 1]`,
    /// empty meaning absent. Field 0 is the Service Name, 1-9 the columns
    /// Description ... Assignment Notes.
    pub bounds: [u32; TEXT_FIELDS + 1],
    /// First port (0 for a port-less row).
    pub low: u16,
    /// Last port (0 for a port-less row).
    pub high: u16,
    /// `1 + ` index into [`PROTOCOLS`]; 0 means every protocol.
    pub protocol: u8,
    /// Whether the row has a port.
    pub has_ports: bool,
}

/// Packs rows into one text blob and pointer-free records. Rows whose text
/// is identical (IANA lists most services once for TCP and once for UDP)
/// share one copy. Fails when the text passes 4 GiB.
pub fn pack(rows: &[Row]) -> Result<(String, Vec<Record>), String> {
    let mut blob = String::new();
    let mut records = Vec::with_capacity(rows.len());
    let mut seen: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    let mut joined = String::new();
    for row in rows {
        joined.clear();
        let mut lens = [0u32; TEXT_FIELDS];
        let fields = std::iter::once(&row.service).chain(row.text.iter());
        for (len, field) in lens.iter_mut().zip(fields) {
            let text = field.as_deref().unwrap_or("");
            joined.push_str(text);
            *len = u32::try_from(text.len()).map_err(|_| too_big(row.line))?;
        }
        let start = match seen.get(joined.as_str()) {
            Some(&start) => start,
            None => {
                let start = u32::try_from(blob.len()).map_err(|_| too_big(row.line))?;
                blob.push_str(&joined);
                u32::try_from(blob.len()).map_err(|_| too_big(row.line))?;
                seen.insert(joined.clone(), start);
                start
            }
        };
        let mut bounds = [start; TEXT_FIELDS + 1];
        let mut end = start;
        for (bound, len) in bounds.iter_mut().skip(1).zip(lens) {
            end += len;
            *bound = end;
        }
        let protocol = match row.protocol {
            None => 0,
            Some(i) => {
                u8::try_from(i + 1).map_err(|_| format!("line {}: bad protocol", row.line))?
            }
        };
        records.push(Record {
            bounds,
            low: row.low.unwrap_or(0),
            high: row.high.unwrap_or(0),
            protocol,
            has_ports: row.low.is_some() && row.high.is_some(),
        });
    }
    Ok((blob, records))
}

fn too_big(line: u64) -> String {
    format!("line {line}: the registry's text passes 4 GiB")
}
