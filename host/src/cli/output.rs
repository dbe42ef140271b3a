//! Tables and JSON for the terminal.

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use serde::Serialize;

/// A table. Control characters in cells are shown escaped (`\x1b`, `\r`) so that no value can
/// break a row or drive the terminal; line breaks stay, for cells meant to hold several lines
/// (pass single-line values through [`one_line`]).
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    for row in rows {
        table.add_row(row.iter().map(|cell| escape_controls(cell, true)).collect::<Vec<_>>());
    }
    table.to_string()
}

/// `text` with control characters escaped, line breaks included.
pub fn one_line(text: &str) -> String {
    escape_controls(text, false)
}

fn escape_controls(text: &str, keep_newlines: bool) -> String {
    if !text.chars().any(|c| c.is_control() && !(keep_newlines && c == '\n')) {
        return text.to_owned();
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' if keep_newlines => escaped.push('\n'),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            c if c.is_control() => escaped.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => escaped.push(c),
        }
    }
    escaped
}

pub fn json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("plain data serialises")
}

/// Writes to stdout, ignoring a closed pipe (`xp history list | head`).
pub fn print(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_value_breaks_a_row_or_reaches_the_terminal_raw() {
        assert_eq!(one_line("a\nb\x1b[31m"), "a\\nb\\u{001b}[31m");
        let text = table(
            &["A"],
            vec![vec!["x\x1b]0;title\x07".into()], vec!["two\nlines".into()]],
        );
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text}");
        assert!(text.contains("two"), "{text}");
    }
}
