//! Settings as they are shown (`xp computetarget show`, the web view's targets page): a secret
//! written into a `.compute` file by hand never is.

use serde_json::Value;
use xp_plugin_api::{PluginDescription, Settings, SECRET_REFERENCE_PREFIX};

use super::MASK;
use crate::plugins::schema::SecretSettings;

/// Settings for display: a secret written into the file by hand shows as `****`. Which
/// settings are secrets is the plugin's to say; without its description (the plugin cannot
/// be loaded), any text that is not a reference and sits under a name that says secret is
/// masked, to be safe.
pub fn masked_settings(settings: &Settings, description: Option<&PluginDescription>) -> Settings {
    let secret_settings = description.map(SecretSettings::of);
    let is_secret = |key: &str| match &secret_settings {
        Some(known) => known.contains(key),
        None => {
            let key = key.to_ascii_lowercase();
            ["password", "passphrase", "secret", "token", "privatekey"]
                .iter()
                .any(|word| key.contains(word))
                && !key.ends_with("file")
        }
    };
    settings
        .iter()
        .map(|(key, value)| match value {
            Value::String(text) if is_secret(key) && !text.is_empty() && !text.starts_with(SECRET_REFERENCE_PREFIX) => {
                (key.clone(), Value::String(MASK.to_owned()))
            }
            other => (key.clone(), other.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use xp_plugin_api::{SecretSource, SettingKind, SettingSpec};

    use super::*;

    #[test]
    fn literal_secrets_are_masked_for_display() {
        let mut settings = Settings::new();
        settings.insert("password".into(), Value::String("hunter2".into()));
        settings.insert("token".into(), Value::String("t0k3n".into()));
        settings.insert("privateKey".into(), Value::String("secret:x".into()));
        settings.insert("username".into(), Value::String("u".into()));
        let description = PluginDescription::new("demo", "1", &["demo"])
            .setting(SettingSpec::new("token", SettingKind::String, "a token").secret(SecretSource::Prompted));
        let shown = masked_settings(&settings, Some(&description));
        assert_eq!(shown["token"], MASK, "the plugin says token is a secret");
        assert_eq!(shown["password"], "hunter2", "not a secret of this plugin");
        assert_eq!(shown["privateKey"], "secret:x");
        // Without the plugin, names that say secret are masked to be safe.
        let shown = masked_settings(&settings, None);
        assert_eq!(shown["password"], MASK);
        assert_eq!(shown["token"], MASK);
        assert_eq!(shown["username"], "u");
    }
}
