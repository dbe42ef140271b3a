//! Finding, checking and loading executor plugins. The host knows no target type by name: a
//! target's `type` is looked up in the manifests found on the search path.

mod error;
mod library;
mod manifest;
pub mod schema;
pub mod sdk;
mod search;
mod survey;

pub use error::PluginError;
pub use library::{CallError, LoadedPlugin};
pub use manifest::{Compatibility, Manifest};
pub use search::{find_plugins, search_path, FoundPlugin};
pub use survey::{survey, PluginState, SurveyEntry};

use std::path::Path;

use crate::paths::UserDirs;

/// The plugin that serves `target_type`: the first on the search path whose manifest is
/// compatible *and* whose library loads. Plugins passed over on the way are not silent: each
/// is named, with why, in [`LoadedPlugin::passed_over`] for the caller to show.
pub fn load_for_type(
    target_type: &str,
    project_root: Option<&Path>,
    dirs: &UserDirs,
) -> Result<LoadedPlugin, PluginError> {
    let path = search_path(project_root, dirs);
    let found = find_plugins(&path);
    let mut refusals: Vec<PluginError> = Vec::new();
    for plugin in &found {
        let Ok(manifest) = &plugin.manifest else {
            continue;
        };
        if !manifest.serves(target_type) {
            continue;
        }
        match manifest.compatibility() {
            Compatibility::Compatible => {
                crate::timing::mark("plugin found");
                let loaded = LoadedPlugin::load(manifest.clone(), target_type);
                crate::timing::mark("plugin loaded");
                match loaded {
                    Ok(mut loaded) => {
                        loaded.passed_over = refusals.iter().map(ToString::to_string).collect();
                        return Ok(loaded);
                    }
                    Err(error) => refusals.push(error),
                }
            }
            Compatibility::Incompatible(reason) => refusals.push(PluginError::Incompatible(reason)),
        }
    }
    match refusals.len() {
        0 => {
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
        1 => Err(refusals.pop().expect("one refusal")),
        _ => Err(PluginError::NoneUsable {
            target_type: target_type.to_owned(),
            reasons: refusals.iter().map(ToString::to_string).collect(),
        }),
    }
}

/// Tells the user, on stderr, which plugins declaring `plugin`'s type were passed over, and why.
pub fn warn_passed_over(plugin: &LoadedPlugin) {
    for reason in &plugin.passed_over {
        eprintln!(
            "warning: passed over a plugin for this target type; using plugin '{}' ({}) instead: {reason}",
            plugin.name(),
            plugin.library().display()
        );
    }
}
