//! Finding, checking and loading executor plugins. The host knows no target type by name: a
//! target's `type` is looked up in the manifests found on the search path.

mod error;
mod library;
mod manifest;
mod search;

pub use error::PluginError;
pub use library::{CallError, LoadedPlugin};
pub use manifest::{Compatibility, Manifest};
pub use search::{find_plugins, search_path, FoundPlugin};

use std::path::Path;

use crate::paths::UserDirs;

/// The plugin that serves `target_type`: the first compatible one on the search path, loaded.
pub fn load_for_type(
    target_type: &str,
    project_root: Option<&Path>,
    dirs: &UserDirs,
) -> Result<LoadedPlugin, PluginError> {
    let path = search_path(project_root, dirs);
    let found = find_plugins(&path);
    let serving: Vec<&FoundPlugin> = found
        .iter()
        .filter(|plugin| match &plugin.manifest {
            Ok(manifest) => manifest
                .target_types
                .iter()
                .any(|t| t.eq_ignore_ascii_case(target_type)),
            Err(_) => false,
        })
        .collect();
    let mut refusals = Vec::new();
    for plugin in &serving {
        let manifest = plugin.manifest.as_ref().expect("filtered to parsed manifests");
        match manifest.compatibility() {
            Compatibility::Compatible => {
                crate::timing::mark("plugin found");
                let loaded = LoadedPlugin::load(manifest.clone(), target_type);
                crate::timing::mark("plugin loaded");
                return loaded;
            }
            Compatibility::Incompatible(reason) => refusals.push(reason),
        }
    }
    if let Some(first) = refusals.into_iter().next() {
        return Err(PluginError::Incompatible(first));
    }
    let broken: Vec<String> = found
        .iter()
        .filter_map(|plugin| plugin.manifest.as_ref().err().map(|error| error.to_string()))
        .collect();
    Err(PluginError::NoPluginForType {
        target_type: target_type.to_owned(),
        searched: path,
        broken,
    })
}
