//! The library's one error type. Every variant names what it is about
//! (file, line, port, URL) so the binary can print one clear line.

use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong inside the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// Writing the output (standard output, usually) failed. A broken pipe is
    /// not an error for the binary: it exits 0 quietly.
    #[error("cannot write the output: {0}")]
    Write(#[from] std::io::Error),

    /// The OS could not be asked for its sockets.
    #[error("cannot enumerate sockets: {0}")]
    Collect(String),

    // --- registry ---------------------------------------------------------
    /// A registry CSV file could not be parsed.
    #[error("{origin}: {}{message}", line_prefix(*.line))]
    RegistryParse {
        /// File name or URL the CSV came from.
        origin: String,
        /// 1-based line of the offending record.
        line: u64,
        /// What is wrong with it.
        message: String,
    },
    /// A registry file parsed but does not look like IANA's registry.
    #[error("{origin}: not a valid IANA port registry: {message}")]
    RegistryInvalid {
        /// File name or URL the CSV came from.
        origin: String,
        /// Why it was rejected.
        message: String,
    },
    /// Downloading the registry failed.
    #[error("cannot download {url}: {message}")]
    Download {
        /// The URL asked for.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A service name that the registry does not know.
    #[error("unknown service name {0:?}: not in the IANA registry")]
    UnknownService(String),
    /// A port or port range argument that does not parse or is out of 0-65535.
    #[error("invalid port {0:?}: expected a port 0-65535, a range LOW-HIGH, or a service name")]
    InvalidPort(String),

    // --- policy and baselines ---------------------------------------------
    /// A policy file is malformed.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Policy {
        /// The policy file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A baseline file is missing, unreadable or corrupt.
    #[error("baseline {}: {message}", path.display())]
    Baseline {
        /// The baseline file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file that a command would create already exists.
    #[error("{} already exists; use --force to overwrite it", path.display())]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// No per-user data or config directory could be determined.
    #[error("cannot determine the user's {0} directory (is HOME set?)")]
    NoUserDir(&'static str),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// `line N: ` for a record's line, nothing for a whole-file problem (line 0).
fn line_prefix(line: u64) -> String {
    if line == 0 {
        String::new()
    } else {
        format!("line {line}: ")
    }
}
