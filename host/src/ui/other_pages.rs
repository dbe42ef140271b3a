//! The compare, assets and targets pages.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde_json::Value;

use super::api::x_axis;
use super::chart::{self, PLOT_COLUMNS};
use super::data::{self, named_arguments};
use super::html::Html;
use super::pages::{duration_text, encode_component, layout, page_error, run_href, status_badge, value_text};
use super::server::{AppState, UiError};
use crate::history::now_ms;

/// Points per chart the compare page aims at, all runs together: many runs share it, so 100
/// runs stay light in the browser while three runs get full detail.
const COMPARE_POINT_BUDGET: usize = 16_000;

/// `application/x-www-form-urlencoded` decoding of one value; a `%` not followed by two hex
/// digits stays as it is.
fn decode_component(value: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1).and_then(|b| hex(*b)),
            bytes.get(i + 2).and_then(|b| hex(*b)),
        ) {
            (b'+', _, _) => out.push(b' '),
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 2;
            }
            (other, _, _) => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The runs of `?runs=A,B` and of the runs page's form (`?run=A&run=B`), and `x`.
fn compare_params(query: Option<&str>) -> (String, Option<String>) {
    let mut runs = Vec::new();
    let mut x = None;
    for pair in query.unwrap_or("").split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = decode_component(value);
        match name {
            "runs" | "run" => runs.push(value),
            "x" => x = Some(value),
            _ => {}
        }
    }
    (runs.join(","), x)
}

pub async fn compare(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Response {
    let (runs_text, x_text) = compare_params(query.as_deref());
    let runs = match data::parse_run_list(Some(&runs_text)) {
        Ok(runs) => runs,
        Err(error) => return page_error(error),
    };
    let x = match x_axis(x_text.as_deref()) {
        Ok(x) => x,
        Err(error) => return page_error(error),
    };
    let mut html = Html::new();
    html.raw("<div class=\"title-row\"><h1>Compare</h1></div>");
    if runs.len() < 2 {
        html.element(
            "p",
            &[("class", Some("empty"))],
            "Select two or more runs on the runs page and press “Compare selected”, or open /compare?runs=A,B,C with run ids or numbers.",
        );
        return layout(&state, "Compare", "Compare", html);
    }
    // Four points per column per run (min/max per pixel column keeps first, min, max, last).
    let width = (COMPARE_POINT_BUDGET / 4 / runs.len()).clamp(40, PLOT_COLUMNS);
    let state2 = Arc::clone(&state);
    let read = state
        .read(move |store| data::compare(store, &state2.series_cache, &runs, x, width))
        .await;
    let comparison = match read {
        Ok(comparison) => comparison,
        Err(error) => return page_error(error),
    };
    let count = comparison.runs.len();
    let colors: Vec<String> = (0..count).map(|i| chart::color(i, count)).collect();
    let now = now_ms();

    // Every column: label and one text per run; differing columns are marked.
    let mut columns: Vec<(String, Vec<String>)> = vec![
        (
            "Status".into(),
            comparison.runs.iter().map(|r| r.status.as_str().to_owned()).collect(),
        ),
        (
            "Script".into(),
            comparison.runs.iter().map(|r| r.script.clone()).collect(),
        ),
        (
            "Target".into(),
            comparison.runs.iter().map(|r| r.target.clone()).collect(),
        ),
    ];
    let named: Vec<BTreeMap<String, String>> = comparison.runs.iter().map(|r| named_arguments(&r.arguments)).collect();
    for key in &comparison.argument_keys {
        columns.push((
            key.clone(),
            named.iter().map(|n| n.get(key).cloned().unwrap_or_default()).collect(),
        ));
    }
    for (name, per_run) in &comparison.series {
        let mut values = vec![String::new(); count];
        for (index, series) in per_run {
            values[*index] = value_text(&series.last);
        }
        columns.push((name.clone(), values));
    }
    columns.push((
        "Duration".into(),
        comparison.runs.iter().map(|r| duration_text(r, now)).collect(),
    ));
    let differs: Vec<bool> = columns
        .iter()
        .map(|(label, values)| label != "Duration" && values.iter().any(|v| *v != values[0]))
        .collect();
    let metric_start = 3 + comparison.argument_keys.len();

    html.open("p", &[("class", Some("muted"))])
        .display(count)
        .text(" runs; columns whose values differ are marked.")
        .close("p");
    html.raw("<div class=\"table-wrap tall\"><table class=\"compare\" id=\"compare\"><thead><tr><th></th><th>#</th><th>Run id</th>");
    for (i, (label, _)) in columns.iter().enumerate() {
        let mut class = String::new();
        if differs[i] {
            class.push_str("differs");
        }
        if i >= metric_start && i < columns.len() - 1 {
            class.push_str(" metric num");
        }
        html.open("th", &[("class", Some(class.trim()).filter(|c| !c.is_empty()))])
            .text(label);
        if differs[i] {
            html.raw(" <span class=\"diff-mark\" title=\"values differ\">≠</span>");
        }
        html.close("th");
    }
    html.raw("</tr></thead><tbody>");
    for (row, record) in comparison.runs.iter().enumerate() {
        html.open("tr", &[("data-run", Some(&record.run_id))]);
        html.raw("<td>");
        swatch(&mut html, &colors[row]);
        html.raw("</td><td class=\"num\">")
            .display(record.run_number)
            .raw("</td><td class=\"id\">");
        html.open("a", &[("href", Some(&run_href(record)))])
            .text(&record.run_id)
            .close("a");
        html.raw("</td>");
        for (i, (label, values)) in columns.iter().enumerate() {
            let metric = i >= metric_start && i < columns.len() - 1;
            let class = match (differs[i], metric) {
                (true, true) => Some("differs num"),
                (true, false) => Some("differs"),
                (false, true) => Some("num"),
                (false, false) => None,
            };
            html.open("td", &[("class", class)]);
            if label == "Status" {
                status_badge(&mut html, record.status, record.driver_gone());
            } else {
                html.text(&values[row]);
            }
            html.close("td");
        }
        html.raw("</tr>");
    }
    html.raw("</tbody></table></div>");

    html.raw("<div class=\"charts compare-charts\" id=\"charts\">");
    // Metrics logged once per run are in the table; only series are drawn.
    for (name, per_run) in comparison
        .series
        .iter()
        .filter(|(_, per_run)| per_run.iter().any(|(_, s)| s.total > 1))
    {
        let total: u64 = per_run.iter().map(|(_, s)| s.total).sum();
        let total_text = total.to_string();
        html.open(
            "figure",
            &[
                ("class", Some("chart-card")),
                ("data-series", Some(name)),
                ("data-total", Some(&total_text)),
            ],
        );
        html.raw("<figcaption>");
        html.element("span", &[("class", Some("chart-title"))], name);
        html.open("span", &[("class", Some("muted"))])
            .display(per_run.len())
            .text(" of ")
            .display(count)
            .text(" runs")
            .close("span");
        html.raw("</figcaption>");
        let labels: Vec<String> = per_run
            .iter()
            .map(|(index, _)| {
                format!(
                    "#{} {}",
                    comparison.runs[*index].run_number, comparison.runs[*index].run_id
                )
            })
            .collect();
        let lines: Vec<chart::Line<'_>> = per_run
            .iter()
            .zip(&labels)
            .map(|((index, series), label)| chart::Line {
                label,
                color: colors[*index].clone(),
                points: &series.points,
            })
            .collect();
        chart::render(&mut html, name, x, &lines);
        html.raw("<div class=\"hover\" hidden></div><ul class=\"legend\">");
        for ((index, _), label) in per_run.iter().zip(&labels) {
            html.open("li", &[("data-label", Some(label))]);
            swatch(&mut html, &colors[*index]);
            html.text(&format!("#{}", comparison.runs[*index].run_number));
            html.close("li");
        }
        html.raw("</ul></figure>");
    }
    html.raw("</div>");
    layout(&state, &format!("Compare {count} runs"), "Compare", html)
}

fn swatch(html: &mut Html, color: &str) {
    html.raw("<svg class=\"swatch\" width=\"12\" height=\"12\" aria-hidden=\"true\">");
    html.open(
        "rect",
        &[
            ("width", Some("12")),
            ("height", Some("12")),
            ("rx", Some("2")),
            ("fill", Some(color)),
        ],
    );
    html.raw("</rect></svg>");
}

pub async fn assets(State(state): State<Arc<AppState>>) -> Response {
    let links = match super::api::checked_assets(&state).await {
        Ok(links) => links,
        Err(error) => return page_error(error),
    };
    let mut html = Html::new();
    html.raw("<div class=\"title-row\"><h1>Assets</h1></div>");
    if links.is_empty() {
        html.element(
            "p",
            &[("class", Some("empty"))],
            "No assets yet. Give an artifact a name with `xp history promote RUN --artifact-path outputs/model.pkl --name NAME`.",
        );
        return layout(&state, "Assets", "Assets", html);
    }
    html.raw("<div class=\"table-wrap\"><table class=\"plain\"><thead><tr><th>Name</th><th>Run</th><th>Artifact</th><th>Created (UTC)</th><th>File</th></tr></thead><tbody>");
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    for link in &links {
        html.raw("<tr>");
        if let Some(error) = link.get("error") {
            html.element("td", &[("class", Some("mono"))], &text(&link["file"]));
            html.raw("<td colspan=\"4\" class=\"error-text\">")
                .text(&text(error))
                .raw("</td></tr>");
            continue;
        }
        html.element("td", &[], &text(&link["name"]));
        let run = text(&link["run_id"]);
        let run_href = format!("/runs/{}", encode_component(&run));
        html.raw("<td>");
        html.open("a", &[("href", Some(&run_href))]).text(&run).close("a");
        html.raw("</td><td class=\"mono\">");
        let artifact = text(&link["artifact_path"]);
        let exists = link["exists"].as_bool().unwrap_or(false);
        if exists {
            let encoded: Vec<String> = artifact.split('/').map(encode_component).collect();
            let href = format!("{run_href}/artifacts/{}", encoded.join("/"));
            html.open("a", &[("href", Some(&href)), ("download", Some(""))])
                .text(&artifact)
                .close("a");
        } else {
            html.text(&artifact);
        }
        html.raw("</td>");
        let created = link["created_ms"]
            .as_i64()
            .map(crate::history::format_utc)
            .unwrap_or_default();
        html.element("td", &[("class", Some("time"))], &created);
        html.element("td", &[], if exists { "yes" } else { "missing (run deleted?)" });
        html.raw("</tr>");
    }
    html.raw("</tbody></table></div>");
    layout(&state, "Assets", "Assets", html)
}

pub async fn targets(State(state): State<Arc<AppState>>) -> Response {
    let state2 = Arc::clone(&state);
    let value = match tokio::task::spawn_blocking(move || data::targets(&state2.project, &state2.dirs)).await {
        Ok(value) => value,
        Err(error) => return page_error(UiError::Internal(error.to_string())),
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let empty = Vec::new();
    let list = |key: &str| value[key].as_array().unwrap_or(&empty).clone();
    let mut html = Html::new();
    html.raw("<div class=\"title-row\"><h1>Compute targets</h1></div><div class=\"table-wrap\"><table class=\"plain\"><thead><tr><th>Name</th><th>Type</th><th>Settings</th></tr></thead><tbody>");
    for target in list("targets") {
        html.raw("<tr>");
        html.element("td", &[], &text(&target["name"]));
        if let Some(error) = target.get("error") {
            html.raw("<td colspan=\"2\" class=\"error-text\">")
                .text(&text(error))
                .raw("</td></tr>");
            continue;
        }
        html.element("td", &[], &text(&target["type"]));
        html.raw("<td class=\"settings\">");
        for (key, setting) in target["settings"].as_object().into_iter().flatten() {
            if key == "type" {
                continue;
            }
            html.raw("<span class=\"setting\">");
            html.element("span", &[("class", Some("key"))], key);
            html.text(&text(setting));
            html.raw("</span>");
        }
        html.raw("</td></tr>");
    }
    html.raw("</tbody></table></div><h2>Run configurations</h2><div class=\"table-wrap\"><table class=\"plain\"><thead><tr><th>Name</th><th>Target</th><th>Framework</th><th>Prepare environment</th></tr></thead><tbody>");
    for config in list("runconfigs") {
        html.raw("<tr>");
        html.element("td", &[], &text(&config["name"]));
        if let Some(error) = config.get("error") {
            html.raw("<td colspan=\"3\" class=\"error-text\">")
                .text(&text(error))
                .raw("</td></tr>");
            continue;
        }
        html.element("td", &[], &text(&config["target"]));
        html.element("td", &[], &text(&config["framework"]));
        html.element("td", &[], &text(&config["prepare_environment"]));
        html.raw("</tr>");
    }
    html.raw("</tbody></table></div><h2>Plugins</h2><div class=\"table-wrap\"><table class=\"plain\"><thead><tr><th>Name</th><th>Version</th><th>Target types</th><th>Status</th><th>Manifest</th></tr></thead><tbody>");
    for plugin in list("plugins") {
        html.raw("<tr>");
        html.element("td", &[], &text(&plugin["name"]));
        html.element("td", &[], &text(&plugin["version"]));
        let types: Vec<String> = plugin["target_types"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect();
        html.element("td", &[], &types.join(", "));
        let compatible = plugin["compatible"].as_bool().unwrap_or(false);
        html.raw("<td>");
        html.element(
            "span",
            &[
                (
                    "class",
                    Some(if compatible {
                        "status s-completed"
                    } else {
                        "status s-failed"
                    }),
                ),
                ("title", Some(&text(&plugin["status"]))),
            ],
            if compatible { "compatible" } else { "incompatible" },
        );
        html.raw("</td>");
        html.element("td", &[("class", Some("mono small"))], &text(&plugin["manifest"]));
        html.raw("</tr>");
    }
    html.raw("</tbody></table></div>");
    layout(&state, "Targets", "Targets", html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_takes_both_forms_of_the_run_list() {
        assert_eq!(
            compare_params(Some("runs=a%2Cb,c&x=time")),
            ("a,b,c".to_owned(), Some("time".to_owned()))
        );
        assert_eq!(compare_params(Some("run=p_1&run=p%5F2")), ("p_1,p_2".to_owned(), None));
        assert_eq!(decode_component("100%"), "100%");
        assert_eq!(decode_component("a+b%zz"), "a b%zz");
    }
}
