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
        }
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
