//! The runs' snapshot manifests in the history: one row per distinct manifest, referenced by
//! id from each run that executed it.

use rusqlite::{params, OptionalExtension};

use super::{HistoryError, HistoryStore};

/// A manifest as the history keeps it.
pub struct StoredManifest {
    pub id: String,
    pub text: Vec<u8>,
}

/// A run's status, driver pid and driver start, as read to tell whether it is over.
type DriverRow = (String, Option<i64>, Option<i64>);

impl HistoryStore {
    /// Records that run `run_number` executed the snapshot `id` (`files` files, `bytes`
    /// bytes), keeping the manifest's `text` if no run had it yet.
    pub fn set_snapshot(
        &mut self,
        run_number: u64,
        id: &str,
        files: u64,
        bytes: u64,
        text: &[u8],
    ) -> Result<(), HistoryError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| HistoryError::Database {
                path: self.path.clone(),
                source: e,
            })?;
        let written = (|| {
            tx.execute(
                "INSERT OR IGNORE INTO snapshots (id, files, bytes, manifest) VALUES (?1, ?2, ?3, ?4)",
                params![id, files as i64, bytes as i64, text],
            )?;
            tx.execute(
                "UPDATE runs SET snapshot = ?2, snapshot_files = ?3, snapshot_bytes = ?4 WHERE run_number = ?1",
                params![run_number as i64, id, files as i64, bytes as i64],
            )?;
            tx.commit()
        })();
        written.map_err(|e| HistoryError::Database {
            path: self.path.clone(),
            source: e,
        })
    }

    /// The text of manifest `id`, if the history has it.
    pub fn manifest(&self, id: &str) -> Result<Option<Vec<u8>>, HistoryError> {
        self.conn
            .query_row("SELECT manifest FROM snapshots WHERE id = ?1", [id], |row| row.get(0))
            .optional()
            .map_err(|e| self.db_error(e))
    }

    /// Forgets the manifests no run references any more, and returns the others.
    pub fn referenced_manifests(&self) -> Result<Vec<StoredManifest>, HistoryError> {
        self.conn
            .execute(
                "DELETE FROM snapshots WHERE id NOT IN (SELECT snapshot FROM runs WHERE snapshot IS NOT NULL)",
                [],
            )
            .map_err(|e| self.db_error(e))?;
        let mut statement = self
            .conn
            .prepare("SELECT id, manifest FROM snapshots")
            .map_err(|e| self.db_error(e))?;
        let rows = statement
            .query_map([], |row| {
                Ok(StoredManifest {
                    id: row.get(0)?,
                    text: row.get(1)?,
                })
            })
            .map_err(|e| self.db_error(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db_error(e))?;
        Ok(rows)
    }

    /// Whether the run `run_id` is over (or unknown, or its driver gone): its snapshot can go.
    /// A driver found gone is confirmed by reading the run again: a submit hands its run to
    /// the detached supervisor just before it exits, so the first driver read may have ended
    /// while the run goes on under the next.
    pub fn run_is_over(&self, run_id: &str) -> Result<bool, HistoryError> {
        let read = || -> Result<Option<DriverRow>, HistoryError> {
            self.conn
                .query_row(
                    "SELECT status, driver_pid, driver_start FROM runs WHERE run_id = ?1",
                    [run_id],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()
                .map_err(|e| self.db_error(e))
        };
        let mut row = read()?;
        // A few hand-overs at most; each is a new process that started the run's next step.
        for _ in 0..4 {
            let Some((status, pid, start)) = &row else {
                return Ok(true);
            };
            if xp_plugin_api::RunStatus::parse(status).is_none_or(|s| s.is_final()) {
                return Ok(true);
            }
            // A run with no driver recorded is never reaped either (see `reap_if_vanished`).
            let Some(pid) = pid else {
                return Ok(false);
            };
            if super::process_is_alive(*pid as u32, start.map(|s| s as u64)) {
                return Ok(false);
            }
            let again = read()?;
            if again == row {
                return Ok(true);
            }
            row = again;
        }
        Ok(false)
    }
}
