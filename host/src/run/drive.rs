//! Driving a launched run through its plugin and closing its record with the outcome. The
//! attached submit and the detached supervisor both end here.

use std::path::Path;
use std::sync::Mutex;

use xp_plugin_api::RunStatus;

use super::launch::Launched;
use super::sink::{Recorder, RunSink};
use super::{note, signals, Finished, SubmitError};
use crate::history::artifacts::{self, a_few, Listing};
use crate::history::{format_duration, now_ms, Closing, HistoryStore, RESERVE_FILE};
use crate::plugins::LoadedPlugin;
use crate::secrets::Redactor;

/// Space kept free in a run's folder while it goes and given back just before its record is
/// closed, so that a run that filled the disk can still record how it ended and what it lost.
const RESERVE_BYTES: usize = 128 * 1024;

fn keep_reserve(run_dir: &Path) {
    let _ = std::fs::write(run_dir.join(RESERVE_FILE), vec![0u8; RESERVE_BYTES]);
}

fn release_reserve(run_dir: &Path) {
    let _ = std::fs::remove_file(run_dir.join(RESERVE_FILE));
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
        keep_reserve(&launched.run_dir);
        Some((file, path))
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

    let listing = if launched.tracked {
        artifacts::list(&request.artifacts_dir)
    } else {
        Listing::default()
    };
    for skipped in &listing.skipped {
        sink.log_note(&format!("outputs: skipped {skipped}"));
    }
    if !listing.links.is_empty() {
        let links: Vec<String> = listing
            .links
            .iter()
            .map(|link| format!("{} -> {}", link.path, link.target))
            .collect();
        sink.log_note(&format!(
            "outputs: {} link(s) recorded with their targets, never followed: {}",
            links.len(),
            a_few(&links)
        ));
    }
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
    // Masked before it is stored, whatever its source.
    let error = error.map(|error| redactor.scrub(&error).into_owned());
    let lost = sink.losses();
    if let Some(store) = &store {
        release_reserve(&launched.run_dir);
        store.lock().expect("not poisoned").close(
            run_number,
            &Closing {
                status: Some(status),
                exit_code,
                error: error.as_deref(),
                artifacts: &listing.files,
                artifact_links: &listing.links,
                lost: &lost,
            },
        )?;
    }
    if !lost.is_empty() {
        // Told once, whatever -q says: the run's record is incomplete.
        note(
            false,
            &format!(
                "warning: run {} is {status} but incomplete: {}",
                request.run_id,
                lost.join("; ")
            ),
        );
    }
    crate::timing::mark("run closed");
    crate::snapshot::tidy_trees(&request.context.project_dir.join(crate::project::XP_DIR));
    let outcome = match outcome {
        Err(_) if status == RunStatus::Canceled => xp_plugin_api::RunOutcome::canceled(130),
        other => other?,
    };
    let mut artifacts_note = String::new();
    if !listing.files.is_empty() {
        artifacts_note = format!(
            "; {} artifact(s) in {}",
            listing.files.len(),
            request.artifacts_dir.display()
        );
    }
    if !listing.links.is_empty() {
        artifacts_note.push_str(&format!(
            "; {} link(s) in outputs/ recorded, not followed",
            listing.links.len()
        ));
    }
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
