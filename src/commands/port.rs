//! `portwarden port <PORT | LOW-HIGH | SERVICE-NAME> [--json]`.

use crate::error::{Error, Result};
use crate::model::Listener;
use crate::registry::{self, Registry};
use crate::render;
use std::io::Write;

/// Explains `query` from `registry` and writes it as text or JSON.
/// `listeners` are the current listeners (`None` when no scan was made);
/// the OS's ephemeral range is read here.
pub fn run(
    registry: &Registry,
    query: &str,
    json: bool,
    listeners: Option<&[Listener]>,
    out: &mut dyn Write,
) -> Result<()> {
    let explanation = registry::explain(registry, query, listeners, registry::ephemeral_range())?;
    if json {
        render::port::json(&explanation, out)
    } else {
        render::port::text(&explanation, out)
    }
    .map_err(Error::Write)
}
