//! The `.compute` file as attach writes it, the settings and secrets a user types, and the
//! check that a plugin returned no secret among the settings.

use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Context};
use serde_json::Value;
use xp_plugin_api::Settings;

use crate::project::yaml;
use crate::secrets::{self, Redactor};

/// A `--set key=value`: the value is read as YAML so `true` and `3` keep their types.
pub fn parse_setting(text: &str) -> anyhow::Result<(String, Value)> {
    let Some((key, value)) = text.split_once('=') else {
        bail!("--set {text}: expected KEY=VALUE, e.g. --set sharedVolumes=true");
    };
    let key = key.trim();
    if key.is_empty() {
        bail!("--set {text}: the key is empty; expected KEY=VALUE");
    }
    let parsed = yaml::parse_value(std::path::Path::new("--set"), value)
        .ok()
        .filter(|v| !v.is_object() || value.trim().is_empty())
        .unwrap_or_else(|| Value::String(value.to_owned()));
    let parsed = if value.trim().is_empty() {
        Value::String(String::new())
    } else {
        parsed
    };
    Ok((key.to_owned(), parsed))
}

/// The `.compute` text: `type` first, then the other keys, then the references to secrets,
/// quoted so they read as the strings they are: `password: "secret:<id>"`.
pub fn compute_file_text(target_type: &str, settings: &Settings) -> String {
    let mut rest = settings.clone();
    rest.remove("type");
    let references = secrets::references(&rest);
    for (key, _) in &references {
        rest.remove(key);
    }
    let mut text = format!(
        "# Compute target written by `xp computetarget attach`.\ntype: {}\n",
        yaml::to_string(&target_type).trim_end()
    );
    if !rest.is_empty() {
        text.push_str(&yaml::to_string(&rest));
    }
    if !references.is_empty() {
        text.push_str("# Secrets live in your secret store (outside the project); these name them.\n");
        for (key, id) in references {
            // Ids are letters, digits, '-', '_' and '.': nothing to escape inside the quotes.
            text.push_str(&format!(
                "{}: \"{}\"\n",
                yaml::to_string(&key).trim_end(),
                id.reference()
            ));
        }
    }
    text
}

/// Reads a secret the user types: from the terminal without echo, or the first line of
/// standard input when it is not a terminal (scripts pipe it). Never from the command line.
pub fn read_secret(what: &str, flag: &str, prompt: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let text = if stdin.is_terminal() {
        rpassword::prompt_password(prompt).with_context(|| format!("reading the {what} from the terminal"))?
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .with_context(|| format!("reading the {what} from standard input"))?;
        line
    };
    let text = text.trim_end_matches(['\n', '\r']).to_owned();
    if text.is_empty() {
        bail!(
            "{flag}: no {what} was given; type it at the prompt, or pipe it as the first line of standard input (e.g. `printf '%s\\n' \"$SECRET\" | xp computetarget attach ... {flag}`)"
        );
    }
    Ok(text)
}

/// Whether a setting value (at any depth) holds one of the secrets: equal to one, or, for
/// secrets long enough not to match by chance, containing one.
pub fn reveals_secret(value: &Value, secrets: &[&str], long_ones: &Redactor) -> bool {
    match value {
        Value::String(text) => {
            let trimmed = text.trim_end_matches(['\n', '\r']);
            secrets
                .iter()
                .any(|secret| trimmed == secret.trim_end_matches(['\n', '\r']))
                || long_ones.reveals(text)
        }
        Value::Array(items) => items.iter().any(|item| reveals_secret(item, secrets, long_ones)),
        Value::Object(map) => map.values().any(|item| reveals_secret(item, secrets, long_ones)),
        _ => false,
    }
}

/// Shortest secret that a setting is checked to contain (shorter ones only to equal).
pub const MIN_CONTAINED_SECRET: usize = 8;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn settings_keep_their_yaml_types() {
        assert_eq!(parse_setting("sharedVolumes=true").unwrap().1, Value::Bool(true));
        assert_eq!(parse_setting("port=22").unwrap().1, serde_json::json!(22));
        assert_eq!(parse_setting("image=a:b").unwrap().1, Value::String("a:b".into()));
        assert_eq!(parse_setting("empty=").unwrap().1, Value::String(String::new()));
        assert!(parse_setting("novalue").is_err());
    }

    #[test]
    fn compute_files_start_with_the_type_and_read_back() {
        let mut settings = Settings::new();
        settings.insert("type".into(), Value::String("docker".into()));
        settings.insert("sharedVolumes".into(), Value::Bool(true));
        let text = compute_file_text("docker", &settings);
        let body: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(body[0], "type: docker");
        let back = crate::project::ComputeTarget::parse("d", std::path::Path::new("d.compute"), &text).unwrap();
        assert_eq!(back.settings["sharedVolumes"], Value::Bool(true));
    }

    #[test]
    fn secret_references_are_written_quoted_and_read_back() {
        let mut settings = Settings::new();
        settings.insert("address".into(), Value::String("h:22".into()));
        settings.insert("password".into(), Value::String("secret:gpu-password-0a1b2c3d".into()));
        settings.insert("privateKeyFile".into(), Value::String("/home/u/.ssh/id".into()));
        let text = compute_file_text("remote", &settings);
        assert!(
            text.contains("\npassword: \"secret:gpu-password-0a1b2c3d\"\n"),
            "{text}"
        );
        let back = crate::project::ComputeTarget::parse("gpu", Path::new("gpu.compute"), &text).unwrap();
        assert_eq!(back.settings.len(), 4);
        assert_eq!(back.settings["password"], "secret:gpu-password-0a1b2c3d");
    }

    #[test]
    fn a_setting_that_holds_a_secret_is_found_at_any_depth() {
        let secrets = ["hunter2", "a-much-longer-secret"];
        let long_ones = Redactor::new(&["a-much-longer-secret".to_owned()]);
        let reveals = |value: Value| reveals_secret(&value, &secrets, &long_ones);
        assert!(reveals(Value::String("hunter2".into())));
        assert!(reveals(serde_json::json!({"nested": ["x", "hunter2\n"]})));
        assert!(reveals(Value::String("user:a-much-longer-secret@host".into())));
        // A short secret only when equal: it may occur in ordinary words by chance.
        assert!(!reveals(Value::String("hunter22".into())));
        assert!(!reveals(serde_json::json!(22)));
    }
}
