//! Attribution of listeners beyond the pid, against the real kernel: the
//! systemd unit and container from each owner's cgroup, and the container
//! behind Docker's userland proxy (Linux only).

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly

mod common;

use common::*;
use portwarden::collect;
use portwarden::model::{Inventory, Process, Proto};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Scans with no fork of this test binary under way.
fn scan() -> Inventory {
    let _guard = fork_guard();
    collect::scan().unwrap_or_else(|e| panic!("scan failed: {e}"))
}

/// The owner `pid` of the TCP listener on 127.0.0.1:`port`.
fn owner(inv: &Inventory, port: u16, pid: u32) -> Process {
    let socket = inv
        .sockets
        .iter()
        .find(|s| s.proto == Proto::Tcp && s.address == LOOPBACK_V4 && s.port == port)
        .unwrap_or_else(|| panic!("no listener on 127.0.0.1:{port}"));
    socket
        .processes
        .iter()
        .find(|p| p.pid == pid)
        .cloned()
        .unwrap_or_else(|| panic!("pid {pid} not an owner of port {port}: {socket:#?}"))
}

fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// A unit name read from `/proc/PID/cgroup` text another way than the
/// collector does: take the unified path if it names a unit, else the
/// `name=systemd` one; in it, the right-most component whose type is one
/// that holds processes.
fn expected_unit(cgroup: &str) -> Option<String> {
    let path_of = |wanted: fn(&str) -> bool| {
        cgroup.lines().find_map(|l| {
            let (head, path) = l.rsplit_once(':')?;
            wanted(head).then_some(path.trim_end_matches(" (deleted)"))
        })
    };
    let unit_in = |path: &str| -> Option<String> {
        let mut found = None;
        for c in path.split('/') {
            let kind = c.rsplit('.').next().unwrap_or("");
            if c.contains('.')
                && !c.starts_with('.')
                && !c.contains(' ')
                && ["service", "scope", "socket", "mount", "swap"].contains(&kind)
            {
                found = Some(c.to_string());
            }
        }
        found
    };
    [
        path_of(|h| h == "0:"),
        path_of(|h| h.split(':').nth(1) == Some("name=systemd")),
    ]
    .into_iter()
    .flatten()
    .find_map(unit_in)
}

#[test]
fn own_unit_matches_an_independent_reading_of_proc_self_cgroup() {
    let (_listener, port) = tcp_listener_v4();
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let me = owner(&scan(), port, std::process::id());
    eprintln!("this test's cgroup:\n{cgroup}unit: {:?}", me.unit);
    assert_eq!(me.unit, expected_unit(&cgroup), "{cgroup}");
    assert_eq!(me.proxy_for, None);
    // The test runs in a container only if its cgroup says so.
    let in_container = ["docker", "libpod-", "kubepods", "crio-", "containerd"]
        .iter()
        .any(|m| cgroup.contains(m));
    if !in_container {
        assert_eq!(me.container, None, "{cgroup}");
    }
}

/// A cgroup tree this test created; removed, deepest first, on drop.
/// Declare it before the guards of the processes moved into it, so that
/// they are gone (reaped) when it drops.
struct CgroupTree(PathBuf);

/// Removes a cgroup and every cgroup below it (rmdir only: their files
/// are the kernel's).
fn remove_cgroups(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroups(&e.path());
            }
        }
    }
    // A process still being reaped keeps its cgroup busy for a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::remove_dir(dir).is_err() && dir.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for CgroupTree {
    fn drop(&mut self) {
        remove_cgroups(&self.0);
    }
}

/// The mount point of the unified (v2) hierarchy and of systemd's v1
/// `name=systemd` hierarchy, as far as they are mounted.
fn cgroup_mounts() -> Vec<(&'static str, PathBuf)> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut found = Vec::new();
    for line in mounts.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() < 4 {
            continue;
        }
        if f[2] == "cgroup2" {
            found.push(("unified", PathBuf::from(f[1])));
        } else if f[2] == "cgroup" && f[3].split(',').any(|o| o == "name=systemd") {
            found.push(("name=systemd", PathBuf::from(f[1])));
        }
    }
    found
}

/// Moves `pid` into the cgroup `tree`/`leaf`, creating it. False, with
/// the reason printed, when the hierarchy refuses.
fn move_into(tree: &CgroupTree, leaf: &str, pid: u32) -> bool {
    let dir = tree.0.join(leaf);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("skipping: cannot create cgroup {}: {e}", dir.display());
        return false;
    }
    if let Err(e) = std::fs::write(dir.join("cgroup.procs"), pid.to_string()) {
        eprintln!(
            "skipping: cannot move pid {pid} into {}: {e}",
            dir.display()
        );
        return false;
    }
    true
}

#[test]
fn a_listener_in_a_unit_or_container_cgroup_is_attributed_to_it() {
    if !is_root() {
        eprintln!("skipping: creating cgroups needs root");
        return;
    }
    let mounts = cgroup_mounts();
    if mounts.is_empty() {
        eprintln!("skipping: no cgroup2 nor name=systemd hierarchy mounted");
        return;
    }
    let me = std::process::id();
    let id = format!("{:064x}", u128::from(me) << 64 | 0x5eed);
    for (kind, mount) in mounts {
        let tree = CgroupTree(mount.join(format!("portwarden-test-{me}.slice")));
        // A service nested in a user manager, as `systemd --user` runs it.
        let leaf = "user@1000.service/app.slice/pw\\x2dtest@a1.service";
        let Some(child) = child_listener(Proto::Tcp, LOOPBACK_V4) else {
            return;
        };
        if !move_into(&tree, leaf, child.pid) {
            continue;
        }
        let cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", child.pid)).unwrap();
        let p = owner(&scan(), child.port, child.pid);
        assert_eq!(
            p.unit.as_deref(),
            Some("pw\\x2dtest@a1.service"),
            "{kind}: {cgroup}"
        );
        assert_eq!(p.unit, expected_unit(&cgroup), "{kind}: {cgroup}");
        assert_eq!(p.container, None, "{kind}: {cgroup}");
        drop(child);

        // A Docker container's scope (the systemd cgroup driver's layout).
        let Some(child) = child_listener(Proto::Tcp, LOOPBACK_V4) else {
            return;
        };
        let leaf = format!("docker-{id}.scope");
        if !move_into(&tree, &leaf, child.pid) {
            continue;
        }
        let p = owner(&scan(), child.port, child.pid);
        assert_eq!(p.unit, Some(leaf.clone()), "{kind}");
        let c = p
            .container
            .unwrap_or_else(|| panic!("{kind}: no container"));
        assert_eq!((c.runtime.as_str(), c.id.as_str()), ("docker", id.as_str()));
        // Docker (if running) does not know this id: no name is made up.
        assert_eq!(c.name, None);
        drop(child);
    }
}

#[test]
fn a_transient_systemd_unit_holding_a_listener() {
    let pid1 = std::fs::read_to_string("/proc/1/comm").unwrap_or_default();
    if pid1.trim() != "systemd" {
        eprintln!(
            "skipping: PID 1 is {:?}, not systemd, so systemd-run cannot start units",
            pid1.trim()
        );
        return;
    }
    if !is_root() {
        eprintln!("skipping: systemd-run for a system unit needs root");
        return;
    }
    let (probe, port) = tcp_listener_v4();
    drop(probe);
    let unit = format!("portwarden-test-{}.service", std::process::id());
    let started = output(Command::new("systemd-run").args([
        "--unit",
        &unit,
        "--quiet",
        "python3",
        "-m",
        "http.server",
        "--bind",
        "127.0.0.1",
        &port.to_string(),
    ]));
    match started {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            eprintln!(
                "skipping: systemd-run failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return;
        }
        Err(e) => {
            eprintln!("skipping: cannot run systemd-run: {e}");
            return;
        }
    }
    struct Stop(String);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = Command::new("systemctl").args(["stop", &self.0]).status();
        }
    }
    let _stop = Stop(unit.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let inv = scan();
        let socket = inv
            .sockets
            .iter()
            .find(|s| s.proto == Proto::Tcp && s.port == port && s.address == LOOPBACK_V4);
        if let Some(s) = socket {
            let units: Vec<_> = s.processes.iter().map(|p| p.unit.clone()).collect();
            assert_eq!(units, [Some(unit.clone())], "{s:#?}");
            return;
        }
        assert!(Instant::now() < deadline, "{unit} never listened on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

// --- Docker ---------------------------------------------------------------

const DOCKER_SOCKET: &str = "/var/run/docker.sock";
const IMAGE: &str = "portwarden-test-busybox:latest";

/// Runs `docker ARGS`, returning trimmed stdout, panicking with stderr.
fn docker(args: &[&str]) -> String {
    let out = output(Command::new("docker").args(args).stdin(Stdio::null()))
        .unwrap_or_else(|e| panic!("docker {args:?}: {e}"));
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Removes the container on drop, whatever the test did.
struct ContainerGuard(String);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// An image holding only a static busybox, imported from a directory
/// (nothing is pulled).
fn import_busybox_image(busybox: &Path) {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("bin")).unwrap();
    std::fs::copy(busybox, root.path().join("bin/busybox")).unwrap();
    let tar = root.path().join("rootfs.tar");
    let ok = Command::new("tar")
        .args(["-C"])
        .arg(root.path())
        .args(["-cf"])
        .arg(&tar)
        .arg("bin")
        .status()
        .unwrap();
    assert!(ok.success(), "tar the busybox rootfs");
    docker(&["import", tar.to_str().unwrap(), IMAGE]);
}

/// A static busybox that can run in an empty image: `busybox-static`'s.
fn static_busybox() -> Option<PathBuf> {
    let path = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())?;
    // A dynamic busybox would need a libc inside the image.
    let ldd = Command::new("ldd").arg(&path).output().ok()?;
    let text =
        String::from_utf8_lossy(&ldd.stdout).into_owned() + &String::from_utf8_lossy(&ldd.stderr);
    text.contains("not a dynamic executable").then_some(path)
}

/// The binary's `--json` output for `args`, with a scrubbed environment.
fn portwarden_json(args: &[&str]) -> (Value, String) {
    let home = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let _exact = fork_guard();
        let out = assert_cmd::Command::cargo_bin("portwarden")
            .unwrap()
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .args(args)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let json = serde_json::from_str(&run(&["--json"])).unwrap();
    (json, run(&["--wide"]))
}

#[test]
fn a_published_docker_port_is_attributed_to_its_container() {
    if !Path::new(DOCKER_SOCKET).exists() {
        eprintln!("skipping: no {DOCKER_SOCKET}: dockerd is not running");
        return;
    }
    if !is_root() {
        eprintln!("skipping: reading docker-proxy's descriptors needs root");
        return;
    }
    match Command::new("docker").arg("version").output() {
        Err(e) => {
            eprintln!("skipping: cannot run `docker`: {e}");
            return;
        }
        Ok(o) if !o.status.success() => {
            eprintln!(
                "skipping: `docker version` failed (is dockerd answering on {DOCKER_SOCKET}?): {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return;
        }
        Ok(_) => {}
    }
    let Some(busybox) = static_busybox() else {
        eprintln!("skipping: no static busybox (apt-get install busybox-static) to build an image");
        return;
    };
    import_busybox_image(&busybox);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!("portwarden-test-{}-{nanos}", std::process::id());
    let _guard = ContainerGuard(name.clone());
    let id = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "-p",
        "127.0.0.1::8080",
        IMAGE,
        "/bin/busybox",
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/",
    ]);
    let ip = docker(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", &name]);
    let published = docker(&["port", &name, "8080/tcp"]);
    let host_port: u16 = published
        .lines()
        .find_map(|l| l.strip_prefix("127.0.0.1:"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no 127.0.0.1 port in {published:?}"));

    // docker-proxy may still be starting when `docker run -d` returns.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (json, table) = loop {
        let (json, table) = portwarden_json(&["--tcp", "--port", &host_port.to_string()]);
        if !json["listeners"].as_array().unwrap().is_empty() {
            break (json, table);
        }
        assert!(Instant::now() < deadline, "nothing listens on {host_port}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let listeners = json["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 1, "{json:#}");
    assert_eq!(listeners[0]["address"], "127.0.0.1");
    let procs = listeners[0]["processes"].as_array().unwrap();
    assert!(!procs.is_empty(), "{json:#}");
    for p in procs {
        assert_eq!(p["name"], "docker-proxy", "{json:#}");
        let t = &p["proxy_for"];
        assert_eq!(t["container_ip"], ip.as_str(), "{json:#}");
        assert_eq!(t["container_port"], 8080, "{json:#}");
        assert_eq!(t["container"]["runtime"], "docker", "{json:#}");
        assert_eq!(t["container"]["id"], id.as_str(), "{json:#}");
        assert_eq!(t["container"]["name"], name.as_str(), "{json:#}");
    }
    assert!(
        table.contains(&format!("docker-proxy → {name} ({ip}:8080)")),
        "{table}"
    );

    // The container's own httpd listens in the container's network
    // namespace, which the scan does not see: the attribution above came
    // from the proxy alone.
    let (all, _) = portwarden_json(&["--tcp"]);
    for l in all["listeners"].as_array().unwrap() {
        for p in l["processes"].as_array().unwrap() {
            assert_ne!(p["container"]["id"], id.as_str(), "{l:#}");
        }
    }
}
