//! Scan warnings (see [`crate::model::Inventory::warnings`]) in human
//! output: after the table, or on standard error beside the fixed-shape
//! formats. The text quotes OS errors and paths, so it is escaped.

use crate::sanitize::sanitize;
use std::io::{self, Write};

/// Writes `warning: TEXT`, one line per warning (the table's trailer).
pub fn lines(warnings: &[String], out: &mut dyn Write) -> io::Result<()> {
    for w in warnings {
        writeln!(out, "warning: {}", sanitize(w))?;
    }
    Ok(())
}

/// Writes `portwarden: warning: TEXT`, one line per warning, as standard
/// error carries them for formats whose standard output has a fixed shape.
pub fn stderr_lines(warnings: &[String], err: &mut dyn Write) -> io::Result<()> {
    for w in warnings {
        writeln!(err, "portwarden: warning: {}", sanitize(w))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(f: fn(&[String], &mut dyn Write) -> io::Result<()>, w: &[String]) -> String {
        let mut out = Vec::new();
        f(w, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn one_escaped_line_per_warning() {
        let w = [
            "sockets read from /proc/net: netlink sock_diag failed (x)".to_string(),
            "container names unknown: Docker API at /tmp/d\u{1b}[2J.sock failed (y)".to_string(),
        ];
        assert_eq!(
            written(lines, &w),
            "warning: sockets read from /proc/net: netlink sock_diag failed (x)\n\
             warning: container names unknown: Docker API at /tmp/d\\e[2J.sock failed (y)\n"
        );
        assert_eq!(
            written(stderr_lines, &w[..1]),
            "portwarden: warning: sockets read from /proc/net: netlink sock_diag failed (x)\n"
        );
        // A newline in an OS message cannot start a line of its own.
        let w = ["a\nwarning: forged".to_string()];
        assert_eq!(written(lines, &w).lines().count(), 1);
        assert!(written(lines, &[]).is_empty());
        assert!(written(stderr_lines, &[]).is_empty());
    }
}
