use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row};
use xp_plugin_api::RunStatus;

use super::liveness::process_is_alive;
use super::record::{now_ms, MetricPoint, RunRecord, RunSnapshot};
use super::schema;
use super::HistoryError;

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

pub struct HistoryStore {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    runs_dir: PathBuf,
}

pub(super) const RUN_COLUMNS: &str = "run_number, run_id, script, arguments, target, runconfig, status, created_ms, started_ms, ended_ms, exit_code, error, git_commit, artifacts, driver_pid, driver_start, snapshot, snapshot_files, snapshot_bytes";

fn json_list(text: String) -> Vec<String> {
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
        metrics: BTreeMap::new(),
        driver_pid: row.get::<_, Option<i64>>(14)?.map(|pid| pid as u32),
        driver_start: row.get::<_, Option<i64>>(15)?.map(|start| start as u64),
        snapshot: row.get::<_, Option<String>>(16)?.map(|id| RunSnapshot {
            id,
            files: row.get::<_, Option<i64>>(17).ok().flatten().unwrap_or(0) as u64,
            bytes: row.get::<_, Option<i64>>(18).ok().flatten().unwrap_or(0) as u64,
        }),
    })
}

impl HistoryStore {
    /// Opens (creating if needed) the history in `xp_dir` (a project's `.xp/`).
    pub fn open(xp_dir: &Path) -> Result<HistoryStore, HistoryError> {
        std::fs::create_dir_all(xp_dir).map_err(|source| HistoryError::Io {
            path: xp_dir.to_path_buf(),
            source,
        })?;
        let path = xp_dir.join("history.db");
        let db_error = |source| HistoryError::Database {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open(&path).map_err(db_error)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(db_error)?;
        // WAL lets readers go on while a run writes; NORMAL sync is safe with WAL (a power
        // cut may lose the last commits, never corrupt the file).
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
            .map_err(db_error)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(db_error)?;
        if version > schema::VERSION {
            return Err(HistoryError::NewerSchema {
                path,
                found: version,
                supported: schema::VERSION,
            });
        }
        if version < schema::VERSION {
            schema::migrate(&mut conn, version).map_err(db_error)?;
        }
        Ok(HistoryStore {
            conn,
            runs_dir: xp_dir.join("runs"),
            path,
        })
    }

    pub(super) fn db_error(&self, source: rusqlite::Error) -> HistoryError {
        HistoryError::Database {
            path: self.path.clone(),
            source,
        }
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
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| HistoryError::Database {
                    path: self.path.clone(),
                    source: e,
                })?;
            let insert = || -> rusqlite::Result<String> {
                let mut stamp = created;
                let mut taken = tx.prepare("SELECT 1 FROM runs WHERE run_id = ?1")?;
                let mut run_id = format!("{}_{stamp}", new.id_prefix);
                while taken.exists([&run_id])? {
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
            let run_id = insert().map_err(|e| HistoryError::Database {
                path: self.path.clone(),
                source: e,
            })?;
            tx.commit().map_err(|e| HistoryError::Database {
                path: self.path.clone(),
                source: e,
            })?;
            run_id
        };
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
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE created_ms < ?1 ORDER BY run_number");
        let mut statement = self.conn.prepare(&sql).map_err(|e| self.db_error(e))?;
        let records = statement
            .query_map(params![before_ms], record_from_row)
            .map_err(|e| self.db_error(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db_error(e))?;
        records.into_iter().map(|record| self.reconcile(record)).collect()
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
        debug_assert!(status.is_final());
        let artifacts = serde_json::to_string(artifacts).expect("strings serialise");
        self.conn
            .execute(
                "UPDATE runs SET status = ?2, exit_code = ?3, error = ?4, artifacts = ?5, ended_ms = ?6 WHERE run_number = ?1",
                params![run_number as i64, status.as_str(), exit_code, error, artifacts, now_ms()],
            )
            .map_err(|e| self.db_error(e))?;
        Ok(())
    }

    /// A run by id or number, with the last value of each metric.
    pub fn get(&self, id_or_number: &str) -> Result<RunRecord, HistoryError> {
        let by_number = id_or_number.parse::<i64>().ok();
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?1 OR run_number = ?2");
        let record = self
            .conn
            .query_row(&sql, params![id_or_number, by_number], record_from_row)
            .optional()
            .map_err(|e| self.db_error(e))?
            .ok_or_else(|| HistoryError::NoSuchRun(id_or_number.to_owned()))?;
        let mut record = self.reconcile(record)?;
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
        let mut sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE 1=1");
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
        records.into_iter().map(|record| self.reconcile(record)).collect()
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

    /// A run that is not finished but whose driving process is gone is marked Failed, so no
    /// run stays Running forever.
    pub(super) fn reconcile(&self, mut record: RunRecord) -> Result<RunRecord, HistoryError> {
        if record.status.is_final() {
            return Ok(record);
        }
        let Some(pid) = record.driver_pid else {
            return Ok(record);
        };
        if process_is_alive(pid, record.driver_start) {
            return Ok(record);
        }
        let leftovers = super::liveness::end_processes_of_run(&record.run_id);
        // Its driver would have unmounted the run's snapshot when the run ended.
        let run_dir = self.run_dir(&record.run_id);
        crate::snapshot::release(&run_dir, &run_dir.join("snapshot"));
        // A plugin that called exit or abort (or crashed) took its host with it: the driver
        // wrote down which call it was in, and its hooks how the process ended.
        let in_call = std::fs::read_to_string(self.run_dir(&record.run_id).join(super::PLUGIN_CALL_FILE))
            .map(|note| super::describe_plugin_call(&note))
            .unwrap_or_default();
        let mut message = format!(
            "the xp process driving this run (pid {pid}) ended without recording an outcome{in_call}; the run's last output is in its log"
        );
        if leftovers > 0 {
            message.push_str(&format!("; {leftovers} process(es) the run left behind were ended"));
        }
        let changed = self
            .conn
            .execute(
                "UPDATE runs SET status = ?2, error = ?3, ended_ms = COALESCE(ended_ms, ?4) WHERE run_number = ?1 AND status = ?5",
                params![record.run_number as i64, RunStatus::Failed.as_str(), message, now_ms(), record.status.as_str()],
            )
            .map_err(|e| self.db_error(e))?;
        if changed == 1 {
            record.status = RunStatus::Failed;
            record.error = Some(message);
            record.ended_ms = record.ended_ms.or(Some(now_ms()));
        }
        Ok(record)
    }

    /// Direct access for bulk tools (the seeder).
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }
}
