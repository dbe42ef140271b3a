use serde::{Deserialize, Serialize};

/// What a plugin says about itself, from `describe`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PluginDescription {
    pub name: String,
    pub version: String,
    /// The plugin-api version the plugin was built against.
    pub api_version: String,
    /// The target types it serves (`local`, `docker`, ...).
    pub target_types: Vec<String>,
    /// The verbs its `call` answers: every verb of the plugin-api it was built against.
    #[serde(default)]
    pub verbs: Vec<String>,
    /// The settings of its targets, from which the host derives attach flags, validation,
    /// help and secret handling. Since 1.1; empty from older plugins (anything goes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<super::SettingSpec>,
    /// Targets `xp init` can write for its types. Since 1.1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<super::TargetTemplate>,
}

impl PluginDescription {
    /// A plugin's description, with the plugin-api version it is being built against and the
    /// verbs that version has: `PluginDescription::new("local", env!("CARGO_PKG_VERSION"),
    /// &["local"])`.
    pub fn new(name: &str, version: &str, target_types: &[&str]) -> Self {
        PluginDescription {
            name: name.to_owned(),
            version: version.to_owned(),
            api_version: crate::API_VERSION.to_owned(),
            target_types: target_types.iter().map(|t| (*t).to_owned()).collect(),
            verbs: crate::protocol::verbs::ALL.iter().map(|v| (*v).to_owned()).collect(),
            settings: Vec::new(),
            templates: Vec::new(),
        }
    }

    /// Declares a setting of its targets (since 1.1).
    pub fn setting(mut self, spec: super::SettingSpec) -> Self {
        self.settings.push(spec);
        self
    }

    /// Offers a target for `xp init` (since 1.1).
    pub fn template(mut self, template: super::TargetTemplate) -> Self {
        self.templates.push(template);
        self
    }

    /// The declared setting `key`, if any.
    pub fn setting_spec(&self, key: &str) -> Option<&super::SettingSpec> {
        self.settings.iter().find(|spec| spec.key == key)
    }

    /// Whether the plugin answers `verb`.
    pub fn answers(&self, verb: &str) -> bool {
        self.verbs.iter().any(|known| known == verb)
    }

    /// Whether the plugin serves `target_type` (compared without regard to case).
    pub fn serves(&self, target_type: &str) -> bool {
        self.target_types.iter().any(|t| t.eq_ignore_ascii_case(target_type))
    }
}
