//! The `remote` executor: runs the snapshot on a Linux host over SSH with a Python the user
//! manages there. The snapshot travels incrementally (files cached on the host by content);
//! the script runs detached from the connection in a per-run folder, its output followed
//! live and picked up again after a dropped connection; `outputs/` comes back as artifacts.

use xp_plugin_api::{
    AttachReply, AttachRequest, Events, Executor, PluginDescription, PluginFailure, PrepareReply, PrepareRequest,
    RunOutcome, RunRequest, RunStatus, Settings, Target,
};
use xp_plugin_support::environment::script_environment;
use xp_plugin_support::timing::mark;
use xp_sshkit::quote::quote;
use xp_sshkit::remote_run::{self, RemoteCommand};
use xp_sshkit::target::{self, Login};
use xp_sshkit::Connection;

const DEFAULT_PYTHON: &str = "python3";

#[derive(Default)]
struct RemoteExecutor;

fn python(target: &Target) -> &str {
    target
        .setting_str("pythonLocation")
        .filter(|p| !p.trim().is_empty())
        .unwrap_or(DEFAULT_PYTHON)
}

/// Checks that the interpreter exists on the host; returns its version line.
fn check_python(connection: &Connection, target: &Target) -> Result<String, PluginFailure> {
    let python = python(target);
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
        PluginDescription::new("remote", env!("CARGO_PKG_VERSION"), &["remote"])
    }

    fn attach(&self, request: AttachRequest, events: &Events<'_>) -> Result<AttachReply, PluginFailure> {
        target::attach(
            &request,
            &[("pythonLocation", DEFAULT_PYTHON)],
            Settings::new(),
            events,
            check_python,
        )
    }

    fn prepare(&self, request: PrepareRequest, events: &Events<'_>) -> Result<PrepareReply, PluginFailure> {
        let login = Login::for_request(&request)?;
        let connection = login.connect(Some(events))?;
        let version = check_python(&connection, &request.target)?;
        Ok(PrepareReply {
            cached: true,
            messages: vec![format!(
                "{} is reachable and has {version}; the remote target uses that interpreter as it is",
                connection.address
            )],
        })
    }

    fn run(&self, request: RunRequest, events: &Events<'_>) -> Result<RunOutcome, PluginFailure> {
        events.status(RunStatus::Preparing);
        let target = &request.target;
        let login = Login::for_request(&request)?;
        mark("start");
        let connection = login.connect(Some(events))?;
        mark("connected");
        let program = if request.framework == "PySpark" {
            target
                .setting_str("sparkSubmitLocation")
                .unwrap_or("spark-submit")
                .to_owned()
        } else {
            check_python(&connection, target)?;
            python(target).to_owned()
        };
        mark("interpreter checked");
        let run_dir = target::run_directory(&request);
        target::removing_run_folder_on_error(&login, &run_dir, || {
            target::send_snapshot(&connection, &request, events)?;
            mark("snapshot sent");

            let mut environment = script_environment(&request, "", None, None);
            environment.remove("PYTHONPATH");
            let mut preamble = vec![match request.environment.get("PYTHONPATH") {
                Some(path) if !path.is_empty() => {
                    format!("export PYTHONPATH=\"$(cd .. && pwd)/support\":{}", quote(path))
                }
                _ => "export PYTHONPATH=\"$(cd .. && pwd)/support\"".to_owned(),
            }];
            preamble.extend(target::shared_directory_preamble(target, &request.project_name));
            let command = RemoteCommand {
                argv: std::iter::once(program)
                    .chain(request.arguments.iter().cloned())
                    .collect(),
                environment: environment.into_iter().collect(),
                preamble,
            };
            if let Some(cancelled) = remote_run::start(&connection, &run_dir, &command, events)? {
                return Ok(cancelled);
            }
            mark("started");
            events.status(RunStatus::Running);
            let reconnect = || login.connect(None);
            let (outcome, connection) = remote_run::follow(connection, &reconnect, &run_dir, None, events)?;
            mark("followed to the end");
            remote_run::fetch_outputs(&connection, &run_dir, &request.artifacts_dir, events)?;
            mark("outputs fetched");
            remote_run::remove(&connection, &run_dir)?;
            mark("run folder removed");
            Ok(outcome)
        })
    }
}

xp_plugin_api::export_plugin!(RemoteExecutor);
