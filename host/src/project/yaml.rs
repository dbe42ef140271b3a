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

/// Parses `text` (the contents of `path`) into `T`.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, YamlError> {
    serde_yaml::from_str(text).map_err(|error| YamlError {
        path: path.to_path_buf(),
        location: error.location().map(|at| (at.line(), at.column())),
        message: error
            .to_string()
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_owned(),
    })
}

/// Parses `text` into a JSON value; an empty document is an empty mapping.
pub fn parse_value(path: &Path, text: &str) -> Result<serde_json::Value, YamlError> {
    if text.trim().is_empty()
        || text
            .lines()
            .all(|line| line.trim_start().starts_with('#') || line.trim().is_empty())
    {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    parse(path, text)
}

pub fn to_string<T: Serialize>(value: &T) -> String {
    serde_yaml::to_string(value).expect("plain data always serialises to YAML")
}

/// The 1-based line where a top-level `key:` is written, for errors about a key's value.
pub fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
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
    fn syntax_errors_carry_the_line() {
        let error = parse_value(Path::new("a.yml"), "a: 1\nb: [unclosed\n").unwrap_err();
        assert!(error.location.is_some(), "{error}");
        assert!(error.to_string().starts_with("a.yml:"), "{error}");
    }
}
