use std::path::PathBuf;

use crate::history::HistoryError;
use crate::plugins::{CallError, PluginError};
use crate::project::ProjectError;
use crate::secrets::SecretError;

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Project(#[from] ProjectError),

    #[error(transparent)]
    Plugin(#[from] PluginError),

    #[error(transparent)]
    History(#[from] HistoryError),

    #[error(transparent)]
    Secret(#[from] SecretError),

    #[error(transparent)]
    Setting(#[from] Box<crate::plugins::schema::SettingError>),

    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),

    #[error("{}: `Target` is missing: name the compute target to run on (e.g. `Target: local`), or pass -t TARGET", runconfig.display())]
    NoTarget { runconfig: PathBuf },

    #[error("script '{script}' not found in project {} (looked for {}). Give a path relative to the project.", project.display(), looked_for.display())]
    NoScript {
        script: String,
        project: PathBuf,
        looked_for: PathBuf,
    },

    #[error("script '{script}' is outside the project {}: runs execute a snapshot of the project, so the script must be inside it", project.display())]
    ScriptOutsideProject { script: String, project: PathBuf },

    #[error("{}: TrackedRun is false, so a detached run would leave no record to follow; run it attached or set TrackedRun: true", runconfig.display())]
    DetachUntracked { runconfig: PathBuf },

    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("target '{target}' ({}): {source}", compute_file.display())]
    PluginCall {
        target: String,
        compute_file: PathBuf,
        #[source]
        source: CallError,
    },
}

/// Wraps an I/O error with what xp was doing and the path.
pub(crate) fn io_error<'a>(
    what: &'static str,
    path: &'a std::path::Path,
) -> impl FnOnce(std::io::Error) -> SubmitError + 'a {
    move |source| SubmitError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}
