//! The run history: an embedded SQLite database in the project's `.xp/` folder, with each
//! run's log and artifacts in files beside it (`.xp/runs/<run id>/`).

mod error;
mod liveness;
mod query;
mod record;
mod schema;
mod snapshots;
mod store;
mod stream;

pub use error::HistoryError;
pub use liveness::{current_process_start, end_processes_of_run, process_is_alive, process_start};
pub use query::{RunPage, RunQuery, SeriesInfo, SortKey};
pub use record::{format_duration, format_utc, now_ms, MetricPoint, RunRecord, RunSnapshot};
pub use snapshots::StoredManifest;
pub use store::{HistoryStore, ListFilter, NewRun};
pub use stream::Condition;

/// The file in a run's folder that names the plugin call in progress (`plugin 'NAME'
/// (LIBRARY) was running VERB`), written before the call and removed after it: if the process
/// ends during the call, the run's record can say which plugin ended it.
pub const PLUGIN_CALL_FILE: &str = "plugin-call";
