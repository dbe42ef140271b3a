//! The documents that cross the boundary, as JSON.
//!
//! Evolution rule: add fields, never remove or retype one. A new field carries
//! `#[serde(default)]` so that a request from an older host still parses, and readers ignore
//! keys they do not know, so an older plugin reads a newer host's request.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A JSON object: the settings of a target as its `.compute` file holds them.
pub type Settings = serde_json::Map<String, serde_json::Value>;

/// The prefix of a setting value that refers to the user's secret store instead of holding a
/// secret: `password: "secret:<id>"`.
pub const SECRET_REFERENCE_PREFIX: &str = "secret:";

/// Lines that xp's Python helpers print on standard output to report a metric start with this
/// prefix (an ASCII record separator, then a tag), followed by a JSON object
/// `{"name": ..., "value": ...}`. The host turns them into metrics and keeps them out of the
/// log, whatever the target, so plugins only need to stream stdout faithfully.
pub const METRIC_LINE_PREFIX: &str = "\u{1e}xp-metric ";

/// What a plugin says about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PluginDescription {
    pub name: String,
    pub version: String,
    /// The plugin-api version the plugin was built with.
    pub api_version: String,
    /// The target types it serves (`local`, `docker`, ...).
    pub target_types: Vec<String>,
}

impl PluginDescription {
    /// A plugin's description, with the plugin-api version it is being built against:
    /// `PluginDescription::new("local", env!("CARGO_PKG_VERSION"), &["local"])`.
    pub fn new(name: &str, version: &str, target_types: &[&str]) -> Self {
        PluginDescription {
            name: name.to_owned(),
            version: version.to_owned(),
            api_version: crate::API_VERSION.to_owned(),
            target_types: target_types.iter().map(|t| (*t).to_owned()).collect(),
        }
    }
}

/// A compute target: its name (the `.compute` file's stem), type, and every key of the file.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Target {
    pub name: String,
    #[serde(rename = "type")]
    pub target_type: String,
    pub settings: Settings,
}

impl Target {
    /// A string setting, if present and a string.
    pub fn setting_str(&self, key: &str) -> Option<&str> {
        self.settings.get(key).and_then(|value| value.as_str())
    }

    /// A boolean setting; Workbench wrote both `true` and `"true"`.
    pub fn setting_bool(&self, key: &str) -> Option<bool> {
        match self.settings.get(key)? {
            serde_json::Value::Bool(value) => Some(*value),
            serde_json::Value::String(text) => match text.to_ascii_lowercase().as_str() {
                "true" | "yes" => Some(true),
                "false" | "no" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }
}

/// The project's dependency files: their paths relative to the project (and so to the
/// snapshot), and their contents as the host read them, so plugins need no YAML parser.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Dependencies {
    /// `conda_dependencies.yml`, when the run configuration names one that exists.
    #[serde(default)]
    pub conda: Option<PathBuf>,
    /// `spark_dependencies.yml`, when the run configuration names one that exists.
    #[serde(default)]
    pub spark: Option<PathBuf>,
    /// Conda package specs of the conda file (`python=3.6`, `scikit-learn`), without `pip`.
    #[serde(default)]
    pub conda_packages: Vec<String>,
    /// The conda file's `pip:` list, as written (names, specs, URLs, or wheel paths relative
    /// to the project).
    #[serde(default)]
    pub pip_packages: Vec<String>,
    /// The conda file's `channels`.
    #[serde(default)]
    pub channels: Vec<String>,
    /// The Spark file's `configuration` (Spark settings, e.g. `spark.executor.memory`).
    #[serde(default)]
    pub spark_configuration: BTreeMap<String, String>,
    /// The Spark file's `repositories` (Maven repository URLs).
    #[serde(default)]
    pub spark_repositories: Vec<String>,
    /// The Spark file's `packages` as `group:artifact:version` coordinates.
    #[serde(default)]
    pub spark_packages: Vec<String>,
}

/// `xp computetarget attach TYPE --name N ...`: validate the settings, fill defaults, set up
/// access.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct AttachRequest {
    pub project_dir: PathBuf,
    /// Type, name and the settings given on the command line (Workbench key names).
    pub target: Target,
    /// A folder of the user's (outside the project) where the plugin may keep state.
    #[serde(default)]
    pub state_dir: PathBuf,
    /// Secrets of the target, resolved by the host from the references its settings hold
    /// (`password: "secret:<id>"` gives `secrets["password"]`). Only in memory: never write
    /// them to a file, a log or a message. Since 0.1.1.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
    /// xp's configuration folder of this user (SSH `known_hosts` lives here). Since 0.1.1.
    #[serde(default)]
    pub user_config_dir: PathBuf,
}

/// The completed settings to write to `N.compute`, and what to tell the user.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct AttachReply {
    pub settings: Settings,
    /// Keys to write to `N.runconfig` besides the host's defaults (e.g. `Framework`).
    #[serde(default)]
    pub runconfig: Settings,
    #[serde(default)]
    pub messages: Vec<String>,
    /// Secrets for the host to keep in the user's secret store (e.g. a private key the plugin
    /// generated), by setting name: the host stores each and writes a reference to it under
    /// that name in `N.compute`. Since 0.1.1.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
}

/// `xp experiment prepare`, or the preparation step of a run with `PrepareEnvironment: true`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct PrepareRequest {
    pub project_dir: PathBuf,
    /// The project folder's name. Since 0.1.1.
    #[serde(default)]
    pub project_name: String,
    pub target: Target,
    #[serde(default)]
    pub dependencies: Dependencies,
    /// `Python` or `PySpark`.
    #[serde(default)]
    pub framework: String,
    #[serde(default)]
    pub state_dir: PathBuf,
    /// Secrets of the target, resolved by the host from the references its settings hold
    /// (`password: "secret:<id>"` gives `secrets["password"]`). Only in memory: never write
    /// them to a file, a log or a message. Since 0.1.1.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
    /// xp's configuration folder of this user (SSH `known_hosts` lives here). Since 0.1.1.
    #[serde(default)]
    pub user_config_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct PrepareReply {
    /// True when an existing environment was reused and nothing was built.
    pub cached: bool,
    #[serde(default)]
    pub messages: Vec<String>,
}

/// `xp experiment clean`: remove what the plugin built for this project and target. Since 0.1.1.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct CleanRequest {
    pub project_dir: PathBuf,
    pub project_name: String,
    pub target: Target,
    #[serde(default)]
    pub state_dir: PathBuf,
    /// Secrets of the target, resolved by the host from the references its settings hold
    /// (`password: "secret:<id>"` gives `secrets["password"]`). Only in memory: never write
    /// them to a file, a log or a message. Since 0.1.1.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
    /// xp's configuration folder of this user (SSH `known_hosts` lives here). Since 0.1.1.
    #[serde(default)]
    pub user_config_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct CleanReply {
    /// What was removed (image tags, folders), one entry each.
    #[serde(default)]
    pub removed: Vec<String>,
    #[serde(default)]
    pub messages: Vec<String>,
}

/// Run a snapshot of the project.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct RunRequest {
    /// `<project>_<epoch-ms>`.
    pub run_id: String,
    pub run_number: u64,
    pub project_name: String,
    /// The project folder itself (for targets that mount it, e.g. `sharedVolumes`).
    pub project_dir: PathBuf,
    /// A private copy of the project for this run; the working directory of the script.
    pub snapshot_dir: PathBuf,
    /// Where the files the script wrote to `outputs/` must end up.
    pub artifacts_dir: PathBuf,
    /// xp's Python helpers (`azureml.logging`, `xp_logging`): put this folder on `PYTHONPATH`
    /// (copy it along on remote targets).
    pub support_dir: PathBuf,
    /// The script, relative to the snapshot.
    pub script: String,
    /// The argument vector after the interpreter: `ArgumentVector` with `$file` replaced by the
    /// script, then the arguments given on the command line.
    pub arguments: Vec<String>,
    /// `EnvironmentVariables` of the run configuration, plus the variables xp sets for every
    /// run (`AZUREML_RUN_ID`, ...).
    pub environment: BTreeMap<String, String>,
    /// `Python` or `PySpark`.
    pub framework: String,
    pub target: Target,
    #[serde(default)]
    pub dependencies: Dependencies,
    /// Prepare the environment first when it is not ready (`PrepareEnvironment: true`).
    #[serde(default)]
    pub prepare_environment: bool,
    /// A folder of the user's (outside the project) where the plugin may cache environments.
    #[serde(default)]
    pub state_dir: PathBuf,
    /// Secrets of the target, resolved by the host from the references its settings hold
    /// (`password: "secret:<id>"` gives `secrets["password"]`). Only in memory: never write
    /// them to a file, a log or a message. Since 0.1.1.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
    /// xp's configuration folder of this user (SSH `known_hosts` lives here). Since 0.1.1.
    #[serde(default)]
    pub user_config_dir: PathBuf,
    /// The snapshot's manifest, a text file listing every path of `snapshot_dir` with its
    /// SHA-256 (`f <sha256> <mode> <size> <path>` lines; see PLUGINS.md), so a plugin that
    /// sends the snapshot elsewhere need not hash it again. Absent from older hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_manifest: Option<PathBuf>,
}

/// How a run ended, as far as the plugin knows.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct RunOutcome {
    /// The script's exit code; on Unix a script killed by signal N reports 128 + N.
    pub exit_code: i32,
    /// True when the run stopped because the host cancelled it.
    #[serde(default)]
    pub canceled: bool,
}

/// The life of a run.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub enum RunStatus {
    Queued,
    Preparing,
    Running,
    Completed,
    Failed,
    Canceled,
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Queued,
        RunStatus::Preparing,
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "Queued",
            RunStatus::Preparing => "Preparing",
            RunStatus::Running => "Running",
            RunStatus::Completed => "Completed",
            RunStatus::Failed => "Failed",
            RunStatus::Canceled => "Canceled",
        }
    }

    /// Parses a status name, ignoring case.
    pub fn parse(text: &str) -> Option<RunStatus> {
        RunStatus::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(text))
    }

    pub fn is_final(self) -> bool {
        matches!(self, RunStatus::Completed | RunStatus::Failed | RunStatus::Canceled)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
