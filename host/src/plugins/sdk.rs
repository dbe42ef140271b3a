//! The plugin API and SDK crates as this xp was built with them, written out for cargo: plugin
//! crates depend on `xp-plugin-api = "1.0"` and `xp-plugin-sdk = "1.0"`, and xp patches those
//! to these copies when it builds or scaffolds a plugin, so a plugin is built against exactly
//! the API of the xp that will load it, offline.

use std::path::{Path, PathBuf};

include!(concat!(env!("OUT_DIR"), "/api_sources.rs"));

/// Where the copies of this xp's plugin-api live once written: `<data>/sdk/<api version>/`,
/// holding `plugin-api/` and `plugin-sdk/`.
pub fn sources_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("sdk").join(xp_plugin_api::API_VERSION)
}

/// Writes the copies (files whose contents differ only) and returns their folder.
pub fn write_sources(data_dir: &Path) -> std::io::Result<PathBuf> {
    let dir = sources_dir(data_dir);
    for (relative, contents) in API_SOURCES {
        let path = dir.join(relative);
        if std::fs::read(&path).ok().as_deref() == Some(*contents) {
            continue;
        }
        std::fs::create_dir_all(path.parent().expect("files live in folders"))?;
        let staging = path.with_extension(format!("xp-{}.tmp", std::process::id()));
        std::fs::write(&staging, contents)?;
        std::fs::rename(&staging, &path)?;
    }
    Ok(dir)
}

/// `--config` arguments for cargo that patch the crates.io names of the API and SDK crates to
/// the copies in `sources`.
pub fn cargo_patch_args(sources: &Path) -> Vec<String> {
    [("xp-plugin-api", "plugin-api"), ("xp-plugin-sdk", "plugin-sdk")]
        .iter()
        .flat_map(|(name, folder)| {
            let path = sources.join(folder);
            [
                "--config".to_owned(),
                format!("patch.crates-io.{name}.path={:?}", path.display().to_string()),
            ]
        })
        .collect()
}

/// The same patch, as `.cargo/config.toml` text for a scaffolded crate.
pub fn cargo_config_text(sources: &Path) -> String {
    format!(
        "# Until xp-plugin-api and xp-plugin-sdk are on crates.io, build against the copies that\n# `xp plugin new` wrote for the xp that made this crate (`xp plugin install` patches them\n# the same way, to its own copies, whatever this file says).\n[patch.crates-io]\nxp-plugin-api = {{ path = {:?} }}\nxp-plugin-sdk = {{ path = {:?} }}\n",
        sources.join("plugin-api").display().to_string(),
        sources.join("plugin-sdk").display().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_sources_are_both_crates_and_write_out_unchanged() {
        let names: Vec<&str> = API_SOURCES.iter().map(|(name, _)| *name).collect();
        for expected in [
            "plugin-api/Cargo.toml",
            "plugin-api/src/lib.rs",
            "plugin-sdk/Cargo.toml",
            "plugin-sdk/src/lib.rs",
        ] {
            assert!(names.contains(&expected), "{expected} is embedded: {names:?}");
        }
        let data = tempfile::tempdir().unwrap();
        let dir = write_sources(data.path()).unwrap();
        let lib = std::fs::read_to_string(dir.join("plugin-api/src/lib.rs")).unwrap();
        assert_eq!(lib, include_str!("../../../plugin-api/src/lib.rs"));
        // Again: nothing changes, nothing fails.
        write_sources(data.path()).unwrap();
    }
}
