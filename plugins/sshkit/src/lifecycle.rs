//! The one lifecycle of a run on an SSH host, shared by the remote, remotedocker and cluster
//! plugins: send the snapshot, start the run detached from the connection, follow its output
//! (reconnecting when the connection drops, cancelling when the host asks), bring `outputs/`
//! back and remove the run's folder — and remove it too when any step fails.

use xp_plugin_api::{Events, PluginFailure, RunOutcome, RunRequest, RunStatus};
use xp_plugin_sdk::timing::mark;

use crate::remote_run::{self, RemoteCommand};
use crate::target::{self, Login};
use crate::Connection;

/// How the run's command is started.
pub enum Start<'a> {
    /// Started in the round trip that sends the snapshot, once `preflight` (shell commands
    /// that must exit 0, such as checking the interpreter) has passed.
    WithSnapshot {
        preflight: &'a str,
        command: &'a RemoteCommand,
    },
    /// Made once the snapshot is on the host, from what the host says then (the absolute
    /// paths a container's bind mounts need), and started in a round trip of its own.
    AfterSnapshot(&'a dyn Fn(&Connection) -> Result<RemoteCommand, PluginFailure>),
}

/// A run on an SSH host, detached from the connection that starts it.
pub struct DetachedRun<'a> {
    pub login: &'a Login,
    pub request: &'a RunRequest,
    /// Shell run on the host when the run is cancelled, before its process group is
    /// signalled (stopping a container: its `docker run` client only proxies signals).
    pub on_cancel: Option<String>,
    /// Shell run on the host once the run has ended, before its outputs are packed, in the same
    /// round trip (removing a container).
    pub after: Option<String>,
    /// Sees every line of output: a reason returned stops the run and fails it with that
    /// reason (a Spark job that gets no executors, a GPU the engine cannot give).
    pub watch: &'a dyn Fn(&str) -> Option<String>,
}

/// A `watch` that never stops a run.
pub fn watch_nothing(_line: &str) -> Option<String> {
    None
}

impl DetachedRun<'_> {
    /// Runs the script to its end over `connection`; `on_started` runs once it has started
    /// (before the status turns Running).
    pub fn run(
        &self,
        connection: Connection,
        start: Start<'_>,
        on_started: impl FnOnce(),
        events: &Events<'_>,
    ) -> Result<RunOutcome, PluginFailure> {
        let run_dir = target::run_directory(self.request);
        target::removing_run_folder_on_error(self.login, &run_dir, || {
            let cancelled = match start {
                Start::WithSnapshot { preflight, command } => {
                    target::send_snapshot_and_start(&connection, self.request, preflight, command, events)?
                }
                Start::AfterSnapshot(make) => {
                    target::send_snapshot(&connection, self.request, events)?;
                    let command = make(&connection)?;
                    remote_run::start(&connection, &run_dir, &command, events)?
                }
            };
            if let Some(cancelled) = cancelled {
                return Ok(cancelled);
            }
            mark("snapshot sent and started");
            on_started();
            events.status(RunStatus::Running);
            let reconnect = || self.login.connect(None);
            let (outcome, connection) = remote_run::follow_watching(
                connection,
                &reconnect,
                &run_dir,
                self.on_cancel.as_deref(),
                self.watch,
                events,
            )?;
            mark("followed to the end");
            remote_run::fetch_outputs_and_remove(
                &connection,
                &run_dir,
                &self.request.artifacts_dir,
                self.after.as_deref(),
                events,
            )?;
            mark("outputs fetched, run folder removed");
            connection.close();
            Ok(outcome)
        })
    }
}
