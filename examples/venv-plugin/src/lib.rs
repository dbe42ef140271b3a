//! `venv`: an xp executor plugin, built out of tree against the published plugin API only.
//!
//! A `venv` target runs the script on this machine, in a Python virtual environment made from
//! the project's pip list (the `pip:` section of `conda_dependencies.yml`, which the host reads
//! and passes as `dependencies.pip_packages`). Environments are cached by content under the
//! plugin's state folder, so only the first run with a given list pays for the build.
//!
//! Settings (`aml_config/NAME.compute`):
//! - `pythonLocation`: the base interpreter the environments are made with (default `python3`).
//! - `nativeSharedDirectory`: the folder shared by the project's runs (default
//!   `~/.azureml/share/`), given to scripts as `AZUREML_NATIVE_SHARE_DIRECTORY`.
//!
//! This crate is the worked example of `plugin-api/PLUGINS.md`.

mod environment;
mod fingerprint;
mod interpreter;
mod pip_failure;

use std::collections::BTreeMap;
use std::process::Command;

use environment::{Environment, Prepared, Spec};
use interpreter::DEFAULT_PYTHON;
use xp_plugin_api::{
    AttachReply, AttachRequest, CleanReply, CleanRequest, Events, Executor, PluginDescription, PluginFailure,
    PrepareReply, PrepareRequest, RunOutcome, RunRequest, RunStatus, Target,
};
use xp_plugin_sdk::environment::{
    local_shared_directory, script_environment, with_trailing_slash, DEFAULT_SHARED_DIRECTORY,
};
use xp_plugin_sdk::{outputs, process};

#[derive(Default)]
struct VenvExecutor;

fn unsupported_framework(framework: &str, target: &Target) -> Option<PluginFailure> {
    (!framework.is_empty() && !framework.eq_ignore_ascii_case("Python")).then(|| {
        PluginFailure::new(format!(
            "target '{}' (type venv) runs Python scripts only, but the run configuration says Framework {framework}; use a local or cluster target for PySpark",
            target.name
        ))
    })
}

/// `<nativeSharedDirectory>/<project>/`, created.
fn shared_directory(request: &RunRequest) -> Result<String, PluginFailure> {
    let dir = local_shared_directory(request);
    std::fs::create_dir_all(&dir).map_err(|e| {
        PluginFailure::new(format!(
            "creating the shared directory {} (nativeSharedDirectory in aml_config/{}.compute): {e}",
            dir.display(),
            request.context.target.name
        ))
    })?;
    Ok(with_trailing_slash(&dir))
}

/// The script's environment as every target gives it (the run's variables, xp's helpers first
/// on `PYTHONPATH`, unbuffered output, the shared directory), with the virtual environment
/// activated (`VIRTUAL_ENV`, `PATH`), so that the script's own `python` and `pip` subprocesses
/// use it too.
fn venv_environment(request: &RunRequest, venv: &Environment, shared: String) -> BTreeMap<String, String> {
    let mut environment = script_environment(
        request,
        &request.support_dir.to_string_lossy(),
        std::env::var("PYTHONPATH").ok().as_deref(),
        Some(&shared),
    );
    environment.insert("VIRTUAL_ENV".into(), venv.dir.to_string_lossy().into_owned());
    let path = environment
        .get("PATH")
        .cloned()
        .or_else(|| std::env::var("PATH").ok())
        .unwrap_or_default();
    environment.insert("PATH".into(), format!("{}:{path}", venv.bin_dir().display()));
    environment
}

impl Executor for VenvExecutor {
    fn describe(&self) -> PluginDescription {
        PluginDescription::new("venv", env!("CARGO_PKG_VERSION"), &["venv"])
    }

    fn attach(&self, request: AttachRequest, _events: &Events<'_>) -> Result<AttachReply, PluginFailure> {
        let mut settings = request.context.target.settings.clone();
        settings
            .entry("pythonLocation")
            .or_insert_with(|| DEFAULT_PYTHON.into());
        settings
            .entry("nativeSharedDirectory")
            .or_insert_with(|| DEFAULT_SHARED_DIRECTORY.into());
        let target = Target {
            settings: settings.clone(),
            ..request.context.target
        };
        let python = interpreter::find_interpreter(&target, &request.context.project_dir)?;
        if !python.has_venv {
            return Err(PluginFailure::new(format!(
                "Python {} ({}) lacks the venv and ensurepip modules; install them (on Debian and Ubuntu: apt install python3-venv) or pass --python-location with another interpreter",
                python.version,
                python.executable.display()
            )));
        }
        Ok(AttachReply::new(settings)
            .runconfig("PrepareEnvironment", true)
            .message(format!(
                "Runs on '{}' use virtual environments made with Python {} ({}) from the pip list of the run configuration's CondaDependenciesFile, cached in {}",
                target.name,
                python.version,
                python.executable.display(),
                request.context.state_dir.join("venvs").display()
            )))
    }

    fn prepare(&self, request: PrepareRequest, events: &Events<'_>) -> Result<PrepareReply, PluginFailure> {
        if let Some(failure) = unsupported_framework(&request.framework, &request.context.target) {
            return Err(failure);
        }
        let spec = Spec {
            project_dir: &request.context.project_dir,
            target: &request.context.target,
            dependencies: &request.dependencies,
            state_dir: &request.context.state_dir,
        };
        match environment::ensure(&spec, events)? {
            Prepared::Ready(venv) => Ok(PrepareReply::new(venv.cached).message(format!(
                "Virtual environment {} (Python {}, {} pip package(s)): {}",
                venv.hash,
                venv.interpreter.version,
                request.dependencies.pip_packages.len(),
                venv.dir.display()
            ))),
            Prepared::Canceled => Err(PluginFailure::new(
                "cancelled while building the virtual environment; nothing was cached",
            )),
        }
    }

    /// `xp experiment clean`. Environments are
    /// keyed by content, not by project, so they are shared: only unfinished builds go.
    fn clean(&self, request: CleanRequest, _events: &Events<'_>) -> Result<CleanReply, PluginFailure> {
        let venvs = request.context.state_dir.join("venvs");
        let cleaned = environment::clean(&venvs)?;
        let message = if cleaned.environments == 0 {
            "No virtual environments are cached.".to_owned()
        } else {
            format!(
                "{} virtual environment(s) stay cached in {}: they are shared by every project with the same interpreter and pip list. Delete that folder to remove them all; runs rebuild what they need.",
                cleaned.environments,
                venvs.display()
            )
        };
        Ok(CleanReply::new()
            .removed_all(cleaned.removed.iter().map(|p| p.display().to_string()))
            .message(message))
    }

    fn run(&self, request: RunRequest, events: &Events<'_>) -> Result<RunOutcome, PluginFailure> {
        events.status(RunStatus::Preparing);
        if let Some(failure) = unsupported_framework(&request.framework, &request.context.target) {
            return Err(failure);
        }
        let spec = Spec {
            project_dir: &request.context.project_dir,
            target: &request.context.target,
            dependencies: &request.dependencies,
            state_dir: &request.context.state_dir,
        };
        let venv = match environment::ensure(&spec, events)? {
            Prepared::Ready(venv) => venv,
            Prepared::Canceled => return Ok(RunOutcome::canceled(130)),
        };
        let shared = shared_directory(&request)?;
        let mut command = Command::new(venv.python());
        command
            .args(&request.arguments)
            .current_dir(&request.snapshot_dir)
            .env_remove("PYTHONHOME")
            .envs(venv_environment(&request, &venv, shared));
        events.status(RunStatus::Running);
        let what = format!("the script ({})", venv.python().display());
        let outcome = process::run_streaming(command, &what, events)?;
        // By the artifact rule: links kept as links, odd entries skipped and reported, one
        // entry that fails never keeps the others back.
        outputs::collect(&request.snapshot_dir.join("outputs"), &request.artifacts_dir, events);
        Ok(outcome)
    }
}

xp_plugin_api::export_plugin!(VenvExecutor);
