//! Rendering: pure functions from classified data to a writer, one module
//! per format. Renderers never read the environment: colour and width are
//! decided once in [`crate::config`] and passed in a [`Style`].

pub mod check_json;
pub mod check_text;
pub mod csv;
pub mod json;
pub mod nagios;
pub mod netns;
pub mod plain;
pub mod port;
pub mod prometheus;
pub mod table;
pub mod warnings;
pub mod watch;

use crate::model::{Container, Listener, PortStatus, Process};
use crate::sanitize::sanitize;
use std::net::{IpAddr, SocketAddr};

/// How human output should look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    /// Use ANSI colour.
    pub color: bool,
    /// Terminal width to fit into; `None` (not a terminal) never trims.
    pub width: Option<usize>,
    /// Show full command lines and never trim.
    pub wide: bool,
}

/// An address as people read it: dual-stack IPv6 wildcards print as `*`
/// (as `ss` does), everything else as the address itself, without brackets.
pub fn display_address(address: IpAddr, dual_stack: bool) -> String {
    if dual_stack && address.is_unspecified() {
        "*".to_string()
    } else {
        address.to_string()
    }
}

/// What the registry says, in one short word or name: the assigned service
/// names (`http,www`) or the status in parentheses (`(unassigned)`).
pub fn service_cell(l: &Listener) -> String {
    match l.registry.status {
        // Service names come from a registry file the user may have installed.
        PortStatus::Assigned if !l.registry.services.is_empty() => {
            sanitize(&l.registry.services.join(",")).into_owned()
        }
        status => format!("({})", status.as_str()),
    }
}

/// Owner columns of a listener, sanitized for a terminal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerCells {
    /// Comma-separated pids, or `-`.
    pub pids: String,
    /// Distinct process names, or a not-visible marker.
    pub process: String,
    /// As `process`, each name followed by what it belongs to, when known:
    /// `nginx (nginx.service)`, `httpd (docker web)`,
    /// `docker-proxy → web (172.17.0.2:80)`.
    pub attributed: String,
    /// Distinct user names (or the socket's uid when no process is visible).
    pub user: String,
    /// Command lines of the distinct processes, `; ` separated.
    pub command: String,
}

/// Marker shown in place of a process name when no owner could be seen.
pub const NOT_VISIBLE: &str = "(owner not visible)";

fn push_distinct(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// Builds the owner columns of `l`.
pub fn owner_cells(l: &Listener) -> OwnerCells {
    let s = &l.socket;
    let socket_user = || match (&s.user, s.uid) {
        (Some(u), _) => sanitize(u).into_owned(),
        (None, Some(uid)) => format!("uid {uid}"),
        (None, None) => "-".to_string(),
    };
    if s.processes.is_empty() {
        return OwnerCells {
            pids: "-".to_string(),
            process: NOT_VISIBLE.to_string(),
            attributed: NOT_VISIBLE.to_string(),
            user: socket_user(),
            command: String::new(),
        };
    }
    let mut names = Vec::new();
    let mut attributed = Vec::new();
    let mut users = Vec::new();
    let mut commands = Vec::new();
    for p in &s.processes {
        push_distinct(&mut names, sanitize(&p.name).into_owned());
        push_distinct(&mut attributed, sanitize(&attributed_name(p)).into_owned());
        let user = match (&p.user, p.uid) {
            (Some(u), _) => sanitize(u).into_owned(),
            (None, Some(uid)) => uid.to_string(),
            (None, None) => "?".to_string(),
        };
        push_distinct(&mut users, user);
        let command = if p.cmdline.is_empty() {
            format!("[{}]", p.name)
        } else {
            p.cmdline.join(" ")
        };
        push_distinct(&mut commands, sanitize(&command).into_owned());
    }
    OwnerCells {
        pids: s
            .processes
            .iter()
            .map(|p| p.pid.to_string())
            .collect::<Vec<_>>()
            .join(","),
        process: names.join(","),
        attributed: attributed.join(","),
        user: users.join(","),
        command: commands.join("; "),
    }
}

/// A container as people name it: `docker web`, or by its short id
/// (12 digits, as `docker ps` shows it) when its name is unknown.
fn container_label(c: &Container) -> String {
    match &c.name {
        Some(name) => format!("{} {name}", c.runtime),
        None => format!("{} {}", c.runtime, c.id.get(..12).unwrap_or(&c.id)),
    }
}

/// A process name with what it belongs to, unsanitized: the container a
/// proxy forwards to, else its own container, else its systemd unit.
pub fn attributed_name(p: &Process) -> String {
    if let Some(t) = &p.proxy_for {
        let target = SocketAddr::new(t.container_ip, t.container_port);
        return match t.container.as_ref() {
            Some(Container {
                name: Some(name), ..
            }) => format!("{} → {name} ({target})", p.name),
            Some(c) => format!("{} → {} ({target})", p.name, container_label(c)),
            None => format!("{} → {target}", p.name),
        };
    }
    match (&p.container, &p.unit) {
        (Some(c), _) => format!("{} ({})", p.name, container_label(c)),
        (None, Some(unit)) => format!("{} ({unit})", p.name),
        (None, None) => p.name.clone(),
    }
}

/// Comma-separated finding names, or `-`.
pub fn findings_cell(l: &Listener) -> String {
    if l.findings.is_empty() {
        "-".to_string()
    } else {
        l.findings
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Fixed model data for the renderers' unit tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use crate::classify::classify_socket;
    use crate::model::{PortStatus, Process, Proto, RegistryInfo, Report, Socket};

    fn process(pid: u32, name: &str, user: &str, cmdline: &[&str]) -> Process {
        Process {
            pid,
            name: name.to_string(),
            user: Some(user.to_string()),
            uid: Some(if user == "root" { 0 } else { 1000 }),
            exe: Some(format!("/usr/sbin/{name}")),
            cmdline: cmdline.iter().map(|s| s.to_string()).collect(),
            unit: None,
            container: None,
            proxy_for: None,
        }
    }

    fn socket(proto: Proto, address: &str, port: u16, processes: Vec<Process>) -> Socket {
        let owner = processes.first();
        Socket {
            proto,
            address: address.parse().unwrap(),
            port,
            dual_stack: false,
            uid: Some(owner.and_then(|p| p.uid).unwrap_or(0)),
            user: Some(owner.and_then(|p| p.user.clone()).unwrap_or("root".into())),
            inode: Some(u64::from(port)),
            processes,
            netns: None,
        }
    }

    fn info(status: PortStatus, services: &[&str], description: &str) -> RegistryInfo {
        RegistryInfo {
            status,
            services: services.iter().map(|s| s.to_string()).collect(),
            description: Some(description.to_string()),
        }
    }

    /// Four listeners: an assigned one with two workers, a reserved one
    /// whose process name carries an escape sequence, a dual-stack UDP one
    /// on a dynamic port, and one whose owner is not visible.
    pub fn report() -> Report {
        let ssh = socket(
            Proto::Tcp,
            "0.0.0.0",
            22,
            vec![
                process(100, "sshd", "root", &["/usr/sbin/sshd", "-D"]),
                process(101, "sshd", "root", &["sshd: worker"]),
            ],
        );
        let evil = socket(
            Proto::Tcp,
            "127.0.0.1",
            1276,
            vec![process(
                200,
                "evil\u{1b}[31m",
                "alice",
                &["./evil", "--x=\u{202e}y"],
            )],
        );
        let mut dns = socket(
            Proto::Udp,
            "::",
            50000,
            vec![process(300, "resolver", "alice", &["resolver"])],
        );
        dns.dual_stack = true;
        let hidden = socket(Proto::Tcp, "10.0.0.5", 2024, Vec::new());
        Report {
            listeners: vec![
                classify_socket(
                    ssh,
                    info(
                        PortStatus::Assigned,
                        &["ssh"],
                        "The Secure Shell (SSH) Protocol",
                    ),
                ),
                classify_socket(evil, info(PortStatus::Reserved, &[], "Reserved")),
                classify_socket(hidden, info(PortStatus::Unassigned, &[], "Unassigned")),
                classify_socket(
                    dns,
                    info(PortStatus::Dynamic, &[], "Dynamic and/or Private Ports"),
                ),
            ],
            privileged: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render_to_string(f: impl Fn(&mut Vec<u8>) -> std::io::Result<()>) -> String {
        let mut buf = Vec::new();
        f(&mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn table_plain_style() {
        let report = fixtures::report();
        let style = Style::default();
        let text = render_to_string(|b| table::render(&report, &style, b));
        let expected = [
            "  PROTO ADDRESS    PORT SERVICE      PID     PROCESS             USER  FINDINGS",
            "  tcp   0.0.0.0      22 ssh          100,101 sshd                root  -",
            "! tcp   127.0.0.1  1276 (reserved)   200     evil\\e[31m          alice reserved-port",
            "! tcp   10.0.0.5   2024 (unassigned) -       (owner not visible) root  unassigned-port",
            "! udp   *         50000 (dynamic)    300     resolver            alice dynamic-port",
            "",
            "4 listeners, 3 flagged: 1 unassigned-port, 1 reserved-port, 1 dynamic-port",
            "1 owner not visible even to root: another pid namespace or a hidden /proc",
            "",
        ]
        .join("\n");
        assert_eq!(text, expected);
        assert!(!text.contains('\u{1b}'));
    }

    #[test]
    fn table_fits_80_columns_and_wide_does_not_trim() {
        let report = fixtures::report();
        let narrow = Style {
            width: Some(80),
            ..Style::default()
        };
        let text = render_to_string(|b| table::render(&report, &narrow, b));
        for line in text.lines() {
            assert!(
                unicode_width::UnicodeWidthStr::width(line) <= 80,
                "{line:?}"
            );
        }
        assert!(
            !text.contains("COMMAND"),
            "no room for commands at 80 columns"
        );
        assert!(text.contains("(owner not v…"), "process column trimmed");
        let roomy = Style {
            width: Some(120),
            ..Style::default()
        };
        let text = render_to_string(|b| table::render(&report, &roomy, b));
        assert!(text.contains("COMMAND"));
        assert!(text.contains("/usr/sbin/sshd -D; sshd: worker"));
        for line in text.lines() {
            assert!(
                unicode_width::UnicodeWidthStr::width(line) <= 120,
                "{line:?}"
            );
        }
        let wide = Style {
            wide: true,
            ..Style::default()
        };
        let text = render_to_string(|b| table::render(&report, &wide, b));
        assert!(text.contains("/usr/sbin/sshd -D; sshd: worker"));
        assert!(text.contains("./evil --x=\\u{202e}y"));
    }

    #[test]
    fn table_colour_only_when_asked() {
        let report = fixtures::report();
        let style = Style {
            color: true,
            ..Style::default()
        };
        let text = render_to_string(|b| table::render(&report, &style, b));
        assert!(text.contains("\u{1b}[33m"), "flagged rows are yellow");
        // The process's own escape sequence is still escaped.
        assert!(text.contains("evil\\e[31m"));
    }

    #[test]
    fn table_escapes_registry_service_names() {
        let mut report = fixtures::report();
        report.listeners[0].registry.services = vec!["ev\u{1b}[31mil\u{202e}svc".into()];
        let text = render_to_string(|b| table::render(&report, &Style::default(), b));
        assert!(text.contains("ev\\e[31mil\\u{202e}svc"), "{text}");
        assert!(!text.contains('\u{1b}') && !text.contains('\u{202e}'));
    }

    #[test]
    fn plain_lines() {
        let report = fixtures::report();
        let text = render_to_string(|b| plain::render(&report, b));
        let expected = "\
tcp 0.0.0.0 22 assigned ssh 100,101 sshd root -
tcp 127.0.0.1 1276 reserved - 200 evil\\e[31m alice reserved-port
tcp 10.0.0.5 2024 unassigned - - ? root unassigned-port
udp * 50000 dynamic - 300 resolver alice dynamic-port
";
        assert_eq!(text, expected);
        for line in text.lines() {
            assert_eq!(line.split(' ').count(), 9, "{line}");
        }
    }

    #[test]
    fn csv_records() {
        let report = fixtures::report();
        let text = render_to_string(|b| csv::render(&report, b));
        let mut rd = ::csv::Reader::from_reader(text.as_bytes());
        let headers = rd.headers().unwrap().clone();
        let rows: Vec<::csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 4);
        let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
        assert_eq!(&rows[0][col("pids")], "100;101");
        assert_eq!(&rows[0][col("cmdlines")], "/usr/sbin/sshd -D;sshd: worker");
        assert_eq!(&rows[1][col("processes")], "evil\u{1b}[31m");
        assert_eq!(&rows[2][col("owner_visible")], "false");
        assert_eq!(&rows[3][col("address")], "::");
        assert_eq!(&rows[3][col("dual_stack")], "true");
        assert_eq!(&rows[3][col("findings")], "dynamic-port");
    }

    #[test]
    fn json_document() {
        let report = fixtures::report();
        let text = render_to_string(|b| json::render(&report, &[], &[], b));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["schema_version"], 1);
        let l = &v["listeners"];
        assert_eq!(l[0]["protocol"], "tcp");
        assert_eq!(l[0]["address"], "0.0.0.0");
        assert_eq!(l[0]["port"], 22);
        assert_eq!(l[0]["exposure"], "wildcard");
        assert_eq!(l[0]["owner_visible"], true);
        assert_eq!(l[0]["processes"][1]["pid"], 101);
        assert_eq!(l[0]["processes"][0]["cmdline"][1], "-D");
        assert_eq!(l[0]["registry"]["status"], "assigned");
        assert_eq!(l[0]["registry"]["services"][0], "ssh");
        assert_eq!(l[0]["registry"]["range"], "system");
        assert_eq!(l[0]["findings"].as_array().unwrap().len(), 0);
        assert_eq!(l[1]["processes"][0]["name"], "evil\u{1b}[31m");
        assert_eq!(l[1]["exposure"], "loopback");
        assert_eq!(l[2]["owner_visible"], false);
        assert_eq!(l[2]["socket_uid"], 0);
        assert_eq!(l[2]["exposure"], "specific");
        assert_eq!(l[3]["address"], "::");
        assert_eq!(l[3]["dual_stack"], true);
        assert_eq!(l[3]["findings"][0], "dynamic-port");
        assert_eq!(v["summary"]["listeners"], 4);
        assert_eq!(v["summary"]["flagged"], 3);
        assert_eq!(v["summary"]["findings"]["reserved-port"], 1);
        assert_eq!(v["summary"]["owners_not_visible"], 1);
    }

    /// The fixture report with owners attributed: sshd to its unit, the
    /// evil process to a container whose name carries escapes, the
    /// resolver as a proxy for a named container.
    fn attributed_report() -> crate::model::Report {
        use crate::model::ProxyTarget;
        let mut report = fixtures::report();
        for p in &mut report.listeners[0].socket.processes {
            p.unit = Some("ssh.service".into());
        }
        report.listeners[1].socket.processes[0].container = Some(Container {
            runtime: "docker".into(),
            id: "ab".repeat(32),
            name: Some("w\u{1b}]0;eb".into()),
        });
        report.listeners[3].socket.processes[0].proxy_for = Some(ProxyTarget {
            container_ip: "172.17.0.2".parse().unwrap(),
            container_port: 80,
            container: Some(Container {
                runtime: "docker".into(),
                id: "cd".repeat(32),
                name: Some("web".into()),
            }),
        });
        report
    }

    #[test]
    fn table_shows_units_containers_and_proxied_containers() {
        let report = attributed_report();
        let text = render_to_string(|b| table::render(&report, &Style::default(), b));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].contains(" sshd (ssh.service) "), "{text}");
        assert!(
            lines[2].contains(" evil\\e[31m (docker w\\e]0;eb) "),
            "{text}"
        );
        assert!(
            lines[4].contains(" resolver → web (172.17.0.2:80) "),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'));
        // Plain keeps bare names, so its fields stay the same.
        let plain = render_to_string(|b| plain::render(&report, b));
        assert_eq!(
            plain,
            render_to_string(|b| plain::render(&fixtures::report(), b))
        );
    }

    #[test]
    fn attributed_names_without_container_names() {
        use crate::model::ProxyTarget;
        let mut p = fixtures::report().listeners[0].socket.processes[0].clone();
        assert_eq!(attributed_name(&p), "sshd");
        p.unit = Some("ssh.service".into());
        assert_eq!(attributed_name(&p), "sshd (ssh.service)");
        // A container says more than its scope unit.
        p.container = Some(Container {
            runtime: "podman".into(),
            id: "0123456789ab".repeat(5) + "cdef",
            name: None,
        });
        assert_eq!(attributed_name(&p), "sshd (podman 0123456789ab)");
        p.proxy_for = Some(ProxyTarget {
            container_ip: "fd00::2".parse().unwrap(),
            container_port: 53,
            container: None,
        });
        assert_eq!(attributed_name(&p), "sshd → [fd00::2]:53");
        if let Some(t) = p.proxy_for.as_mut() {
            t.container = p.container.clone();
        }
        assert_eq!(
            attributed_name(&p),
            "sshd → podman 0123456789ab ([fd00::2]:53)"
        );
    }

    #[test]
    fn json_carries_unit_container_and_proxy_target() {
        let text = render_to_string(|b| json::render(&attributed_report(), &[], &[], b));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let l = &v["listeners"];
        assert_eq!(l[0]["processes"][0]["unit"], "ssh.service");
        assert_eq!(l[0]["processes"][0]["container"], serde_json::Value::Null);
        assert_eq!(l[0]["processes"][0]["proxy_for"], serde_json::Value::Null);
        let c = &l[1]["processes"][0]["container"];
        assert_eq!(c["runtime"], "docker");
        assert_eq!(c["id"], "ab".repeat(32));
        assert_eq!(c["name"], "w\u{1b}]0;eb");
        assert_eq!(l[1]["processes"][0]["unit"], serde_json::Value::Null);
        let t = &l[3]["processes"][0]["proxy_for"];
        assert_eq!(t["container_ip"], "172.17.0.2");
        assert_eq!(t["container_port"], 80);
        assert_eq!(t["container"]["name"], "web");
        assert_eq!(t["container"]["id"], "cd".repeat(32));
    }
}
