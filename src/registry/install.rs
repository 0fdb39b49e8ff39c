//! `portwarden registry update`: fetch IANA's CSV (or read a file), validate
//! it, and install it atomically in the user's data directory.

use super::Registry;
use crate::error::{Error, Result};
use std::io::{IsTerminal, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// IANA's own CSV of the registry.
pub const DEFAULT_URL: &str =
    "https://www.iana.org/assignments/service-names-port-numbers/service-names-port-numbers.csv";

/// A download larger than this is not IANA's registry (about 1.5 MB in 2026).
const MAX_BYTES: u64 = 64 << 20;

const FILE_NAME: &str = "service-names-port-numbers.csv";
const SOURCE_FILE: &str = "service-names-port-numbers.source";

/// The URL `registry update` reads without `--from`.
pub fn default_url() -> &'static str {
    DEFAULT_URL
}

/// Where `registry update` installs the registry:
/// `$XDG_DATA_HOME/portwarden/` (else `~/.local/share/portwarden/`) on
/// Linux, the platform's data directory elsewhere. `None` without a home.
pub fn installed_path() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("portwarden").join(FILE_NAME))
}

/// The day (YYYY-MM-DD, UTC) the installed file was written, from its mtime.
pub(super) fn installed_as_of(path: &Path) -> Option<String> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(civil_date(modified))
}

/// Where the installed file was fetched from, as recorded beside it.
pub fn read_source(csv_path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(csv_path.with_file_name(SOURCE_FILE)).ok()?;
    let line = text.lines().next()?.trim();
    (!line.is_empty()).then(|| line.to_string())
}

/// What an install did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    /// The installed file.
    pub path: PathBuf,
    /// Number of rows.
    pub entries: usize,
    /// The URL or file it came from.
    pub origin: String,
    /// Newest date in the data.
    pub newest_date: Option<String>,
}

/// Reads `from` (a URL, a file, or IANA's URL when `None`), validates it as
/// IANA's whole registry and only then installs it atomically (a temporary
/// file in the same directory, renamed over the old one). On any error the
/// installed registry is left as it was.
pub fn install(from: Option<&str>) -> Result<Installed> {
    let mut origin = from.unwrap_or(DEFAULT_URL).to_string();
    if !is_url(&origin) && origin.contains("://") {
        return Err(Error::Download {
            url: origin,
            message:
                "only https:// URLs (or http:// to a loopback address) and files are supported"
                    .to_string(),
        });
    }
    let text = if is_url(&origin) {
        download(&origin)?
    } else {
        let path = Path::new(&origin);
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        // Record where the file really is, not a path relative to some cwd.
        if let Ok(full) = std::fs::canonicalize(path) {
            origin = full.display().to_string();
        }
        text
    };
    let registry = Registry::from_csv(&text, &origin)?;
    registry.validate_for_install(&origin)?;

    let path = installed_path().ok_or(Error::NoUserDir("data"))?;
    let dir = path.parent().ok_or(Error::NoUserDir("data"))?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let today = civil_date(SystemTime::now());
    write_atomically(&path, text.as_bytes())?;
    let source = format!("{origin} (installed {today})\n");
    write_atomically(&path.with_file_name(SOURCE_FILE), source.as_bytes())?;
    let entries = registry.entries().len();
    Ok(Installed {
        path,
        entries,
        origin,
        newest_date: registry.newest_date().map(str::to_string),
    })
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| Error::io(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

fn is_url(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// The host of an http(s) URL, without brackets or port.
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split_once(']').map(|(h, _)| h);
    }
    Some(host_port.split(':').next().unwrap_or(host_port))
}

fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Downloads `url`: HTTPS with certificate checks, or plain HTTP to a loopback
/// host only. Rejects HTTP errors, HTML pages, bodies over 64 MiB and
/// non-UTF-8 text. Shows progress on stderr when it is a terminal.
fn download(url: &str) -> Result<String> {
    let fail = |message: String| Error::Download {
        url: url.to_string(),
        message,
    };
    let https = url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
    let host = url_host(url)
        .filter(|h| !h.is_empty())
        .ok_or_else(|| fail("no host in the URL".into()))?;
    if !https && !is_loopback_host(host) {
        return Err(fail(format!(
            "plain http is only allowed to a loopback address, not {host:?}: use https"
        )));
    }
    // Plain http (loopback only) must not be redirected elsewhere, nor sent
    // through a proxy from the environment: the host check above would be
    // for nothing. https stays https across redirects (https_only).
    let config = ureq::Agent::config_builder()
        .https_only(https)
        .max_redirects(if https { 10 } else { 0 })
        .proxy(if https {
            ureq::Proxy::try_from_env()
        } else {
            None
        })
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_global(Some(Duration::from_secs(300)))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let mut response = agent.get(url).call().map_err(|e| match e {
        ureq::Error::StatusCode(code) => fail(format!("the server answered HTTP {code}")),
        other => fail(other.to_string()),
    })?;
    if response.status().is_redirection() {
        let to = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?")
            .to_string();
        return Err(fail(format!(
            "the server answered a redirect to {to:?}, which plain http does not follow"
        )));
    }
    let mime = response
        .body()
        .mime_type()
        .unwrap_or("")
        .to_ascii_lowercase();
    if mime.contains("html") {
        return Err(fail(format!("the server sent {mime}, not IANA's CSV")));
    }
    let expected = response.body().content_length();
    if expected.is_some_and(|n| n > MAX_BYTES) {
        return Err(fail(format!(
            "the file is larger than {} MiB",
            MAX_BYTES >> 20
        )));
    }
    let progress = std::io::stderr().is_terminal();
    let mut reader = response
        .body_mut()
        .with_config()
        .limit(MAX_BYTES + 1)
        .reader();
    let mut bytes = Vec::with_capacity(expected.unwrap_or(0).min(MAX_BYTES) as usize);
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = reader
            .read(&mut chunk)
            .map_err(|e| fail(format!("reading the body: {e}")))?;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        if bytes.len() as u64 > MAX_BYTES {
            return Err(fail(format!(
                "the file is larger than {} MiB",
                MAX_BYTES >> 20
            )));
        }
        if progress {
            show_progress(bytes.len() as u64, expected);
        }
    }
    if progress {
        eprintln!();
    }
    if let Some(n) = expected {
        if n != bytes.len() as u64 {
            return Err(fail(format!("truncated: got {} of {n} bytes", bytes.len())));
        }
    }
    String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "not UTF-8 text (byte {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

fn show_progress(done: u64, total: Option<u64>) {
    let kib = |n: u64| n / 1024;
    let mut err = std::io::stderr().lock();
    let _ = match total {
        Some(t) if t > 0 => write!(
            err,
            "\rportwarden: downloading the IANA registry: {} / {} KiB ({}%)",
            kib(done),
            kib(t),
            done * 100 / t
        ),
        _ => write!(
            err,
            "\rportwarden: downloading the IANA registry: {} KiB",
            kib(done)
        ),
    };
    let _ = err.flush();
}

/// UTC calendar date (YYYY-MM-DD) of a time (days-from-epoch to civil date,
/// proleptic Gregorian calendar).
pub(super) fn civil_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    // Shift the epoch to 0000-03-01 so leap days end each 400-year era's years.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let at = |s: u64| civil_date(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01");
        assert_eq!(at(951_782_400), "2000-02-29");
        assert_eq!(at(1_789_603_200), "2026-09-17");
        assert_eq!(at(4_107_542_399), "2100-02-28");
    }

    #[test]
    fn hosts() {
        assert_eq!(url_host("http://127.0.0.1:8080/x.csv"), Some("127.0.0.1"));
        assert_eq!(url_host("http://[::1]:80/x"), Some("::1"));
        assert_eq!(
            url_host("https://user@www.iana.org/a?b"),
            Some("www.iana.org")
        );
        assert!(is_loopback_host("127.0.0.1"));
        assert!(is_loopback_host("127.1.2.3"));
        assert!(is_loopback_host("::1"));
        assert!(is_loopback_host("LOCALHOST"));
        assert!(!is_loopback_host("10.0.0.1"));
        assert!(!is_loopback_host("www.iana.org"));
        assert!(is_url("HTTPS://x"));
        assert!(!is_url("/tmp/file.csv"));
    }

    #[test]
    fn plain_http_elsewhere_is_refused_before_connecting() {
        let e = download("http://www.iana.org/x.csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("only allowed to a loopback"), "{e}");
    }
}
