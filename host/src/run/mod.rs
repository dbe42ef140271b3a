//! Submitting a run: project model -> run record -> snapshot -> plugin -> outcome recorded.
//!
//! [`plan`] checks everything before anything is recorded; [`launch`] records the run and
//! copies the snapshot; [`drive`] runs the plugin and closes the record, either here (an
//! attached submit) or in a supervisor process ([`supervisor`], `--detach`).

mod call;
mod cancel;
mod drive;
mod error;
pub mod git;
mod launch;
mod losses;
mod plan;
mod reap;
pub mod signals;
mod sink;
mod supervisor;
pub mod support;
mod witness;

use std::path::Path;

pub use call::TargetCall;
pub use cancel::{cancel, Cancelled};
pub use error::SubmitError;
pub use reap::reap_vanished;
pub use sink::{Recorder, RunSink};
pub use supervisor::supervise;
use xp_plugin_api::{CleanReply, CleanRequest, PrepareReply, PrepareRequest, RunStatus};

use crate::history::HistoryStore;
use crate::paths::UserDirs;
use crate::project::Project;

/// `xp experiment submit`.
#[derive(Debug, Clone)]
pub struct Submission {
    pub runconfig: String,
    /// Overrides the run configuration's `Target`.
    pub target: Option<String>,
    pub script: String,
    pub arguments: Vec<String>,
    pub quiet: bool,
    /// Hand the run to a supervisor and return at once.
    pub detach: bool,
}

/// What a submit leads to, for the caller to report.
#[derive(Debug)]
pub struct Finished {
    pub run_id: Option<String>,
    pub status: RunStatus,
    /// The exit code xp itself should exit with.
    pub exit_code: i32,
}

pub(crate) fn note(quiet: bool, message: &str) {
    if !quiet {
        eprintln!("{message}");
    }
}

/// Runs a script on its target and records it. Errors before the run starts record nothing.
/// A detached submit returns as soon as the supervisor has the run, with status Queued.
pub fn submit(
    project: &Project,
    dirs: &UserDirs,
    cwd: &Path,
    submission: &Submission,
) -> Result<Finished, SubmitError> {
    let plan = plan::plan(project, dirs, cwd, submission)?;
    crate::timing::mark("run planned");
    if submission.detach && !plan.runconfig.tracked_run {
        return Err(SubmitError::DetachUntracked {
            runconfig: plan.runconfig.path.clone(),
        });
    }
    if !submission.detach {
        // From here on Ctrl-C cancels the run instead of killing xp.
        signals::install();
    }
    let mut store = if plan.runconfig.tracked_run {
        Some(HistoryStore::open(&project.xp_dir())?)
    } else {
        None
    };
    let launched = launch::launch(
        project,
        dirs,
        &plan,
        store.as_mut(),
        submission.quiet || submission.detach,
    )?;
    if submission.detach {
        let store = store.as_mut().expect("detached runs are tracked");
        supervisor::detach(&launched, &plan.plugin, store)?;
        return Ok(Finished {
            run_id: Some(launched.request.run_id.clone()),
            status: RunStatus::Queued,
            exit_code: 0,
        });
    }
    drive::drive(
        &plan.plugin,
        &launched,
        store,
        drive::Reporting {
            echo: true,
            quiet: submission.quiet,
        },
    )
}

/// A run configuration and a call to its target's plugin.
fn configured_target(
    project: &Project,
    dirs: &UserDirs,
    runconfig_name: &str,
) -> Result<(crate::project::RunConfig, TargetCall), SubmitError> {
    let runconfig = project.load_runconfig(runconfig_name)?;
    let target_name = runconfig.target.clone().ok_or_else(|| SubmitError::NoTarget {
        runconfig: runconfig.path.clone(),
    })?;
    let call = TargetCall::open(project, dirs, &target_name)?;
    Ok((runconfig, call))
}

/// `xp experiment prepare`: builds or checks the target's environment ahead of a run.
pub fn prepare(
    project: &Project,
    dirs: &UserDirs,
    runconfig_name: &str,
    quiet: bool,
) -> Result<PrepareReply, SubmitError> {
    let (runconfig, call) = configured_target(project, dirs, runconfig_name)?;
    signals::install();
    let request = PrepareRequest {
        context: call.context(project, dirs),
        dependencies: plan::dependencies(project, &runconfig, quiet)?,
        framework: runconfig.framework.as_str().to_owned(),
    };
    let sink = call.sink(true, signals::cancel_requested);
    let mut reply = call.plugin.prepare(&request, &sink).map_err(|e| call.error(e))?;
    reply.messages = call.redactor.scrub_all(&reply.messages);
    Ok(reply)
}

/// `xp experiment clean`: asks the target's plugin to remove what it built for this project.
pub fn clean(project: &Project, dirs: &UserDirs, runconfig_name: &str) -> Result<CleanReply, SubmitError> {
    let (_, call) = configured_target(project, dirs, runconfig_name)?;
    let request = CleanRequest {
        context: call.context(project, dirs),
    };
    let sink = call.sink(true, signals::cancel_requested);
    let mut reply = call.plugin.clean(&request, &sink).map_err(|e| call.error(e))?;
    reply.messages = call.redactor.scrub_all(&reply.messages);
    reply.removed = call.redactor.scrub_all(&reply.removed);
    Ok(reply)
}
