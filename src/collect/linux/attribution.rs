//! Who really owns a listener, beyond its pid: the systemd unit and the
//! container a process runs in (both from `/proc/PID/cgroup`), and, for
//! Docker's userland proxy, the container a published port forwards to.
//!
//! The parsers are pure. The one piece of I/O besides `/proc` is
//! [`docker_containers`], which asks the Docker Engine API for container
//! names over its unix socket, at most once per scan.

use crate::model::{Container, Process, ProxyTarget};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// The Docker Engine API socket (dockerd's default `-H unix:///var/run/docker.sock`).
pub(crate) const DOCKER_SOCKET: &str = "/var/run/docker.sock";
/// How long the Docker API may take, in all, before names are given up.
pub(crate) const DOCKER_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest `/containers/json` answer read (about 2 KiB per container).
const DOCKER_MAX_RESPONSE: usize = 16 << 20;

/// Unit types that can hold processes (systemd.unit(5)); slices, targets,
/// timers and the like never do.
const PROCESS_UNIT_SUFFIXES: [&str; 5] = [".service", ".scope", ".socket", ".mount", ".swap"];
/// systemd's longest unit name (UNIT_NAME_MAX - 1).
const UNIT_NAME_MAX: usize = 255;

/// Which hierarchy a `/proc/PID/cgroup` line is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Hierarchy {
    /// The unified (v2) hierarchy, `0::PATH`.
    Unified,
    /// systemd's v1 hierarchy, `N:name=systemd:PATH`.
    Systemd,
    /// Any other v1 hierarchy (a controller's).
    Controller,
}

/// The cgroup paths of `/proc/PID/cgroup` (cgroups(7): `ID:CONTROLLERS:PATH`
/// per hierarchy), in the order they are worth looking at: unified, then
/// `name=systemd`, then the controllers'. A cgroup removed under a process
/// is marked ` (deleted)` by the kernel; the marker is dropped.
fn cgroup_paths(cgroup: &str) -> Vec<(Hierarchy, &str)> {
    let mut paths: Vec<(Hierarchy, &str)> = cgroup
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let path = path.strip_suffix(" (deleted)").unwrap_or(path);
            let hierarchy = if id == "0" && controllers.is_empty() {
                Hierarchy::Unified
            } else if controllers.split(',').any(|c| c == "name=systemd") {
                Hierarchy::Systemd
            } else {
                Hierarchy::Controller
            };
            Some((hierarchy, path))
        })
        .collect();
    // Stable: lines of one kind keep their order.
    paths.sort_by_key(|&(h, _)| h);
    paths
}

/// Whether a cgroup path component is the name of a unit that can hold
/// processes: `NAME.service`, `getty@tty1.service`, `session-2.scope`, with
/// only the characters systemd allows in unit names (escapes such as `\x2d`
/// stay as they are, as `systemctl` shows them).
fn is_process_unit(component: &str) -> bool {
    if component.len() > UNIT_NAME_MAX {
        return false;
    }
    PROCESS_UNIT_SUFFIXES.iter().any(|suffix| {
        component.strip_suffix(suffix).is_some_and(|stem| {
            !stem.is_empty()
                && stem
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
        })
    })
}

/// The systemd unit a process runs in, from the text of its
/// `/proc/PID/cgroup`: the last unit component of the unified path, or of
/// the `name=systemd` path. The last, because a unit nests below
/// `user@UID.service` (`.../user@1000.service/app.slice/foo.service`), and
/// a service that manages its own sub-cgroups (systemd's `Delegate=`) keeps
/// its processes below its unit (`.../nginx.service/worker`).
pub(crate) fn unit_from_cgroup(cgroup: &str) -> Option<String> {
    cgroup_paths(cgroup)
        .into_iter()
        // Controller hierarchies mirror systemd's only if it set them up.
        .filter(|&(h, _)| h != Hierarchy::Controller)
        .find_map(|(_, path)| path.rsplit('/').find(|c| is_process_unit(c)))
        .map(str::to_string)
}

/// A full container id: 64 lower-case hex digits.
fn is_container_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Cgroup name prefixes of container runtimes (`PREFIX<id>.scope` under
/// systemd, `PREFIX<id>` under cgroupfs), with the runtime they name.
/// Podman's and CRI-O's `-conmon-` monitors run outside the container and
/// do not match, since `conmon-<id>` is not an id.
const RUNTIME_PREFIXES: [(&str, &str); 4] = [
    ("docker-", "docker"),
    ("libpod-", "podman"),
    ("cri-containerd-", "containerd"),
    ("crio-", "cri-o"),
];

/// The container a cgroup path names, the outermost one if nested (the one
/// this host's runtime knows): `docker-<id>.scope` (Docker, systemd cgroup
/// driver), `/docker/<id>` (Docker, cgroupfs driver), `libpod-<id>.scope`
/// (Podman), `cri-containerd-<id>.scope`, `crio-<id>.scope`, and a bare id
/// below a `kubepods` cgroup (Kubernetes, cgroupfs driver).
fn container_in_path(path: &str) -> Option<Container> {
    let container = |runtime: &str, id: &str| Container {
        runtime: runtime.to_string(),
        id: id.to_string(),
        name: None,
    };
    let mut previous = "";
    let mut in_kubepods = false;
    for component in path.split('/') {
        let stem = component.strip_suffix(".scope").unwrap_or(component);
        for (prefix, runtime) in RUNTIME_PREFIXES {
            if let Some(id) = stem.strip_prefix(prefix).filter(|id| is_container_id(id)) {
                return Some(container(runtime, id));
            }
        }
        if is_container_id(component) {
            if previous == "docker" {
                return Some(container("docker", component));
            }
            if in_kubepods {
                return Some(container("kubernetes", component));
            }
        }
        in_kubepods |= component.starts_with("kubepods");
        previous = component;
    }
    None
}

/// The container a process runs in, from the text of its `/proc/PID/cgroup`.
pub(crate) fn container_from_cgroup(cgroup: &str) -> Option<Container> {
    cgroup_paths(cgroup)
        .into_iter()
        .find_map(|(_, path)| container_in_path(path))
}

/// Flags of `docker-proxy` that take a value (the others are booleans,
/// such as `-use-listen-fd`).
const PROXY_VALUE_FLAGS: [&str; 5] = [
    "proto",
    "host-ip",
    "host-port",
    "container-ip",
    "container-port",
];

/// Where Docker's userland proxy forwards to, from its command line
/// (`docker-proxy -proto tcp -host-ip 0.0.0.0 -host-port 8080
/// -container-ip 172.17.0.2 -container-port 80`; Go's flag syntax, so
/// `--flag`, `-flag=value` and `--flag=value` too). `None` for any other
/// process, or when either container flag is missing or malformed.
pub(crate) fn proxy_target(name: &str, cmdline: &[String]) -> Option<ProxyTarget> {
    let program = cmdline.first().map(|a| a.rsplit('/').next().unwrap_or(a));
    if name != "docker-proxy" && program != Some("docker-proxy") {
        return None;
    }
    let mut values: HashMap<&str, &str> = HashMap::new();
    let mut args = cmdline.iter().skip(1);
    while let Some(arg) = args.next() {
        // Go's flag package stops at the first argument that is not a flag.
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            break;
        };
        match flag.split_once('=') {
            Some((key, value)) => {
                values.insert(key, value);
            }
            None if PROXY_VALUE_FLAGS.contains(&flag) => {
                if let Some(value) = args.next() {
                    values.insert(flag, value);
                }
            }
            None => {}
        }
    }
    Some(ProxyTarget {
        container_ip: values.get("container-ip")?.parse().ok()?,
        container_port: values.get("container-port")?.parse().ok()?,
        container: None,
    })
}

/// A running container as the Docker Engine API lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DockerContainer {
    /// Full id.
    pub id: String,
    /// Its name, without the API's leading `/`.
    pub name: Option<String>,
    /// Its addresses on every network it is attached to.
    pub addresses: Vec<IpAddr>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ApiContainer {
    id: String,
    #[serde(default)]
    names: Option<Vec<String>>,
    #[serde(default)]
    network_settings: Option<ApiNetworkSettings>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ApiNetworkSettings {
    #[serde(default)]
    networks: Option<HashMap<String, ApiNetwork>>,
}

#[derive(Deserialize)]
struct ApiNetwork {
    #[serde(rename = "IPAddress", default)]
    ip_address: Option<String>,
    #[serde(rename = "GlobalIPv6Address", default)]
    global_ipv6_address: Option<String>,
}

/// Parses the body of `GET /containers/json`. A container's own name is
/// the one entry of `Names` without a second `/` (the others are legacy
/// link aliases, `/other/alias`).
pub(crate) fn parse_containers(body: &[u8]) -> serde_json::Result<Vec<DockerContainer>> {
    let list: Vec<ApiContainer> = serde_json::from_slice(body)?;
    Ok(list
        .into_iter()
        .map(|c| {
            let names = c.names.unwrap_or_default();
            let name = names
                .iter()
                .map(|n| n.strip_prefix('/').unwrap_or(n))
                .find(|n| !n.contains('/'))
                .map(str::to_string);
            let addresses = c
                .network_settings
                .and_then(|s| s.networks)
                .into_iter()
                .flat_map(HashMap::into_values)
                .flat_map(|n| [n.ip_address, n.global_ipv6_address])
                .flatten()
                .filter_map(|a| a.parse().ok())
                .collect();
            DockerContainer {
                id: c.id,
                name,
                addresses,
            }
        })
        .collect())
}

/// The body of an HTTP/1.x response with status 200, de-chunked if the
/// server chose chunked transfer coding.
pub(crate) fn http_body(raw: &[u8]) -> Result<Vec<u8>, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of the HTTP header")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let code = status.split(' ').nth(1).unwrap_or_default();
    if !status.starts_with("HTTP/1.") || code != "200" {
        return Err(format!("unexpected HTTP status {status:?}"));
    }
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    if chunked {
        dechunk(body)
    } else {
        Ok(body.to_vec())
    }
}

/// Decodes HTTP/1.1 chunked transfer coding (RFC 9112 section 7.1).
fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_line = String::from_utf8_lossy(&body[..eol]);
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("bad chunk size {size_hex:?}"))?;
        body = &body[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = body.get(..size).ok_or("truncated chunk")?;
        out.extend_from_slice(chunk);
        body = body
            .get(size..)
            .and_then(|rest| rest.strip_prefix(b"\r\n"))
            .ok_or("chunk without its CRLF")?;
    }
}

/// Connects to the unix socket at `path`, waiting at most `timeout`.
fn connect_unix(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.connect_timeout(&SockAddr::unix(path)?, timeout)?;
    Ok(UnixStream::from(std::os::fd::OwnedFd::from(socket)))
}

/// Lists running containers through the Docker Engine API on `socket`
/// (`GET /containers/json`, HTTP/1.0 so the server closes when done),
/// giving up after `timeout` in all. `Ok(None)` when there is no socket:
/// Docker is not installed or not running.
pub(crate) fn docker_containers(
    socket: &Path,
    timeout: Duration,
) -> io::Result<Option<Vec<DockerContainer>>> {
    let deadline = Instant::now() + timeout;
    // A blocking connect to a unix socket whose accept queue is full waits
    // for a slot forever (a frozen dockerd): connect with a bounded wait.
    let mut stream = match connect_unix(socket, timeout) {
        Ok(s) => s,
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "Docker API timed out"))
    };
    stream.set_write_timeout(Some(left()?))?;
    stream.write_all(b"GET /containers/json HTTP/1.0\r\nHost: docker\r\n\r\n")?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        stream.set_read_timeout(Some(left()?))?;
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if raw.len() > DOCKER_MAX_RESPONSE {
            return Err(io::Error::other("Docker API answer too large"));
        }
    }
    let body = http_body(&raw).map_err(io::Error::other)?;
    parse_containers(&body)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Whether naming `p`'s containers needs the Docker API.
fn needs_docker(p: &Process) -> bool {
    p.proxy_for.is_some() || p.container.as_ref().is_some_and(|c| c.runtime == "docker")
}

/// Fills in container names (and the proxied container of each
/// `docker-proxy`) from `containers`.
pub(crate) fn name_containers<'p>(
    processes: impl IntoIterator<Item = &'p mut Process>,
    containers: &[DockerContainer],
) {
    let as_model = |c: &DockerContainer| Container {
        runtime: "docker".to_string(),
        id: c.id.clone(),
        name: c.name.clone(),
    };
    for p in processes {
        if let Some(own) = p.container.as_mut().filter(|c| c.runtime == "docker") {
            if let Some(found) = containers.iter().find(|c| c.id == own.id) {
                own.name.clone_from(&found.name);
            }
        }
        if let Some(target) = p.proxy_for.as_mut() {
            // An address belongs to one container; if several claim it
            // (a stale list), naming one would be a guess.
            let mut holders = containers
                .iter()
                .filter(|c| c.addresses.contains(&target.container_ip));
            if let (Some(only), None) = (holders.next(), holders.next()) {
                target.container = Some(as_model(only));
            }
        }
    }
}

/// Asks the Docker API at `socket` once, only if some process needs it,
/// and names containers. Names are a nicety: when Docker is absent, not
/// running, slow, or refuses us (not root nor in group `docker`), they
/// stay `None` and the scan goes on. Returns a scan warning naming the
/// cause when the socket is there but the API could not be used (no
/// socket at all means no Docker: nothing to warn about).
pub(crate) fn name_docker_containers(
    processes: &mut [&mut Process],
    socket: &Path,
) -> Option<String> {
    if !processes.iter().any(|p| needs_docker(p)) {
        return None;
    }
    match docker_containers(socket, DOCKER_TIMEOUT) {
        Ok(Some(containers)) => {
            name_containers(processes.iter_mut().map(|p| &mut **p), &containers);
            None
        }
        Ok(None) => None,
        Err(e) => Some(docker_warning(socket, &e)),
    }
}

/// The scan warning for a Docker API at `socket` that failed with `e`.
pub(crate) fn docker_warning(socket: &Path, e: &io::Error) -> String {
    format!(
        "container names unknown: Docker API at {} failed ({e})",
        socket.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3aecbb235ab30218a95072e0fa1e7955ece6bc76d2cccf89f4e08bbe0311a547";

    fn v2(path: &str) -> String {
        format!("0::{path}\n")
    }

    #[test]
    fn units_from_unified_cgroups() {
        let unit = |path: &str| unit_from_cgroup(&v2(path));
        assert_eq!(
            unit("/system.slice/nginx.service").as_deref(),
            Some("nginx.service")
        );
        assert_eq!(
            unit("/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service").as_deref(),
            Some("foo.service")
        );
        assert_eq!(
            unit("/user.slice/user-1000.slice/user@1000.service/init.scope").as_deref(),
            Some("init.scope")
        );
        assert_eq!(
            unit("/system.slice/system-getty.slice/getty@tty1.service").as_deref(),
            Some("getty@tty1.service")
        );
        assert_eq!(unit("/init.scope").as_deref(), Some("init.scope"));
        assert_eq!(
            unit(&format!("/system.slice/docker-{ID}.scope")),
            Some(format!("docker-{ID}.scope"))
        );
        // Escapes stay as systemd writes them in unit names.
        assert_eq!(
            unit(r"/system.slice/dev-disk-by\x2duuid-1234.swap").as_deref(),
            Some(r"dev-disk-by\x2duuid-1234.swap")
        );
        // A delegated sub-cgroup of a service belongs to the service.
        assert_eq!(
            unit("/system.slice/nginx.service/worker").as_deref(),
            Some("nginx.service")
        );
        assert_eq!(
            unit("/user.slice/user-0.slice/session-3.scope").as_deref(),
            Some("session-3.scope")
        );
        // A cgroup removed under the process.
        assert_eq!(
            unit_from_cgroup("0::/system.slice/old.service (deleted)\n").as_deref(),
            Some("old.service")
        );
        // Slices and the root hold no process of their own: no unit.
        assert_eq!(unit("/"), None);
        assert_eq!(unit("/system.slice"), None);
        assert_eq!(unit("/user.slice/user-1000.slice"), None);
        // Not systemd's: names systemd would never give.
        assert_eq!(unit("/my group.service"), None);
        assert_eq!(unit("/.service"), None);
        assert_eq!(unit("/process_api/f3412806"), None);
        assert_eq!(unit_from_cgroup(""), None);
        assert_eq!(unit_from_cgroup("garbage without colons\n"), None);
    }

    #[test]
    fn units_from_v1_and_hybrid_cgroups() {
        let v1 = "12:pids:/system.slice/sshd.service\n\
                  4:memory:/system.slice/sshd.service\n\
                  1:name=systemd:/system.slice/sshd.service\n";
        assert_eq!(unit_from_cgroup(v1).as_deref(), Some("sshd.service"));
        // A controller hierarchy alone is not systemd's naming.
        assert_eq!(
            unit_from_cgroup("4:memory:/system.slice/sshd.service\n"),
            None
        );
        // Hybrid: the unified line wins; an empty one defers to name=systemd.
        let hybrid = "1:name=systemd:/system.slice/a.service\n0::/system.slice/b.service\n";
        assert_eq!(unit_from_cgroup(hybrid).as_deref(), Some("b.service"));
        let hybrid = "9:name=systemd:/system.slice/cron.service\n1:cpu:/\n0::/\n";
        assert_eq!(unit_from_cgroup(hybrid).as_deref(), Some("cron.service"));
    }

    #[test]
    fn containers_from_cgroups() {
        let of = |cgroup: &str| container_from_cgroup(cgroup).map(|c| (c.runtime, c.id));
        let want = |runtime: &str| Some((runtime.to_string(), ID.to_string()));
        assert_eq!(
            of(&v2(&format!("/system.slice/docker-{ID}.scope"))),
            want("docker")
        );
        assert_eq!(of(&v2(&format!("/docker/{ID}"))), want("docker"));
        assert_eq!(
            of(&format!(
                "9:name=systemd:/docker/{ID}\n4:memory:/docker/{ID}\n0::/docker/{ID}\n"
            )),
            want("docker")
        );
        // Only a v1 controller line: cgroupfs without name=systemd.
        assert_eq!(of(&format!("4:memory:/docker/{ID}\n")), want("docker"));
        assert_eq!(
            of(&v2(&format!(
                "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container"
            ))),
            want("podman")
        );
        assert_eq!(
            of(&v2(&format!("/machine.slice/libpod-conmon-{ID}.scope"))),
            None
        );
        assert_eq!(
            of(&v2(&format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b.slice/cri-containerd-{ID}.scope"
            ))),
            want("containerd")
        );
        assert_eq!(
            of(&v2(&format!(
                "/kubepods.slice/kubepods-pod1a2b.slice/crio-{ID}.scope"
            ))),
            want("cri-o")
        );
        assert_eq!(
            of(&v2(&format!("/kubepods/burstable/pod1a2b-3c4d/{ID}"))),
            want("kubernetes")
        );
        // Nested: the outer container is the one this host's runtime knows.
        let inner = ID.replace('3', "4");
        assert_eq!(
            of(&v2(&format!("/docker/{ID}/docker/{inner}"))),
            want("docker")
        );
        // Not containers.
        assert_eq!(of(&v2("/system.slice/docker.service")), None);
        assert_eq!(of(&v2("/docker/not-an-id")), None);
        assert_eq!(of(&v2(&format!("/other/{ID}"))), None);
        assert_eq!(of(&v2(&format!("/docker/{}", ID.to_uppercase()))), None);
        assert_eq!(of("0::/\n"), None);
    }

    fn args(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn docker_proxy_command_lines() {
        let target = |name: &str, cmdline: &str| {
            proxy_target(name, &args(cmdline))
                .map(|t| (t.container_ip.to_string(), t.container_port))
        };
        let want = Some(("172.17.0.2".to_string(), 80));
        assert_eq!(
            target("docker-proxy", "/usr/sbin/docker-proxy -proto tcp -host-ip 0.0.0.0 -host-port 8080 -container-ip 172.17.0.2 -container-port 80"),
            want
        );
        // Go flag syntax variants, and a boolean flag before the values.
        assert_eq!(
            target("docker-proxy", "docker-proxy --proto=tcp -use-listen-fd --container-ip=172.17.0.2 -container-port=80"),
            want
        );
        assert_eq!(
            target("docker-proxy", "/usr/bin/docker-proxy -proto udp -host-ip :: -host-port 53 -container-ip fd00::2 -container-port 5353"),
            Some(("fd00::2".to_string(), 5353))
        );
        // Recognised by its program even if comm were changed.
        assert_eq!(
            target(
                "proxy",
                "/usr/libexec/docker/docker-proxy -container-ip 172.17.0.2 -container-port 80"
            ),
            want
        );
        // Missing or malformed values, or another program: nothing.
        assert_eq!(
            target("docker-proxy", "docker-proxy -container-ip 172.17.0.2"),
            None
        );
        assert_eq!(
            target(
                "docker-proxy",
                "docker-proxy -container-ip nope -container-port 80"
            ),
            None
        );
        assert_eq!(
            target(
                "docker-proxy",
                "docker-proxy -container-ip 172.17.0.2 -container-port 70000"
            ),
            None
        );
        assert_eq!(
            target(
                "docker-proxy",
                "docker-proxy stop -container-ip 172.17.0.2 -container-port 80"
            ),
            None
        );
        assert_eq!(
            target("nginx", "nginx -container-ip 172.17.0.2 -container-port 80"),
            None
        );
        assert_eq!(proxy_target("docker-proxy", &[]), None);
    }

    /// A `/containers/json` answer as Docker 20.10 gives it (trimmed), plus
    /// a container on two networks with a link alias and one with nulls.
    const CONTAINERS_JSON: &str = r#"[
      {"Id":"3aecbb235ab30218a95072e0fa1e7955ece6bc76d2cccf89f4e08bbe0311a547",
       "Names":["/pw-owners-try"],"Image":"pw-owners-bb:test",
       "Ports":[{"IP":"127.0.0.1","PrivatePort":8080,"PublicPort":32769,"Type":"tcp"}],
       "State":"running","HostConfig":{"NetworkMode":"default"},
       "NetworkSettings":{"Networks":{"bridge":{"IPAMConfig":null,"Gateway":"172.17.0.1",
         "IPAddress":"172.17.0.2","IPPrefixLen":16,"GlobalIPv6Address":""}}},"Mounts":[]},
      {"Id":"b1","Names":["/web/db","/db"],
       "NetworkSettings":{"Networks":{
         "front":{"IPAddress":"172.18.0.5","GlobalIPv6Address":"fd00::5"},
         "back":{"IPAddress":"172.19.0.5"}}}},
      {"Id":"c1","Names":null,"NetworkSettings":{"Networks":null}}
    ]"#;

    #[test]
    fn containers_json() {
        let list = parse_containers(CONTAINERS_JSON.as_bytes()).unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].id, ID);
        assert_eq!(list[0].name.as_deref(), Some("pw-owners-try"));
        assert_eq!(list[0].addresses, ["172.17.0.2".parse::<IpAddr>().unwrap()]);
        assert_eq!(list[1].name.as_deref(), Some("db"));
        let mut addrs: Vec<String> = list[1].addresses.iter().map(|a| a.to_string()).collect();
        addrs.sort();
        assert_eq!(addrs, ["172.18.0.5", "172.19.0.5", "fd00::5"]);
        assert_eq!(list[2].name, None);
        assert!(list[2].addresses.is_empty());
        assert!(parse_containers(b"{\"message\":\"denied\"}").is_err());
    }

    #[test]
    fn http_responses() {
        let ok = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n[]";
        assert_eq!(http_body(ok).unwrap(), b"[]");
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n[{\"a\r\n3;x=y\r\n\":1\r\n1\r\n}\r\n1\r\n]\r\n0\r\n\r\n";
        assert_eq!(http_body(chunked).unwrap(), b"[{\"a\":1}]");
        assert!(http_body(b"HTTP/1.0 403 Forbidden\r\n\r\ndenied").is_err());
        assert!(http_body(b"HTTP/1.0 200 OK\r\nno end").is_err());
        assert!(http_body(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        let bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(http_body(bad).is_err());
        let short = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc";
        assert!(http_body(short).is_err());
    }

    fn process(name: &str, container: Option<Container>, proxy: Option<&str>) -> Process {
        Process {
            pid: 1,
            name: name.to_string(),
            user: None,
            uid: None,
            exe: None,
            cmdline: Vec::new(),
            unit: None,
            container,
            proxy_for: proxy.map(|ip| ProxyTarget {
                container_ip: ip.parse().unwrap(),
                container_port: 80,
                container: None,
            }),
        }
    }

    #[test]
    fn naming_from_the_container_list() {
        let list = parse_containers(CONTAINERS_JSON.as_bytes()).unwrap();
        let docker = |id: &str| {
            Some(Container {
                runtime: "docker".into(),
                id: id.into(),
                name: None,
            })
        };
        let mut ps = [
            process("httpd", docker(ID), None),
            process("docker-proxy", None, Some("172.17.0.2")),
            process("docker-proxy", None, Some("fd00::5")),
            process("docker-proxy", None, Some("10.0.0.9")),
            process("conmon", docker("unknown"), None),
        ];
        name_containers(ps.iter_mut(), &list);
        let name = |c: &Option<Container>| c.as_ref().and_then(|c| c.name.clone());
        assert_eq!(name(&ps[0].container).as_deref(), Some("pw-owners-try"));
        let proxied = |p: &Process| p.proxy_for.as_ref().and_then(|t| t.container.clone());
        assert_eq!(proxied(&ps[1]).map(|c| c.id).as_deref(), Some(ID));
        assert_eq!(name(&proxied(&ps[2])).as_deref(), Some("db"));
        assert_eq!(proxied(&ps[3]), None);
        assert_eq!(name(&ps[4].container), None);
    }

    #[test]
    fn no_docker_socket_is_no_names_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("docker.sock");
        assert!(docker_containers(&missing, DOCKER_TIMEOUT)
            .unwrap()
            .is_none());
        let mut p = process("docker-proxy", None, Some("172.17.0.2"));
        assert_eq!(name_docker_containers(&mut [&mut p], &missing), None);
        assert_eq!(p, process("docker-proxy", None, Some("172.17.0.2")));
    }

    #[test]
    fn the_docker_api_is_asked_once_and_only_when_needed() {
        use std::os::unix::net::UnixListener;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        let server = UnixListener::bind(&path).unwrap();
        server.set_nonblocking(true).unwrap();
        // Nobody needs Docker: the socket is not even connected to.
        let mut plain = process("nginx", None, None);
        assert_eq!(name_docker_containers(&mut [&mut plain], &path), None);
        assert_eq!(
            server.accept().map(|_| ()).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        // A container and a proxy: one request, answered like dockerd.
        server.set_nonblocking(false).unwrap();
        let answer = std::thread::spawn(move || {
            let (mut conn, _) = server.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 512];
            while !request.ends_with(b"\r\n\r\n") {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "request cut short");
                request.extend_from_slice(&buf[..n]);
            }
            let head =
                "HTTP/1.0 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n\r\n";
            conn.write_all(head.as_bytes()).unwrap();
            conn.write_all(CONTAINERS_JSON.as_bytes()).unwrap();
            drop(conn);
            (server, String::from_utf8(request).unwrap())
        });
        let own = Container {
            runtime: "docker".into(),
            id: ID.into(),
            name: None,
        };
        let mut httpd = process("httpd", Some(own), None);
        let mut proxy = process("docker-proxy", None, Some("172.18.0.5"));
        let warning = name_docker_containers(&mut [&mut httpd, &mut plain, &mut proxy], &path);
        assert_eq!(warning, None);
        let (server, request) = answer.join().unwrap();
        // Exactly one connection: none is waiting after the first.
        server.set_nonblocking(true).unwrap();
        assert_eq!(
            server.accept().map(|_| ()).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert!(
            request.starts_with("GET /containers/json HTTP/1.0\r\n"),
            "{request}"
        );
        let name = |c: Option<&Container>| c.and_then(|c| c.name.clone());
        assert_eq!(
            name(httpd.container.as_ref()).as_deref(),
            Some("pw-owners-try")
        );
        let target = proxy.proxy_for.as_ref().and_then(|t| t.container.as_ref());
        assert_eq!(name(target).as_deref(), Some("db"));
        assert_eq!(plain, process("nginx", None, None));
    }

    #[test]
    fn a_docker_socket_that_refuses_is_a_warning_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        // A stale socket file: dockerd died without removing it.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let mut p = process("docker-proxy", None, Some("172.17.0.2"));
        let warning = name_docker_containers(&mut [&mut p], &path).unwrap();
        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(
            warning,
            format!(
                "container names unknown: Docker API at {} failed ({refused})",
                path.display()
            )
        );
        assert_eq!(p, process("docker-proxy", None, Some("172.17.0.2")));
        // Nobody needing Docker: not asked, so nothing to warn about.
        let mut plain = process("nginx", None, None);
        assert_eq!(name_docker_containers(&mut [&mut plain], &path), None);
    }

    #[test]
    fn docker_warning_text() {
        let e = io::Error::new(io::ErrorKind::TimedOut, "Docker API timed out");
        assert_eq!(
            docker_warning(Path::new("/var/run/docker.sock"), &e),
            "container names unknown: Docker API at /var/run/docker.sock failed \
             (Docker API timed out)"
        );
    }

    #[test]
    fn a_silent_docker_socket_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        let _server = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let started = Instant::now();
        let e = docker_containers(&path, Duration::from_millis(200)).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "{e}");
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ),
            "{e:?}"
        );
    }

    #[test]
    fn a_docker_socket_with_a_full_accept_queue_does_not_hang() {
        use socket2::{Domain, SockAddr, Socket, Type};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        let server = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
        server.bind(&SockAddr::unix(&path).unwrap()).unwrap();
        server.listen(0).unwrap();
        // Fill the queue: nobody ever accepts. The kernel admits backlog + 1.
        let _fillers: Vec<_> = (0..2)
            .filter_map(|_| {
                let s = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
                s.set_nonblocking(true).unwrap();
                s.connect(&SockAddr::unix(&path).unwrap()).ok().map(|()| s)
            })
            .collect();
        let started = Instant::now();
        let result = docker_containers(&path, Duration::from_millis(200));
        assert!(started.elapsed() < Duration::from_secs(5), "{result:?}");
        assert!(result.is_err(), "{result:?}");
    }
}
