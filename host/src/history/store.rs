use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, Row};
use xp_plugin_api::RunStatus;

use super::artifacts::ArtifactLink;
use super::open::{database_error, open_readable, open_writable, Unwritable};
use super::record::{now_ms, MetricPoint, RunRecord, RunSnapshot};
use super::HistoryError;

/// The text of a JSON column.
fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

/// What a new run is.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    /// The run id's prefix (the project's name).
    pub id_prefix: &'a str,
    pub script: &'a str,
    pub arguments: &'a [String],
    pub target: &'a str,
    pub runconfig: &'a str,
    pub git_commit: Option<&'a str>,
}

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<RunStatus>,
    pub target: Option<String>,
    /// Newest first; at most this many.
    pub limit: usize,
    /// Only runs numbered below this (for paging back).
    pub before: Option<u64>,
}

/// How a run ended, as [`HistoryStore::close`] records it.
#[derive(Debug, Clone, Default)]
pub struct Closing<'a> {
    pub status: Option<RunStatus>,
    pub exit_code: Option<i32>,
    pub error: Option<&'a str>,
    pub artifacts: &'a [String],
    pub artifact_links: &'a [ArtifactLink],
    /// What the run could not keep, with why.
    pub lost: &'a [String],
}

pub struct HistoryStore {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    runs_dir: PathBuf,
    /// The schema of the file: a history opened read-only is read as it is.
    version: i64,
    read_only: Option<Unwritable>,
}

pub(super) const RUN_COLUMNS: &str = "run_number, run_id, script, arguments, target, runconfig, status, created_ms, started_ms, ended_ms, exit_code, error, git_commit, artifacts, driver_pid, driver_start, artifact_links, lost, snapshot, snapshot_files, snapshot_bytes";
/// The same columns from a history of schema 2 (no snapshots), read where it cannot be migrated.
const RUN_COLUMNS_V2: &str = "run_number, run_id, script, arguments, target, runconfig, status, created_ms, started_ms, ended_ms, exit_code, error, git_commit, artifacts, driver_pid, driver_start, artifact_links, lost, NULL, NULL, NULL";
/// The same columns from a history of schema 1, read where it cannot be migrated.
const RUN_COLUMNS_V1: &str = "run_number, run_id, script, arguments, target, runconfig, status, created_ms, started_ms, ended_ms, exit_code, error, git_commit, artifacts, driver_pid, driver_start, '[]', '[]', NULL, NULL, NULL";

fn json_list<T: serde::de::DeserializeOwned>(text: String) -> Vec<T> {
    serde_json::from_str(&text).unwrap_or_default()
}

pub(super) fn record_from_row(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let status: String = row.get(6)?;
    Ok(RunRecord {
        run_number: row.get::<_, i64>(0)? as u64,
        run_id: row.get(1)?,
        script: row.get(2)?,
        arguments: json_list(row.get(3)?),
        target: row.get(4)?,
        runconfig: row.get(5)?,
        // A status this xp does not know was written by a newer one; show it as failed
        // rather than refuse to list the history.
        status: RunStatus::parse(&status).unwrap_or(RunStatus::Failed),
        created_ms: row.get(7)?,
        started_ms: row.get(8)?,
        ended_ms: row.get(9)?,
        exit_code: row.get(10)?,
        error: row.get(11)?,
        git_commit: row.get(12)?,
        artifacts: json_list(row.get(13)?),
        artifact_links: json_list(row.get(16)?),
        lost: json_list(row.get(17)?),
        metrics: BTreeMap::new(),
        driver_pid: row.get::<_, Option<i64>>(14)?.map(|pid| pid as u32),
        driver_start: row.get::<_, Option<i64>>(15)?.map(|start| start as u64),
        snapshot: row.get::<_, Option<String>>(18)?.map(|id| RunSnapshot {
            id,
            files: row.get::<_, Option<i64>>(19).ok().flatten().unwrap_or(0) as u64,
            bytes: row.get::<_, Option<i64>>(20).ok().flatten().unwrap_or(0) as u64,
        }),
    })
}

impl HistoryStore {
    /// Opens (creating if needed) the history in `xp_dir` (a project's `.xp/`) for reading
    /// and writing. A full or read-only disk is an error that says so.
    pub fn open(xp_dir: &Path) -> Result<HistoryStore, HistoryError> {
        let (conn, path) = open_writable(xp_dir)?;
        Ok(HistoryStore {
            conn,
            runs_dir: xp_dir.join("runs"),
            path,
            version: super::schema::VERSION,
            read_only: None,
        })
    }

    /// Opens the history in `xp_dir` for reading: as [`HistoryStore::open`] where it can be
    /// written, read-only on a read-only or full disk (then every write is refused).
    pub fn open_read(xp_dir: &Path) -> Result<HistoryStore, HistoryError> {
        let opened = open_readable(xp_dir)?;
        Ok(HistoryStore {
            conn: opened.conn,
            runs_dir: xp_dir.join("runs"),
            path: opened.path,
            version: opened.version,
            read_only: opened.read_only,
        })
    }

    /// Why this store cannot be written, when it was opened read-only.
    pub fn read_only(&self) -> Option<Unwritable> {
        self.read_only
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema step of the file.
    pub(super) fn version(&self) -> i64 {
        self.version
    }

    pub(super) fn columns(&self) -> &'static str {
        match self.version {
            ..=1 => RUN_COLUMNS_V1,
            2 => RUN_COLUMNS_V2,
            _ => RUN_COLUMNS,
        }
    }

    pub(super) fn db_error(&self, source: rusqlite::Error) -> HistoryError {
        database_error(&self.path, source)
    }

    /// The folder of a run's log and artifacts.
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.runs_dir.join(run_id)
    }

    /// Records a new run as Queued, driven by this process, and returns it. Run numbers are
    /// consecutive and never reused (AUTOINCREMENT's sequence remembers deleted ones); the run id is `<prefix>_<epoch-ms>`, moved on by a millisecond when another
    /// run of the project took that one.
    pub fn create_run(&mut self, new: &NewRun<'_>) -> Result<RunRecord, HistoryError> {
        let created = now_ms();
        let arguments = serde_json::to_string(new.arguments).expect("strings serialise");
        let pid = std::process::id();
        let start = super::liveness::current_process_start().map(|s| s as i64);
        let run_id = {
            let path = self.path.clone();
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| database_error(&path, e))?;
            let insert = || -> rusqlite::Result<String> {
                let mut stamp = created;
                let mut taken = tx.prepare("SELECT 1 FROM runs WHERE run_id = ?1")?;
                let mut run_id = format!("{}_{stamp}", new.id_prefix);
                // Free in this history and on this machine (see run_ids).
                while taken.exists([&run_id])? || !super::run_ids::claim(&run_id) {
                    stamp += 1;
                    run_id = format!("{}_{stamp}", new.id_prefix);
                }
                tx.execute(
                    "INSERT INTO runs (run_number, run_id, script, arguments, target, runconfig, status, created_ms, git_commit, driver_pid, driver_start)
                     VALUES ((SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'runs'), 0), COALESCE(MAX(run_number), 0)) + 1 FROM runs), ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![run_id, new.script, arguments, new.target, new.runconfig, RunStatus::Queued.as_str(), created, new.git_commit, pid, start],
                )?;
                Ok(run_id)
            };
            let run_id = insert().map_err(|e| database_error(&path, e))?;
            tx.commit().map_err(|e| database_error(&path, e))?;
            run_id
        };
        // Now and then (about one submit in 32), not on every one.
        if created % 32 == 0 {
            super::run_ids::forget_old_claims();
        }
        self.get(&run_id)
    }

    /// Makes `pid` (started at `start`) the process that drives a run.
    pub fn set_driver(&self, run_number: u64, pid: u32, start: Option<u64>) -> Result<(), HistoryError> {
        self.conn
            .execute(
                "UPDATE runs SET driver_pid = ?2, driver_start = ?3 WHERE run_number = ?1",
                params![run_number as i64, pid, start.map(|s| s as i64)],
            )
            .map_err(|e| self.db_error(e))?;
        Ok(())
    }

    /// Removes a run's record and metrics. Its folder is the caller's to remove.
    pub fn delete(&self, run_number: u64) -> Result<(), HistoryError> {
        self.conn
            .execute("DELETE FROM runs WHERE run_number = ?1", params![run_number as i64])
            .map_err(|e| self.db_error(e))?;
        Ok(())
    }

    /// Numbers and ids of the runs created before `before_ms`.
    pub fn created_before(&self, before_ms: i64) -> Result<Vec<RunRecord>, HistoryError> {
        let sql = format!(
            "SELECT {} FROM runs WHERE created_ms < ?1 ORDER BY run_number",
            self.columns()
        );
        let mut statement = self.conn.prepare(&sql).map_err(|e| self.db_error(e))?;
        let records = statement
            .query_map(params![before_ms], record_from_row)
            .map_err(|e| self.db_error(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db_error(e))?;
        Ok(records)
    }

    pub fn set_status(&self, run_number: u64, status: RunStatus) -> Result<(), HistoryError> {
        let now = now_ms();
        let started = (status == RunStatus::Running).then_some(now);
        self.conn
            .execute(
                "UPDATE runs SET status = ?2, started_ms = COALESCE(started_ms, ?3) WHERE run_number = ?1",
                params![run_number as i64, status.as_str(), started],
            )
            .map_err(|e| self.db_error(e))?;
        Ok(())
    }

    pub fn add_metric(
        &self,
        run_number: u64,
        name: &str,
        step: u64,
        value: &serde_json::Value,
    ) -> Result<(), HistoryError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO metrics (run_number, name, step, value, time_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![run_number as i64, name, step as i64, value.to_string(), now_ms()],
            )
            .map_err(|e| self.db_error(e))?;
        Ok(())
    }

    /// Closes a run: final status, exit code, error, artifacts.
    pub fn finish(
        &self,
        run_number: u64,
        status: RunStatus,
        exit_code: Option<i32>,
        error: Option<&str>,
        artifacts: &[String],
    ) -> Result<(), HistoryError> {
        self.close(
            run_number,
            &Closing {
                status: Some(status),
                exit_code,
                error,
                artifacts,
                ..Closing::default()
            },
        )
    }

    /// Closes a run with everything it left: status, exit code, error, artifacts, links, and
    /// what it lost.
    pub fn close(&self, run_number: u64, closing: &Closing<'_>) -> Result<(), HistoryError> {
        let status = closing.status.unwrap_or(RunStatus::Failed);
        debug_assert!(status.is_final());
        self.conn
            .execute(
                "UPDATE runs SET status = ?2, exit_code = ?3, error = ?4, artifacts = ?5, ended_ms = ?6, artifact_links = ?7, lost = ?8 WHERE run_number = ?1",
                params![
                    run_number as i64,
                    status.as_str(),
                    closing.exit_code,
                    closing.error,
                    to_json(closing.artifacts),
                    now_ms(),
                    to_json(closing.artifact_links),
                    to_json(closing.lost)
                ],
            )
            .map_err(|e| self.db_error(e))?;
        Ok(())
    }

    /// A run by id or number, with the last value of each metric.
    pub fn get(&self, id_or_number: &str) -> Result<RunRecord, HistoryError> {
        let by_number = id_or_number.parse::<i64>().ok();
        let sql = format!(
            "SELECT {} FROM runs WHERE run_id = ?1 OR run_number = ?2",
            self.columns()
        );
        // Cached: the web view looks runs up on every request.
        let mut record = self
            .conn
            .prepare_cached(&sql)
            .and_then(|mut statement| {
                statement
                    .query_row(params![id_or_number, by_number], record_from_row)
                    .optional()
            })
            .map_err(|e| self.db_error(e))?
            .ok_or_else(|| HistoryError::NoSuchRun(id_or_number.to_owned()))?;
        record.metrics = self.last_metric_values(record.run_number)?;
        Ok(record)
    }

    /// The newest run, if any.
    pub fn latest(&self) -> Result<Option<RunRecord>, HistoryError> {
        let newest: Option<i64> = self
            .conn
            .query_row("SELECT MAX(run_number) FROM runs", [], |row| row.get(0))
            .map_err(|e| self.db_error(e))?;
        newest.map(|number| self.get(&number.to_string())).transpose()
    }

    /// Runs newest first.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<RunRecord>, HistoryError> {
        let mut sql = format!("SELECT {} FROM runs WHERE 1=1", self.columns());
        if filter.status.is_some() {
            sql.push_str(" AND status = :status");
        }
        if filter.target.is_some() {
            sql.push_str(" AND target = :target");
        }
        if filter.before.is_some() {
            sql.push_str(" AND run_number < :before");
        }
        sql.push_str(" ORDER BY run_number DESC LIMIT :limit");
        let mut statement = self.conn.prepare(&sql).map_err(|e| self.db_error(e))?;
        let status = filter.status.map(|s| s.as_str());
        let before = filter.before.map(|b| b as i64);
        let limit = filter.limit as i64;
        let mut named: Vec<(&str, &dyn rusqlite::ToSql)> = vec![(":limit", &limit)];
        if let Some(status) = &status {
            named.push((":status", status));
        }
        if let Some(target) = &filter.target {
            named.push((":target", target));
        }
        if let Some(before) = &before {
            named.push((":before", before));
        }
        let records = statement
            .query_map(named.as_slice(), record_from_row)
            .map_err(|e| self.db_error(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db_error(e))?;
        Ok(records)
    }

    /// Every point of a run's metrics, by name then step.
    pub fn metrics(&self, run_number: u64, name: Option<&str>) -> Result<Vec<MetricPoint>, HistoryError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT name, step, value, time_ms FROM metrics WHERE run_number = ?1 AND (?2 IS NULL OR name = ?2) ORDER BY name, step",
            )
            .map_err(|e| self.db_error(e))?;
        let points = statement
            .query_map(params![run_number as i64, name], |row| {
                Ok(MetricPoint {
                    name: row.get(0)?,
                    step: row.get::<_, i64>(1)? as u64,
                    value: serde_json::from_str(&row.get::<_, String>(2)?).unwrap_or(serde_json::Value::Null),
                    time_ms: row.get(3)?,
                })
            })
            .map_err(|e| self.db_error(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db_error(e))?;
        Ok(points)
    }

    /// Fills each record's last metric values (`list` leaves them out), in one query over the
    /// range of run numbers the records span.
    pub fn fill_last_metrics(&self, records: &mut [RunRecord]) -> Result<(), HistoryError> {
        let (Some(low), Some(high)) = (
            records.iter().map(|r| r.run_number).min(),
            records.iter().map(|r| r.run_number).max(),
        ) else {
            return Ok(());
        };
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT m.run_number, m.name, m.value FROM metrics m
                 JOIN (SELECT run_number, name, MAX(step) AS step FROM metrics
                       WHERE run_number BETWEEN ?1 AND ?2 GROUP BY run_number, name) last
                   ON m.run_number = last.run_number AND m.name = last.name AND m.step = last.step",
            )
            .map_err(|e| self.db_error(e))?;
        let mut by_run: std::collections::HashMap<u64, BTreeMap<String, serde_json::Value>> = Default::default();
        let rows = statement
            .query_map(params![low as i64, high as i64], |row| {
                let value: String = row.get(2)?;
                Ok((row.get::<_, i64>(0)? as u64, row.get::<_, String>(1)?, value))
            })
            .map_err(|e| self.db_error(e))?;
        let wanted: std::collections::HashSet<u64> = records.iter().map(|r| r.run_number).collect();
        for row in rows {
            let (run, name, value) = row.map_err(|e| self.db_error(e))?;
            // The range may span runs a filter left out: keep only the records' own.
            if !wanted.contains(&run) {
                continue;
            }
            let value = serde_json::from_str(&value).unwrap_or(serde_json::Value::Null);
            by_run.entry(run).or_default().insert(name, value);
        }
        for record in records {
            record.metrics = by_run.remove(&record.run_number).unwrap_or_default();
        }
        Ok(())
    }

    /// The last value of each of a run's metrics: per series, one seek to its highest step
    /// (names found by seeks too), so a run with millions of points costs what a small one does.
    pub(super) fn last_metric_values(
        &self,
        run_number: u64,
    ) -> Result<BTreeMap<String, serde_json::Value>, HistoryError> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT value FROM metrics WHERE run_number = ?1 AND name = ?2 ORDER BY step DESC LIMIT 1")
            .map_err(|e| self.db_error(e))?;
        let mut values = BTreeMap::new();
        for name in self.series_names(run_number)? {
            let value: String = statement
                .query_row(params![run_number as i64, name], |row| row.get(0))
                .map_err(|e| self.db_error(e))?;
            values.insert(name, serde_json::from_str(&value).unwrap_or(serde_json::Value::Null));
        }
        Ok(values)
    }

    /// Direct access for bulk tools (the seeder).
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }
}
