//! The run history: an embedded SQLite database in the project's `.xp/` folder, with each
//! run's log and artifacts in files beside it (`.xp/runs/<run id>/`).

mod error;
mod liveness;
mod record;
mod schema;
mod snapshots;
mod store;
mod stream;

pub use error::HistoryError;
pub use liveness::{current_process_start, end_processes_of_run, process_is_alive, process_start};
pub use record::{format_duration, format_utc, now_ms, MetricPoint, RunRecord, RunSnapshot};
pub use snapshots::StoredManifest;
pub use store::{HistoryStore, ListFilter, NewRun};
pub use stream::Condition;
