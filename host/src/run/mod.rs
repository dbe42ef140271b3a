//! Submitting a run: project model -> run record -> snapshot -> plugin -> outcome recorded.

mod error;
pub mod git;
pub mod signals;
mod sink;
pub mod snapshot;
pub mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use error::SubmitError;
pub use sink::{Recorder, RunSink};
use xp_plugin_api::{Dependencies, PrepareReply, PrepareRequest, RunOutcome, RunRequest, RunStatus};

use crate::history::{format_duration, now_ms, HistoryStore, NewRun};
use crate::paths::UserDirs;
use crate::plugins::{self, LoadedPlugin};
use crate::project::{ComputeTarget, Project, RunConfig};

/// `xp experiment submit`.
#[derive(Debug, Clone)]
pub struct Submission {
    pub runconfig: String,
    /// Overrides the run configuration's `Target`.
    pub target: Option<String>,
    pub script: String,
    pub arguments: Vec<String>,
    pub quiet: bool,
}

/// What a submit leads to, for the caller to report.
#[derive(Debug)]
pub struct Finished {
    pub run_id: Option<String>,
    pub status: RunStatus,
    /// The exit code xp itself should exit with.
    pub exit_code: i32,
}

/// Everything a run needs, resolved and checked before anything is recorded.
struct Plan {
    runconfig: RunConfig,
    target: ComputeTarget,
    script: String,
    arguments: Vec<String>,
    dependencies: Dependencies,
    plugin: LoadedPlugin,
}

fn io_error<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SubmitError + 'a {
    move |source| SubmitError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

fn note(quiet: bool, message: &str) {
    if !quiet {
        eprintln!("{message}");
    }
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

fn dependency_file(
    project: &Project,
    runconfig: &RunConfig,
    key: &str,
    value: &Option<String>,
    quiet: bool,
) -> Option<PathBuf> {
    let relative = value.as_ref()?;
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
fn dependencies(project: &Project, runconfig: &RunConfig, quiet: bool) -> Result<Dependencies, SubmitError> {
    let mut dependencies = Dependencies {
        conda: dependency_file(
            project,
            runconfig,
            "CondaDependenciesFile",
            &runconfig.conda_dependencies_file,
            quiet,
        ),
        spark: dependency_file(
            project,
            runconfig,
            "SparkDependenciesFile",
            &runconfig.spark_dependencies_file,
            quiet,
        ),
        ..Dependencies::default()
    };
    crate::project::read_dependency_contents(project.root(), &mut dependencies)?;
    Ok(dependencies)
}

fn plan(project: &Project, dirs: &UserDirs, cwd: &Path, submission: &Submission) -> Result<Plan, SubmitError> {
    let runconfig = project.load_runconfig(&submission.runconfig)?;
    let target_name = submission
        .target
        .clone()
        .or_else(|| runconfig.target.clone())
        .ok_or_else(|| SubmitError::NoTarget {
            runconfig: runconfig.path.clone(),
        })?;
    let target = project.load_target(&target_name)?;
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
    let plugin = plugins::load_for_type(&target.target_type, Some(project.root()), dirs)?;
    let arguments = runconfig.arguments_for(&script, &submission.arguments);
    Ok(Plan {
        runconfig,
        target,
        script,
        arguments,
        dependencies,
        plugin,
    })
}

/// Paths of the files under `dir`, relative to its parent (`outputs/model.pkl`).
fn list_artifacts(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                pending.push(path);
            } else if let Ok(relative) = path.strip_prefix(dir) {
                files.push(format!("outputs/{}", relative.to_string_lossy()));
            }
        }
    }
    files.sort();
    files
}

/// Runs a script on its target and records it. Errors before the run starts record nothing.
pub fn submit(
    project: &Project,
    dirs: &UserDirs,
    cwd: &Path,
    submission: &Submission,
) -> Result<Finished, SubmitError> {
    let plan = plan(project, dirs, cwd, submission)?;
    crate::timing::mark("run planned");
    signals::install();

    let xp_dir = project.xp_dir();
    let store = if plan.runconfig.tracked_run {
        Some(Mutex::new(HistoryStore::open(&xp_dir)?))
    } else {
        None
    };
    let git_commit = git::head_commit(project.root());
    let record = match &store {
        Some(store) => Some(store.lock().expect("not poisoned").create_run(&NewRun {
            id_prefix: &project.run_id_prefix(),
            script: &plan.script,
            arguments: &plan.arguments[1..],
            target: &plan.target.name,
            runconfig: &plan.runconfig.name,
            git_commit: git_commit.as_deref(),
        })?),
        None => None,
    };
    let run_id = match &record {
        Some(record) => record.run_id.clone(),
        None => format!("{}_{}", project.run_id_prefix(), now_ms()),
    };
    let run_number = record.as_ref().map(|r| r.run_number).unwrap_or(0);
    let run_dir = match &store {
        Some(store) => store.lock().expect("not poisoned").run_dir(&run_id),
        None => xp_dir.join("untracked").join(&run_id),
    };
    match &record {
        Some(record) => note(
            submission.quiet,
            &format!(
                "RunId: {} (run {}, target {})",
                record.run_id, record.run_number, plan.target.name
            ),
        ),
        None => note(
            submission.quiet,
            &format!("Untracked run on target {} (TrackedRun: false)", plan.target.name),
        ),
    }

    crate::timing::mark("run recorded");
    let started = now_ms();
    let sink_recorder = store.as_ref().map(|store| Recorder { store, run_number });
    let outcome = execute(project, dirs, &plan, &run_id, run_number, &run_dir, sink_recorder);
    crate::timing::mark("plugin returned");
    // The snapshot has served; an untracked run keeps nothing at all.
    let _ = std::fs::remove_dir_all(if store.is_some() {
        run_dir.join("snapshot")
    } else {
        run_dir.clone()
    });

    let artifacts_dir = if store.is_some() {
        run_dir.join("outputs")
    } else {
        project.root().join("outputs")
    };
    let artifacts = if store.is_some() {
        list_artifacts(&artifacts_dir)
    } else {
        Vec::new()
    };
    let (status, exit_code, error) = match &outcome {
        Ok((outcome, _)) if outcome.canceled => (RunStatus::Canceled, Some(outcome.exit_code), None),
        Ok((outcome, _)) if outcome.exit_code == 0 => (RunStatus::Completed, Some(0), None),
        Ok((outcome, _)) => (
            RunStatus::Failed,
            Some(outcome.exit_code),
            Some(format!("the script exited with code {}", outcome.exit_code)),
        ),
        Err(error) => (RunStatus::Failed, None, Some(error.to_string())),
    };
    if let Some(store) = &store {
        store
            .lock()
            .expect("not poisoned")
            .finish(run_number, status, exit_code, error.as_deref(), &artifacts)?;
    }
    if let Ok((_, problems)) = &outcome {
        for problem in problems {
            note(false, &format!("warning: run history: {problem}"));
        }
    }
    crate::timing::mark("run closed");
    let elapsed = format_duration(now_ms() - started);
    match outcome {
        Ok((outcome, _)) => {
            let artifacts_note = if artifacts.is_empty() {
                String::new()
            } else {
                format!("; {} artifact(s) in {}", artifacts.len(), artifacts_dir.display())
            };
            note(
                submission.quiet,
                &format!(
                    "Run {run_id}: {status} in {elapsed} (exit code {}){artifacts_note}",
                    outcome.exit_code
                ),
            );
            let exit_code = if outcome.canceled { 130 } else { outcome.exit_code };
            Ok(Finished {
                run_id: record.map(|r| r.run_id),
                status,
                exit_code,
            })
        }
        Err(error) => Err(error),
    }
}

fn execute(
    project: &Project,
    dirs: &UserDirs,
    plan: &Plan,
    run_id: &str,
    run_number: u64,
    run_dir: &Path,
    recorder: Option<Recorder<'_>>,
) -> Result<(RunOutcome, Vec<String>), SubmitError> {
    let tracked = recorder.is_some();
    let snapshot_dir = run_dir.join("snapshot");
    let support_dir =
        support::ensure(&project.xp_dir()).map_err(io_error("writing xp's Python helpers to", &project.xp_dir()))?;
    snapshot::copy_project(project.root(), &snapshot_dir).map_err(io_error("copying the project to", &snapshot_dir))?;
    crate::timing::mark("snapshot copied");
    let log_file = if tracked {
        let path = run_dir.join("output.log");
        Some(std::fs::File::create(&path).map_err(io_error("creating the run's log", &path))?)
    } else {
        None
    };
    let artifacts_dir = if tracked {
        run_dir.join("outputs")
    } else {
        project.root().join("outputs")
    };

    let mut environment: BTreeMap<String, String> = plan.runconfig.environment_variables.clone();
    environment.insert("AZUREML_RUN_ID".into(), run_id.to_owned());
    environment.insert("AZUREML_ARM_PROJECT_NAME".into(), project.name().to_owned());
    environment.insert("XP_RUN_ID".into(), run_id.to_owned());
    environment.insert("XP_RUN_NUMBER".into(), run_number.to_string());

    let request = RunRequest {
        run_id: run_id.to_owned(),
        run_number,
        project_name: project.name().to_owned(),
        project_dir: project.root().to_path_buf(),
        snapshot_dir,
        artifacts_dir,
        support_dir,
        script: plan.script.clone(),
        arguments: plan.arguments.clone(),
        environment,
        framework: plan.runconfig.framework.as_str().to_owned(),
        target: plan.target.to_plugin_target(),
        dependencies: plan.dependencies.clone(),
        prepare_environment: plan.runconfig.prepare_environment,
        state_dir: dirs.plugin_state_dir(plan.plugin.name()),
    };
    let sink = RunSink::new(recorder, log_file, true, signals::cancel_requested);
    let outcome = plan
        .plugin
        .run(&request, &sink)
        .map_err(|source| SubmitError::PluginCall {
            target: plan.target.name.clone(),
            compute_file: plan.target.path.clone(),
            source,
        })?;
    Ok((outcome, sink.take_problems()))
}

/// `xp experiment prepare`: builds or checks the target's environment ahead of a run.
pub fn prepare(
    project: &Project,
    dirs: &UserDirs,
    runconfig_name: &str,
    quiet: bool,
) -> Result<PrepareReply, SubmitError> {
    let runconfig = project.load_runconfig(runconfig_name)?;
    let target_name = runconfig.target.clone().ok_or_else(|| SubmitError::NoTarget {
        runconfig: runconfig.path.clone(),
    })?;
    let target = project.load_target(&target_name)?;
    let plugin = plugins::load_for_type(&target.target_type, Some(project.root()), dirs)?;
    signals::install();
    let request = PrepareRequest {
        project_dir: project.root().to_path_buf(),
        target: target.to_plugin_target(),
        dependencies: dependencies(project, &runconfig, quiet)?,
        framework: runconfig.framework.as_str().to_owned(),
        state_dir: dirs.plugin_state_dir(plugin.name()),
    };
    let sink = RunSink::new(None, None, true, signals::cancel_requested);
    plugin
        .prepare(&request, &sink)
        .map_err(|source| SubmitError::PluginCall {
            target: target.name.clone(),
            compute_file: target.path.clone(),
            source,
        })
}
