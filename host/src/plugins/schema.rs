//! What the host derives from a plugin's settings schema (plugin-api 1.1's `SettingSpec`s in
//! its description): validation of a target's settings before anything runs, which settings
//! are secrets, and how each is obtained. The host names no setting itself: a plugin that
//! declares nothing gets its settings passed through unchecked, as plugin-api 1.0 did.

use std::path::{Path, PathBuf};

use serde_json::Value;
use xp_plugin_api::{PluginDescription, SecretSource, SettingKind, SettingSpec, Settings, SECRET_REFERENCE_PREFIX};

/// A setting whose value does not fit the plugin's schema.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}{}: `{key}` {problem}, but {plugin} expects {expected}{}", file.display(), line.map(|l| format!(", line {l}")).unwrap_or_default(), doc.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
pub struct SettingError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: String,
    /// `is 5`, `is missing`.
    pub problem: String,
    /// `plugin 'docker'`.
    pub plugin: String,
    /// `true or false`.
    pub expected: String,
    pub doc: Option<String>,
}

/// How a value of `kind` reads to a user: `true or false`.
fn kind_words(kind: SettingKind) -> &'static str {
    match kind {
        SettingKind::String => "text",
        SettingKind::Boolean => "true or false",
        SettingKind::Integer => "a whole number",
        SettingKind::Number => "a number",
        SettingKind::Path => "a path (text)",
        SettingKind::List => "a list of text values",
        _ => "a value",
    }
}

/// Whether `value` is of `kind`, as a `.compute` file may write it (Workbench wrote booleans
/// and numbers as strings too).
fn fits(kind: SettingKind, value: &Value) -> bool {
    match (kind, value) {
        (SettingKind::String | SettingKind::Path, Value::String(_)) => true,
        (SettingKind::Boolean, Value::Bool(_)) => true,
        (SettingKind::Boolean, Value::String(text)) => {
            matches!(text.to_ascii_lowercase().as_str(), "true" | "false" | "yes" | "no")
        }
        (SettingKind::Integer, Value::Number(number)) => number.is_i64() || number.is_u64(),
        (SettingKind::Integer, Value::String(text)) => text.trim().parse::<i64>().is_ok(),
        (SettingKind::Number, Value::Number(_)) => true,
        (SettingKind::Number, Value::String(text)) => text.trim().parse::<f64>().is_ok(),
        (SettingKind::List, Value::Array(items)) => items.iter().all(Value::is_string),
        (SettingKind::String | SettingKind::Path | SettingKind::Boolean | SettingKind::Integer, _) => false,
        (SettingKind::Number | SettingKind::List, _) => false,
        _ => true,
    }
}

/// A value as the user wrote it, for messages.
fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => format!("\"{text}\""),
        other => other.to_string(),
    }
}

/// Checks `settings` (of the target in `file`, whose text `text` gives line numbers) against
/// the plugin's schema: every declared setting that is present has a value of its kind (and
/// one of its allowed values), and every required one is there. Undeclared keys pass: they are
/// the plugin's own, or Workbench's, and a plugin without a schema gets no checks.
pub fn validate(
    settings: &Settings,
    description: &PluginDescription,
    file: &Path,
    text: &str,
) -> Result<(), Box<SettingError>> {
    check(settings, description, file, Some(text), true)
}

/// [`validate`] of the settings of the file at `file`, which is read again (for the line
/// number) only when a setting does not fit: a submit that passes pays no second read.
pub fn validate_file(
    settings: &Settings,
    description: &PluginDescription,
    file: &Path,
) -> Result<(), Box<SettingError>> {
    check(settings, description, file, None, true).or_else(|_| {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        check(settings, description, file, Some(&text), true)
    })
}

/// [`validate`] for the settings a user gives at attach, before the plugin completes them:
/// those present must fit; required ones may still come from the plugin's defaults.
pub fn validate_given(
    settings: &Settings,
    description: &PluginDescription,
    file: &Path,
) -> Result<(), Box<SettingError>> {
    check(settings, description, file, None, false)
}

fn check(
    settings: &Settings,
    description: &PluginDescription,
    file: &Path,
    text: Option<&str>,
    require: bool,
) -> Result<(), Box<SettingError>> {
    let error = |spec: &SettingSpec, problem: String, expected: String| {
        Box::new(SettingError {
            file: file.to_path_buf(),
            line: text.and_then(|text| crate::project::yaml::line_of_key(text, &spec.key)),
            key: spec.key.clone(),
            problem,
            plugin: format!("plugin '{}'", description.name),
            expected,
            doc: (!spec.doc.is_empty()).then(|| spec.doc.clone()),
        })
    };
    for spec in &description.settings {
        let Some(value) = settings.get(&spec.key).filter(|value| !value.is_null()) else {
            if require && spec.required && spec.default.is_none() {
                return Err(error(spec, "is missing".to_owned(), expected_words(spec)));
            }
            continue;
        };
        if spec.secret.is_some() {
            // A secret setting holds a reference to the secret store; resolving it checks it.
            if matches!(value, Value::String(text) if text.starts_with(SECRET_REFERENCE_PREFIX)) {
                continue;
            }
        }
        if !fits(spec.kind, value) {
            return Err(error(spec, format!("is {}", shown(value)), expected_words(spec)));
        }
        if !spec.allowed.is_empty() && !spec.allowed.iter().any(|allowed| same_value(allowed, value)) {
            return Err(error(spec, format!("is {}", shown(value)), expected_words(spec)));
        }
    }
    Ok(())
}

/// `allowed` and `value` are the same setting value (`"Client"` is `client`, `"true"` is true).
fn same_value(allowed: &Value, value: &Value) -> bool {
    match (allowed, value) {
        (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
        (Value::Bool(a), Value::String(b)) => a.to_string().eq_ignore_ascii_case(b),
        (a, b) => a == b,
    }
}

/// What a setting expects, in words: its kind, or its allowed values.
pub fn expected_words(spec: &SettingSpec) -> String {
    if spec.allowed.is_empty() {
        kind_words(spec.kind).to_owned()
    } else {
        let values: Vec<String> = spec.allowed.iter().map(shown).collect();
        format!("one of {}", values.join(", "))
    }
}

/// The secret settings of a plugin's targets, with how each is obtained and its flag.
#[derive(Debug, Clone, Default)]
pub struct SecretSettings {
    settings: Vec<(String, SecretSource, Option<String>)>,
}

impl SecretSettings {
    pub fn of(description: &PluginDescription) -> SecretSettings {
        SecretSettings {
            settings: description
                .settings
                .iter()
                .filter_map(|spec| {
                    let flag = spec.flags.iter().find(|f| f.starts_with("--")).or(spec.flags.first());
                    Some((spec.key.clone(), spec.secret?, flag.cloned()))
                })
                .collect(),
        }
    }

    /// Whether `key` is a secret setting: its value is never shown nor written as it is.
    pub fn contains(&self, key: &str) -> bool {
        self.settings.iter().any(|(known, _, _)| known == key)
    }

    /// The attach flag that stores `key`'s secret again (`--password`), for messages.
    pub fn flag(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(known, _, _)| known == key)
            .and_then(|(_, _, flag)| flag.as_deref())
    }

    /// How `key`'s secret is obtained.
    pub fn source(&self, key: &str) -> Option<SecretSource> {
        self.settings
            .iter()
            .find(|(known, _, _)| known == key)
            .map(|(_, source, _)| *source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn description() -> PluginDescription {
        PluginDescription::new("demo", "1.0.0", &["demo"])
            .setting(SettingSpec::new("shared", SettingKind::Boolean, "share it").default_value(true))
            .setting(SettingSpec::new("python", SettingKind::String, "the interpreter"))
            .setting(SettingSpec::new("address", SettingKind::String, "where").required())
            .setting(SettingSpec::new("retries", SettingKind::Integer, "how often"))
            .setting(SettingSpec::new("mode", SettingKind::String, "how").allowed(["client"]))
            .setting(SettingSpec::new("password", SettingKind::String, "secret").secret(SecretSource::Prompted))
    }

    fn check(yaml: &str) -> Result<(), Box<SettingError>> {
        let settings: Settings = serde_yaml::from_str(yaml).unwrap();
        validate(&settings, &description(), Path::new("aml_config/t.compute"), yaml)
    }

    #[test]
    fn values_of_the_declared_kinds_pass() {
        check("address: h\nshared: true\npython: python3\nretries: 3\nmode: Client\nother: [1, 2]\n").unwrap();
        check("address: h\nshared: \"false\"\nretries: \"7\"\npassword: \"secret:t-password-1\"\n").unwrap();
    }

    #[test]
    fn a_wrong_kind_names_the_file_line_key_and_what_was_expected() {
        let error = check("address: h\nshared: 5\n").unwrap_err().to_string();
        assert_eq!(
            error,
            "aml_config/t.compute, line 2: `shared` is 5, but plugin 'demo' expects true or false (share it)"
        );
        let error = check("address: h\npython: [1, 2]\n").unwrap_err().to_string();
        assert!(
            error.contains("line 2: `python` is [1,2], but plugin 'demo' expects text"),
            "{error}"
        );
        let error = check("address: h\nmode: cluster\n").unwrap_err().to_string();
        assert!(
            error.contains("`mode` is \"cluster\", but plugin 'demo' expects one of \"client\""),
            "{error}"
        );
        let error = check("shared: true\n").unwrap_err().to_string();
        assert!(
            error.contains("`address` is missing, but plugin 'demo' expects text"),
            "{error}"
        );
    }

    #[test]
    fn secret_settings_are_known_with_their_flags() {
        let mut description = description();
        description.settings.push(
            SettingSpec::new("key", SettingKind::String, "made")
                .secret(SecretSource::Generated)
                .flags(&["-k", "--make-key"]),
        );
        let secrets = SecretSettings::of(&description);
        assert!(secrets.contains("password") && secrets.contains("key") && !secrets.contains("python"));
        assert_eq!(secrets.flag("key"), Some("--make-key"));
        assert_eq!(secrets.source("key"), Some(SecretSource::Generated));
    }
}
