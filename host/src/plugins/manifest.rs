//! `plugin.toml`: what a plugin is, read without loading its code.

use std::path::{Path, PathBuf};

use semver::{Version, VersionReq};
use serde::Deserialize;

use super::PluginError;

#[derive(Debug, Clone)]
pub struct Manifest {
    pub path: PathBuf,
    pub name: String,
    pub version: String,
    pub description: String,
    pub target_types: Vec<String>,
    /// The plugin-api versions the plugin works with.
    pub plugin_api: VersionReq,
    /// The dynamic library, resolved against the manifest's folder.
    pub library: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: String,
    version: String,
    #[serde(default)]
    description: String,
    target_types: Vec<String>,
    plugin_api: String,
    library: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compatibility {
    Compatible,
    /// Why not, in a sentence naming the plugin, the file and both versions.
    Incompatible(String),
}

impl Manifest {
    pub fn read(path: &Path) -> Result<Manifest, PluginError> {
        let bad = |message: String| PluginError::BadManifest {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let raw: RawManifest = toml::from_str(&text).map_err(|e| bad(e.to_string().trim_end().replace('\n', " ")))?;
        if raw.target_types.is_empty() {
            return Err(bad(
                "`target_types` is empty; list the target types the plugin serves".to_owned()
            ));
        }
        let plugin_api = VersionReq::parse(&raw.plugin_api).map_err(|e| {
            bad(format!(
                "`plugin_api = \"{}\"` is not a semver requirement ({e}); expected e.g. \"^1.0\"",
                raw.plugin_api
            ))
        })?;
        let folder = path.parent().unwrap_or(Path::new("."));
        Ok(Manifest {
            path: path.to_path_buf(),
            name: raw.name,
            version: raw.version,
            description: raw.description,
            target_types: raw.target_types.into_iter().map(|t| t.to_ascii_lowercase()).collect(),
            plugin_api,
            library: folder.join(raw.library),
        })
    }

    /// Whether the manifest declares `target_type` (compared without regard to case).
    pub fn serves(&self, target_type: &str) -> bool {
        self.target_types.iter().any(|t| t.eq_ignore_ascii_case(target_type))
    }

    /// Whether this host's plugin-api satisfies the plugin's requirement, and that the library
    /// file is there. Nothing is loaded.
    pub fn compatibility(&self) -> Compatibility {
        if let incompatible @ Compatibility::Incompatible(_) = self.compatibility_of_api() {
            return incompatible;
        }
        if !self.library.is_file() {
            return Compatibility::Incompatible(format!(
                "plugin '{}' ({}) names library {}, which does not exist; build the plugin or fix `library`",
                self.name,
                self.path.display(),
                self.library.display()
            ));
        }
        Compatibility::Compatible
    }

    /// Whether this host's plugin-api satisfies the plugin's requirement (the library is not
    /// looked at).
    pub fn compatibility_of_api(&self) -> Compatibility {
        let host_api = Version::parse(xp_plugin_api::API_VERSION).expect("the crate version is semver");
        if !self.plugin_api.matches(&host_api) {
            return Compatibility::Incompatible(format!(
                "plugin '{}' ({}) needs plugin-api {}, but this xp has plugin-api {}; rebuild the plugin against plugin-api {} or use an xp whose plugin-api matches",
                self.name,
                self.path.display(),
                self.plugin_api,
                host_api,
                host_api
            ));
        }
        Compatibility::Compatible
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("plugin.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_plugin_needing_a_newer_api_is_refused_with_both_versions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lib.so"), b"").unwrap();
        let path = write(dir.path(), "name = \"future\"\nversion = \"1.0.0\"\ntarget_types = [\"future\"]\nplugin_api = \"^9.0\"\nlibrary = \"lib.so\"\n");
        let Compatibility::Incompatible(reason) = Manifest::read(&path).unwrap().compatibility() else {
            panic!("a plugin needing plugin-api 9 must be refused");
        };
        assert!(
            reason.contains("future") && reason.contains("^9.0") && reason.contains(xp_plugin_api::API_VERSION),
            "{reason}"
        );
        assert!(reason.contains(&path.display().to_string()), "{reason}");
    }

    #[test]
    fn a_matching_plugin_with_its_library_is_compatible() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lib.so"), b"").unwrap();
        let requirement = format!("^{}", xp_plugin_api::API_VERSION);
        let path = write(dir.path(), &format!("name = \"ok\"\nversion = \"1.0.0\"\ntarget_types = [\"OK\"]\nplugin_api = \"{requirement}\"\nlibrary = \"lib.so\"\n"));
        let manifest = Manifest::read(&path).unwrap();
        assert_eq!(manifest.compatibility(), Compatibility::Compatible);
        assert_eq!(manifest.target_types, vec!["ok"]);
    }

    #[test]
    fn a_manifest_with_a_typo_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "name = \"x\"\nversion = \"1\"\ntarget_type = [\"x\"]\nplugin_api = \"^0.1\"\nlibrary = \"x.so\"\n",
        );
        let error = Manifest::read(&path).unwrap_err().to_string();
        assert!(error.contains("target_type"), "{error}");
    }
}
