//! A plugin library loaded through abi_stable, and calls into it by verb.

use std::collections::BTreeMap;
use std::path::Path;

use abi_stable::library::{lib_header_from_path, LibraryError};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RStr};
use serde::de::DeserializeOwned;
use serde::Serialize;
use xp_plugin_api::abi::{EventSink, EventSink_TO, PluginModRef, SinkRef};
use xp_plugin_api::protocol::verbs;
use xp_plugin_api::{
    AttachReply, AttachRequest, CleanReply, CleanRequest, ErrorKind, PluginDescription, PrepareReply, PrepareRequest,
    ReapReply, ReapRequest, RequestContext, RunOutcome, RunRequest, Target,
};

use super::{Manifest, PluginError};
use crate::paths::UserDirs;

/// A failed call into a plugin.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin reported a failure; the message is its own.
    #[error("{0}")]
    Failed(String),
    /// The plugin panicked; the message is the panic's.
    #[error("plugin '{plugin}' panicked: {message}")]
    Panicked { plugin: String, message: String },
    /// The plugin was built against a plugin-api without this verb.
    #[error(
        "plugin '{plugin}' predates {verb}: it was built against plugin-api {plugin_api}, and {verb} came later; install a newer build of the plugin"
    )]
    Predates {
        plugin: String,
        verb: String,
        plugin_api: String,
    },
    /// The plugin and host did not understand each other.
    #[error("plugin '{plugin}' and this xp disagree on the protocol: {message}")]
    Protocol { plugin: String, message: String },
}

pub struct LoadedPlugin {
    pub manifest: Manifest,
    pub description: PluginDescription,
    module: PluginModRef,
    /// Plugins earlier on the search path that declare the same type but could not be used,
    /// each with why: shown to the user, so that no other plugin runs silently.
    pub passed_over: Vec<String>,
}

/// abi_stable's layout-mismatch report starts with a dump of every type it compared and
/// says what differs after it: keep the part from the first `Error` on.
fn short_library_error(error: &LibraryError) -> String {
    let text = error.to_string();
    let lines: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
    let start = lines
        .iter()
        .position(|line| line.trim_start().starts_with("Error"))
        .unwrap_or(0);
    // After the differences comes "N error(s)inside:" and the dump of the enclosing types.
    let end = lines[start..]
        .iter()
        .position(|line| line.contains("error(s)inside"))
        .map(|at| start + at)
        .unwrap_or(lines.len())
        .min(start + 12);
    let mut kept: Vec<&str> = lines[start..end].iter().map(|line| line.trim()).collect();
    if end < lines.len() {
        kept.push("(the rest of abi_stable's layout report is omitted)");
    }
    kept.join(" ").replace(": ", ":").replace(':', ": ")
}

impl LoadedPlugin {
    /// Loads the manifest's library, checks its layout against this host's plugin-api and
    /// that it serves `target_type`.
    pub fn load(manifest: Manifest, target_type: &str) -> Result<LoadedPlugin, PluginError> {
        let load_error = |message: String| PluginError::Load {
            name: manifest.name.clone(),
            library: manifest.library.clone(),
            message,
        };
        let header = lib_header_from_path(&manifest.library).map_err(|e| {
            load_error(format!(
                "{}\nIs it an xp plugin built for this platform?",
                short_library_error(&e)
            ))
        })?;
        let module = header.init_root_module::<PluginModRef>().map_err(|e| {
            load_error(format!(
                "its ABI does not match this xp (plugin-api {}): {}\nRebuild the plugin against plugin-api {}.",
                xp_plugin_api::API_VERSION,
                short_library_error(&e),
                xp_plugin_api::API_VERSION,
            ))
        })?;
        let description: PluginDescription = match (module.describe())() {
            RResult::ROk(json) => serde_json::from_str(&json)
                .map_err(|e| load_error(format!("its description could not be read: {e}")))?,
            RResult::RErr(error) => return Err(load_error(format!("describing itself failed: {}", error.message))),
        };
        if !description.serves(target_type) {
            return Err(load_error(format!(
                "{} declares target type '{target_type}', but the library serves {:?}; the manifest and the library do not belong together",
                manifest.path.display(),
                description.target_types
            )));
        }
        Ok(LoadedPlugin {
            manifest,
            description,
            module,
            passed_over: Vec::new(),
        })
    }

    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The library file.
    pub fn library(&self) -> &Path {
        &self.manifest.library
    }

    /// The context block of a request to this plugin about `target` of the project.
    pub fn context(
        &self,
        project_dir: &Path,
        project_name: &str,
        target: Target,
        dirs: &UserDirs,
        secrets: BTreeMap<String, String>,
    ) -> RequestContext {
        RequestContext {
            host_api_version: xp_plugin_api::API_VERSION.to_owned(),
            project_dir: project_dir.to_path_buf(),
            project_name: project_name.to_owned(),
            target,
            state_dir: dirs.plugin_state_dir(self.name()),
            user_config_dir: dirs.config.clone(),
            secrets,
        }
    }

    pub fn attach<S: EventSink + Send + Sync>(
        &self,
        request: &AttachRequest,
        sink: &S,
    ) -> Result<AttachReply, CallError> {
        self.call(verbs::ATTACH, request, sink)
    }

    pub fn prepare<S: EventSink + Send + Sync>(
        &self,
        request: &PrepareRequest,
        sink: &S,
    ) -> Result<PrepareReply, CallError> {
        self.call(verbs::PREPARE, request, sink)
    }

    pub fn run<S: EventSink + Send + Sync>(&self, request: &RunRequest, sink: &S) -> Result<RunOutcome, CallError> {
        self.call(verbs::RUN, request, sink)
    }

    pub fn clean<S: EventSink + Send + Sync>(&self, request: &CleanRequest, sink: &S) -> Result<CleanReply, CallError> {
        self.call(verbs::CLEAN, request, sink)
    }

    /// Since plugin-api 1.1: plugins built before it answer [`CallError::Predates`].
    pub fn reap<S: EventSink + Send + Sync>(&self, request: &ReapRequest, sink: &S) -> Result<ReapReply, CallError> {
        self.call(verbs::REAP, request, sink)
    }

    /// Calls `verb` with `request`. A verb the plugin's description does not list is refused
    /// here, before any of its code runs; one it lists but does not answer is refused the same.
    pub fn call<Req: Serialize, Reply: DeserializeOwned, S: EventSink + Send + Sync>(
        &self,
        verb: &str,
        request: &Req,
        sink: &S,
    ) -> Result<Reply, CallError> {
        let predates = || CallError::Predates {
            plugin: self.name().to_owned(),
            verb: verb.to_owned(),
            plugin_api: self.description.api_version.clone(),
        };
        if !self.description.answers(verb) {
            return Err(predates());
        }
        let request = serde_json::to_string(request).expect("requests are plain data");
        let sink_ref: SinkRef<'_> = EventSink_TO::from_ptr(sink, TD_Opaque);
        let reply = (self.module.call())(RStr::from_str(verb), RStr::from_str(&request), sink_ref);
        match reply {
            RResult::ROk(json) => serde_json::from_str(&json).map_err(|e| CallError::Protocol {
                plugin: self.name().to_owned(),
                message: format!("its reply to {verb} could not be read: {e}"),
            }),
            RResult::RErr(error) => Err(match ErrorKind::parse(error.kind.as_str()) {
                ErrorKind::Panic => CallError::Panicked {
                    plugin: self.name().to_owned(),
                    message: error.message.into_string(),
                },
                ErrorKind::Request => CallError::Protocol {
                    plugin: self.name().to_owned(),
                    message: error.message.into_string(),
                },
                ErrorKind::UnknownVerb => predates(),
                ErrorKind::Failed => CallError::Failed(error.message.into_string()),
            }),
        }
    }
}
