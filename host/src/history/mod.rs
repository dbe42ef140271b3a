//! The run history: an embedded SQLite database in the project's `.xp/` folder, with each
//! run's log and artifacts in files beside it (`.xp/runs/<run id>/`).

pub mod artifacts;
mod error;
mod liveness;
mod open;
mod reap;
mod record;
mod schema;
mod store;

/// A file in a run's folder that keeps space free while the run goes, so that a run that
/// filled the disk can still record how it ended; removed when the run is closed.
pub const RESERVE_FILE: &str = ".reserve";

pub use artifacts::{encode_name, open_artifact, ArtifactError, ArtifactLink};
pub use error::HistoryError;
pub use liveness::{current_process_start, end_processes_of_run, process_is_alive, process_start};
pub use open::{unwritable, Unwritable};
pub use record::{format_duration, format_utc, now_ms, MetricPoint, RunRecord};
pub use store::{Closing, HistoryStore, ListFilter, NewRun};
