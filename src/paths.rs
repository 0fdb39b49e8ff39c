//! Per-user and system-wide file locations, resolved in one place.
//!
//! The per-user directories come from the `dirs` crate, which on Linux honours
//! `XDG_CONFIG_HOME` and `XDG_DATA_HOME` (so tests can point them at temporary
//! directories) and falls back to `~/.config` and `~/.local/share`.

use crate::error::{Error, Result};
use std::path::PathBuf;

/// Name of the policy file inside a configuration directory.
pub const POLICY_FILE_NAME: &str = "portwarden.toml";

/// Name of the default baseline file inside the user's data directory.
pub const BASELINE_FILE_NAME: &str = "baseline.json";

/// The system-wide policy file, read when no other policy is found.
pub const SYSTEM_POLICY: &str = "/etc/portwarden/portwarden.toml";

/// `<config dir>/portwarden/portwarden.toml`, e.g. `~/.config/portwarden/portwarden.toml`.
pub fn user_policy() -> Result<PathBuf> {
    dirs::config_dir()
        .map(|dir| dir.join("portwarden").join(POLICY_FILE_NAME))
        .ok_or(Error::NoUserDir("config"))
}

/// `<data dir>/portwarden/baseline.json`, e.g. `~/.local/share/portwarden/baseline.json`.
pub fn default_baseline() -> Result<PathBuf> {
    dirs::data_dir()
        .map(|dir| dir.join("portwarden").join(BASELINE_FILE_NAME))
        .ok_or(Error::NoUserDir("data"))
}

/// Writes `contents` to `path` atomically: a temporary file in the same
/// directory, flushed to disk, then renamed over `path`. Readers (the
/// node_exporter textfile collector, a concurrent `check --baseline`) see the
/// old file or the new one, never half of one. The file is made readable by
/// everyone (0644 on Unix) because the textfile collector usually runs as
/// another user. With `create_parent`, missing parent directories are created.
pub fn write_atomic(path: &std::path::Path, contents: &[u8], create_parent: bool) -> Result<()> {
    use std::io::Write;

    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if create_parent {
        std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    }
    // A dot-name in the same directory (rename never crosses file systems),
    // ending in .tmp so the textfile collector, which reads *.prom, skips it.
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        // create_new (O_EXCL) never follows a symlink someone planted under
        // the temporary name (the directory may be world-writable); a
        // leftover of a crashed run with the same pid is removed first.
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o644);
        }
        let mut file = match options.open(&tmp) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                std::fs::remove_file(&tmp)?;
                options.open(&tmp)?
            }
            other => other?,
        };
        #[cfg(unix)]
        {
            // The mode given to open is reduced by the umask; set it exactly.
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        }
        file.write_all(contents)?;
        file.sync_all()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("out.prom");
        write_atomic(&path, b"one\n", true).unwrap();
        write_atomic(&path, b"two\n", false).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.prom")]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
    }

    #[cfg(unix)]
    #[test]
    fn atomic_write_does_not_follow_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let path = dir.path().join("out.prom");
        let tmp = dir
            .path()
            .join(format!(".out.prom.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        write_atomic(&path, b"metrics\n", false).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(std::fs::read(&path).unwrap(), b"metrics\n");
    }

    #[test]
    fn atomic_write_into_missing_directory_fails_without_create() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("out.prom");
        let err = write_atomic(&path, b"x", false).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
    }
}
