//! Every plugin on the search path and what it does for each target type: which one serves a
//! type, which are shadowed by an earlier one, which cannot be used and why. Read from the
//! manifests alone unless asked to load the libraries (`xp plugin list --check`), since loading
//! a library runs its code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use xp_plugin_api::PluginDescription;

use super::{find_plugins, search_path, Compatibility, LoadedPlugin, Manifest};
use crate::paths::UserDirs;

/// What is known of one plugin.
#[derive(Debug)]
pub enum PluginState {
    /// The manifest could not be read.
    Unreadable(String),
    /// The manifest's plugin-api requirement does not match this host (nothing was loaded).
    Incompatible(String),
    /// The manifest matches; the library was not loaded (no `--check`).
    Unchecked,
    /// The library loaded and described itself.
    Loaded(PluginDescription),
    /// The manifest matches but the library could not be loaded.
    Broken(String),
}

/// One manifest found on the search path.
#[derive(Debug)]
pub struct SurveyEntry {
    pub manifest_path: PathBuf,
    pub manifest: Option<Manifest>,
    pub state: PluginState,
    /// The target types this plugin serves: it is the first usable one for each.
    pub serves: Vec<String>,
    /// Target types it declares but an earlier plugin serves, with that plugin's name.
    pub shadowed: BTreeMap<String, String>,
}

impl SurveyEntry {
    /// Whether the plugin can be used at all (as far as was checked).
    pub fn usable(&self) -> bool {
        matches!(self.state, PluginState::Unchecked | PluginState::Loaded(_))
    }

    /// One line on its state, for a table.
    pub fn status(&self) -> String {
        let mut parts = Vec::new();
        match &self.state {
            PluginState::Unreadable(reason) => parts.push(format!("unreadable manifest: {reason}")),
            PluginState::Incompatible(reason) | PluginState::Broken(reason) => {
                parts.push(format!("incompatible: {reason}"))
            }
            PluginState::Unchecked | PluginState::Loaded(_) => {
                if !self.serves.is_empty() {
                    parts.push(format!("serves {}", self.serves.join(", ")));
                }
                for (target_type, by) in &self.shadowed {
                    parts.push(format!(
                        "{target_type}: shadowed by '{by}' (earlier on the search path)"
                    ));
                }
                if matches!(self.state, PluginState::Unchecked) {
                    parts.push("library not loaded (--check loads it)".to_owned());
                }
            }
        }
        parts.join("; ")
    }
}

/// Every plugin on the search path, in search order; with `check`, each compatible library is
/// loaded (its code runs) so the ABI check and `describe` speak too.
pub fn survey(project_root: Option<&Path>, dirs: &UserDirs, check: bool) -> (Vec<PathBuf>, Vec<SurveyEntry>) {
    let path = search_path(project_root, dirs);
    let mut entries = Vec::new();
    // Target type -> the name of the plugin that serves it.
    let mut served: BTreeMap<String, String> = BTreeMap::new();
    for found in find_plugins(&path) {
        let manifest = match found.manifest {
            Ok(manifest) => manifest,
            Err(error) => {
                entries.push(SurveyEntry {
                    manifest_path: found.manifest_path,
                    manifest: None,
                    state: PluginState::Unreadable(error.to_string()),
                    serves: Vec::new(),
                    shadowed: BTreeMap::new(),
                });
                continue;
            }
        };
        let state = match manifest.compatibility() {
            Compatibility::Incompatible(reason) => PluginState::Incompatible(reason),
            Compatibility::Compatible if !check => PluginState::Unchecked,
            Compatibility::Compatible => match LoadedPlugin::load(manifest.clone(), &manifest.target_types[0]) {
                Ok(loaded) => PluginState::Loaded(loaded.description),
                Err(error) => PluginState::Broken(error.to_string()),
            },
        };
        let mut entry = SurveyEntry {
            manifest_path: found.manifest_path,
            manifest: None,
            state,
            serves: Vec::new(),
            shadowed: BTreeMap::new(),
        };
        if entry.usable() {
            for target_type in &manifest.target_types {
                match served.get(target_type) {
                    Some(by) => {
                        entry.shadowed.insert(target_type.clone(), by.clone());
                    }
                    None => {
                        served.insert(target_type.clone(), manifest.name.clone());
                        entry.serves.push(target_type.clone());
                    }
                }
            }
        }
        entry.manifest = Some(manifest);
        entries.push(entry);
    }
    (path, entries)
}
