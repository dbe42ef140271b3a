//! The one step that closes runs whose driver vanished. Reading the history never does this:
//! the commands that need it (submit, cancel, and the history commands on a writable
//! history) call [`HistoryStore::reap_vanished`] first.

use rusqlite::params;
use xp_plugin_api::RunStatus;

use super::liveness::{end_processes_of_run, process_is_alive};
use super::record::{now_ms, RunRecord};
use super::{HistoryError, HistoryStore, ListFilter};

impl HistoryStore {
    /// Marks Failed every run that is not finished but whose driving process is gone (so no
    /// run stays Running forever), ending the processes such a run left behind on this
    /// machine. Returns the runs it closed. Does nothing on a history opened read-only.
    pub fn reap_vanished(&self) -> Result<Vec<RunRecord>, HistoryError> {
        if self.read_only().is_some() {
            return Ok(Vec::new());
        }
        let mut reaped = Vec::new();
        for status in [RunStatus::Queued, RunStatus::Preparing, RunStatus::Running] {
            let open = self.list(&ListFilter {
                status: Some(status),
                limit: usize::MAX >> 1,
                ..ListFilter::default()
            })?;
            for record in open {
                if let Some(record) = self.reap_if_vanished(record)? {
                    reaped.push(record);
                }
            }
        }
        Ok(reaped)
    }

    /// Adds `note` to the error of run `run_number` (what happened after it was closed).
    pub fn add_to_error(&self, run_number: u64, note: &str) -> Result<(), HistoryError> {
        self.conn
            .execute(
                "UPDATE runs SET error = CASE WHEN error IS NULL OR error = '' THEN ?2 ELSE error || '; ' || ?2 END WHERE run_number = ?1",
                params![run_number as i64, note],
            )
            .map_err(|e| super::open::database_error(&self.path, e))?;
        Ok(())
    }

    fn reap_if_vanished(&self, mut record: RunRecord) -> Result<Option<RunRecord>, HistoryError> {
        let Some(pid) = record.driver_pid else {
            return Ok(None);
        };
        if record.status.is_final() || process_is_alive(pid, record.driver_start) {
            return Ok(None);
        }
        let run_dir = self.run_dir(&record.run_id);
        // A plugin that called exit or abort (or crashed) took its host with it: the driver
        // wrote down which call it was in, and its hooks how the process ended.
        let in_call = std::fs::read_to_string(run_dir.join(super::PLUGIN_CALL_FILE))
            .map(|note| super::describe_plugin_call(&note))
            .unwrap_or_default();
        let mut message = format!(
            "the xp process driving this run (pid {pid}) ended without recording an outcome{in_call}; the run's last output is in its log"
        );
        // Closed only if nothing changed since the record was read: a submit hands its run to
        // the detached supervisor (a new driver) just before it exits, so the driver read
        // above may be gone while the run goes on under the next one. Nothing is ended or
        // removed before this says the run is really orphaned.
        let changed = self
            .conn
            .execute(
                "UPDATE runs SET status = ?2, error = ?3, ended_ms = COALESCE(ended_ms, ?4)
                 WHERE run_number = ?1 AND status = ?5 AND driver_pid IS ?6 AND driver_start IS ?7",
                params![
                    record.run_number as i64,
                    RunStatus::Failed.as_str(),
                    message,
                    now_ms(),
                    record.status.as_str(),
                    pid as i64,
                    record.driver_start.map(|start| start as i64)
                ],
            )
            .map_err(|e| super::open::database_error(&self.path, e))?;
        if changed != 1 {
            return Ok(None);
        }
        let leftovers = end_processes_of_run(&record.run_id);
        // Its driver would have unmounted the run's snapshot when the run ended.
        crate::snapshot::release(&run_dir, &run_dir.join("snapshot"));
        if leftovers > 0 {
            let note = format!("{leftovers} process(es) the run left behind were ended");
            self.add_to_error(record.run_number, &note)?;
            message.push_str(&format!("; {note}"));
        }
        // The space the driver kept to record the end (see `run::drive`) is not needed now.
        let _ = std::fs::remove_file(self.run_dir(&record.run_id).join(super::RESERVE_FILE));
        record.status = RunStatus::Failed;
        record.error = Some(message);
        record.ended_ms = record.ended_ms.or(Some(now_ms()));
        Ok(Some(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::NewRun;

    /// A run driven by a process that has ended, and a process of that run still going.
    fn vanished_run(store: &mut HistoryStore) -> (RunRecord, std::process::Child) {
        let record = store
            .create_run(&NewRun {
                id_prefix: "reap",
                script: "train.py",
                arguments: &[],
                target: "local",
                runconfig: "local",
                git_commit: None,
            })
            .unwrap();
        store.set_status(record.run_number, RunStatus::Running).unwrap();
        let mut driver = std::process::Command::new("true").spawn().unwrap();
        let driver_pid = driver.id();
        driver.wait().unwrap();
        store.set_driver(record.run_number, driver_pid, Some(1)).unwrap();
        let leftover = std::process::Command::new("sleep")
            .arg("1001")
            .env("XP_RUN_ID", &record.run_id)
            .spawn()
            .unwrap();
        (record, leftover)
    }

    #[test]
    fn reads_never_reap_or_kill_and_the_explicit_step_does() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = HistoryStore::open(dir.path()).unwrap();
        let (record, mut leftover) = vanished_run(&mut store);

        // Reads: get, list, latest, created_before.
        assert_eq!(store.get(&record.run_id).unwrap().status, RunStatus::Running);
        assert_eq!(
            store
                .list(&ListFilter {
                    limit: 10,
                    ..ListFilter::default()
                })
                .unwrap()[0]
                .status,
            RunStatus::Running
        );
        assert_eq!(store.latest().unwrap().unwrap().status, RunStatus::Running);
        assert_eq!(store.created_before(i64::MAX).unwrap()[0].status, RunStatus::Running);
        assert!(leftover.try_wait().unwrap().is_none(), "a read killed a process");

        let reaped = store.reap_vanished().unwrap();
        assert_eq!(reaped.len(), 1);
        let after = store.get(&record.run_id).unwrap();
        assert_eq!(after.status, RunStatus::Failed);
        assert!(after
            .error
            .unwrap()
            .contains("1 process(es) the run left behind were ended"));
        let status = leftover.wait().unwrap();
        assert!(!status.success(), "the leftover was killed");
        assert!(store.reap_vanished().unwrap().is_empty(), "once");
    }

    #[test]
    fn a_run_handed_to_a_new_driver_after_it_was_read_is_not_reaped() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = HistoryStore::open(dir.path()).unwrap();
        let (stale, mut process) = vanished_run(&mut store);
        let stale = store.get(&stale.run_id).unwrap();
        // The submit hands the run to its supervisor (alive: this test's process), then
        // exits; a reaper that read the record before the hand-over must leave it alone.
        store
            .set_driver(
                stale.run_number,
                std::process::id(),
                super::super::current_process_start(),
            )
            .unwrap();
        assert!(store.reap_if_vanished(stale.clone()).unwrap().is_none());
        let after = store.get(&stale.run_id).unwrap();
        assert_eq!(after.status, RunStatus::Running);
        assert!(
            process.try_wait().unwrap().is_none(),
            "the run's process was left alone"
        );
        assert!(!store.run_is_over(&stale.run_id).unwrap(), "its snapshot stays");
        let _ = process.kill();
        let _ = process.wait();
    }
}
