//! Driving a launched run through its plugin and closing its record with the outcome. The
//! attached submit and the detached supervisor both end here.

use std::path::Path;
use std::sync::Mutex;

use xp_plugin_api::RunStatus;

use super::launch::Launched;
use super::sink::{Recorder, RunSink};
use super::{note, signals, Finished, SubmitError};
use crate::history::{format_duration, now_ms, HistoryStore};
use crate::plugins::LoadedPlugin;
use crate::secrets::Redactor;

/// Paths of the files under `dir`, relative to its parent (`outputs/model.pkl`).
pub fn list_artifacts(dir: &Path) -> Vec<String> {
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

/// How a run should report.
#[derive(Debug, Clone, Copy)]
pub struct Reporting {
    /// Echo the script's output on this process's stdout and stderr.
    pub echo: bool,
    /// Leave out xp's own notes.
    pub quiet: bool,
}

/// Runs `launched` with `plugin`, records the outcome, and says how it went.
pub fn drive(
    plugin: &LoadedPlugin,
    launched: &Launched,
    store: Option<HistoryStore>,
    reporting: Reporting,
) -> Result<Finished, SubmitError> {
    let request = &launched.request;
    let run_number = request.run_number;
    let store = store.map(Mutex::new);
    let log_file = if launched.tracked {
        let path = launched.log_path();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| SubmitError::Io {
                what: "opening the run's log",
                path: path.clone(),
                source,
            })?;
        Some(file)
    } else {
        None
    };
    crate::timing::mark("run recorded");
    let started = now_ms();
    let recorder = store.as_ref().map(|store| Recorder { store, run_number });
    let redactor = Redactor::for_secrets(&request.context.secrets);
    let sink = RunSink::new(recorder, log_file, reporting.echo, signals::cancel_requested)
        .quiet(reporting.quiet)
        .with_redactor(redactor.clone());
    // Written down before entering the plugin: if it ends the process, the record says so.
    let call = launched.tracked.then(|| {
        super::witness::enter(
            &launched.run_dir.join(crate::history::PLUGIN_CALL_FILE),
            &format!(
                "plugin '{}' ({}) was running {}",
                plugin.name(),
                plugin.library().display(),
                xp_plugin_api::protocol::verbs::RUN
            ),
        )
    });
    let outcome = plugin.run(request, &sink);
    drop(call);
    let outcome = outcome.map_err(|source| SubmitError::PluginCall {
        target: request.context.target.name.clone(),
        compute_file: request
            .context
            .project_dir
            .join("aml_config")
            .join(format!("{}.compute", request.context.target.name)),
        source: redactor.call_error(source),
    });
    crate::timing::mark("plugin returned");
    // The snapshot has served (its files stay in the store); an untracked run keeps nothing.
    crate::snapshot::release(&launched.run_dir, &request.snapshot_dir);
    if !launched.tracked {
        let _ = std::fs::remove_dir_all(&launched.run_dir);
    }

    let artifacts = if launched.tracked {
        list_artifacts(&request.artifacts_dir)
    } else {
        Vec::new()
    };
    let (status, exit_code, error) = match &outcome {
        Ok(outcome) if outcome.canceled => (RunStatus::Canceled, Some(outcome.exit_code), None),
        Ok(outcome) if outcome.exit_code == 0 => (RunStatus::Completed, Some(0), None),
        Ok(outcome) => {
            let mut error = format!("the script exited with code {}", outcome.exit_code);
            let last = sink.last_error_lines();
            if !last.is_empty() {
                error.push_str("; its last output:\n");
                error.push_str(&last.join("\n"));
            }
            (RunStatus::Failed, Some(outcome.exit_code), Some(error))
        }
        // A step the user's cancel interrupted (a build, a transfer) is a cancel, not a failure.
        Err(error) if signals::cancel_requested() => (RunStatus::Canceled, None, Some(error.to_string())),
        Err(error) => (RunStatus::Failed, None, Some(error.to_string())),
    };
    if let Some(store) = &store {
        store
            .lock()
            .expect("not poisoned")
            .finish(run_number, status, exit_code, error.as_deref(), &artifacts)?;
    }
    for problem in sink.take_problems() {
        note(false, &format!("warning: run history: {problem}"));
    }
    crate::timing::mark("run closed");
    crate::snapshot::tidy_trees(&request.context.project_dir.join(crate::project::XP_DIR));
    let outcome = match outcome {
        Err(_) if status == RunStatus::Canceled => xp_plugin_api::RunOutcome::canceled(130),
        other => other?,
    };
    let artifacts_note = if artifacts.is_empty() {
        String::new()
    } else {
        format!(
            "; {} artifact(s) in {}",
            artifacts.len(),
            request.artifacts_dir.display()
        )
    };
    note(
        reporting.quiet,
        &format!(
            "Run {}: {status} in {} (exit code {}){artifacts_note}",
            request.run_id,
            format_duration(now_ms() - started),
            outcome.exit_code
        ),
    );
    Ok(Finished {
        run_id: launched.tracked.then(|| request.run_id.clone()),
        status,
        exit_code: if outcome.canceled { 130 } else { outcome.exit_code },
    })
}
