//! `wheelhouse: FOLDER` in a `.compute` file: environments are built from the wheels (and
//! sdists) in a folder on this machine alone, offline, as `pip install --no-index
//! --find-links FOLDER` does. For machines without an index, and for builds that must not
//! depend on one. Each target brings the folder's files where its pip runs (into the image's
//! build, to the head node).

use std::path::{Path, PathBuf};

use xp_plugin_api::{PluginFailure, Target};

/// The `.compute` setting naming the folder.
pub const WHEELHOUSE_SETTING: &str = "wheelhouse";

const DISTRIBUTION_EXTENSIONS: [&str; 4] = [".whl", ".tar.gz", ".tar.bz2", ".zip"];

/// One distribution file of the wheelhouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelhouseFile {
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
}

/// The folder of a target's `wheelhouse` setting and the distributions in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wheelhouse {
    pub dir: PathBuf,
    /// Sorted by name.
    pub files: Vec<WheelhouseFile>,
}

impl Wheelhouse {
    /// The target's wheelhouse (`~` is the home folder; a relative path is relative to the
    /// project), or `None` when the target sets none.
    pub fn from_target(target: &Target, project_dir: &Path) -> Result<Option<Wheelhouse>, PluginFailure> {
        let Some(value) = target.settings.get(WHEELHOUSE_SETTING) else {
            return Ok(None);
        };
        let where_ = format!("{WHEELHOUSE_SETTING} in aml_config/{}.compute", target.name);
        let text = match value {
            serde_json::Value::Null => return Ok(None),
            serde_json::Value::String(text) if text.trim().is_empty() => return Ok(None),
            serde_json::Value::String(text) => text.trim(),
            other => {
                return Err(PluginFailure::new(format!(
                    "{where_} is {other}; expected the path of a folder of wheels"
                )))
            }
        };
        let dir = project_dir.join(crate::resolve::expand_home(text));
        let entries = std::fs::read_dir(&dir).map_err(|e| {
            PluginFailure::new(format!(
                "{where_}: {} is not a folder this machine can read ({e}); set it to a folder of wheels, e.g. one `pip download -d FOLDER PACKAGES` filled",
                dir.display()
            ))
        })?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| PluginFailure::new(format!("reading {}: {e}", dir.display())))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !DISTRIBUTION_EXTENSIONS.iter().any(|ext| name.ends_with(ext)) {
                continue;
            }
            let path = entry.path();
            let meta =
                std::fs::metadata(&path).map_err(|e| PluginFailure::new(format!("reading {}: {e}", path.display())))?;
            if meta.is_file() {
                files.push(WheelhouseFile {
                    name,
                    path,
                    size: meta.len(),
                });
            }
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Some(Wheelhouse { dir, files }))
    }

    /// What identifies the wheelhouse in an environment's hash: its files' names and sizes,
    /// one per line. A distribution's file name carries its version, so reading every byte on
    /// each run (hundreds of megabytes for a scientific stack) would buy nothing.
    pub fn identity(&self) -> String {
        self.files.iter().map(|f| format!("{} {}\n", f.name, f.size)).collect()
    }

    /// pip's options to install from the wheelhouse alone, once its files are in `dir`.
    pub fn pip_options(dir: &str) -> [String; 3] {
        ["--no-index".to_owned(), "--find-links".to_owned(), dir.to_owned()]
    }

    /// The total size of its files, for messages.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(settings: serde_json::Value) -> Target {
        let serde_json::Value::Object(settings) = settings else {
            unreachable!()
        };
        Target::new("d", "docker", settings)
    }

    #[test]
    fn lists_the_distributions_of_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let house = dir.path().join("house");
        std::fs::create_dir_all(house.join("sub.whl")).unwrap();
        std::fs::write(house.join("b-1.0-py3-none-any.whl"), "12345").unwrap();
        std::fs::write(house.join("a-2.0.tar.gz"), "1").unwrap();
        std::fs::write(house.join("README"), "not a distribution").unwrap();
        let found = Wheelhouse::from_target(&target(json!({"wheelhouse": "house"})), dir.path())
            .unwrap()
            .unwrap();
        let names: Vec<&str> = found.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a-2.0.tar.gz", "b-1.0-py3-none-any.whl"]);
        assert_eq!(found.identity(), "a-2.0.tar.gz 1\nb-1.0-py3-none-any.whl 5\n");
        assert_eq!(found.bytes(), 6);
        assert_eq!(Wheelhouse::from_target(&target(json!({})), dir.path()).unwrap(), None);
    }

    #[test]
    fn a_missing_folder_names_the_setting() {
        let error = Wheelhouse::from_target(&target(json!({"wheelhouse": "/no/such/folder"})), Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("wheelhouse in aml_config/d.compute") && error.contains("/no/such/folder"),
            "{error}"
        );
        let error = Wheelhouse::from_target(&target(json!({"wheelhouse": 3})), Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("expected the path of a folder"), "{error}");
    }
}
