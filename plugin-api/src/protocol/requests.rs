use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Dependencies, Settings, Target};

/// What every request carries: the project, the target, the plugin's folders and the target's
/// secrets. Flattened into each request's JSON (its keys sit beside the request's own).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct RequestContext {
    /// The host's plugin-api version (`1.0.0`): a newer plugin may use it to tell which verbs,
    /// events and fields the host knows.
    #[serde(default)]
    pub host_api_version: String,
    /// The project folder. Read-only for plugins: runs execute a snapshot.
    pub project_dir: PathBuf,
    /// The project folder's name.
    #[serde(default)]
    pub project_name: String,
    /// The target: name, type, and every key of its `.compute` file.
    pub target: Target,
    /// A folder of the user's (outside the project) where the plugin may keep state between
    /// calls (built environments, caches): `$XP_HOME/cache/plugins/<name>/` or
    /// `~/.cache/xp/plugins/<name>/`. It may not exist yet.
    #[serde(default)]
    pub state_dir: PathBuf,
    /// xp's configuration folder of this user (SSH `known_hosts` lives here).
    #[serde(default)]
    pub user_config_dir: PathBuf,
    /// Secrets of the target, resolved by the host from the references its settings hold
    /// (`password: "secret:<id>"` gives `secrets["password"]`). Only in memory: never write
    /// them to a file, a log or a message.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
}

/// `attach`: validate a new target's settings, fill defaults, set up access.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct AttachRequest {
    /// The target's settings are those given on the command line (Workbench key names).
    #[serde(flatten)]
    pub context: RequestContext,
    /// Secret settings (declared [`crate::SecretSource::Generated`]) the user asked the plugin
    /// to make now, by key (`privateKey` for `-k`): return each with
    /// [`AttachReply::secret`]. Since 1.1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generate: Vec<String>,
}

/// The completed settings to write to `N.compute`, and what to tell the user.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[non_exhaustive]
pub struct AttachReply {
    pub settings: Settings,
    /// Keys to write to `N.runconfig` besides the host's defaults (e.g. `Framework`).
    #[serde(default)]
    pub runconfig: Settings,
    #[serde(default)]
    pub messages: Vec<String>,
    /// Secrets for the host to keep in the user's secret store (e.g. a private key the plugin
    /// generated), by setting name: the host stores each and writes a reference to it under
    /// that name in `N.compute`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
}

impl AttachReply {
    /// A reply writing `settings` to the `.compute` file.
    pub fn new(settings: Settings) -> Self {
        AttachReply {
            settings,
            ..AttachReply::default()
        }
    }

    /// Also writes `key: value` to the target's `.runconfig`.
    pub fn runconfig(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.runconfig.insert(key.to_owned(), value.into());
        self
    }

    /// Also tells the user `message`.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.messages.push(message.into());
        self
    }

    /// Also tells the user each of `messages`.
    pub fn messages<M: Into<String>>(mut self, messages: impl IntoIterator<Item = M>) -> Self {
        self.messages.extend(messages.into_iter().map(Into::into));
        self
    }

    /// Asks the host to keep `value` in the secret store under the setting `name`.
    pub fn secret(mut self, name: &str, value: impl Into<String>) -> Self {
        self.secrets.insert(name.to_owned(), value.into());
        self
    }
}

/// `prepare`: build or check the target's environment ahead of a run.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct PrepareRequest {
    #[serde(flatten)]
    pub context: RequestContext,
    #[serde(default)]
    pub dependencies: Dependencies,
    /// `Python` or `PySpark`.
    #[serde(default)]
    pub framework: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[non_exhaustive]
pub struct PrepareReply {
    /// True when an existing environment was reused and nothing was built.
    pub cached: bool,
    #[serde(default)]
    pub messages: Vec<String>,
}

impl PrepareReply {
    /// `cached`: true when an existing environment was reused and nothing was built.
    pub fn new(cached: bool) -> Self {
        PrepareReply {
            cached,
            messages: Vec::new(),
        }
    }

    /// Nothing had to be built.
    pub fn cached() -> Self {
        PrepareReply {
            cached: true,
            messages: Vec::new(),
        }
    }

    /// The environment was built now.
    pub fn built() -> Self {
        PrepareReply {
            cached: false,
            messages: Vec::new(),
        }
    }

    /// Also tells the user `message`.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.messages.push(message.into());
        self
    }

    /// Also tells the user each of `messages`.
    pub fn messages<M: Into<String>>(mut self, messages: impl IntoIterator<Item = M>) -> Self {
        self.messages.extend(messages.into_iter().map(Into::into));
        self
    }
}

/// `clean`: remove what the plugin built for this project and target.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct CleanRequest {
    #[serde(flatten)]
    pub context: RequestContext,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[non_exhaustive]
pub struct CleanReply {
    /// What was removed (image tags, folders), one entry each.
    #[serde(default)]
    pub removed: Vec<String>,
    #[serde(default)]
    pub messages: Vec<String>,
}

impl CleanReply {
    /// Nothing removed yet.
    pub fn new() -> Self {
        CleanReply::default()
    }

    /// Records that `what` was removed.
    pub fn removed(mut self, what: impl Into<String>) -> Self {
        self.removed.push(what.into());
        self
    }

    /// Records that each of `removed` was removed.
    pub fn removed_all<R: Into<String>>(mut self, removed: impl IntoIterator<Item = R>) -> Self {
        self.removed.extend(removed.into_iter().map(Into::into));
        self
    }

    /// Also tells the user `message`.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.messages.push(message.into());
        self
    }

    /// Also tells the user each of `messages`.
    pub fn messages<M: Into<String>>(mut self, messages: impl IntoIterator<Item = M>) -> Self {
        self.messages.extend(messages.into_iter().map(Into::into));
        self
    }
}

/// `reap`: the driver of a run (an attached `xp` or a supervisor) ended without recording an
/// outcome (kill -9, a reboot, a plugin that ended the process); end whatever the run left
/// on the target (a container, a remote process group, a Spark application) and remove its
/// leftovers. Since 1.1.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct ReapRequest {
    #[serde(flatten)]
    pub context: RequestContext,
    /// The run's id and number, as the run's `RunRequest` had them.
    pub run_id: String,
    pub run_number: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[non_exhaustive]
pub struct ReapReply {
    /// What was ended or removed (a container id, `process group 1234 on HOST`), one entry each.
    #[serde(default)]
    pub ended: Vec<String>,
    #[serde(default)]
    pub messages: Vec<String>,
}

impl ReapReply {
    /// Nothing ended yet.
    pub fn new() -> Self {
        ReapReply::default()
    }

    /// Records that `what` was ended.
    pub fn ended(mut self, what: impl Into<String>) -> Self {
        self.ended.push(what.into());
        self
    }

    /// Also tells the user `message`.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.messages.push(message.into());
        self
    }
}

/// `run`: run a snapshot of the project.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct RunRequest {
    #[serde(flatten)]
    pub context: RequestContext,
    /// `<project>_<epoch-ms>`.
    pub run_id: String,
    pub run_number: u64,
    /// A private copy of the project for this run; the working directory of the script.
    pub snapshot_dir: PathBuf,
    /// Where the files the script wrote to `outputs/` must end up. The host creates it before
    /// the call.
    pub artifacts_dir: PathBuf,
    /// xp's Python helpers (`azureml.logging`, `xp_logging`): put this folder first on
    /// `PYTHONPATH` (copy it along on remote targets).
    pub support_dir: PathBuf,
    /// The script, relative to the snapshot.
    pub script: String,
    /// The argument vector after the interpreter: `ArgumentVector` with `$file` replaced by the
    /// script, then the arguments given on the command line.
    pub arguments: Vec<String>,
    /// `EnvironmentVariables` of the run configuration, plus the variables xp sets for every
    /// run (`AZUREML_RUN_ID`, `XP_RUN_ID`, ...).
    pub environment: BTreeMap<String, String>,
    /// `Python` or `PySpark`.
    pub framework: String,
    #[serde(default)]
    pub dependencies: Dependencies,
    /// Prepare the environment first when it is not ready (`PrepareEnvironment: true`).
    #[serde(default)]
    pub prepare_environment: bool,
    /// The snapshot's manifest, a text file listing every path of `snapshot_dir` with its
    /// SHA-256 (`f <sha256> <mode> <size> <path>` lines; see PLUGINS.md), so a plugin that
    /// sends the snapshot elsewhere need not hash it again. Since 1.1; absent from older hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_manifest: Option<PathBuf>,
}

/// How a run ended, as far as the plugin knows.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunOutcome {
    /// The script's exit code; on Unix a script killed by signal N reports 128 + N.
    pub exit_code: i32,
    /// True when the run stopped because the host cancelled it.
    #[serde(default)]
    pub canceled: bool,
}

impl RunOutcome {
    /// The script ended by itself with `exit_code`.
    pub fn exited(exit_code: i32) -> Self {
        RunOutcome {
            exit_code,
            canceled: false,
        }
    }

    /// The run stopped because the host cancelled it; `exit_code` is the script's, if known
    /// (130 otherwise, as for Ctrl-C).
    pub fn canceled(exit_code: i32) -> Self {
        RunOutcome {
            exit_code,
            canceled: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_is_flattened_into_each_request() {
        let mut request = RunRequest::default();
        request.context.project_name = "proj".into();
        request.context.target = Target::new("t", "local", Settings::new());
        request.run_id = "proj_1".into();
        let json: serde_json::Value = serde_json::to_value(&request).unwrap();
        assert_eq!(json["project_name"], "proj");
        assert_eq!(json["target"]["type"], "local");
        assert_eq!(json["run_id"], "proj_1");
        assert!(json.get("context").is_none(), "{json}");
        let back: RunRequest = serde_json::from_value(json).unwrap();
        assert_eq!(back, request);
    }

    #[test]
    fn a_request_with_keys_from_a_newer_host_still_parses() {
        let json = r#"{"project_dir": "/p", "target": {"name": "t", "type": "x", "settings": {}},
                       "a_field_of_plugin_api_9": [1, 2]}"#;
        let request: AttachRequest = serde_json::from_str(json).unwrap();
        assert_eq!(request.context.target.target_type, "x");
    }
}
