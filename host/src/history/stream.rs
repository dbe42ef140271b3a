//! Runs one at a time, newest first, for readers that must not hold the whole history in
//! memory (`xp history list --query`): the rows come straight from SQLite, and when the
//! reader wants the metrics' last values they are fetched for a page of runs at a time.

use std::ops::ControlFlow;

use rusqlite::types::Value;

use super::store::record_from_row;
use super::{HistoryError, HistoryStore, ListFilter, RunRecord};

/// Runs whose last metric values are fetched in one query.
const PAGE: usize = 1000;

/// A condition on a column of `runs`, as SQL with its parameters (`status = ?`).
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub sql: String,
    pub parameters: Vec<Value>,
}

impl HistoryStore {
    /// Calls `each` with the runs `filter` selects (newest first; its `limit` counts before
    /// `conditions` apply, as if they filtered the listed runs), each also meeting every one
    /// of `conditions`, until `each` breaks. With `metrics`, each record has its metrics'
    /// last values.
    pub fn for_each_run<E>(
        &self,
        filter: &ListFilter,
        conditions: &[Condition],
        metrics: bool,
        each: &mut dyn FnMut(RunRecord) -> Result<ControlFlow<()>, E>,
    ) -> Result<Result<(), E>, HistoryError> {
        let mut listed = format!("SELECT {} FROM runs WHERE 1=1", self.columns());
        let mut parameters: Vec<Value> = Vec::new();
        if let Some(status) = filter.status {
            listed.push_str(" AND status = ?");
            parameters.push(Value::Text(status.as_str().to_owned()));
        }
        if let Some(target) = &filter.target {
            listed.push_str(" AND target = ?");
            parameters.push(Value::Text(target.clone()));
        }
        if let Some(before) = filter.before {
            listed.push_str(" AND run_number < ?");
            parameters.push(Value::Integer(before as i64));
        }
        listed.push_str(" ORDER BY run_number DESC LIMIT ?");
        parameters.push(Value::Integer(filter.limit.min(i64::MAX as usize) as i64));
        let mut sql = format!("SELECT * FROM ({listed}) WHERE 1=1");
        for condition in conditions {
            sql.push_str(" AND (");
            sql.push_str(&condition.sql);
            sql.push(')');
            parameters.extend(condition.parameters.iter().cloned());
        }
        sql.push_str(" ORDER BY run_number DESC");
        let mut statement = self.conn.prepare(&sql).map_err(|e| self.db_error(e))?;
        let mut rows = statement
            .query(rusqlite::params_from_iter(parameters))
            .map_err(|e| self.db_error(e))?;
        let mut page = Vec::with_capacity(if metrics { PAGE } else { 1 });
        loop {
            let row = rows.next().map_err(|e| self.db_error(e))?;
            let Some(row) = row else { break };
            let record = record_from_row(row).map_err(|e| self.db_error(e))?;
            if !metrics {
                match each(record) {
                    Ok(ControlFlow::Continue(())) => continue,
                    Ok(ControlFlow::Break(())) => return Ok(Ok(())),
                    Err(error) => return Ok(Err(error)),
                }
            }
            page.push(record);
            if page.len() == PAGE {
                match self.hand_over(&mut page, each)? {
                    Ok(ControlFlow::Continue(())) => {}
                    Ok(ControlFlow::Break(())) => return Ok(Ok(())),
                    Err(error) => return Ok(Err(error)),
                }
            }
        }
        Ok(self.hand_over(&mut page, each)?.map(|_| ()))
    }

    fn hand_over<E>(
        &self,
        page: &mut Vec<RunRecord>,
        each: &mut dyn FnMut(RunRecord) -> Result<ControlFlow<()>, E>,
    ) -> Result<Result<ControlFlow<()>, E>, HistoryError> {
        self.fill_last_metrics(page)?;
        for record in page.drain(..) {
            match each(record) {
                Ok(ControlFlow::Continue(())) => {}
                other => return Ok(other),
            }
        }
        Ok(Ok(ControlFlow::Continue(())))
    }
}
