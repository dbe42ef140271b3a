//! Read-only queries for browsing the history (the web view): pages of runs sorted and
//! filtered, one run as recorded, and metric series point by point. None of them changes the
//! database: a run whose driver vanished is left for the next CLI command to mark (see
//! `HistoryStore::reconcile`); readers can tell with [`RunRecord::driver_gone`].

use rusqlite::{params, OptionalExtension};
use xp_plugin_api::RunStatus;

use super::liveness::process_is_alive;
use super::record::{now_ms, RunRecord};
use super::store::{record_from_row, HistoryStore, RUN_COLUMNS};
use super::HistoryError;

/// A column the runs can be sorted by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKey {
    Number,
    RunId,
    Status,
    Target,
    Script,
    Arguments,
    Start,
    Duration,
    /// The last value of this metric (runs without it come last).
    Metric(String),
}

impl SortKey {
    /// `number`, `id`, `status`, `target`, `script`, `arguments`, `start`, `duration`, or
    /// `metric:NAME`.
    pub fn parse(text: &str) -> Option<SortKey> {
        Some(match text {
            "number" => SortKey::Number,
            "id" => SortKey::RunId,
            "status" => SortKey::Status,
            "target" => SortKey::Target,
            "script" => SortKey::Script,
            "arguments" => SortKey::Arguments,
            "start" => SortKey::Start,
            "duration" => SortKey::Duration,
            other => SortKey::Metric(other.strip_prefix("metric:").filter(|n| !n.is_empty())?.to_owned()),
        })
    }

    pub fn as_param(&self) -> String {
        match self {
            SortKey::Number => "number".into(),
            SortKey::RunId => "id".into(),
            SortKey::Status => "status".into(),
            SortKey::Target => "target".into(),
            SortKey::Script => "script".into(),
            SortKey::Arguments => "arguments".into(),
            SortKey::Start => "start".into(),
            SortKey::Duration => "duration".into(),
            SortKey::Metric(name) => format!("metric:{name}"),
        }
    }

    /// The SQL expression; `:now` and `:metric` are bound by the caller.
    fn expression(&self) -> &'static str {
        match self {
            SortKey::Number => "run_number",
            SortKey::RunId => "run_id",
            SortKey::Status => "status",
            SortKey::Target => "target",
            SortKey::Script => "script",
            SortKey::Arguments => "arguments",
            SortKey::Start => "COALESCE(started_ms, created_ms)",
            SortKey::Duration => "(COALESCE(ended_ms, :now) - COALESCE(started_ms, created_ms))",
            SortKey::Metric(_) => {
                "(SELECT CAST(m.value AS REAL) FROM metrics m WHERE m.run_number = runs.run_number AND m.name = :metric ORDER BY m.step DESC LIMIT 1)"
            }
        }
    }
}

/// Which runs, in which order, which slice.
#[derive(Debug, Clone)]
pub struct RunQuery {
    pub status: Option<RunStatus>,
    pub target: Option<String>,
    /// Matches run id, script, arguments or the run number (substring, case-insensitive).
    pub text: Option<String>,
    /// Only these run numbers (e.g. the rows a page shows, to refresh them).
    pub numbers: Option<Vec<u64>>,
    pub sort: SortKey,
    pub descending: bool,
    pub offset: u64,
    pub limit: u64,
}

impl Default for RunQuery {
    fn default() -> Self {
        RunQuery {
            status: None,
            target: None,
            text: None,
            numbers: None,
            sort: SortKey::Number,
            descending: true,
            offset: 0,
            limit: 50,
        }
    }
}

/// One page of runs and how many match in all.
#[derive(Debug, Clone)]
pub struct RunPage {
    pub total: u64,
    pub runs: Vec<RunRecord>,
}

/// A metric series of a run: its name, how many points, the last step and value.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SeriesInfo {
    pub name: String,
    pub points: u64,
    pub last_step: u64,
    pub last_time_ms: i64,
}

/// `%` and `_` match themselves in a LIKE pattern built from user text.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl RunRecord {
    /// True when the run is not finished but the process driving it is gone (the next CLI
    /// command that reads it will record it as Failed).
    pub fn driver_gone(&self) -> bool {
        !self.status.is_final()
            && self
                .driver_pid
                .is_some_and(|pid| !process_is_alive(pid, self.driver_start))
    }
}

impl HistoryStore {
    /// The runs matching `query`, sorted, one page of them, with each run's last metric values.
    pub fn find_runs(&self, query: &RunQuery) -> Result<RunPage, HistoryError> {
        let mut conditions = Vec::new();
        let status = query.status.map(|s| s.as_str());
        let pattern = query.text.as_deref().map(like_pattern);
        let number_text = query
            .text
            .as_deref()
            .map(|t| t.trim().trim_start_matches('#').to_owned());
        if status.is_some() {
            conditions.push("status = :status");
        }
        if query.target.is_some() {
            conditions.push("target = :target");
        }
        if pattern.is_some() {
            conditions.push(
                "(run_id LIKE :pattern ESCAPE '\\' OR script LIKE :pattern ESCAPE '\\' OR arguments LIKE :pattern ESCAPE '\\' OR CAST(run_number AS TEXT) = :number_text)",
            );
        }
        let numbers = query
            .numbers
            .as_ref()
            .map(|numbers| serde_json::to_string(numbers).expect("numbers serialise"));
        if numbers.is_some() {
            conditions.push("run_number IN (SELECT value FROM json_each(:numbers))");
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        let now = now_ms();
        let metric = match &query.sort {
            SortKey::Metric(name) => Some(name.clone()),
            _ => None,
        };
        let limit = query.limit as i64;
        let offset = query.offset as i64;
        let mut named: Vec<(&str, &dyn rusqlite::ToSql)> = Vec::new();
        if let Some(status) = &status {
            named.push((":status", status));
        }
        if let Some(target) = &query.target {
            named.push((":target", target));
        }
        if let Some(pattern) = &pattern {
            named.push((":pattern", pattern));
            named.push((":number_text", number_text.as_ref().expect("set with the pattern")));
        }
        if let Some(numbers) = &numbers {
            named.push((":numbers", numbers));
        }
        let total: i64 = {
            let mut statement = self
                .conn
                .prepare_cached(&format!("SELECT COUNT(*) FROM runs{filter}"))
                .map_err(|e| self.db_error(e))?;
            statement
                .query_row(named.as_slice(), |row| row.get(0))
                .map_err(|e| self.db_error(e))?
        };
        let direction = if query.descending { "DESC" } else { "ASC" };
        let expression = query.sort.expression();
        let order = match query.sort {
            SortKey::Number => format!("run_number {direction}"),
            // NULLs (no such metric, a run not started) last whatever the direction.
            _ => format!("({expression}) IS NULL, {expression} {direction}, run_number DESC"),
        };
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs{filter} ORDER BY {order} LIMIT :limit OFFSET :offset");
        named.push((":limit", &limit));
        named.push((":offset", &offset));
        if expression.contains(":now") {
            named.push((":now", &now));
        }
        if let Some(metric) = &metric {
            named.push((":metric", metric));
        }
        let mut statement = self.conn.prepare_cached(&sql).map_err(|e| self.db_error(e))?;
        let mut runs = statement
            .query_map(named.as_slice(), record_from_row)
            .map_err(|e| self.db_error(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db_error(e))?;
        self.fill_last_metrics_of(&mut runs)?;
        Ok(RunPage {
            total: total as u64,
            runs,
        })
    }

    /// Fills each record's last metric values with seeks per run and series (unlike
    /// `fill_last_metrics`, whose range scan suits consecutive runs with few points only).
    pub fn fill_last_metrics_of(&self, records: &mut [RunRecord]) -> Result<(), HistoryError> {
        for record in records {
            record.metrics = self.last_metric_values(record.run_number)?;
        }
        Ok(())
    }

    /// A run by id or number, with the last value of each metric, as recorded (no liveness
    /// check that could change the record).
    pub fn peek(&self, id_or_number: &str) -> Result<RunRecord, HistoryError> {
        let by_number = id_or_number.parse::<i64>().ok();
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?1 OR run_number = ?2");
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

    /// The status and end of a run, cheaply, for live views.
    pub fn status_of(&self, run_number: u64) -> Result<Option<(RunStatus, Option<i64>)>, HistoryError> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT status, ended_ms FROM runs WHERE run_number = ?1")
            .map_err(|e| self.db_error(e))?;
        statement
            .query_row(params![run_number as i64], |row| {
                let status: String = row.get(0)?;
                Ok((RunStatus::parse(&status).unwrap_or(RunStatus::Failed), row.get(1)?))
            })
            .optional()
            .map_err(|e| self.db_error(e))
    }

    /// A run's metric series: name, number of points, last step.
    pub fn series(&self, run_number: u64) -> Result<Vec<SeriesInfo>, HistoryError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT name, COUNT(*), MAX(step), MAX(time_ms) FROM metrics WHERE run_number = ?1 GROUP BY name ORDER BY name",
            )
            .map_err(|e| self.db_error(e))?;
        let series = statement
            .query_map(params![run_number as i64], |row| {
                Ok(SeriesInfo {
                    name: row.get(0)?,
                    points: row.get::<_, i64>(1)? as u64,
                    last_step: row.get::<_, i64>(2)? as u64,
                    last_time_ms: row.get(3)?,
                })
            })
            .map_err(|e| self.db_error(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db_error(e))?;
        Ok(series)
    }

    /// The names of a run's series, one index seek per name (a loose index scan) rather than a
    /// read of every point.
    pub fn series_names(&self, run_number: u64) -> Result<Vec<String>, HistoryError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "WITH RECURSIVE names(name) AS (
                     SELECT (SELECT MIN(name) FROM metrics WHERE run_number = ?1)
                     UNION ALL
                     SELECT (SELECT MIN(name) FROM metrics WHERE run_number = ?1 AND name > names.name)
                     FROM names WHERE names.name IS NOT NULL)
                 SELECT name FROM names WHERE name IS NOT NULL",
            )
            .map_err(|e| self.db_error(e))?;
        let names = statement
            .query_map(params![run_number as i64], |row| row.get(0))
            .map_err(|e| self.db_error(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db_error(e))?;
        Ok(names)
    }

    /// Each series' last step and the time of that point: what changes when a point is logged,
    /// found with one seek per series, for live views that ask often.
    pub fn series_heads(&self, run_number: u64) -> Result<Vec<(String, u64, i64)>, HistoryError> {
        let names = self.series_names(run_number)?;
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT step, time_ms FROM metrics WHERE run_number = ?1 AND name = ?2 ORDER BY step DESC LIMIT 1",
            )
            .map_err(|e| self.db_error(e))?;
        let mut heads = Vec::with_capacity(names.len());
        for name in names {
            let (step, time): (i64, i64) = statement
                .query_row(params![run_number as i64, name], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(|e| self.db_error(e))?;
            heads.push((name, step as u64, time));
        }
        Ok(heads)
    }

    /// Calls `visit(step, value as recorded (JSON text), time_ms)` for each point of one
    /// series with a step after `after_step`, in step order, without collecting them.
    pub fn visit_series(
        &self,
        run_number: u64,
        name: &str,
        after_step: Option<u64>,
        mut visit: impl FnMut(u64, &str, i64),
    ) -> Result<(), HistoryError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT step, value, time_ms FROM metrics WHERE run_number = ?1 AND name = ?2 AND step > ?3 ORDER BY step",
            )
            .map_err(|e| self.db_error(e))?;
        let after = after_step.map_or(-1, |s| s as i64);
        let mut rows = statement
            .query(params![run_number as i64, name, after])
            .map_err(|e| self.db_error(e))?;
        while let Some(row) = rows.next().map_err(|e| self.db_error(e))? {
            let step: i64 = row.get(0).map_err(|e| self.db_error(e))?;
            let value = row.get_ref(1).map_err(|e| self.db_error(e))?;
            let value = value.as_str().unwrap_or("null");
            let time: i64 = row.get(2).map_err(|e| self.db_error(e))?;
            visit(step as u64, value, time);
        }
        Ok(())
    }

    /// The compute targets that runs were recorded on, for filters: one seek per target in the
    /// target index, however many runs there are.
    pub fn targets_used(&self) -> Result<Vec<String>, HistoryError> {
        let mut statement = self
            .conn
            .prepare_cached(
                "WITH RECURSIVE targets(target) AS (
                     SELECT (SELECT MIN(target) FROM runs)
                     UNION ALL
                     SELECT (SELECT MIN(target) FROM runs WHERE target > targets.target)
                     FROM targets WHERE targets.target IS NOT NULL)
                 SELECT target FROM targets WHERE target IS NOT NULL",
            )
            .map_err(|e| self.db_error(e))?;
        let targets = statement
            .query_map([], |row| row.get(0))
            .map_err(|e| self.db_error(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db_error(e))?;
        Ok(targets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::NewRun;

    fn store_with_runs() -> (tempfile::TempDir, HistoryStore) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = HistoryStore::open(dir.path()).unwrap();
        for (script, target, args) in [
            ("train.py", "local", vec!["--lr".to_owned(), "0.1".to_owned()]),
            ("score.py", "docker", vec![]),
            ("train.py", "docker", vec!["--lr".to_owned(), "0.5_x%".to_owned()]),
        ] {
            let run = store
                .create_run(&NewRun {
                    id_prefix: "p",
                    script,
                    arguments: &args,
                    target,
                    runconfig: target,
                    git_commit: None,
                })
                .unwrap();
            // A driver that is not running: pid 1 never started at that tick.
            store.set_driver(run.run_number, 1, Some(u64::MAX >> 1)).unwrap();
        }
        store.finish(1, RunStatus::Completed, Some(0), None, &[]).unwrap();
        store.finish(2, RunStatus::Failed, Some(1), None, &[]).unwrap();
        for step in 0..5u64 {
            store
                .add_metric(1, "loss", step, &serde_json::json!(1.0 / (step + 1) as f64))
                .unwrap();
        }
        store.add_metric(2, "loss", 0, &serde_json::json!(0.2)).unwrap();
        store.add_metric(3, "loss", 0, &serde_json::json!(0.7)).unwrap();
        (dir, store)
    }

    fn numbers(page: &RunPage) -> Vec<u64> {
        page.runs.iter().map(|r| r.run_number).collect()
    }

    #[test]
    fn filters_sorts_and_pages() {
        let (_dir, store) = store_with_runs();
        let all = store.find_runs(&RunQuery::default()).unwrap();
        assert_eq!((all.total, numbers(&all)), (3, vec![3, 2, 1]));
        assert_eq!(all.runs[2].metrics["loss"], serde_json::json!(0.2));

        let docker = store
            .find_runs(&RunQuery {
                target: Some("docker".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!((docker.total, numbers(&docker)), (2, vec![3, 2]));

        let by_loss = store
            .find_runs(&RunQuery {
                sort: SortKey::Metric("loss".into()),
                descending: false,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            numbers(&by_loss),
            vec![2, 1, 3],
            "last values 0.2, 0.2, 0.7; ties newest first"
        );

        let second_page = store
            .find_runs(&RunQuery {
                limit: 2,
                offset: 2,
                ..Default::default()
            })
            .unwrap();
        assert_eq!((second_page.total, numbers(&second_page)), (3, vec![1]));
    }

    #[test]
    fn text_matches_literally_and_by_number() {
        let (_dir, store) = store_with_runs();
        let query = |text: &str| {
            numbers(
                &store
                    .find_runs(&RunQuery {
                        text: Some(text.into()),
                        ..Default::default()
                    })
                    .unwrap(),
            )
        };
        assert_eq!(query("score"), vec![2]);
        assert_eq!(query("_x%"), vec![3], "LIKE wildcards in the text match themselves");
        assert_eq!(query("5_"), vec![3]);
        assert_eq!(query("#1"), vec![1]);
        assert_eq!(query("nothing"), Vec::<u64>::new());
    }

    #[test]
    fn peek_leaves_a_run_with_a_vanished_driver_as_recorded() {
        let (_dir, store) = store_with_runs();
        let record = store.peek("3").unwrap();
        assert_eq!(record.status, RunStatus::Queued);
        assert!(record.driver_gone());
        assert_eq!(store.status_of(3).unwrap().unwrap().0, RunStatus::Queued);
    }

    #[test]
    fn series_are_listed_and_visited_in_step_order() {
        let (_dir, store) = store_with_runs();
        let series = store.series(1).unwrap();
        assert_eq!(
            (series[0].name.as_str(), series[0].points, series[0].last_step),
            ("loss", 5, 4)
        );
        let mut seen = Vec::new();
        store
            .visit_series(1, "loss", Some(2), |step, value, _| seen.push((step, value.to_owned())))
            .unwrap();
        assert_eq!(seen, vec![(3, "0.25".to_owned()), (4, "0.2".to_owned())]);
        store.add_metric(1, "accuracy", 7, &serde_json::json!(0.5)).unwrap();
        assert_eq!(store.series_names(1).unwrap(), vec!["accuracy", "loss"]);
        let heads: Vec<(String, u64)> = store
            .series_heads(1)
            .unwrap()
            .into_iter()
            .map(|(n, s, _)| (n, s))
            .collect();
        assert_eq!(heads, vec![("accuracy".to_owned(), 7), ("loss".to_owned(), 4)]);
        assert!(store.series_names(99).unwrap().is_empty());
        assert_eq!(store.targets_used().unwrap(), vec!["docker", "local"]);
    }
}
