//! `portwarden baseline save`: record the current listeners by identity.

use crate::baseline::Baseline;
use crate::error::{Error, Result};
use crate::model::Report;
use crate::paths;
use crate::sanitize::sanitize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Scans, writes the baseline atomically to `path` (default: the user's data
/// directory, created if needed) and says where on `out`; a note about
/// invisible owners goes to `err` when the scan was not privileged.
/// Returns the path written.
pub fn save(
    path: Option<&Path>,
    scan: &mut dyn FnMut() -> Result<Report>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<PathBuf> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => paths::default_baseline()?,
    };
    let report = scan()?;
    let baseline = Baseline::from_report(&report);
    baseline.save(&path)?;
    let n = baseline.listeners.len();
    writeln!(
        out,
        "portwarden: saved {n} listener{} to {}",
        if n == 1 { "" } else { "s" },
        sanitize(&path.display().to_string())
    )
    .map_err(Error::Write)?;
    if !report.privileged && report.listeners.iter().any(|l| !l.socket.owner_visible()) {
        writeln!(
            err,
            "portwarden: note: not running as root, so some owners were not visible and are not recorded; \
             save and check with the same privileges"
        )
        .map_err(Error::Write)?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::tests::{listener, owner};
    use crate::model::{PortStatus, Proto};

    #[test]
    fn save_writes_a_loadable_baseline_and_notes_hidden_owners() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new").join("b.json");
        let report = Report {
            listeners: vec![
                listener(
                    Proto::Tcp,
                    "0.0.0.0",
                    22,
                    PortStatus::Assigned,
                    vec![owner(1, "sshd", "/usr/sbin/sshd", "root")],
                ),
                listener(Proto::Udp, "0.0.0.0", 53, PortStatus::Assigned, vec![]),
            ],
            privileged: false,
        };
        let mut scan = || Ok(report.clone());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(
            save(Some(&path), &mut scan, &mut out, &mut err).unwrap(),
            path
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("portwarden: saved 2 listeners to {}\n", path.display())
        );
        assert!(String::from_utf8(err)
            .unwrap()
            .contains("not running as root"));
        assert_eq!(
            Baseline::load(&path).unwrap(),
            Baseline::from_report(&report)
        );
    }
}
