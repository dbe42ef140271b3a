//! The user's folders: configuration (installed plugins, keys) and cache (environments).

use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct UserDirs {
    pub config: PathBuf,
    pub cache: PathBuf,
    /// Data xp writes for the user to keep (the plugin API sources plugin crates build with).
    pub data: PathBuf,
}

impl UserDirs {
    /// `XP_HOME` when set (everything under one folder, as tests and CI use it), otherwise the
    /// XDG folders: `$XDG_CONFIG_HOME/xp`, `$XDG_CACHE_HOME/xp` and `$XDG_DATA_HOME/xp`,
    /// defaulting under `~`.
    pub fn from_env() -> UserDirs {
        if let Some(home) = std::env::var_os("XP_HOME").filter(|v| !v.is_empty()) {
            let home = PathBuf::from(home);
            return UserDirs {
                config: home.join("config"),
                cache: home.join("cache"),
                data: home.join("data"),
            };
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        let xdg = |var: &str, fallback: &str| {
            std::env::var_os(var)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join(fallback))
                .join("xp")
        };
        UserDirs {
            config: xdg("XDG_CONFIG_HOME", ".config"),
            cache: xdg("XDG_CACHE_HOME", ".cache"),
            data: xdg("XDG_DATA_HOME", ".local/share"),
        }
    }

    pub fn plugins_dir(&self) -> PathBuf {
        self.config.join("plugins")
    }

    /// Where a plugin may keep state between runs (built environments, caches).
    pub fn plugin_state_dir(&self, plugin: &str) -> PathBuf {
        self.cache.join("plugins").join(plugin)
    }
}

/// Expands a leading `~` to the home folder.
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix('~'), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            PathBuf::from(home).join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(path),
    }
}
