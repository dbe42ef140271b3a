//! What the pages and the JSON API both show, read once: runs as JSON, metric series ready to
//! draw, the compare table's columns, the project's assets and targets.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use xp_plugin_api::{RunStatus, SECRET_REFERENCE_PREFIX};

use super::downsample::{m4, Point, XAxis};
use super::server::UiError;
use crate::history::{now_ms, HistoryStore, RunQuery, RunRecord, SortKey};
use crate::paths::UserDirs;
use crate::plugins::{find_plugins, search_path, Compatibility};
use crate::project::Project;

/// Query parameters of the runs page and `/api/runs`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct ListParams {
    pub status: Option<String>,
    pub target: Option<String>,
    pub q: Option<String>,
    pub sort: Option<String>,
    /// `asc` or `desc`.
    pub order: Option<String>,
    pub page: Option<u64>,
    pub per_page: Option<u64>,
    /// Comma-separated run numbers: only these runs.
    pub numbers: Option<String>,
    /// Only runs numbered above this: what was added since a page was shown.
    pub after: Option<u64>,
}

pub const MAX_PER_PAGE: u64 = 500;

impl ListParams {
    pub fn to_query(&self) -> Result<RunQuery, UiError> {
        let nonempty = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        let status = match nonempty(&self.status) {
            Some(text) => Some(RunStatus::parse(&text).ok_or_else(|| {
                UiError::BadRequest(format!(
                    "status={text}: expected one of {}",
                    RunStatus::ALL.map(|s| s.as_str()).join(", ")
                ))
            })?),
            None => None,
        };
        let sort = match nonempty(&self.sort) {
            Some(text) => SortKey::parse(&text).ok_or_else(|| {
                UiError::BadRequest(format!(
                    "sort={text}: expected number, id, status, target, script, arguments, start, duration or metric:NAME"
                ))
            })?,
            None => SortKey::Number,
        };
        let descending = match self.order.as_deref() {
            None | Some("") | Some("desc") => true,
            Some("asc") => false,
            Some(other) => return Err(UiError::BadRequest(format!("order={other}: expected asc or desc"))),
        };
        let per_page = self.per_page.unwrap_or(50).clamp(1, MAX_PER_PAGE);
        let page = self.page.unwrap_or(1).max(1);
        let numbers = match nonempty(&self.numbers) {
            Some(text) => Some(
                text.split(',')
                    .map(|n| n.trim().parse::<u64>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| {
                        UiError::BadRequest(format!("numbers={text}: expected run numbers separated by commas"))
                    })?,
            ),
            None => None,
        };
        Ok(RunQuery {
            status,
            target: nonempty(&self.target),
            text: nonempty(&self.q),
            numbers,
            after: self.after,
            sort,
            descending,
            offset: (page - 1).saturating_mul(per_page),
            limit: per_page,
        })
    }
}

/// A run as `xp history info -o json` shows it, plus `duration_ms` and `driver_gone`.
pub fn run_json(record: &RunRecord, now: i64) -> Value {
    let mut value = serde_json::to_value(record).expect("plain data");
    value["duration_ms"] = record.duration_ms(now).into();
    value["driver_gone"] = record.driver_gone().into();
    value
}

/// One metric series, ready to draw or send.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Series {
    pub name: String,
    /// Points recorded.
    pub total: u64,
    /// Points whose value is not a number (lists, text): not drawn.
    pub non_numeric: u64,
    pub downsampled: bool,
    #[serde(skip)]
    pub points: Vec<Point>,
    /// The last value as recorded (any JSON), and its step.
    pub last: Value,
    pub last_step: u64,
}

/// Reads one series of a run; with `width`, reduced to at most four points per column.
pub fn load_series(
    store: &HistoryStore,
    run_number: u64,
    name: &str,
    x: XAxis,
    width: Option<usize>,
) -> Result<Series, UiError> {
    let mut points = Vec::new();
    let (mut total, mut non_numeric) = (0u64, 0u64);
    let mut last = String::from("null");
    let mut last_step = 0;
    store.visit_series(run_number, name, None, |step, value, time_ms| {
        last_step = step;
        total += 1;
        match value.trim().parse::<f64>() {
            Ok(number) if number.is_finite() => points.push(Point {
                step,
                time_ms,
                value: number,
            }),
            _ => non_numeric += 1,
        }
        last.clear();
        last.push_str(value);
    })?;
    if x == XAxis::Time {
        points.sort_by_key(|p| p.time_ms);
    }
    let before = points.len();
    let points = match width {
        Some(width) => m4(points, x, width),
        None => points,
    };
    Ok(Series {
        name: name.to_owned(),
        total,
        non_numeric,
        downsampled: points.len() < before,
        points,
        last: serde_json::from_str(&last).unwrap_or(Value::Null),
        last_step,
    })
}

/// Downsampled series of finished runs, most recently used first. A finished run's points
/// never change and run numbers are never reused, so an entry stays true. The cache holds at
/// most [`CACHED_POINTS`] points in all (24 bytes each: under 5 MB).
#[derive(Default)]
pub struct SeriesCache {
    entries: std::sync::Mutex<std::collections::VecDeque<(SeriesKey, Series)>>,
}

type SeriesKey = (u64, String, XAxis, Option<usize>);

const CACHED_POINTS: usize = 200_000;

impl SeriesCache {
    /// The series, from the cache when the run has ended and it was read before.
    pub fn load(
        &self,
        store: &HistoryStore,
        run: &RunRecord,
        name: &str,
        x: XAxis,
        width: Option<usize>,
    ) -> Result<Series, UiError> {
        // Whole series (no width) could be megabytes each: never kept.
        if !run.status.is_final() || width.is_none() {
            return load_series(store, run.run_number, name, x, width);
        }
        let key = (run.run_number, name.to_owned(), x, width);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = entries.iter().position(|(k, _)| *k == key) {
            let entry = entries.remove(at).expect("found above");
            let series = entry.1.clone();
            entries.push_front(entry);
            return Ok(series);
        }
        drop(entries);
        let series = load_series(store, run.run_number, name, x, width)?;
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.push_front((key, series.clone()));
        let mut total = 0;
        let keep = entries
            .iter()
            .take_while(|(_, s)| {
                total += s.points.len();
                total <= CACHED_POINTS
            })
            .count();
        entries.truncate(keep);
        Ok(series)
    }
}

pub fn series_json(series: &Series) -> Value {
    json!({
        "name": series.name,
        "total": series.total,
        "non_numeric": series.non_numeric,
        "downsampled": series.downsampled,
        "last": series.last,
        "last_step": series.last_step,
        "points": series.points.iter().map(|p| json!([p.step, p.value, p.time_ms])).collect::<Vec<_>>(),
    })
}

/// `--lr 0.1 --epochs 5 data.csv` as `lr = 0.1`, `epochs = 5`, `arg 3 = data.csv`, so runs
/// line up by flag in the compare table whatever the order of their flags.
pub fn named_arguments(arguments: &[String]) -> BTreeMap<String, String> {
    let mut named = BTreeMap::new();
    let mut i = 0;
    while i < arguments.len() {
        let argument = &arguments[i];
        if let Some(flag) = argument
            .strip_prefix("--")
            .or_else(|| argument.strip_prefix('-'))
            .filter(|f| !f.is_empty())
        {
            if let Some((key, value)) = flag.split_once('=') {
                named.insert(format!("--{key}"), value.to_owned());
            } else if arguments
                .get(i + 1)
                .is_some_and(|next| !next.starts_with('-') || next.parse::<f64>().is_ok())
            {
                named.insert(format!("--{flag}"), arguments[i + 1].clone());
                i += 1;
            } else {
                named.insert(format!("--{flag}"), "(set)".to_owned());
            }
        } else {
            named.insert(format!("arg {}", i + 1), argument.clone());
        }
        i += 1;
    }
    named
}

/// Runs side by side, every metric of each run downsampled to `width` columns.
pub struct Comparison {
    pub runs: Vec<RunRecord>,
    /// Metric name -> for each run (by index in `runs`) that has it, its series.
    pub series: BTreeMap<String, Vec<(usize, Series)>>,
    pub argument_keys: BTreeSet<String>,
}

pub const MAX_COMPARED: usize = 200;

pub fn parse_run_list(text: Option<&str>) -> Result<Vec<String>, UiError> {
    let runs: Vec<String> = text
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect();
    if runs.len() > MAX_COMPARED {
        return Err(UiError::BadRequest(format!(
            "runs=: {} runs given; compare takes at most {MAX_COMPARED}",
            runs.len()
        )));
    }
    Ok(runs)
}

pub fn compare(
    store: &HistoryStore,
    cache: &SeriesCache,
    runs: &[String],
    x: XAxis,
    width: usize,
) -> Result<Comparison, UiError> {
    let mut records = Vec::with_capacity(runs.len());
    for run in runs {
        let record = store.get(run)?;
        if !records.iter().any(|r: &RunRecord| r.run_number == record.run_number) {
            records.push(record);
        }
    }
    let mut series: BTreeMap<String, Vec<(usize, Series)>> = BTreeMap::new();
    let mut argument_keys = BTreeSet::new();
    for (index, record) in records.iter().enumerate() {
        argument_keys.extend(named_arguments(&record.arguments).into_keys());
        for name in store.series_names(record.run_number)? {
            let loaded = cache.load(store, record, &name, x, Some(width))?;
            series.entry(name).or_default().push((index, loaded));
        }
    }
    Ok(Comparison {
        runs: records,
        series,
        argument_keys,
    })
}

pub fn comparison_json(comparison: &Comparison) -> Value {
    let now = now_ms();
    json!({
        "runs": comparison.runs.iter().map(|r| {
            let mut value = run_json(r, now);
            value["named_arguments"] = json!(named_arguments(&r.arguments));
            value
        }).collect::<Vec<_>>(),
        "metrics": comparison.series.iter().map(|(name, per_run)| {
            (name.clone(), per_run.iter().map(|(index, series)| {
                let mut value = series_json(series);
                value["run_id"] = json!(comparison.runs[*index].run_id);
                value
            }).collect::<Vec<_>>().into())
        }).collect::<serde_json::Map<String, Value>>(),
    })
}

/// The project's assets (`assets/NAME.link`), each with whether its file still exists.
pub fn assets(project: &Project) -> Vec<Value> {
    project
        .asset_link_paths()
        .into_iter()
        .map(|path| {
            let file = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            match std::fs::read_to_string(&path)
                .ok()
                .and_then(|text| serde_json::from_str::<Value>(&text).ok())
                .filter(Value::is_object)
            {
                Some(mut link) => {
                    link["file"] = json!(file);
                    link
                }
                None => json!({ "file": file, "error": "not an xp asset link" }),
            }
        })
        .collect()
}

/// The project's compute targets and run configurations, and the plugins on the search path
/// (manifests only: nothing is loaded into the server).
pub fn targets(project: &Project, dirs: &UserDirs) -> Value {
    let targets: Vec<Value> = project
        .target_names()
        .into_iter()
        .map(|name| match project.load_target(&name) {
            Ok(target) => {
                // Which settings are secrets is the plugin's to say, and the web view loads no
                // plugin: names that say secret are masked, as `xp computetarget show` does then.
                let settings: serde_json::Map<String, Value> = crate::secrets::masked_settings(&target.settings, None)
                    .iter()
                    .map(|(key, value)| {
                        let secret = value.as_str().is_some_and(|v| v.starts_with(SECRET_REFERENCE_PREFIX));
                        (
                            key.clone(),
                            if secret {
                                json!("(in the secret store)")
                            } else {
                                value.clone()
                            },
                        )
                    })
                    .collect();
                json!({ "name": name, "type": target.target_type, "settings": settings })
            }
            Err(error) => json!({ "name": name, "error": error.to_string() }),
        })
        .collect();
    let runconfigs: Vec<Value> = project
        .runconfig_names()
        .into_iter()
        .map(|name| match project.load_runconfig(&name) {
            Ok(config) => json!({
                "name": name,
                "target": config.target,
                "framework": config.framework.as_str(),
                "prepare_environment": config.prepare_environment,
            }),
            Err(error) => json!({ "name": name, "error": error.to_string() }),
        })
        .collect();
    let plugins: Vec<Value> = find_plugins(&search_path(Some(project.root()), dirs))
        .into_iter()
        .map(|found| match found.manifest {
            Ok(manifest) => {
                let status = match manifest.compatibility() {
                    Compatibility::Compatible => "compatible".to_owned(),
                    Compatibility::Incompatible(reason) => reason,
                };
                json!({
                    "name": manifest.name,
                    "version": manifest.version,
                    "description": manifest.description,
                    "target_types": manifest.target_types,
                    "manifest": found.manifest_path,
                    "compatible": status == "compatible",
                    "status": status,
                })
            }
            Err(error) => json!({
                "manifest": found.manifest_path,
                "compatible": false,
                "status": error.to_string(),
            }),
        })
        .collect();
    json!({ "targets": targets, "runconfigs": runconfigs, "plugins": plugins })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_line_up_by_flag() {
        let args: Vec<String> = ["--lr", "0.1", "--verbose", "--shift", "-3", "data.csv", "--epochs=5"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let named = named_arguments(&args);
        assert_eq!(named["--lr"], "0.1");
        assert_eq!(named["--verbose"], "(set)");
        assert_eq!(named["--shift"], "-3");
        assert_eq!(named["arg 6"], "data.csv");
        assert_eq!(named["--epochs"], "5");
    }

    #[test]
    fn list_parameters_are_checked() {
        let params = ListParams {
            status: Some("running".into()),
            sort: Some("metric:loss".into()),
            order: Some("asc".into()),
            page: Some(3),
            per_page: Some(20),
            ..Default::default()
        };
        let query = params.to_query().unwrap();
        assert_eq!(query.status, Some(RunStatus::Running));
        assert_eq!(query.sort, SortKey::Metric("loss".into()));
        assert!(!query.descending);
        assert_eq!((query.offset, query.limit), (40, 20));
        for bad in [
            ListParams {
                status: Some("Done".into()),
                ..Default::default()
            },
            ListParams {
                sort: Some("size".into()),
                ..Default::default()
            },
            ListParams {
                numbers: Some("1,x".into()),
                ..Default::default()
            },
        ] {
            assert!(matches!(bad.to_query(), Err(UiError::BadRequest(_))));
        }
    }
}
