//! From a plan to a run that is recorded, snapshotted and described as a request for its
//! plugin. Whatever fails after the record exists closes the record as Failed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use xp_plugin_api::{RunRequest, RunStatus};

use super::error::io_error;
use super::plan::Plan;
use super::{git, note, support, SubmitError};
use crate::history::{now_ms, HistoryStore, NewRun};
use crate::paths::UserDirs;
use crate::project::Project;
use crate::secrets::Redactor;
use crate::snapshot::{self, Snapshot};

/// A run ready for its plugin.
pub struct Launched {
    pub request: RunRequest,
    pub run_dir: PathBuf,
    /// False for `TrackedRun: false`: no record, outputs go to the project's `outputs/`.
    pub tracked: bool,
}

impl Launched {
    pub fn log_path(&self) -> PathBuf {
        self.run_dir.join("output.log")
    }
}

/// The arguments a run is recorded with: its argument vector without the script itself
/// (wherever `$file` put it: options may come before it).
fn recorded_arguments(arguments: &[String], script: &str) -> Vec<String> {
    let mut rest = arguments.to_vec();
    if let Some(at) = rest.iter().position(|argument| argument == script) {
        rest.remove(at);
    }
    rest
}

/// Records the run (when tracked), copies the snapshot and builds the plugin's request.
pub fn launch(
    project: &Project,
    dirs: &UserDirs,
    plan: &Plan,
    store: Option<&mut HistoryStore>,
    quiet: bool,
) -> Result<Launched, SubmitError> {
    let Some(store) = store else {
        let run_id = format!("{}_{}", project.run_id_prefix(), now_ms());
        let run_dir = project.xp_dir().join("untracked").join(&run_id);
        note(
            quiet,
            &format!("Untracked run on target {} (TrackedRun: false)", plan.target.name),
        );
        let (store, taken) = snapshot::take(&project.xp_dir(), project.root())?;
        crate::timing::mark("snapshot taken");
        let request = build_request(
            project,
            dirs,
            plan,
            &run_id,
            0,
            &run_dir,
            project.root().join("outputs"),
            (&store, &taken),
        )?;
        return Ok(Launched {
            request,
            run_dir,
            tracked: false,
        });
    };
    let git_commit = git::head_commit(project.root());
    // Whatever is recorded is masked first: an argument may be the target's password.
    let redactor = Redactor::for_secrets(&plan.secrets);
    let record = store.create_run(&NewRun {
        id_prefix: &project.run_id_prefix(),
        script: &redactor.scrub(&plan.script),
        arguments: &redactor.scrub_all(&recorded_arguments(&plan.arguments, &plan.script)),
        target: &plan.target.name,
        runconfig: &plan.runconfig.name,
        git_commit: git_commit.as_deref(),
    })?;
    note(
        quiet,
        &format!(
            "RunId: {} (run {}, target {})",
            record.run_id, record.run_number, plan.target.name
        ),
    );
    let run_dir = store.run_dir(&record.run_id);
    let artifacts_dir = run_dir.join("outputs");
    // Snapshots left mounted by runs whose driver died go first.
    snapshot::release_finished(&project.xp_dir().join("runs"), |run_id| {
        store.run_is_over(run_id).unwrap_or(false)
    });
    let built = take_and_record(project, store, record.run_number).and_then(|(objects, taken)| {
        build_request(
            project,
            dirs,
            plan,
            &record.run_id,
            record.run_number,
            &run_dir,
            artifacts_dir,
            (&objects, &taken),
        )
    });
    match built {
        Ok(request) => Ok(Launched {
            request,
            run_dir,
            tracked: true,
        }),
        Err(error) => {
            snapshot::release(&run_dir, &run_dir.join("snapshot"));
            store.finish(
                record.run_number,
                RunStatus::Failed,
                None,
                Some(&redactor.scrub(&error.to_string())),
                &[],
            )?;
            Err(error)
        }
    }
}

/// Reads the project into the store and records the run's manifest.
fn take_and_record(
    project: &Project,
    history: &mut HistoryStore,
    run_number: u64,
) -> Result<(snapshot::Store, Snapshot), SubmitError> {
    let (objects, taken) = snapshot::take(&project.xp_dir(), project.root())?;
    crate::timing::mark("snapshot taken");
    let summary = taken.summary();
    history.set_snapshot(
        run_number,
        &taken.id.hex(),
        summary.files,
        summary.bytes,
        &taken.manifest.encode(),
    )?;
    Ok((objects, taken))
}

#[allow(clippy::too_many_arguments)]
fn build_request(
    project: &Project,
    dirs: &UserDirs,
    plan: &Plan,
    run_id: &str,
    run_number: u64,
    run_dir: &Path,
    artifacts_dir: PathBuf,
    (objects, taken): (&snapshot::Store, &Snapshot),
) -> Result<RunRequest, SubmitError> {
    let xp_dir = project.xp_dir();
    let support_dir = support::ensure(&xp_dir).map_err(io_error("writing xp's Python helpers to", &xp_dir))?;
    let snapshot_dir = run_dir.join("snapshot");
    snapshot::materialize(objects, taken, run_dir, &snapshot_dir)?;
    crate::timing::mark("snapshot copied");
    let snapshot_manifest = snapshot::manifest_file(objects, taken)
        .map_err(io_error("writing the snapshot's manifest to", objects.root()))?;

    let mut environment: BTreeMap<String, String> = plan.runconfig.environment_variables.clone();
    environment.insert("AZUREML_RUN_ID".into(), run_id.to_owned());
    environment.insert("AZUREML_ARM_PROJECT_NAME".into(), project.name().to_owned());
    environment.insert("XP_RUN_ID".into(), run_id.to_owned());
    environment.insert("XP_RUN_NUMBER".into(), run_number.to_string());

    Ok(RunRequest {
        context: plan.plugin.context(
            project.root(),
            project.name(),
            plan.target.to_plugin_target(),
            dirs,
            plan.secrets.clone(),
        ),
        run_id: run_id.to_owned(),
        run_number,
        snapshot_dir,
        artifacts_dir,
        support_dir,
        script: plan.script.clone(),
        arguments: plan.arguments.clone(),
        environment,
        framework: plan.runconfig.framework.as_str().to_owned(),
        dependencies: plan.dependencies.clone(),
        prepare_environment: plan.runconfig.prepare_environment,
        snapshot_manifest: Some(snapshot_manifest),
    })
}
