//! Escaping of untrusted text for human-readable output.
//!
//! Process names, command lines, paths and user names are chosen by whoever
//! started the process. Written raw to a terminal they could move the cursor,
//! recolour the screen, or reorder text with bidi overrides so that one
//! listener looks like another. Every human format passes them through
//! [`sanitize`]; machine formats (JSON, CSV, Prometheus) use their own escaping.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal as itself.
pub(crate) fn is_dangerous(c: char) -> bool {
    c.is_control() // C0, DEL, C1
        || matches!(
            c,
            // Bidi embeddings, overrides and isolates (Unicode TR9), marks.
            '\u{200E}' | '\u{200F}' | '\u{061C}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            // Zero-width and invisible characters that can hide text.
            | '\u{200B}'..='\u{200D}'
            | '\u{2060}'..='\u{2064}'
            | '\u{FEFF}'
            // Line and paragraph separators break a row like a newline.
            | '\u{2028}' | '\u{2029}'
        )
}

/// Returns `s` with every control, bidi and zero-width character replaced
/// by a visible escape: `\n`, `\t`, `\r`, `\e` for the common ones,
/// `\xNN` for other ASCII controls and `\u{NNNN}` for the rest. A backslash is
/// left as is: it is visible, and doubling it would make paths unreadable.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_dangerous) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !is_dangerous(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(
            sanitize("sshd: /usr/sbin/sshd -D"),
            Cow::Borrowed(_)
        ));
        assert_eq!(sanitize("nginx — wörker"), "nginx — wörker");
    }

    #[test]
    fn controls_are_escaped() {
        assert_eq!(sanitize("evil\u{1b}[31mred"), "evil\\e[31mred");
        assert_eq!(sanitize("a\nb\tc\rd"), "a\\nb\\tc\\rd");
        assert_eq!(
            sanitize("nul\0bel\u{7}del\u{7f}"),
            "nul\\x00bel\\x07del\\x7f"
        );
        assert_eq!(sanitize("c1\u{9b}31m"), "c1\\u{009b}31m");
    }

    #[test]
    fn bidi_and_zero_width_are_escaped() {
        assert_eq!(sanitize("sshd\u{202e}dxxx"), "sshd\\u{202e}dxxx");
        assert_eq!(sanitize("a\u{2066}b\u{2069}"), "a\\u{2066}b\\u{2069}");
        assert_eq!(sanitize("ss\u{200b}hd"), "ss\\u{200b}hd");
        assert_eq!(sanitize("x\u{feff}"), "x\\u{feff}");
    }
}
