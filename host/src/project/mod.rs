//! The project folder: `aml_config/` as Azure ML Workbench wrote it.

mod compute;
mod dependencies;
mod error;
mod runconfig;
pub mod templates;
pub mod yaml;

use std::fs;
use std::path::{Path, PathBuf};

pub use compute::ComputeTarget;
pub use dependencies::read_contents as read_dependency_contents;
pub use error::ProjectError;
pub use runconfig::{Framework, RunConfig};

/// The folder name that marks a project.
pub const CONFIG_DIR: &str = "aml_config";
/// xp's own folder inside a project: run history, logs, artifacts. Ignored by git.
pub const XP_DIR: &str = ".xp";

#[derive(Debug, Clone)]
pub struct Project {
    root: PathBuf,
    name: String,
}

impl Project {
    /// Finds the project that contains `start`: the nearest folder, `start` or a parent, with
    /// an `aml_config/` folder.
    pub fn discover(start: &Path) -> Result<Project, ProjectError> {
        let start = fs::canonicalize(start).map_err(|source| ProjectError::Io {
            path: start.to_path_buf(),
            source,
        })?;
        start
            .ancestors()
            .find(|dir| dir.join(CONFIG_DIR).is_dir())
            .map(Project::at)
            .ok_or(ProjectError::NotAProject { start })
    }

    /// The project rooted at `root` (which is not checked).
    pub fn at(root: &Path) -> Project {
        let name = root
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "project".to_owned());
        Project {
            root: root.to_path_buf(),
            name,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder's name, as written.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name as it appears in run ids: characters other than letters, digits, `-` and `_`
    /// become `_`.
    pub fn run_id_prefix(&self) -> String {
        self.name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    pub fn config_dir(&self) -> PathBuf {
        self.root.join(CONFIG_DIR)
    }

    pub fn xp_dir(&self) -> PathBuf {
        self.root.join(XP_DIR)
    }

    /// `assets/`: the links `xp history promote` writes.
    pub fn assets_dir(&self) -> PathBuf {
        self.root().join("assets")
    }

    /// The asset links (`assets/*.link`), sorted by name.
    pub fn asset_link_paths(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.assets_dir())
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|extension| extension == "link"))
            .collect();
        paths.sort();
        paths
    }

    pub fn compute_path(&self, name: &str) -> PathBuf {
        self.config_dir().join(format!("{name}.compute"))
    }

    pub fn runconfig_path(&self, name: &str) -> PathBuf {
        self.config_dir().join(format!("{name}.runconfig"))
    }

    /// Names of the files in `aml_config/` with this extension, sorted.
    pub fn names_with_extension(&self, extension: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.config_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let path = entry.path();
                (path.extension()? == extension)
                    .then(|| path.file_stem().map(|stem| stem.to_string_lossy().into_owned()))
                    .flatten()
            })
            .collect();
        names.sort();
        names
    }

    pub fn target_names(&self) -> Vec<String> {
        self.names_with_extension("compute")
    }

    pub fn runconfig_names(&self) -> Vec<String> {
        self.names_with_extension("runconfig")
    }

    pub fn load_target(&self, name: &str) -> Result<ComputeTarget, ProjectError> {
        validate_name(name, "compute target")?;
        let path = self.compute_path(name);
        let text = read_existing(&path).map_err(|error| match error {
            ProjectError::Missing { path } => ProjectError::MissingTarget {
                name: name.to_owned(),
                path,
                available: self.target_names(),
            },
            other => other,
        })?;
        ComputeTarget::parse(name, &path, &text)
    }

    pub fn load_runconfig(&self, name: &str) -> Result<RunConfig, ProjectError> {
        validate_name(name, "run configuration")?;
        let path = self.runconfig_path(name);
        let text = read_existing(&path).map_err(|error| match error {
            ProjectError::Missing { path } => ProjectError::MissingRunConfig {
                name: name.to_owned(),
                path,
                available: self.runconfig_names(),
            },
            other => other,
        })?;
        RunConfig::parse(name, &path, &text)
    }
}

/// Target and run configuration names become file names: keep them to one plain path segment.
pub fn validate_name(name: &str, what: &str) -> Result<(), ProjectError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(ProjectError::BadName {
            name: name.to_owned(),
            what: what.to_owned(),
        })
    }
}

fn read_existing(path: &Path) -> Result<String, ProjectError> {
    fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ProjectError::Missing {
                path: path.to_path_buf(),
            }
        } else {
            ProjectError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}
