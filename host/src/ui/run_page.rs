//! A run's page: its record, a chart per metric series, scalar metrics, artifacts and its log,
//! all kept current by the page's script from `/api/runs/RUN/events` while the run goes.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Response;

use super::api::{x_axis, SeriesParams};
use super::chart::PLOT_COLUMNS;
use super::data::Series;
use super::downsample::XAxis;
use super::files::{open_artifact, read_log};
use super::html::Html;
use super::pages::{chart_card, duration_text, encode_component, layout, page_error, status_badge, value_text};
use super::server::{AppState, UiError};
use crate::history::{format_utc, now_ms, RunRecord};
use crate::snapshot::code::CodeError;
use crate::snapshot::Manifest;

/// The page shows at most this much of the log's end; the rest is one link away.
const LOG_ON_PAGE: u64 = 512 * 1024;

struct RunView {
    record: RunRecord,
    /// Each with its place among the run's series names: its colour, the same when the
    /// page's script refreshes it (`chart_fragment`).
    charts: Vec<(usize, Series)>,
    scalars: Vec<Series>,
    /// Each artifact and its size, or why it is not downloadable.
    artifacts: Vec<(String, Result<u64, String>)>,
    log_start: u64,
    log_text: String,
    log_end: u64,
    /// The run's code snapshot, or why there is none to show.
    code: Result<Manifest, String>,
}

/// Reads the run, then its series side by side (one history connection each: a long series
/// takes tens of milliseconds to read, and the machine has more than one core).
async fn load(state: &Arc<AppState>, id: String, x: XAxis) -> Result<RunView, UiError> {
    let (record, names, artifacts, log_start, chunk, code) = state
        .read(move |store| {
            let record = store.get(&id)?;
            let names = store.series_names(record.run_number)?;
            let run_dir = store.run_dir(&record.run_id);
            let artifacts: Vec<(String, Result<u64, String>)> = record
                .artifacts
                .iter()
                .map(|path| {
                    let size = open_artifact(&record, &run_dir, path)
                        .map(|(_, length)| length)
                        .map_err(|refusal| refusal.to_string());
                    (path.clone(), size)
                })
                .collect();
            let log_path = run_dir.join("output.log");
            let length = std::fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
            let log_start = length.saturating_sub(LOG_ON_PAGE);
            let chunk = read_log(&log_path, log_start, LOG_ON_PAGE as usize)
                .map_err(|e| UiError::Internal(format!("reading {}: {e}", log_path.display())))?;
            let code = crate::snapshot::code::manifest_of(store, &record).map_err(|e| match e {
                CodeError::NoSnapshot(_) => {
                    "No snapshot: this run ran before xp kept the code of every run.".to_owned()
                }
                other => other.to_string(),
            });
            Ok((record, names, artifacts, log_start, chunk, code))
        })
        .await?;
    let record = Arc::new(record);
    let reads = names.into_iter().map(|name| {
        let (state2, record) = (Arc::clone(state), Arc::clone(&record));
        state.read(move |store| state2.series_cache.load(store, &record, &name, x, Some(PLOT_COLUMNS)))
    });
    let (mut charts, mut scalars) = (Vec::new(), Vec::new());
    for (index, series) in futures_util::future::try_join_all(reads).await?.into_iter().enumerate() {
        if series.total > 1 && !series.points.is_empty() {
            charts.push((index, series));
        } else {
            scalars.push(series);
        }
    }
    Ok(RunView {
        record: Arc::unwrap_or_clone(record),
        charts,
        scalars,
        artifacts,
        log_start,
        log_end: chunk.next_offset,
        log_text: chunk.text,
        code,
    })
}

pub fn size_text(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1 << 20 => format!("{:.1} kB", b as f64 / 1024.0),
        b if b < 1 << 30 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b => format!("{:.2} GB", b as f64 / (1u64 << 30) as f64),
    }
}

fn scalars_card(html: &mut Html, scalars: &[Series]) {
    html.raw("<section class=\"card\"><h2>Metrics</h2><table class=\"scalars\" id=\"scalars\"><tbody>");
    for series in scalars {
        html.raw("<tr>").element("th", &[], &series.name);
        html.element("td", &[("class", Some("num"))], &value_text(&series.last));
        html.raw("</tr>");
    }
    if scalars.is_empty() {
        html.raw("<tr><td class=\"muted\">No single-value metrics.</td></tr>");
    }
    html.raw("</tbody></table></section>");
}

fn record_table(html: &mut Html, record: &RunRecord) {
    let now = now_ms();
    let optional_time = |ms: Option<i64>| ms.map(format_utc).unwrap_or_else(|| "-".into());
    html.raw("<table class=\"record\" id=\"record\"><tbody>");
    let mut row = |label: &str, value: &str, class: &'static str| {
        html.raw("<tr>").element("th", &[], label);
        html.element("td", &[("class", (!class.is_empty()).then_some(class))], value);
        html.raw("</tr>");
    };
    row("Run id", &record.run_id, "mono");
    row("Run number", &record.run_number.to_string(), "");
    row("Script", &record.script, "mono");
    row("Arguments", &record.arguments.join(" "), "mono");
    row("Target", &record.target, "");
    row("Run configuration", &record.runconfig, "");
    row("Created (UTC)", &format_utc(record.created_ms), "");
    row("Started (UTC)", &optional_time(record.started_ms), "");
    row("Ended (UTC)", &optional_time(record.ended_ms), "");
    row("Duration", &duration_text(record, now), "");
    row(
        "Exit code",
        &record.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
        "",
    );
    if let Some(commit) = &record.git_commit {
        row("Git commit", commit, "mono");
    }
    html.raw("</tbody></table>");
}

pub async fn run(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(params): Query<SeriesParams>,
) -> Response {
    let x = match x_axis(params.x.as_deref()) {
        Ok(x) => x,
        Err(error) => return page_error(error),
    };
    let view = match load(&state, id, x).await {
        Ok(view) => view,
        Err(error) => return page_error(error),
    };
    let record = &view.record;
    let encoded_id = encode_component(&record.run_id);
    let mut html = Html::new();
    let final_text = if record.status.is_final() { "true" } else { "false" };
    let x_name = if x == XAxis::Time { "time" } else { "step" };
    html.open(
        "div",
        &[
            ("id", Some("run")),
            ("data-run", Some(&record.run_id)),
            ("data-final", Some(final_text)),
            ("data-x", Some(x_name)),
        ],
    );
    html.raw("<div class=\"title-row\"><h1>Run ");
    html.display(record.run_number).raw("</h1><span id=\"status\">");
    status_badge(&mut html, record.status, record.driver_gone());
    html.raw("</span>");
    html.element("span", &[("class", Some("muted mono"))], &record.run_id);
    if !record.status.is_final() {
        html.raw("<button type=\"button\" id=\"cancel\" class=\"danger\">Cancel run</button>");
    }
    html.raw("</div>");
    if let Some(error) = &record.error {
        html.element("p", &[("class", Some("error-box"))], error);
    }

    html.raw("<div class=\"run-layout\"><div class=\"run-main\">");
    html.raw("<section class=\"card\"><div class=\"title-row\"><h2>Charts</h2>");
    let (step_class, time_class) = if x == XAxis::Time {
        ("", "active")
    } else {
        ("active", "")
    };
    let step_href = format!("/runs/{encoded_id}");
    let time_href = format!("/runs/{encoded_id}?x=time");
    html.raw("<span class=\"toggle\">x: ");
    html.open("a", &[("href", Some(&step_href)), ("class", Some(step_class))])
        .text("step")
        .close("a");
    html.open("a", &[("href", Some(&time_href)), ("class", Some(time_class))])
        .text("time")
        .close("a");
    html.raw("</span></div><div class=\"charts\" id=\"charts\">");
    for (index, series) in &view.charts {
        chart_card(&mut html, series, x, *index);
    }
    html.raw("</div>");
    if view.charts.is_empty() {
        html.element(
            "p",
            &[("class", Some("muted")), ("id", Some("no-charts"))],
            "No metric series yet: log one with log_metric(\"loss\", value) in a loop.",
        );
    }
    html.raw("</section>");

    html.raw("<section class=\"card\"><div class=\"title-row\"><h2>Log</h2>");
    let raw_href = format!("/api/runs/{encoded_id}/log?offset=0");
    html.open("a", &[("href", Some(&raw_href)), ("class", Some("muted"))])
        .text("whole log as JSON")
        .close("a");
    html.raw("<label class=\"muted\"><input type=\"checkbox\" id=\"follow\" checked> follow</label></div>");
    if view.log_start > 0 {
        html.open("p", &[("class", Some("muted"))])
            .text("The first ")
            .text(&size_text(view.log_start))
            .text(" are left out here.")
            .close("p");
    }
    let end = view.log_end.to_string();
    html.open(
        "pre",
        &[("id", Some("log")), ("class", Some("log")), ("data-offset", Some(&end))],
    );
    html.text(&view.log_text);
    html.raw("</pre></section></div>");

    html.raw("<aside class=\"run-side\"><section class=\"card\"><h2>Record</h2>");
    record_table(&mut html, record);
    html.raw("</section>");
    scalars_card(&mut html, &view.scalars);
    html.raw("<section class=\"card\"><h2>Artifacts</h2><div id=\"artifacts\">");
    if view.artifacts.is_empty() {
        html.element(
            "p",
            &[("class", Some("muted"))],
            if record.status.is_final() {
                "None: the script wrote nothing to outputs/."
            } else {
                "Collected from outputs/ when the run ends."
            },
        );
    } else {
        html.raw("<ul class=\"artifacts\">");
        for (path, size) in &view.artifacts {
            html.raw("<li>");
            match size {
                Ok(size) => {
                    let encoded_path: Vec<String> = path.split('/').map(encode_component).collect();
                    let href = format!("/runs/{encoded_id}/artifacts/{}", encoded_path.join("/"));
                    html.open("a", &[("href", Some(&href)), ("download", Some(""))])
                        .text(path)
                        .close("a");
                    html.element("span", &[("class", Some("muted"))], &size_text(*size));
                }
                Err(_) => {
                    html.element("span", &[("class", Some("mono"))], path);
                    html.element(
                        "span",
                        &[("class", Some("muted"))],
                        "not downloadable (missing or not a plain file)",
                    );
                }
            }
            html.raw("</li>");
        }
        html.raw("</ul>");
    }
    html.raw("</div></section>");
    super::code_page::code_card(&mut html, record, &view.code);
    html.raw("</aside>");

    html.raw("</div></div>");
    layout(&state, &format!("Run {}", record.run_number), "Runs", html)
}
