//! Closing runs whose driver vanished, the whole way: the history marks them Failed and ends
//! what they left on this machine ([`HistoryStore::reap_vanished`]), then each run's plugin
//! ends what it left on its target (a container, a remote process group, a Spark
//! application) through the `reap` verb, and the record says what was ended, or why not.

use xp_plugin_api::{ReapRequest, RunStatus};

use super::TargetCall;
use crate::history::{HistoryError, HistoryStore, RunRecord};
use crate::paths::UserDirs;
use crate::project::Project;

/// [`HistoryStore::reap_vanished`], then the `reap` of each run's plugin. Returns the runs
/// closed, with what their plugins said added to their records. A plugin that cannot be
/// reached never fails the command that reaps: its reason goes into the run's record.
pub fn reap_vanished(project: &Project, dirs: &UserDirs, store: &HistoryStore) -> Result<Vec<RunRecord>, HistoryError> {
    let mut reaped = store.reap_vanished()?;
    for record in &mut reaped {
        if let Some(note) = end_on_target(project, dirs, record) {
            store.add_to_error(record.run_number, &note)?;
            let error = record.error.take().unwrap_or_default();
            record.error = Some(format!("{error}; {note}"));
        }
    }
    Ok(reaped)
}

/// What the run's plugin did about the run's leftovers on its target, for the record; None
/// when there was nothing to say.
fn end_on_target(project: &Project, dirs: &UserDirs, record: &RunRecord) -> Option<String> {
    debug_assert_eq!(record.status, RunStatus::Failed);
    let target = match project.load_target(&record.target) {
        Ok(target) => target,
        Err(error) => {
            return Some(format!(
                "what it left on target '{}' was not looked for: {error}",
                record.target
            ))
        }
    };
    let name = target.name.clone();
    let call = match TargetCall::for_target(project, dirs, target) {
        Ok(call) => call,
        Err(error) => return Some(format!("what it left on target '{name}' was not ended: {error}")),
    };
    let request = ReapRequest {
        context: call.context(project, dirs),
        run_id: record.run_id.clone(),
        run_number: record.run_number,
    };
    match call.plugin.reap(&request, &call.sink(false, || false)) {
        Ok(reply) if reply.ended.is_empty() => None,
        Ok(reply) => Some(
            call.redactor
                .scrub(&format!("ended on target '{name}': {}", reply.ended.join(", ")))
                .into_owned(),
        ),
        Err(error) => Some(format!(
            "what it left on target '{name}' was not ended: {}",
            call.redactor.call_error(error)
        )),
    }
}
