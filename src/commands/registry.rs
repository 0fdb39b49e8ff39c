//! `portwarden registry info [--json]` and `portwarden registry update [--from FILE|URL]`.

use crate::error::{Error, Result};
use crate::registry::{self, Registry, SourceKind};
use crate::sanitize::sanitize;
use serde_json::json;
use std::io::Write;

/// Describes the registry in use: where it comes from, provenance, counts,
/// newest date, and the installed file's state.
pub fn info(registry: &Registry, json: bool, out: &mut dyn Write) -> Result<()> {
    let source = registry.source();
    let counts = registry.counts();
    let installed = registry::installed_path();
    let installed_present = installed.as_deref().is_some_and(|p| p.is_file());
    if json {
        let value = json!({
            "schema_version": 1,
            "source": source.kind,
            "path": source.path.as_ref().map(|p| p.display().to_string()),
            "provenance": source.provenance,
            "as_of": source.as_of,
            "embedded_as_of": Registry::embedded_as_of(),
            "newest_date": registry.newest_date(),
            "counts": counts,
            "installed_path": installed.as_ref().map(|p| p.display().to_string()),
            "installed_present": installed_present,
        });
        serde_json::to_writer_pretty(&mut *out, &value)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
            .map_err(Error::Write)?;
        return Ok(());
    }
    // Paths and provenance come from files and the user: escape each line.
    let w =
        |out: &mut dyn Write, s: String| writeln!(out, "{}", sanitize(&s)).map_err(Error::Write);
    let what = match source.kind {
        SourceKind::Embedded => "embedded snapshot (compiled into portwarden)".to_string(),
        SourceKind::Installed => format!(
            "installed file {}",
            source
                .path
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
        SourceKind::File => format!(
            "file given with --registry: {}",
            source
                .path
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
    };
    w(out, format!("registry in use: {what}"))?;
    w(out, format!("provenance:      {}", source.provenance))?;
    if let Some(as_of) = &source.as_of {
        w(out, format!("as of:           {as_of}"))?;
    }
    w(
        out,
        format!(
            "newest date:     {}",
            registry.newest_date().unwrap_or("none")
        ),
    )?;
    w(
        out,
        format!(
            "entries:         {} (tcp {}, udp {}, sctp {}, dccp {}, all protocols {}, no port {}; {} ranges)",
            counts.entries,
            counts.tcp,
            counts.udp,
            counts.sctp,
            counts.dccp,
            counts.all_protocols,
            counts.portless,
            counts.ranges
        ),
    )?;
    w(out, format!("service names:   {}", counts.service_names))?;
    let installed_line = match (&installed, installed_present, source.kind) {
        (None, _, _) => "no user data directory".to_string(),
        (Some(p), false, _) => format!("{} (not present)", p.display()),
        (Some(p), true, SourceKind::Installed) => format!("{} (in use)", p.display()),
        (Some(p), true, SourceKind::File) => format!("{} (overridden by --registry)", p.display()),
        (Some(p), true, SourceKind::Embedded) => format!(
            "{} (older than the embedded snapshot of {}, not used)",
            p.display(),
            Registry::embedded_as_of()
        ),
    };
    w(out, format!("installed file:  {installed_line}"))
}

/// Downloads (or reads) a registry, validates it and installs it; reports
/// what was installed. On error nothing is changed.
pub fn update(from: Option<&str>, out: &mut dyn Write) -> Result<()> {
    let installed = registry::install(from)?;
    let line = format!(
        "installed {} registry entries from {} (newest date {}) to {}",
        installed.entries,
        installed.origin,
        installed.newest_date.as_deref().unwrap_or("none"),
        installed.path.display()
    );
    writeln!(out, "{}", sanitize(&line)).map_err(Error::Write)
}
