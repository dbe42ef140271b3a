use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{}: {message}", path.display())]
    BadManifest { path: PathBuf, message: String },

    #[error("{0}")]
    Incompatible(String),

    #[error("no plugin serves target type '{target_type}'.\nSearched: {}.{}\nInstall a plugin that declares it in its plugin.toml, or set XP_PLUGIN_PATH to the folder that holds one; `xp plugin list` shows what was found.",
        if searched.is_empty() { "nothing".to_owned() } else { searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ") },
        if broken.is_empty() { String::new() } else { format!("\nUnreadable manifests: {}", broken.join("; ")) })]
    NoPluginForType {
        target_type: String,
        searched: Vec<PathBuf>,
        broken: Vec<String>,
    },

    #[error("none of the {} plugins that declare target type '{target_type}' can be used:\n- {}\n`xp plugin list --check` shows every plugin found.", reasons.len(), reasons.join("\n- "))]
    NoneUsable { target_type: String, reasons: Vec<String> },

    #[error("plugin '{name}' ({}) could not be loaded: {message}", library.display())]
    Load {
        name: String,
        library: PathBuf,
        message: String,
    },
}
