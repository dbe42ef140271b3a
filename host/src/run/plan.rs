//! Resolving a submission into a plan: run configuration, target, script, dependencies and
//! the plugin, all checked before anything is recorded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use xp_plugin_api::Dependencies;

use super::{note, Submission, SubmitError};
use crate::paths::UserDirs;
use crate::plugins::LoadedPlugin;
use crate::project::{ComputeTarget, Project, RunConfig};

/// Everything a run needs, resolved and checked before anything is recorded.
pub struct Plan {
    pub runconfig: RunConfig,
    pub target: ComputeTarget,
    pub script: String,
    pub arguments: Vec<String>,
    pub dependencies: Dependencies,
    pub plugin: LoadedPlugin,
    /// The target's secrets, resolved from its `secret:` references. Only in memory.
    pub secrets: BTreeMap<String, String>,
}

/// The script as a path relative to the project, checked to exist inside it.
fn resolve_script(project: &Project, cwd: &Path, script: &str) -> Result<String, SubmitError> {
    let from_cwd = cwd.join(script);
    let candidate = if from_cwd.is_file() {
        from_cwd
    } else {
        project.root().join(script)
    };
    let resolved = std::fs::canonicalize(&candidate)
        .ok()
        .filter(|path| path.is_file())
        .ok_or_else(|| SubmitError::NoScript {
            script: script.to_owned(),
            project: project.root().to_path_buf(),
            looked_for: candidate.clone(),
        })?;
    let relative = resolved
        .strip_prefix(project.root())
        .map_err(|_| SubmitError::ScriptOutsideProject {
            script: script.to_owned(),
            project: project.root().to_path_buf(),
        })?;
    Ok(relative.to_string_lossy().into_owned())
}

/// Where Workbench looked for the dependency files a run configuration leaves `null`.
pub const DEFAULT_CONDA_FILE: &str = "aml_config/conda_dependencies.yml";
pub const DEFAULT_SPARK_FILE: &str = "aml_config/spark_dependencies.yml";

fn dependency_file(
    project: &Project,
    runconfig: &RunConfig,
    key: &str,
    value: &Option<String>,
    default: &str,
    quiet: bool,
) -> Option<PathBuf> {
    let Some(relative) = value else {
        // Workbench reads a `null` (or absent) file as the default one, when there is one.
        return project.root().join(default).is_file().then(|| PathBuf::from(default));
    };
    if project.root().join(relative).is_file() {
        Some(PathBuf::from(relative))
    } else {
        note(
            quiet,
            &format!(
                "note: {}: {key} {relative} does not exist; going on without it",
                runconfig.path.display()
            ),
        );
        None
    }
}

/// The dependency files a run configuration names, with their contents.
pub fn dependencies(project: &Project, runconfig: &RunConfig, quiet: bool) -> Result<Dependencies, SubmitError> {
    let mut dependencies = Dependencies {
        conda: dependency_file(
            project,
            runconfig,
            "CondaDependenciesFile",
            &runconfig.conda_dependencies_file,
            DEFAULT_CONDA_FILE,
            quiet,
        ),
        spark: dependency_file(
            project,
            runconfig,
            "SparkDependenciesFile",
            &runconfig.spark_dependencies_file,
            DEFAULT_SPARK_FILE,
            quiet,
        ),
        ..Dependencies::default()
    };
    crate::project::read_dependency_contents(project.root(), &mut dependencies)?;
    Ok(dependencies)
}

pub fn plan(project: &Project, dirs: &UserDirs, cwd: &Path, submission: &Submission) -> Result<Plan, SubmitError> {
    let runconfig = project.load_runconfig(&submission.runconfig)?;
    let target_name = submission
        .target
        .clone()
        .or_else(|| runconfig.target.clone())
        .ok_or_else(|| SubmitError::NoTarget {
            runconfig: runconfig.path.clone(),
        })?;
    let call = super::TargetCall::open(project, dirs, &target_name)?;
    let script = resolve_script(project, cwd, &submission.script)?;
    if !runconfig.ignored_keys.is_empty() {
        note(
            submission.quiet,
            &format!(
                "note: {}: ignoring {} (Workbench data-source settings; xp runs on the data the script reads)",
                runconfig.path.display(),
                runconfig.ignored_keys.join(", ")
            ),
        );
    }
    let dependencies = dependencies(project, &runconfig, submission.quiet)?;
    let arguments = runconfig.arguments_for(&script, &submission.arguments);
    Ok(Plan {
        runconfig,
        target: call.target,
        script,
        arguments,
        dependencies,
        plugin: call.plugin,
        secrets: call.secrets,
    })
}
