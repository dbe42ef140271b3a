//! What a plugin says about its targets' settings, so the host can derive everything else from
//! it: `xp computetarget attach TYPE` flags and `--help`, validation of `.compute` files before
//! anything runs, secret handling and masking, `xp computetarget show`, and `xp init`'s targets.
//! Since plugin-api 1.1; a plugin that declares nothing gets `--set key=value` and no checks.

use serde::{Deserialize, Serialize};

/// The type of a setting's value, as the `.compute` file's YAML holds it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SettingKind {
    /// Any text.
    #[default]
    String,
    /// `true` or `false` (Workbench also wrote `"true"` and `"false"`).
    Boolean,
    /// A whole number (or one written as digits in a string).
    Integer,
    /// A number.
    Number,
    /// A path; relative paths given on the command line are made absolute at attach.
    Path,
    /// A list of text values.
    List,
    /// A kind from a newer plugin-api: the host does not check its values.
    #[serde(other)]
    Other,
}

impl SettingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SettingKind::String => "string",
            SettingKind::Boolean => "boolean",
            SettingKind::Integer => "integer",
            SettingKind::Number => "number",
            SettingKind::Path => "path",
            SettingKind::List => "list",
            SettingKind::Other => "value",
        }
    }
}

/// How the value of a secret setting is obtained. The `.compute` file only ever holds a
/// reference to the user's secret store (`secret:<id>`); the plugin gets the value in
/// `request.context.secrets[key]`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SecretSource {
    /// Typed by the user: read from the terminal without echo (or the first line of standard
    /// input) when the setting's flag is given. A password, a key's passphrase.
    Prompted,
    /// Made by the plugin at attach when the setting's flag is given: the host asks for it in
    /// `AttachRequest::generate`, and the plugin returns it with `AttachReply::secret`. An SSH
    /// key pair.
    Generated,
    /// A source from a newer plugin-api: treated as `Prompted`.
    #[serde(other)]
    Other,
}

/// One setting of a target type.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SettingSpec {
    /// The key as the `.compute` file spells it (`address`, `baseDockerImage`).
    pub key: String,
    #[serde(default = "default_kind")]
    pub kind: SettingKind,
    /// One line for `--help` and `xp computetarget show`.
    #[serde(default)]
    pub doc: String,
    /// The value attach writes when the user gives none.
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    /// Whether a target must have it (after defaults).
    #[serde(default)]
    pub required: bool,
    /// The values it may take; empty for any value of its kind.
    #[serde(default)]
    pub allowed: Vec<serde_json::Value>,
    /// Set for a secret: how its value is obtained.
    #[serde(default)]
    pub secret: Option<SecretSource>,
    /// Workbench-style command-line flags of `xp computetarget attach` for it (`--address`,
    /// `-u`, `--username`). A boolean setting's flag sets it to true; a secret's flag asks for it
    /// (prompted or generated); any other flag takes the value.
    #[serde(default)]
    pub flags: Vec<String>,
}

fn default_kind() -> SettingKind {
    SettingKind::String
}

impl SettingSpec {
    /// A setting `key` of `kind`, documented by `doc`.
    pub fn new(key: &str, kind: SettingKind, doc: &str) -> Self {
        SettingSpec {
            key: key.to_owned(),
            kind,
            doc: doc.to_owned(),
            ..SettingSpec::default()
        }
    }

    /// Attach writes `value` when the user gives none.
    pub fn default_value(mut self, value: impl Into<serde_json::Value>) -> Self {
        self.default = Some(value.into());
        self
    }

    /// A target must have it.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// It may only take one of `values`.
    pub fn allowed<V: Into<serde_json::Value>>(mut self, values: impl IntoIterator<Item = V>) -> Self {
        self.allowed = values.into_iter().map(Into::into).collect();
        self
    }

    /// It is a secret, obtained as `source` says.
    pub fn secret(mut self, source: SecretSource) -> Self {
        self.secret = Some(source);
        self
    }

    /// Its command-line flags for `xp computetarget attach` (`"--address"`, `"-k"`).
    pub fn flags(mut self, flags: &[&str]) -> Self {
        self.flags = flags.iter().map(|flag| (*flag).to_owned()).collect();
        self
    }
}

/// A target `xp init` writes for this type, when the plugin offers one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TargetTemplate {
    /// The target's name (`local`, `docker`): `aml_config/<name>.compute`.
    pub name: String,
    /// The target type it has.
    pub target_type: String,
    /// The `.compute` file's text, comments included.
    pub compute: String,
    /// Keys of the run configuration besides the host's defaults (`Framework`,
    /// `PrepareEnvironment`).
    #[serde(default)]
    pub runconfig: crate::Settings,
    /// Whether `xp init` writes it by default (the local target) or only when asked.
    #[serde(default)]
    pub by_default: bool,
}

impl TargetTemplate {
    /// A template for target `name` of `target_type` with this `.compute` text.
    pub fn new(name: &str, target_type: &str, compute: &str) -> Self {
        TargetTemplate {
            name: name.to_owned(),
            target_type: target_type.to_owned(),
            compute: compute.to_owned(),
            ..TargetTemplate::default()
        }
    }

    /// Also writes `key: value` into the target's run configuration.
    pub fn runconfig(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.runconfig.insert(key.to_owned(), value.into());
        self
    }

    /// `xp init` writes it without being asked.
    pub fn by_default(mut self) -> Self {
        self.by_default = true;
        self
    }
}
