//! The `remote` executor: runs the snapshot on a Linux host over SSH with a Python the user
//! manages there. The snapshot travels incrementally (files cached on the host by content);
//! the script runs detached from the connection in a per-run folder, its output followed
//! live and picked up again after a dropped connection; `outputs/` comes back as artifacts.
//! `Framework: PySpark` runs `sparkSubmitLocation` with `spark_dependencies.yml` applied.

use xp_plugin_api::{
    AttachReply, AttachRequest, Events, Executor, PluginDescription, PluginFailure, PrepareReply, PrepareRequest,
    ReapReply, ReapRequest, RunOutcome, RunRequest, RunStatus, Settings, Target,
};
use xp_plugin_sdk::packages::unmanaged_note;
use xp_plugin_sdk::timing::mark;
use xp_plugin_sdk::{settings, spark};
use xp_sshkit::lifecycle::{watch_nothing, DetachedRun, Start};
use xp_sshkit::quote::quote;
use xp_sshkit::target::{self, Login};
use xp_sshkit::Connection;

#[derive(Default)]
struct RemoteExecutor;

/// Checks that the interpreter exists on the host; returns its version line.
fn check_python(connection: &Connection, target: &Target) -> Result<String, PluginFailure> {
    let python = spark::script_program(target, "Python").program;
    let python = python.as_str();
    let finished = connection.exec(&format!("{} --version 2>&1", quote(python)), None)?;
    if finished.status != 0 {
        return Err(PluginFailure::new(format!(
            "pythonLocation '{python}' was not found on {} (aml_config/{}.compute); install Python there or set pythonLocation to its path",
            connection.address, target.name
        )));
    }
    Ok(String::from_utf8_lossy(&finished.stdout).trim().to_owned())
}

impl Executor for RemoteExecutor {
    fn describe(&self) -> PluginDescription {
        target::login_settings()
            .into_iter()
            .fold(
                PluginDescription::new("remote", env!("CARGO_PKG_VERSION"), &["remote"]),
                PluginDescription::setting,
            )
            .setting(settings::python_location())
            .setting(settings::spark_submit_location())
            .setting(settings::user_managed_environment())
    }

    fn attach(&self, request: AttachRequest, events: &Events<'_>) -> Result<AttachReply, PluginFailure> {
        target::attach(
            &request,
            &[(spark::PYTHON_SETTING, spark::DEFAULT_PYTHON)],
            Settings::new(),
            events,
            check_python,
        )
    }

    fn prepare(&self, request: PrepareRequest, events: &Events<'_>) -> Result<PrepareReply, PluginFailure> {
        let login = Login::for_context(&request.context)?;
        let connection = login.connect(Some(events))?;
        let version = check_python(&connection, &request.context.target)?;
        Ok(PrepareReply::cached().message(format!(
            "{} is reachable and has {version}; the remote target uses that interpreter as it is",
            connection.address
        )))
    }

    fn run(&self, request: RunRequest, events: &Events<'_>) -> Result<RunOutcome, PluginFailure> {
        events.status(RunStatus::Preparing);
        let target = &request.context.target;
        let login = Login::for_context(&request.context)?;
        mark("start");
        let connection = login.connect(Some(events))?;
        mark("connected");
        if let Some(note) = unmanaged_note(target) {
            events.info(&note);
        }
        let program = spark::script_program(target, &request.framework);
        // Checked in the same command as the host's cache (one round trip for both).
        let preflight = format!(
            "command -v {program} >/dev/null 2>&1 || {{ echo {missing} >&2; exit 3; }}",
            program = quote(&program.program),
            missing = quote(&format!(
                "{setting} '{name}' was not found on {address} (aml_config/{target}.compute); install it there or set {setting} to its path",
                setting = program.setting,
                name = program.program,
                address = connection.address,
                target = target.name,
            ))
        );
        let command = target::script_command(&request, spark::run_argv(program.program.as_str(), &request));
        DetachedRun {
            login: &login,
            request: &request,
            on_cancel: None,
            after: None,
            watch: &watch_nothing,
        }
        .run(
            connection,
            Start::WithSnapshot {
                preflight: &preflight,
                command: &command,
            },
            || {},
            events,
        )
    }

    /// The script runs detached on the host and outlives a vanished driver: end it there.
    fn reap(&self, request: ReapRequest, events: &Events<'_>) -> Result<ReapReply, PluginFailure> {
        target::reap(&request, None, events)
    }
}

xp_plugin_api::export_plugin!(RemoteExecutor);

#[cfg(test)]
mod tests;
