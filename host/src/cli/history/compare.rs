//! `xp history compare` and `xp history metrics`.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::super::args::OutputFormat;
use super::super::output;
use crate::history::{format_duration, format_utc, now_ms, HistoryStore, MetricPoint};

/// Whether smaller is better for a metric, judged by its name (loss, error, rmse, ...).
fn lower_is_better(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["loss", "error", "err", "rmse", "mse", "mae", "perplexity"]
        .iter()
        .any(|word| name.contains(word))
}

/// The best numeric value of a series: the smallest for loss-like names, else the largest.
fn best(name: &str, points: &[&MetricPoint]) -> Option<f64> {
    let values = points.iter().filter_map(|p| p.value.as_f64());
    if lower_is_better(name) {
        values.fold(None, |best: Option<f64>, v| Some(best.map_or(v, |b| b.min(v))))
    } else {
        values.fold(None, |best: Option<f64>, v| Some(best.map_or(v, |b| b.max(v))))
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

pub fn compare(store: &HistoryStore, runs: &[String], format: OutputFormat) -> anyhow::Result<i32> {
    let now = now_ms();
    let mut columns = Vec::new();
    let mut names = BTreeSet::new();
    for run in runs {
        let record = store.get(run)?;
        let points = store.metrics(record.run_number, None)?;
        let mut metrics = serde_json::Map::new();
        for name in record.metrics.keys() {
            names.insert(name.clone());
            let series: Vec<&MetricPoint> = points.iter().filter(|p| &p.name == name).collect();
            metrics.insert(
                name.clone(),
                json!({
                    "last": record.metrics[name],
                    "best": best(name, &series),
                    "goal": if lower_is_better(name) { "min" } else { "max" },
                    "points": series.len(),
                }),
            );
        }
        columns.push(json!({
            "run_id": record.run_id,
            "run_number": record.run_number,
            "status": record.status,
            "target": record.target,
            "script": record.script,
            "arguments": record.arguments,
            "created": format_utc(record.created_ms),
            "duration_ms": record.duration_ms(now),
            "exit_code": record.exit_code,
            "lost": record.lost,
            "metrics": metrics,
        }));
    }
    if let OutputFormat::Json = format {
        output::print(&output::json(&columns));
        return Ok(0);
    }
    let mut header = vec!["".to_owned()];
    header.extend(columns.iter().map(|c| format!("run {}", c["run_number"])));
    let field = |label: &str, f: &dyn Fn(&Value) -> String| {
        let mut row = vec![label.to_owned()];
        row.extend(columns.iter().map(f));
        row
    };
    let mut rows = vec![
        field("Run id", &|c| text(&c["run_id"])),
        field("Status", &|c| {
            let incomplete = c["lost"].as_array().is_some_and(|lost| !lost.is_empty());
            format!(
                "{}{}",
                text(&c["status"]),
                if incomplete { " (incomplete)" } else { "" }
            )
        }),
        field("Target", &|c| text(&c["target"])),
        field("Script", &|c| text(&c["script"])),
        field("Arguments", &|c| {
            c["arguments"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| output::one_line(&text(v)))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default()
        }),
        field("Duration", &|c| {
            c["duration_ms"].as_i64().map(format_duration).unwrap_or_default()
        }),
        field("Exit code", &|c| text(&c["exit_code"])),
    ];
    for name in &names {
        rows.push(field(&format!("{name} (last)"), &|c| text(&c["metrics"][name]["last"])));
        let goal = if lower_is_better(name) { "min" } else { "max" };
        rows.push(field(&format!("{name} (best, {goal})"), &|c| {
            text(&c["metrics"][name]["best"])
        }));
    }
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    output::print(&output::table(&header, rows));
    Ok(0)
}

pub fn metrics(store: &HistoryStore, run: &str, name: Option<&str>, format: OutputFormat) -> anyhow::Result<i32> {
    let record = store.get(run)?;
    let points = store.metrics(record.run_number, name)?;
    if let Some(name) = name {
        if points.is_empty() {
            let known: Vec<&String> = record.metrics.keys().collect();
            anyhow::bail!(
                "run {} has no metric '{name}'; it has: {}",
                record.run_id,
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
                }
            );
        }
    }
    match format {
        OutputFormat::Json => output::print(&output::json(&points)),
        OutputFormat::Table => {
            let rows = points
                .iter()
                .map(|p| {
                    vec![
                        p.name.clone(),
                        p.step.to_string(),
                        text(&p.value),
                        format_utc(p.time_ms),
                    ]
                })
                .collect();
            output::print(&output::table(&["METRIC", "STEP", "VALUE", "TIME (UTC)"], rows));
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(value: f64) -> MetricPoint {
        MetricPoint {
            name: String::new(),
            step: 0,
            value: json!(value),
            time_ms: 0,
        }
    }

    #[test]
    fn best_is_the_minimum_for_losses_and_the_maximum_otherwise() {
        let points = [point(0.5), point(0.2), point(0.9)];
        let refs: Vec<&MetricPoint> = points.iter().collect();
        assert_eq!(best("val_loss", &refs), Some(0.2));
        assert_eq!(best("Accuracy", &refs), Some(0.9));
        assert_eq!(best("RMSE", &refs), Some(0.2));
    }
}
