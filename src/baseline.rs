//! Baselines: the set of listeners considered normal, by identity.
//!
//! A listener's identity is its protocol, local address, port, the programs
//! owning it (executable path, else process name) and their users; never the
//! pid, which changes on every restart. The file is JSON, sorted and
//! deterministic, so saving the same listeners twice gives the same bytes:
//!
//! ```json
//! {
//!   "schema_version": 1,
//!   "listeners": [
//!     { "protocol": "tcp", "port": 22, "address": "0.0.0.0",
//!       "programs": ["/usr/sbin/sshd"], "users": ["root"] }
//!   ]
//! }
//! ```

use crate::error::{Error, Result};
use crate::model::{Listener, Proto, Report};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;

/// Version of the baseline file format written by this build.
pub const SCHEMA_VERSION: u32 = 1;

/// What makes two listeners "the same" across scans and restarts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Transport protocol.
    pub protocol: Proto,
    /// Local port.
    pub port: u16,
    /// Local address.
    pub address: IpAddr,
    /// Distinct owning programs, sorted: each owner's executable path, else its
    /// process name. Empty when no owner was visible.
    pub programs: Vec<String>,
    /// Distinct owning users, sorted: user names, else numeric uids; the
    /// socket's user (or uid) when no owner was visible. Empty when nothing is known.
    pub users: Vec<String>,
}

impl Identity {
    /// The identity of a listener.
    pub fn of(listener: &Listener) -> Identity {
        let socket = &listener.socket;
        let programs: BTreeSet<String> = socket
            .processes
            .iter()
            .map(|p| p.exe.clone().unwrap_or_else(|| p.name.clone()))
            .collect();
        let mut users: BTreeSet<String> = socket
            .processes
            .iter()
            .filter_map(|p| p.user.clone().or_else(|| p.uid.map(|u| u.to_string())))
            .collect();
        if socket.processes.is_empty() {
            users.extend(
                socket
                    .user
                    .clone()
                    .or_else(|| socket.uid.map(|u| u.to_string())),
            );
        }
        Identity {
            protocol: socket.proto,
            port: socket.port,
            address: socket.address,
            programs: programs.into_iter().collect(),
            users: users.into_iter().collect(),
        }
    }

    /// `address:port`, with brackets around IPv6 addresses.
    pub fn endpoint(&self) -> String {
        match self.address {
            IpAddr::V4(a) => format!("{a}:{}", self.port),
            IpAddr::V6(a) => format!("[{a}]:{}", self.port),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.protocol, self.endpoint())
    }
}

/// A saved set of listener identities.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// Always [`SCHEMA_VERSION`] when written by this build.
    pub schema_version: u32,
    /// Identities, sorted, without duplicates.
    pub listeners: Vec<Identity>,
}

impl Baseline {
    /// The baseline of a report's listeners.
    pub fn from_report(report: &Report) -> Baseline {
        let set: BTreeSet<Identity> = report.listeners.iter().map(Identity::of).collect();
        Baseline {
            schema_version: SCHEMA_VERSION,
            listeners: set.into_iter().collect(),
        }
    }

    /// Whether the identity is in the baseline.
    pub fn contains(&self, identity: &Identity) -> bool {
        self.listeners.binary_search(identity).is_ok()
    }

    /// The file contents: pretty JSON ending in a newline.
    pub fn to_json(&self) -> String {
        // Serialising plain strings, integers and addresses cannot fail.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Parses file contents; `path` is used in error messages. Anything but a
    /// well-formed baseline of a known version is an error.
    pub fn parse(text: &str, path: &Path) -> Result<Baseline> {
        let error = |message: String| Error::Baseline {
            path: path.to_path_buf(),
            message,
        };
        let mut baseline: Baseline = serde_json::from_str(text).map_err(|e| {
            error(format!(
                "corrupt at line {} column {}: {e}",
                e.line(),
                e.column()
            ))
        })?;
        if baseline.schema_version != SCHEMA_VERSION {
            return Err(error(format!(
                "unsupported schema_version {} (this portwarden reads version {SCHEMA_VERSION}); save a new baseline",
                baseline.schema_version
            )));
        }
        // Hand-edited files may be unsorted; lookups need sorted, unique entries.
        let set: BTreeSet<Identity> = baseline.listeners.into_iter().collect();
        baseline.listeners = set.into_iter().collect();
        Ok(baseline)
    }

    /// Reads a baseline file. Missing, unreadable and corrupt files are
    /// errors, never an empty baseline (which would flag every listener).
    pub fn load(path: &Path) -> Result<Baseline> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                " (create it with `portwarden baseline save`)"
            } else {
                ""
            };
            Error::Baseline {
                path: path.to_path_buf(),
                message: format!("cannot read: {e}{hint}"),
            }
        })?;
        Baseline::parse(&text, path)
    }

    /// Writes the baseline atomically, creating missing parent directories.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::paths::write_atomic(path, self.to_json().as_bytes(), true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Exposure, PortStatus, Process, RangeClass, RegistryInfo, Socket};

    fn listener(
        proto: Proto,
        address: &str,
        port: u16,
        owners: &[(u32, &str, Option<&str>, Option<&str>)],
    ) -> Listener {
        let address: IpAddr = address.parse().unwrap();
        Listener {
            socket: Socket {
                proto,
                address,
                port,
                dual_stack: false,
                uid: Some(0),
                user: None,
                inode: Some(7),
                processes: owners
                    .iter()
                    .map(|&(pid, name, exe, user)| Process {
                        pid,
                        name: name.to_string(),
                        user: user.map(str::to_string),
                        uid: Some(pid),
                        exe: exe.map(str::to_string),
                        cmdline: vec![],
                        unit: None,
                        container: None,
                        proxy_for: None,
                    })
                    .collect(),
                netns: None,
            },
            exposure: Exposure::of(address),
            range: RangeClass::of(port),
            registry: RegistryInfo {
                status: PortStatus::Assigned,
                services: vec!["x".into()],
                description: None,
            },
            findings: vec![],
        }
    }

    fn report(listeners: Vec<Listener>) -> Report {
        Report {
            listeners,
            privileged: true,
        }
    }

    #[test]
    fn identity_ignores_pids_and_collects_programs_and_users() {
        let master_and_workers = listener(
            Proto::Tcp,
            "0.0.0.0",
            80,
            &[
                (100, "nginx", Some("/usr/sbin/nginx"), Some("root")),
                (101, "nginx", Some("/usr/sbin/nginx"), Some("www-data")),
                (102, "nginx", Some("/usr/sbin/nginx"), Some("www-data")),
            ],
        );
        let restarted = listener(
            Proto::Tcp,
            "0.0.0.0",
            80,
            &[
                (900, "nginx", Some("/usr/sbin/nginx"), Some("root")),
                (905, "nginx", Some("/usr/sbin/nginx"), Some("www-data")),
            ],
        );
        let id = Identity::of(&master_and_workers);
        assert_eq!(id.programs, vec!["/usr/sbin/nginx"]);
        assert_eq!(id.users, vec!["root", "www-data"]);
        assert_eq!(id, Identity::of(&restarted));
        assert_eq!(id.to_string(), "tcp 0.0.0.0:80");

        let no_exe = listener(Proto::Udp, "::1", 5353, &[(7, "avahi", None, None)]);
        let id = Identity::of(&no_exe);
        assert_eq!(id.programs, vec!["avahi"]);
        assert_eq!(id.users, vec!["7"]);
        assert_eq!(id.endpoint(), "[::1]:5353");

        let hidden = listener(Proto::Udp, "::1", 5353, &[]);
        let id = Identity::of(&hidden);
        assert!(id.programs.is_empty());
        assert_eq!(id.users, vec!["0"]);
    }

    #[test]
    fn saved_file_is_sorted_deduplicated_and_stable() {
        let a = listener(
            Proto::Udp,
            "0.0.0.0",
            53,
            &[(1, "dns", Some("/usr/sbin/dns"), Some("root"))],
        );
        let b = listener(
            Proto::Tcp,
            "127.0.0.1",
            8080,
            &[(2, "web", Some("/usr/bin/web"), Some("alice"))],
        );
        let c = listener(
            Proto::Tcp,
            "0.0.0.0",
            22,
            &[(3, "sshd", Some("/usr/sbin/sshd"), Some("root"))],
        );
        let one = Baseline::from_report(&report(vec![a.clone(), b.clone(), c.clone(), b.clone()]));
        let two = Baseline::from_report(&report(vec![c, b, a]));
        assert_eq!(one.to_json(), two.to_json());
        let ports: Vec<_> = one.listeners.iter().map(|i| (i.protocol, i.port)).collect();
        assert_eq!(
            ports,
            vec![(Proto::Tcp, 22), (Proto::Tcp, 8080), (Proto::Udp, 53)]
        );
        let json: serde_json::Value = serde_json::from_str(&one.to_json()).unwrap();
        assert_eq!(json["schema_version"], 1);
        assert_eq!(json["listeners"][0]["address"], "0.0.0.0");
        assert_eq!(json["listeners"][0]["programs"][0], "/usr/sbin/sshd");
        assert!(one.to_json().ends_with("}\n"));
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir
            .path()
            .join("data")
            .join("portwarden")
            .join("baseline.json");
        let l = listener(
            Proto::Tcp,
            "::",
            443,
            &[(5, "caddy", Some("/usr/bin/caddy"), Some("caddy"))],
        );
        let saved = Baseline::from_report(&report(vec![l.clone()]));
        saved.save(&path).unwrap();
        let loaded = Baseline::load(&path).unwrap();
        assert_eq!(loaded, saved);
        assert!(loaded.contains(&Identity::of(&l)));
        let moved = listener(
            Proto::Tcp,
            "::",
            444,
            &[(5, "caddy", Some("/usr/bin/caddy"), Some("caddy"))],
        );
        assert!(!loaded.contains(&Identity::of(&moved)));
    }

    fn baseline_error(text: &str) -> String {
        match Baseline::parse(text, Path::new("/b.json")) {
            Err(Error::Baseline { path, message }) => {
                assert_eq!(path, Path::new("/b.json"));
                message
            }
            other => panic!("expected a baseline error, got {other:?}"),
        }
    }

    #[test]
    fn corrupt_files_are_errors_never_empty() {
        assert!(baseline_error("").contains("line 1 column 0"));
        let message =
            baseline_error("{\"schema_version\": 1,\n \"listeners\": [\n{\"protocol\": \"tcp\"}]}");
        assert!(message.contains("line 3"), "{message}");
        assert!(baseline_error("{\"schema_version\": 1}").contains("listeners"));
        assert!(baseline_error("{\"schema_version\": 2, \"listeners\": []}")
            .contains("schema_version 2"));
        assert!(
            baseline_error("{\"schema_version\": 1, \"listeners\": [], \"extra\": 1}")
                .contains("extra")
        );
        assert!(baseline_error("[]").contains("corrupt"));
    }

    #[test]
    fn missing_file_is_an_error_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.json");
        match Baseline::load(&path) {
            Err(Error::Baseline { path: p, message }) => {
                assert_eq!(p, path);
                assert!(message.contains("baseline save"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unsorted_hand_edited_file_still_matches() {
        let text = r#"{"schema_version": 1, "listeners": [
            {"protocol": "udp", "port": 53, "address": "0.0.0.0", "programs": [], "users": []},
            {"protocol": "tcp", "port": 22, "address": "0.0.0.0", "programs": [], "users": []}
        ]}"#;
        let b = Baseline::parse(text, Path::new("b")).unwrap();
        let hidden = Listener {
            socket: Socket {
                uid: None,
                ..listener(Proto::Tcp, "0.0.0.0", 22, &[]).socket
            },
            ..listener(Proto::Tcp, "0.0.0.0", 22, &[])
        };
        assert!(b.contains(&Identity::of(&hidden)));
    }
}
