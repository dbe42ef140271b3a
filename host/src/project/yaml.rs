//! The one place that knows the YAML library. serde_yaml is archived upstream; keeping it
//! behind these functions lets a maintained fork replace it in one edit.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A YAML file that could not be read as expected.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {message}", path.display(), location.map(|(line, column)| format!(":{line}:{column}")).unwrap_or_default())]
pub struct YamlError {
    pub path: PathBuf,
    /// Line and column, 1-based, when known.
    pub location: Option<(usize, usize)>,
    pub message: String,
}

/// `text` without the byte order mark that Windows editors put first (with it, the YAML
/// library reads CRLF files as several documents).
fn without_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// The key a "duplicate" message names (`duplicate field `Target``, `duplicate entry with key
/// "x"`).
fn duplicate_key(message: &str) -> Option<&str> {
    let rest = &message[message.find("duplicate ")?..];
    let (open, close) = if rest.contains('`') { ('`', '`') } else { ('"', '"') };
    let start = rest.find(open)? + 1;
    let end = start + rest[start..].find(close)?;
    Some(&rest[start..end])
}

/// The 1-based line where `key:` is written for the second time (at any depth), for a
/// duplicate key.
fn line_of_second(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let unquoted = line.trim_start().trim_start_matches(['"', '\'']);
            unquoted.starts_with(key)
                && unquoted[key.len()..]
                    .trim_start_matches(['"', '\''])
                    .trim_start()
                    .starts_with(':')
        })
        .nth(1)
        .map(|(index, _)| index + 1)
}

/// The library's message in the user's words: no internal type names.
fn user_words(message: &str) -> String {
    if let Some(key) = duplicate_key(message) {
        // The library names where the mapping is (`env: duplicate ...`): keep that.
        let within = message[..message.find("duplicate ").unwrap_or(0)].trim_end_matches([' ', ':']);
        let within = if within.is_empty() {
            String::new()
        } else {
            format!("{within}: ")
        };
        return format!("{within}`{key}` is given more than once; keep one");
    }
    if let Some(at) = message.find("expected struct ") {
        let found = message
            .strip_prefix("invalid type: ")
            .and_then(|rest| rest.split(',').next())
            .map(|kind| if kind == "sequence" { "a list" } else { kind });
        let mut words = message[..at].trim_end_matches([' ', ',']).to_owned();
        if let Some(found) = found {
            words = format!("found {found}");
        }
        return format!("{words}; expected a mapping of `key: value` lines, such as `Target: local`");
    }
    message.to_owned()
}

/// Parses `text` (the contents of `path`) into `T`.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, YamlError> {
    let text = without_bom(text);
    serde_yaml::from_str(text).map_err(|error| {
        let message = error
            .to_string()
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_owned();
        let mut location = error.location().map(|at| (at.line(), at.column()));
        if let Some(line) = duplicate_key(&message).and_then(|key| line_of_second(text, key)) {
            location = Some((line, 1));
        }
        YamlError {
            path: path.to_path_buf(),
            location,
            message: user_words(&message),
        }
    })
}

/// Parses `text` into a JSON value; an empty document is an empty mapping.
pub fn parse_value(path: &Path, text: &str) -> Result<serde_json::Value, YamlError> {
    let text = without_bom(text);
    if text.trim().is_empty()
        || text
            .lines()
            .all(|line| line.trim_start().starts_with('#') || line.trim().is_empty())
    {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    // Through the YAML library's own value, which refuses a key given twice (a JSON value
    // would keep the last one silently).
    let value: serde_yaml::Value = parse(path, text)?;
    serde_json::to_value(value).map_err(|error| YamlError {
        path: path.to_path_buf(),
        location: None,
        message: format!("{error}; keys must be text"),
    })
}

pub fn to_string<T: Serialize>(value: &T) -> String {
    serde_yaml::to_string(value).expect("plain data always serialises to YAML")
}

/// The 1-based line where a top-level `key:` is written, for errors about a key's value.
pub fn line_of_key(text: &str, key: &str) -> Option<usize> {
    without_bom(text)
        .lines()
        .position(|line| {
            let unquoted = line.trim_start_matches(['"', '\'']);
            !line.starts_with([' ', '\t'])
                && unquoted.starts_with(key)
                && unquoted[key.len()..]
                    .trim_start_matches(['"', '\''])
                    .trim_start()
                    .starts_with(':')
        })
        .map(|index| index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_line_of_a_top_level_key() {
        let text = "# comment\ntype: local\n  nested: 1\n\"pythonLocation\": python3\n";
        assert_eq!(line_of_key(text, "type"), Some(2));
        assert_eq!(line_of_key(text, "pythonLocation"), Some(4));
        assert_eq!(line_of_key(text, "nested"), None);
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_document() {
        let text = "\u{feff}Target: local\r\nFramework: Python\r\n";
        let value = parse_value(Path::new("a.yml"), text).unwrap();
        assert_eq!(value["Framework"], "Python");
        assert_eq!(line_of_key(text, "Target"), Some(1));
    }

    #[test]
    fn duplicates_and_lists_are_told_in_words_with_the_line() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Config {
            #[serde(rename = "Target")]
            target: Option<String>,
        }
        let error = parse::<Config>(Path::new("a.yml"), "# x\nTarget: a\nTarget: b\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "a.yml:3:1: `Target` is given more than once; keep one"
        );
        let error = parse::<Config>(Path::new("a.yml"), "- Target: a\n").unwrap_err();
        assert!(
            error.to_string().contains("found a list; expected a mapping"),
            "{error}"
        );
        assert!(!error.to_string().contains("struct"), "{error}");
        let error = parse_value(Path::new("a.yml"), "env:\n  A: 1\n  A: 2\n").unwrap_err();
        assert_eq!(error.location, Some((3, 1)), "{error}");
    }

    #[test]
    fn syntax_errors_carry_the_line() {
        let error = parse_value(Path::new("a.yml"), "a: 1\nb: [unclosed\n").unwrap_err();
        assert!(error.location.is_some(), "{error}");
        assert!(error.to_string().starts_with("a.yml:"), "{error}");
    }
}
