//! The run history: an embedded SQLite database in the project's `.xp/` folder, with each
//! run's log and artifacts in files beside it (`.xp/runs/<run id>/`).

pub mod artifacts;
mod error;
mod find;
mod liveness;
mod open;
mod query;
mod reap;
mod record;
mod run_ids;
mod schema;
mod snapshots;
mod store;
mod stream;

/// A file in a run's folder that keeps space free while the run goes, so that a run that
/// filled the disk can still record how it ended; removed when the run is closed.
pub const RESERVE_FILE: &str = ".reserve";

pub use artifacts::{encode_name, open_artifact, ArtifactError, ArtifactLink};
pub use error::HistoryError;
pub use find::{RunPage, RunQuery, SortKey};
pub use liveness::{current_process_start, end_processes_of_run, process_is_alive, process_start};
pub use open::{unwritable, Unwritable};
pub use query::SeriesInfo;
pub use record::{format_duration, format_utc, now_ms, MetricPoint, RunRecord, RunSnapshot};
pub use snapshots::StoredManifest;
pub use store::{Closing, HistoryStore, ListFilter, NewRun};
pub use stream::Condition;

/// The file in a run's folder that names the plugin call in progress (`plugin 'NAME'
/// (LIBRARY) was running VERB`), written before the call and removed after it: if the process
/// ends during the call, the run's record can say which plugin ended it.
pub const PLUGIN_CALL_FILE: &str = "plugin-call";

/// The words a vanished run's record gets from the note of the plugin call in progress when
/// its driver ended: which call it was, and, when the driver's own hooks saw it (an `exit`, a
/// fatal signal), that the plugin ended the process.
pub fn describe_plugin_call(note: &str) -> String {
    let note = note.trim();
    match note.find("; the plugin") {
        Some(at) => format!("; plugin call in progress: {}; {}", &note[..at], note[at + 2..].trim()),
        None => format!("; plugin call in progress: {note}"),
    }
}

#[cfg(test)]
mod tests {
    use super::describe_plugin_call;

    #[test]
    fn plugin_call_notes_read_back_as_sentences() {
        assert_eq!(
            describe_plugin_call("plugin 'x' (/l.so) was running run\n"),
            "; plugin call in progress: plugin 'x' (/l.so) was running run"
        );
        assert_eq!(
            describe_plugin_call("plugin 'x' (/l.so) was running run; the plugin called exit\n"),
            "; plugin call in progress: plugin 'x' (/l.so) was running run; the plugin called exit"
        );
    }
}
