//! The plugin search path and what is found on it.

use std::path::{Path, PathBuf};

use super::{Manifest, PluginError};
use crate::paths::UserDirs;

/// The folders searched for plugins, in order: `XP_PLUGIN_PATH` (separated by `:`), the
/// project's `.xp/plugins`, the user's `plugins` folder, then the folder of the `xp`
/// executable (where `cargo build` puts the in-tree plugins).
pub fn search_path(project_root: Option<&Path>, dirs: &UserDirs) -> Vec<PathBuf> {
    let mut path: Vec<PathBuf> = std::env::var_os("XP_PLUGIN_PATH")
        .map(|value| {
            std::env::split_paths(&value)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    if let Some(root) = project_root {
        path.push(root.join(crate::project::XP_DIR).join("plugins"));
    }
    path.push(dirs.plugins_dir());
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        path.push(exe_dir);
    }
    path
}

/// A manifest found on the search path, read or not.
#[derive(Debug)]
pub struct FoundPlugin {
    pub manifest_path: PathBuf,
    pub manifest: Result<Manifest, PluginError>,
}

/// Every manifest on the search path, in search order: in each folder, `*.plugin.toml` files
/// and `*/plugin.toml` in its subfolders (one folder per installed plugin).
pub fn find_plugins(search_path: &[PathBuf]) -> Vec<FoundPlugin> {
    let mut found = Vec::new();
    for dir in search_path {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut candidates: Vec<PathBuf> = entries
            .flatten()
            .filter_map(|entry| {
                let path = entry.path();
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.ends_with(".plugin.toml") || name == "plugin.toml" {
                    Some(path)
                } else if entry.file_type().ok()?.is_dir() || path.is_dir() {
                    let inner = path.join("plugin.toml");
                    inner.is_file().then_some(inner)
                } else {
                    None
                }
            })
            .collect();
        candidates.sort();
        for manifest_path in candidates {
            if found.iter().any(|f: &FoundPlugin| f.manifest_path == manifest_path) {
                continue;
            }
            let manifest = Manifest::read(&manifest_path);
            found.push(FoundPlugin {
                manifest_path,
                manifest,
            });
        }
    }
    found
}
