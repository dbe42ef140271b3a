//! Pages of runs for the web view: filtered by status, target and text, sorted by any column,
//! sliced. Each sort and filter is answered from an index (schema step 4) where one can be: the
//! text through the trigram index `runs_text`, start and duration through expression indexes.
//! A history read-only at an older schema step is searched the slow way, with the same results.

use std::collections::HashMap;

use rusqlite::ToSql;
use xp_plugin_api::RunStatus;

use super::record::{now_ms, RunRecord};
use super::store::{record_from_row, HistoryStore};
use super::HistoryError;

/// The duration of a run that ended: the expression of the index `runs_by_duration`.
const ENDED_DURATION: &str = "(ended_ms - COALESCE(started_ms, created_ms))";

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

    /// The SQL expression; `:metric` is bound by the caller. Duration is sorted by
    /// [`HistoryStore::duration_page`] instead.
    fn expression(&self) -> &'static str {
        match self {
            SortKey::Number => "run_number",
            SortKey::RunId => "run_id",
            SortKey::Status => "status",
            SortKey::Target => "target",
            SortKey::Script => "script",
            SortKey::Arguments => "arguments",
            SortKey::Start => "COALESCE(started_ms, created_ms)",
            SortKey::Duration => ENDED_DURATION,
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
    /// Only runs numbered above this (the runs added since a page was shown).
    pub after: Option<u64>,
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
            after: None,
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

/// An FTS5 phrase that matches `text` as a substring (through the trigram tokenizer).
fn trigram_phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// The WHERE clause of a query and its named values.
struct Filter {
    sql: Vec<&'static str>,
    values: Vec<(&'static str, Box<dyn ToSql>)>,
}

impl Filter {
    fn of(query: &RunQuery, text_index: bool) -> Filter {
        let mut filter = Filter {
            sql: Vec::new(),
            values: Vec::new(),
        };
        if let Some(status) = query.status {
            filter.sql.push("status = :status");
            filter.values.push((":status", Box::new(status.as_str())));
        }
        if let Some(target) = &query.target {
            filter.sql.push("target = :target");
            filter.values.push((":target", Box::new(target.clone())));
        }
        if let Some(text) = &query.text {
            // `#12` or `12` also finds run 12.
            let number_text = text.trim().trim_start_matches('#');
            let number = number_text.parse::<i64>().ok().filter(|n| n.to_string() == number_text);
            if text_index && text.chars().count() >= 3 {
                // Trigrams find substrings of three characters or more.
                filter.sql.push(
                    "run_number IN (SELECT rowid FROM runs_text WHERE runs_text MATCH :phrase UNION SELECT :number WHERE :number IS NOT NULL)",
                );
                filter.values.push((":phrase", Box::new(trigram_phrase(text))));
                filter.values.push((":number", Box::new(number)));
            } else {
                filter.sql.push(
                    "(run_id LIKE :pattern ESCAPE '\\' OR script LIKE :pattern ESCAPE '\\' OR arguments LIKE :pattern ESCAPE '\\' OR run_number = :number)",
                );
                filter.values.push((":pattern", Box::new(like_pattern(text))));
                filter.values.push((":number", Box::new(number)));
            }
        }
        if let Some(numbers) = &query.numbers {
            filter.sql.push("run_number IN (SELECT value FROM json_each(:numbers))");
            filter.values.push((
                ":numbers",
                Box::new(serde_json::to_string(numbers).expect("numbers serialise")),
            ));
        }
        if let Some(after) = query.after {
            filter.sql.push("run_number > :after");
            filter.values.push((":after", Box::new(after as i64)));
        }
        filter
    }

    /// ` WHERE a AND b`, with `more` conditions first.
    fn clause(&self, more: &[&str]) -> String {
        let all: Vec<&str> = more.iter().copied().chain(self.sql.iter().copied()).collect();
        if all.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", all.join(" AND "))
        }
    }

    fn named<'a>(&'a self, more: &[(&'static str, &'a dyn ToSql)]) -> Vec<(&'static str, &'a dyn ToSql)> {
        let mut named: Vec<(&str, &dyn ToSql)> = self.values.iter().map(|(n, v)| (*n, v.as_ref())).collect();
        named.extend_from_slice(more);
        named
    }
}

impl HistoryStore {
    /// The runs matching `query`, sorted, one page of them, with each run's last metric values.
    pub fn find_runs(&self, query: &RunQuery) -> Result<RunPage, HistoryError> {
        let filter = Filter::of(query, self.version() >= 4);
        let total: i64 = self
            .conn
            .prepare_cached(&format!("SELECT COUNT(*) FROM runs{}", filter.clause(&[])))
            .and_then(|mut statement| statement.query_row(filter.named(&[]).as_slice(), |row| row.get(0)))
            .map_err(|e| self.db_error(e))?;
        let mut runs = if query.sort == SortKey::Duration && self.version() >= 4 {
            self.duration_page(query, &filter)?
        } else {
            self.sorted_page(query, &filter)?
        };
        self.fill_last_metrics_of(&mut runs)?;
        Ok(RunPage {
            total: total as u64,
            runs,
        })
    }

    /// One page in the order of a column or expression (ties newest first).
    fn sorted_page(&self, query: &RunQuery, filter: &Filter) -> Result<Vec<RunRecord>, HistoryError> {
        let direction = if query.descending { "DESC" } else { "ASC" };
        let now = now_ms();
        let expression = match query.sort {
            // An older history: no index of durations.
            SortKey::Duration => "(COALESCE(ended_ms, :now) - COALESCE(started_ms, created_ms))",
            ref other => other.expression(),
        };
        let order = match query.sort {
            SortKey::Number => format!("run_number {direction}"),
            // NULLs (no such metric) last whatever the direction.
            SortKey::Metric(_) => format!("({expression}) IS NULL, {expression} {direction}, run_number DESC"),
            // Never NULL: an order an index can give.
            _ => format!("{expression} {direction}, run_number DESC"),
        };
        let sql = format!(
            "SELECT {} FROM runs{} ORDER BY {order} LIMIT :limit OFFSET :offset",
            self.columns(),
            filter.clause(&[])
        );
        let (limit, offset) = (query.limit as i64, query.offset as i64);
        let metric = match &query.sort {
            SortKey::Metric(name) => Some(name.clone()),
            _ => None,
        };
        let mut more: Vec<(&str, &dyn ToSql)> = vec![(":limit", &limit), (":offset", &offset)];
        if let Some(metric) = &metric {
            more.push((":metric", metric));
        }
        if expression.contains(":now") {
            more.push((":now", &now));
        }
        let mut statement = self.conn.prepare_cached(&sql).map_err(|e| self.db_error(e))?;
        let runs = statement
            .query_map(filter.named(&more).as_slice(), record_from_row)
            .map_err(|e| self.db_error(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db_error(e))?;
        Ok(runs)
    }

    /// One page by duration: the runs that ended from the index of their (fixed) durations, at
    /// most a page's end of them; the runs still going (few) with `now - start`; merged.
    fn duration_page(&self, query: &RunQuery, filter: &Filter) -> Result<Vec<RunRecord>, HistoryError> {
        let direction = if query.descending { "DESC" } else { "ASC" };
        let end = query.offset.saturating_add(query.limit) as i64;
        let now = now_ms();
        let mut ranked: Vec<(i64, i64)> = Vec::new();
        let mut collect = |sql: String, more: &[(&'static str, &dyn ToSql)]| -> Result<(), HistoryError> {
            let mut statement = self.conn.prepare_cached(&sql).map_err(|e| self.db_error(e))?;
            let rows = statement
                .query_map(filter.named(more).as_slice(), |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(|e| self.db_error(e))?;
            for row in rows {
                ranked.push(row.map_err(|e| self.db_error(e))?);
            }
            Ok(())
        };
        collect(
            format!(
                "SELECT {ENDED_DURATION}, run_number FROM runs{} ORDER BY {ENDED_DURATION} {direction}, run_number DESC LIMIT :end",
                filter.clause(&["ended_ms IS NOT NULL"])
            ),
            &[(":end", &end)],
        )?;
        collect(
            format!(
                "SELECT :now - COALESCE(started_ms, created_ms), run_number FROM runs{}",
                filter.clause(&["ended_ms IS NULL"])
            ),
            &[(":now", &now)],
        )?;
        ranked.sort_by(|a, b| {
            let by_duration = if query.descending { b.0.cmp(&a.0) } else { a.0.cmp(&b.0) };
            by_duration.then(b.1.cmp(&a.1))
        });
        let page: Vec<i64> = ranked
            .into_iter()
            .skip(query.offset as usize)
            .take(query.limit as usize)
            .map(|(_, number)| number)
            .collect();
        self.runs_in_order(&page)
    }

    /// The runs numbered `numbers`, in that order.
    fn runs_in_order(&self, numbers: &[i64]) -> Result<Vec<RunRecord>, HistoryError> {
        let list = serde_json::to_string(numbers).expect("numbers serialise");
        let mut statement = self
            .conn
            .prepare_cached(&format!(
                "SELECT {} FROM runs WHERE run_number IN (SELECT value FROM json_each(?1))",
                self.columns()
            ))
            .map_err(|e| self.db_error(e))?;
        let mut found: HashMap<u64, RunRecord> = statement
            .query_map([list], record_from_row)
            .map_err(|e| self.db_error(e))?
            .map(|row| row.map(|record| (record.run_number, record)))
            .collect::<Result<_, _>>()
            .map_err(|e| self.db_error(e))?;
        Ok(numbers.iter().filter_map(|n| found.remove(&(*n as u64))).collect())
    }
}
