//! The `local` executor: runs the snapshot on this machine with the interpreter named by
//! `pythonLocation` (or `sparkSubmitLocation` for PySpark, with `spark_dependencies.yml`
//! applied), in the snapshot folder.

use std::path::PathBuf;
use std::process::Command;

use xp_plugin_api::{
    AttachReply, AttachRequest, Events, Executor, PluginDescription, PluginFailure, PrepareReply, PrepareRequest,
    RunOutcome, RunRequest, RunStatus, Target, TargetTemplate,
};
use xp_plugin_sdk::environment::{
    local_shared_directory, script_environment, with_trailing_slash, DEFAULT_SHARED_DIRECTORY,
};
use xp_plugin_sdk::packages::unmanaged_note;
use xp_plugin_sdk::resolve::find_program;
use xp_plugin_sdk::{outputs, process, settings, spark};

#[derive(Default)]
struct LocalExecutor;

/// The local target `xp init` writes.
const LOCAL_COMPUTE: &str = r#"# The local compute target: runs the script on this machine.
# type: the target type; a plugin that declares it runs the script.
type: "local"
# The interpreter to run scripts with (a name on PATH or a full path).
pythonLocation: "python3"
# A folder shared by every run of this project on this target; scripts find it in
# the AZUREML_NATIVE_SHARE_DIRECTORY environment variable.
nativeSharedDirectory: "~/.azureml/share/"
"#;

/// The program that runs the script, found on this machine: the interpreter, or for PySpark
/// spark-submit (see [`spark::script_program`]). Workbench projects say `python`, which many
/// systems no longer have: fall back to `python3` then, and say so.
fn program(target: &Target, framework: &str, events: Option<&Events<'_>>) -> Result<PathBuf, PluginFailure> {
    let wanted = spark::script_program(target, framework);
    let configured = wanted.program.as_str();
    if let Some(found) = find_program(configured) {
        return Ok(found);
    }
    if wanted.is_spark_submit() {
        return Err(PluginFailure::new(format!(
            "Framework PySpark needs spark-submit, and '{configured}' was not found; install Spark (e.g. `pip install pyspark`) or set sparkSubmitLocation in aml_config/{}.compute",
            target.name
        )));
    }
    if configured == "python" {
        if let Some(found) = find_program(spark::DEFAULT_PYTHON) {
            if let Some(events) = events {
                events.info(&format!(
                    "note: pythonLocation 'python' is not on PATH; using {}",
                    found.display()
                ));
            }
            return Ok(found);
        }
    }
    Err(PluginFailure::new(format!(
        "pythonLocation '{configured}' was not found{}; set pythonLocation in aml_config/{}.compute to an installed interpreter, e.g. python3 or /usr/bin/python3",
        if configured.contains('/') { " (no such executable file)" } else { " on PATH" },
        target.name
    )))
}

/// The interpreter of a target.
fn interpreter(target: &Target, events: Option<&Events<'_>>) -> Result<PathBuf, PluginFailure> {
    program(target, "Python", events)
}

impl Executor for LocalExecutor {
    fn describe(&self) -> PluginDescription {
        PluginDescription::new("local", env!("CARGO_PKG_VERSION"), &["local"])
            .setting(settings::python_location())
            .setting(settings::native_shared_directory())
            .setting(settings::spark_submit_location())
            .setting(settings::user_managed_environment())
            .template(TargetTemplate::new("local", "local", LOCAL_COMPUTE).by_default())
    }

    fn attach(&self, request: AttachRequest, _events: &Events<'_>) -> Result<AttachReply, PluginFailure> {
        let mut settings = request.context.target.settings.clone();
        settings
            .entry("pythonLocation")
            .or_insert_with(|| spark::DEFAULT_PYTHON.into());
        settings
            .entry("nativeSharedDirectory")
            .or_insert_with(|| DEFAULT_SHARED_DIRECTORY.into());
        let target = Target {
            settings: settings.clone(),
            ..request.context.target
        };
        let python = interpreter(&target, None)?;
        Ok(AttachReply::new(settings).message(format!("Scripts will run with {}", python.display())))
    }

    fn prepare(&self, request: PrepareRequest, _events: &Events<'_>) -> Result<PrepareReply, PluginFailure> {
        let python = interpreter(&request.context.target, None)?;
        let mut messages = vec![format!(
            "The local target uses {} as it is; nothing to build.",
            python.display()
        )];
        if spark::is_pyspark(&request.framework) {
            messages.push(format!(
                "spark-submit: {}",
                program(&request.context.target, &request.framework, None)?.display()
            ));
        }
        Ok(PrepareReply::cached().messages(messages))
    }

    fn run(&self, request: RunRequest, events: &Events<'_>) -> Result<RunOutcome, PluginFailure> {
        events.status(RunStatus::Preparing);
        if let Some(note) = unmanaged_note(&request.context.target) {
            events.info(&note);
        }
        let program = program(&request.context.target, &request.framework, Some(events))?;
        let shared = local_shared_directory(&request);
        std::fs::create_dir_all(&shared).map_err(|e| {
            PluginFailure::new(format!(
                "creating the shared directory {} (nativeSharedDirectory): {e}",
                shared.display()
            ))
        })?;
        let environment = script_environment(
            &request,
            &request.support_dir.to_string_lossy(),
            std::env::var("PYTHONPATH").ok().as_deref(),
            Some(&with_trailing_slash(&shared)),
        );
        let argv = spark::run_argv(program.to_string_lossy(), &request);
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .current_dir(&request.snapshot_dir)
            .envs(&environment);
        events.status(RunStatus::Running);
        let outcome = process::run_streaming(command, &format!("{}", program.display()), events)?;
        outputs::collect(&request.snapshot_dir.join("outputs"), &request.artifacts_dir, events);
        Ok(outcome)
    }
}

xp_plugin_api::export_plugin!(LocalExecutor);

#[cfg(test)]
mod tests;
