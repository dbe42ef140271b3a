//! Read-only queries for browsing the history (the web view): pages of runs sorted and
//! filtered, one run as recorded, and metric series point by point. None of them changes the
//! database: a run whose driver vanished is left for the next CLI command to mark (see
//! `HistoryStore::reap_vanished`); readers can tell with [`RunRecord::driver_gone`].

use rusqlite::{params, OptionalExtension};
use xp_plugin_api::RunStatus;

use super::liveness::process_is_alive;
use super::record::RunRecord;
use super::store::HistoryStore;
use super::HistoryError;

/// A metric series of a run: its name, how many points, the last step and value.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SeriesInfo {
    pub name: String,
    pub points: u64,
    pub last_step: u64,
    pub last_time_ms: i64,
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
    /// Fills each record's last metric values with seeks per run and series (unlike
    /// `fill_last_metrics`, whose range scan suits consecutive runs with few points only).
    pub fn fill_last_metrics_of(&self, records: &mut [RunRecord]) -> Result<(), HistoryError> {
        for record in records {
            record.metrics = self.last_metric_values(record.run_number)?;
        }
        Ok(())
    }

    /// The highest run number (0 with no runs): one seek.
    pub fn newest_run_number(&self) -> Result<u64, HistoryError> {
        let newest: Option<i64> = self
            .conn
            .prepare_cached("SELECT MAX(run_number) FROM runs")
            .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
            .map_err(|e| self.db_error(e))?;
        Ok(newest.unwrap_or(0) as u64)
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
    use crate::history::{now_ms, NewRun, RunPage, RunQuery, SortKey};

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

        let added = store
            .find_runs(&RunQuery {
                after: Some(1),
                target: Some("docker".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            (added.total, numbers(&added)),
            (2, vec![3, 2]),
            "runs after #1 on docker"
        );
        assert_eq!(store.newest_run_number().unwrap(), 3);
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
    fn duration_sorts_ended_runs_by_their_index_and_running_runs_by_now() {
        let (_dir, store) = store_with_runs();
        // Runs 1 and 2 ended after 10 and 20 s; run 3 has been going for 1000 s.
        store
            .conn
            .execute_batch(&format!(
                "UPDATE runs SET started_ms = 5000, ended_ms = 5000 + run_number * 10000 WHERE run_number < 3;
                 UPDATE runs SET created_ms = {0}, started_ms = {0}, ended_ms = NULL WHERE run_number = 3;",
                now_ms() - 1_000_000
            ))
            .unwrap();
        let by = |descending: bool, offset: u64, limit: u64| {
            numbers(
                &store
                    .find_runs(&RunQuery {
                        sort: SortKey::Duration,
                        descending,
                        offset,
                        limit,
                        ..Default::default()
                    })
                    .unwrap(),
            )
        };
        assert_eq!(by(true, 0, 50), vec![3, 2, 1]);
        assert_eq!(by(false, 0, 50), vec![1, 2, 3]);
        assert_eq!(by(true, 1, 1), vec![2]);
        assert_eq!(by(false, 2, 5), vec![3]);
        let docker_longest = store
            .find_runs(&RunQuery {
                sort: SortKey::Duration,
                target: Some("docker".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!((docker_longest.total, numbers(&docker_longest)), (2, vec![3, 2]));
        let by_start = store
            .find_runs(&RunQuery {
                sort: SortKey::Start,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(numbers(&by_start), vec![3, 2, 1], "ties (runs 1 and 2) newest first");
    }

    #[test]
    fn the_text_index_follows_runs_added_changed_and_deleted() {
        let (_dir, mut store) = store_with_runs();
        let query = |store: &HistoryStore, text: &str| {
            numbers(
                &store
                    .find_runs(&RunQuery {
                        text: Some(text.into()),
                        ..Default::default()
                    })
                    .unwrap(),
            )
        };
        assert_eq!(query(&store, "SCORE.PY"), vec![2], "case-insensitive as LIKE is");
        assert_eq!(query(&store, "\"--lr"), vec![3, 1], "quotes are text, not syntax");
        store
            .create_run(&NewRun {
                id_prefix: "p",
                script: "evaluate.py",
                arguments: &["--split".to_owned(), "test".to_owned()],
                target: "local",
                runconfig: "local",
                git_commit: None,
            })
            .unwrap();
        assert_eq!(query(&store, "valuat"), vec![4]);
        assert_eq!(query(&store, "split"), vec![4]);
        store
            .conn
            .execute("UPDATE runs SET script = 'renamed.py' WHERE run_number = 2", [])
            .unwrap();
        assert_eq!(query(&store, "score"), Vec::<u64>::new());
        assert_eq!(query(&store, "renamed"), vec![2]);
        store.delete(4).unwrap();
        assert_eq!(query(&store, "valuat"), Vec::<u64>::new());
        assert_eq!(query(&store, "#4"), Vec::<u64>::new());
        assert_eq!(query(&store, "#3"), vec![3], "a number finds its run");
    }

    #[test]
    fn peek_leaves_a_run_with_a_vanished_driver_as_recorded() {
        let (_dir, store) = store_with_runs();
        let record = store.get("3").unwrap();
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
