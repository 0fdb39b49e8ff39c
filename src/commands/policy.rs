//! `portwarden policy init`: write a commented starter policy.

use crate::error::{Error, Result};
use crate::model::Report;
use crate::paths;
use crate::policy;
use crate::sanitize::sanitize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Scans and writes the starter policy ([`policy::starter`]) to `path`
/// (default: the user's config directory; `-`: `out`). An existing file is
/// kept unless `force`. Returns the path written, `None` for `out`.
pub fn init(
    path: Option<&Path>,
    force: bool,
    scan: &mut dyn FnMut() -> Result<Report>,
    out: &mut dyn Write,
) -> Result<Option<PathBuf>> {
    let target = match path {
        Some(p) if p == Path::new("-") => None,
        Some(p) => Some(p.to_path_buf()),
        None => Some(paths::user_policy()?),
    };
    if let Some(target) = &target {
        if !force && target.exists() {
            return Err(Error::Exists {
                path: target.clone(),
            });
        }
    }
    let report = scan()?;
    let text = policy::starter(&report);
    match target {
        None => {
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(Error::Write)?;
            Ok(None)
        }
        Some(target) => {
            paths::write_atomic(&target, text.as_bytes(), true)?;
            writeln!(
                out,
                "portwarden: wrote a policy allowing the {} current listener{} to {}; prune it, then run `portwarden check`",
                report.listeners.len(),
                if report.listeners.len() == 1 { "" } else { "s" },
                sanitize(&target.display().to_string())
            )
            .map_err(Error::Write)?;
            Ok(Some(target))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::tests::{listener, owner};
    use crate::model::{PortStatus, Proto};
    use crate::policy::Policy;

    fn report() -> Report {
        Report {
            listeners: vec![listener(
                Proto::Tcp,
                "127.0.0.1",
                4444,
                PortStatus::Unassigned,
                vec![owner(7, "nc", "/usr/bin/nc", "eve")],
            )],
            privileged: true,
        }
    }

    #[test]
    fn init_writes_once_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conf").join("portwarden.toml");
        let mut scan = || Ok(report());
        let mut out = Vec::new();
        assert_eq!(
            init(Some(&path), false, &mut scan, &mut out).unwrap(),
            Some(path.clone())
        );
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("1 current listener to"));
        let policy = Policy::load(&path).unwrap();
        assert_eq!(policy.allow.len(), 1);
        assert_eq!(policy.allow[0].exe.as_deref(), Some("/usr/bin/nc"));

        std::fs::write(&path, "# mine\n").unwrap();
        let mut out = Vec::new();
        match init(Some(&path), false, &mut scan, &mut out) {
            Err(Error::Exists { path: p }) => assert_eq!(p, path),
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");
        init(Some(&path), true, &mut scan, &mut out).unwrap();
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("[[allow]]"));
    }

    #[test]
    fn init_to_stdout() {
        let mut scan = || Ok(report());
        let mut out = Vec::new();
        assert_eq!(
            init(Some(Path::new("-")), false, &mut scan, &mut out).unwrap(),
            None
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("# portwarden policy"), "{text}");
        assert_eq!(Policy::parse(&text, Path::new("-")).unwrap().allow.len(), 1);
    }
}
