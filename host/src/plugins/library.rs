//! A plugin library loaded through abi_stable, and calls into it.

use abi_stable::library::{lib_header_from_path, LibraryError};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RStr, RString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use xp_plugin_api::abi::{self, EventSink, EventSink_TO, PluginModRef, SinkRef};
use xp_plugin_api::{
    AttachReply, AttachRequest, CleanReply, CleanRequest, PluginDescription, PrepareReply, PrepareRequest, RunOutcome,
    RunRequest,
};

use super::{Manifest, PluginError};

/// A failed call into a plugin.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin reported a failure; the message is its own.
    #[error("{0}")]
    Failed(String),
    /// The plugin panicked; the message is the panic's.
    #[error("plugin '{plugin}' panicked: {message}")]
    Panicked { plugin: String, message: String },
    /// The plugin was built against a plugin-api without this entry point.
    #[error("plugin '{plugin}' does not support {what}: it was built against an older plugin-api; update the plugin")]
    Unsupported { plugin: String, what: &'static str },
    /// The plugin and host did not understand each other.
    #[error("plugin '{plugin}' and this xp disagree on the protocol: {message}")]
    Protocol { plugin: String, message: String },
}

type Entry = extern "C" fn(RStr<'_>, SinkRef<'_>) -> RResult<RString, abi::PluginError>;

pub struct LoadedPlugin {
    pub manifest: Manifest,
    pub description: PluginDescription,
    module: PluginModRef,
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
                "its ABI does not match this xp (plugin-api {}): {}\nRebuild the plugin against this plugin-api.",
                xp_plugin_api::API_VERSION,
                short_library_error(&e)
            ))
        })?;
        let description: PluginDescription = match (module.describe())() {
            RResult::ROk(json) => serde_json::from_str(&json)
                .map_err(|e| load_error(format!("its description could not be read: {e}")))?,
            RResult::RErr(error) => return Err(load_error(format!("describing itself failed: {}", error.message))),
        };
        if !description
            .target_types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(target_type))
        {
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
        })
    }

    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    pub fn attach<S: EventSink + Send + Sync>(
        &self,
        request: &AttachRequest,
        sink: &S,
    ) -> Result<AttachReply, CallError> {
        self.call(self.module.attach(), request, sink)
    }

    pub fn prepare<S: EventSink + Send + Sync>(
        &self,
        request: &PrepareRequest,
        sink: &S,
    ) -> Result<PrepareReply, CallError> {
        self.call(self.module.prepare(), request, sink)
    }

    pub fn run<S: EventSink + Send + Sync>(&self, request: &RunRequest, sink: &S) -> Result<RunOutcome, CallError> {
        self.call(self.module.run(), request, sink)
    }

    /// `clean` is optional: plugins built against plugin-api 0.1.0 lack it.
    pub fn clean<S: EventSink + Send + Sync>(&self, request: &CleanRequest, sink: &S) -> Result<CleanReply, CallError> {
        let entry = self.module.clean().ok_or_else(|| CallError::Unsupported {
            plugin: self.name().to_owned(),
            what: "clean",
        })?;
        self.call(entry, request, sink)
    }

    fn call<Req: Serialize, Reply: DeserializeOwned, S: EventSink + Send + Sync>(
        &self,
        entry: Entry,
        request: &Req,
        sink: &S,
    ) -> Result<Reply, CallError> {
        let request = serde_json::to_string(request).expect("requests are plain data");
        let sink_ref: SinkRef<'_> = EventSink_TO::from_ptr(sink, TD_Opaque);
        match entry(RStr::from_str(&request), sink_ref) {
            RResult::ROk(json) => serde_json::from_str(&json).map_err(|e| CallError::Protocol {
                plugin: self.name().to_owned(),
                message: format!("its reply could not be read: {e}"),
            }),
            RResult::RErr(error) => Err(match error.kind.as_str() {
                "panic" => CallError::Panicked {
                    plugin: self.name().to_owned(),
                    message: error.message.into_string(),
                },
                "request" => CallError::Protocol {
                    plugin: self.name().to_owned(),
                    message: error.message.into_string(),
                },
                _ => CallError::Failed(error.message.into_string()),
            }),
        }
    }
}
