use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The project's dependency files: their paths relative to the project (and so to the
/// snapshot), and their contents as the host read them, so plugins need no YAML parser.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Dependencies {
    /// `conda_dependencies.yml`, when the run configuration names one that exists.
    #[serde(default)]
    pub conda: Option<PathBuf>,
    /// `spark_dependencies.yml`, when the run configuration names one that exists.
    #[serde(default)]
    pub spark: Option<PathBuf>,
    /// Conda package specs of the conda file (`python=3.6`, `scikit-learn`), without `pip`.
    #[serde(default)]
    pub conda_packages: Vec<String>,
    /// The conda file's `pip:` list, as written (names, specs, URLs, or wheel paths relative
    /// to the project).
    #[serde(default)]
    pub pip_packages: Vec<String>,
    /// The conda file's `channels`.
    #[serde(default)]
    pub channels: Vec<String>,
    /// The Spark file's `configuration` (Spark settings, e.g. `spark.executor.memory`).
    #[serde(default)]
    pub spark_configuration: BTreeMap<String, String>,
    /// The Spark file's `repositories` (Maven repository URLs).
    #[serde(default)]
    pub spark_repositories: Vec<String>,
    /// The Spark file's `packages` as `group:artifact:version` coordinates.
    #[serde(default)]
    pub spark_packages: Vec<String>,
}
