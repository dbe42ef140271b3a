//! Submitting a run: project model -> run record -> snapshot -> plugin -> outcome recorded.
//!
//! [`plan`] checks everything before anything is recorded; [`launch`] records the run and
//! copies the snapshot; [`drive`] runs the plugin and closes the record, either here (an
//! attached submit) or in a supervisor process ([`supervisor`], `--detach`).

mod cancel;
mod drive;
mod error;
pub mod git;
mod launch;
mod losses;
mod plan;
pub mod signals;
mod sink;
mod supervisor;
pub mod support;
mod witness;

use std::path::Path;

pub use cancel::{cancel, Cancelled};
pub use error::SubmitError;
pub use sink::{Recorder, RunSink};
pub use supervisor::supervise;
use xp_plugin_api::{CleanReply, CleanRequest, PrepareReply, PrepareRequest, RunStatus};

use crate::history::HistoryStore;
use crate::paths::UserDirs;
use crate::plugins;
use crate::project::Project;
use crate::secrets::Redactor;

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

/// A run configuration with its target and the plugin that serves it.
fn configured_target(
    project: &Project,
    dirs: &UserDirs,
    runconfig_name: &str,
) -> Result<
    (
        crate::project::RunConfig,
        crate::project::ComputeTarget,
        plugins::LoadedPlugin,
    ),
    SubmitError,
> {
    let runconfig = project.load_runconfig(runconfig_name)?;
    let target_name = runconfig.target.clone().ok_or_else(|| SubmitError::NoTarget {
        runconfig: runconfig.path.clone(),
    })?;
    let target = project.load_target(&target_name)?;
    let plugin = plugins::load_for_type(&target.target_type, Some(project.root()), dirs)?;
    plugins::warn_passed_over(&plugin);
    Ok((runconfig, target, plugin))
}

/// A plugin's error about `target`, with the request's secrets masked.
fn plugin_call_error<'a>(
    target: &'a crate::project::ComputeTarget,
    redactor: &'a Redactor,
) -> impl FnOnce(plugins::CallError) -> SubmitError + 'a {
    move |source| SubmitError::PluginCall {
        target: target.name.clone(),
        compute_file: target.path.clone(),
        source: redactor.call_error(source),
    }
}

/// `xp experiment prepare`: builds or checks the target's environment ahead of a run.
pub fn prepare(
    project: &Project,
    dirs: &UserDirs,
    runconfig_name: &str,
    quiet: bool,
) -> Result<PrepareReply, SubmitError> {
    let (runconfig, target, plugin) = configured_target(project, dirs, runconfig_name)?;
    let secrets = plan::target_secrets(project, &target, dirs)?;
    signals::install();
    let request = PrepareRequest {
        context: plugin.context(project.root(), project.name(), target.to_plugin_target(), dirs, secrets),
        dependencies: plan::dependencies(project, &runconfig, quiet)?,
        framework: runconfig.framework.as_str().to_owned(),
    };
    let redactor = Redactor::for_secrets(&request.context.secrets);
    let sink = RunSink::new(None, None, true, signals::cancel_requested).with_redactor(redactor.clone());
    let mut reply = plugin
        .prepare(&request, &sink)
        .map_err(plugin_call_error(&target, &redactor))?;
    reply.messages = redactor.scrub_all(&reply.messages);
    Ok(reply)
}

/// `xp experiment clean`: asks the target's plugin to remove what it built for this project.
pub fn clean(project: &Project, dirs: &UserDirs, runconfig_name: &str) -> Result<CleanReply, SubmitError> {
    let (_, target, plugin) = configured_target(project, dirs, runconfig_name)?;
    let secrets = plan::target_secrets(project, &target, dirs)?;
    let request = CleanRequest {
        context: plugin.context(project.root(), project.name(), target.to_plugin_target(), dirs, secrets),
        ..CleanRequest::default()
    };
    let redactor = Redactor::for_secrets(&request.context.secrets);
    let sink = RunSink::new(None, None, true, signals::cancel_requested).with_redactor(redactor.clone());
    let mut reply = plugin
        .clean(&request, &sink)
        .map_err(plugin_call_error(&target, &redactor))?;
    reply.messages = redactor.scrub_all(&reply.messages);
    reply.removed = redactor.scrub_all(&reply.removed);
    Ok(reply)
}
