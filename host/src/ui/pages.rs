//! The HTML pages: the layout they share, the runs page, the chart fragment the run page's
//! script reloads, and the error page. The run page is in `run_page`, the others in
//! `other_pages`.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use xp_plugin_api::RunStatus;

use super::api::{x_axis, SeriesParams};
use super::chart::{self, short_number};
use super::data::{self, ListParams};
use super::downsample::XAxis;
use super::html::Html;
use super::server::{AppState, UiError};
use crate::history::{format_duration, format_utc, now_ms, RunRecord, SortKey};

pub use super::other_pages::{assets, compare, targets};
pub use super::run_page::run;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `a=1&b=x%20y`: each value percent-encoded (everything but unreserved characters).
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (name, value) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(&encode_component(value));
    }
    out
}

pub fn encode_component(value: &str) -> String {
    encode_bytes(value.as_bytes())
}

/// [`encode_component`] of any bytes: a file name need not be UTF-8.
pub fn encode_bytes(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    for &byte in value {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Percent-decodes a URL's path segment into the bytes it stands for (`%E9` is one byte,
/// whatever UTF-8 says). A `%` not followed by two hex digits stays as it is.
pub fn decode_bytes(value: &str) -> Vec<u8> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[at],
            bytes.get(at + 1).copied().and_then(hex),
            bytes.get(at + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                at += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                at += 1;
            }
        }
    }
    out
}

/// A run's page address (run ids are `<project>_<epoch-ms>`, but any text is encoded).
pub fn run_href(record: &RunRecord) -> String {
    format!("/runs/{}", encode_component(&record.run_id))
}

/// A whole page around `body`.
pub fn layout(state: &AppState, title: &str, active: &str, body: Html) -> Response {
    let mut html = Html::new();
    html.raw("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>");
    html.text(title).raw(" · xp</title>");
    let css = format!("/static/app.css?v={VERSION}");
    let js = format!("/static/app.js?v={VERSION}");
    html.open("link", &[("rel", Some("stylesheet")), ("href", Some(&css))]);
    // The token for the page's own state-changing requests (cancel), sent in a header.
    html.open(
        "meta",
        &[("name", Some("xp-token")), ("content", Some(&state.access.token))],
    );
    html.open("script", &[("src", Some(&js)), ("defer", Some(""))])
        .close("script");
    html.raw("</head><body><header class=\"top\"><a class=\"brand\" href=\"/\">xp</a>");
    html.element("span", &[("class", Some("project"))], state.project.name());
    html.raw("<nav>");
    for (href, label) in [
        ("/", "Runs"),
        ("/compare", "Compare"),
        ("/assets", "Assets"),
        ("/targets", "Targets"),
    ] {
        let class = (label == active).then_some("active");
        html.open("a", &[("href", Some(href)), ("class", class)])
            .text(label)
            .close("a");
    }
    html.raw("</nav></header><main>");
    html.append(body);
    html.raw("</main></body></html>");
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html.into_string()).into_response()
}

fn error_page(status: StatusCode, message: &str) -> Response {
    let mut html = Html::new();
    html.raw("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>xp</title><link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><header class=\"top\"><a class=\"brand\" href=\"/\">xp</a></header><main><h1>");
    html.display(status.as_u16())
        .raw(" ")
        .text(status.canonical_reason().unwrap_or(""));
    html.raw("</h1>");
    html.element("p", &[], message);
    html.raw("<p><a href=\"/\">All runs</a></p></main></body></html>");
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html.into_string(),
    )
        .into_response()
}

pub fn not_found(message: &str) -> Response {
    error_page(StatusCode::NOT_FOUND, message)
}

/// An error as a page (the API's errors are JSON).
pub fn page_error(error: UiError) -> Response {
    error_page(error.status(), &error.to_string())
}

pub fn status_badge(html: &mut Html, status: RunStatus, driver_gone: bool) {
    let class = format!("status s-{}", status.as_str().to_ascii_lowercase());
    html.open(
        "span",
        &[("class", Some(&class)), ("data-status", Some(status.as_str()))],
    );
    html.text(status.as_str());
    html.close("span");
    if driver_gone {
        html.element(
            "span",
            &[
                ("class", Some("warning")),
                (
                    "title",
                    Some("The xp process driving this run is gone; the next xp command marks it Failed."),
                ),
            ],
            "driver gone",
        );
    }
}

/// A metric value for a cell: numbers short, anything else as JSON, cut to a length.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::Number(n) => n.as_f64().map(short_number).unwrap_or_else(|| n.to_string()),
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => {
            let text = other.to_string();
            if text.chars().count() > 40 {
                format!("{}…", text.chars().take(40).collect::<String>())
            } else {
                text
            }
        }
    }
}

pub fn duration_text(record: &RunRecord, now: i64) -> String {
    record.duration_ms(now).map(format_duration).unwrap_or_default()
}

const COLUMNS: [(&str, &str); 8] = [
    ("number", "#"),
    ("id", "Run id"),
    ("status", "Status"),
    ("target", "Target"),
    ("script", "Script"),
    ("arguments", "Arguments"),
    ("start", "Start (UTC)"),
    ("duration", "Duration"),
];

/// Metric columns shown on one page of runs at most; more are in each run's page.
const MAX_METRIC_COLUMNS: usize = 8;

pub async fn runs(State(state): State<Arc<AppState>>, Query(params): Query<ListParams>) -> Response {
    let query = match params.to_query() {
        Ok(query) => query,
        Err(error) => return page_error(error),
    };
    let for_read = query.clone();
    let found = state
        .read(move |store| {
            Ok((
                store.find_runs(&for_read)?,
                store.targets_used()?,
                store.newest_run_number()?,
            ))
        })
        .await;
    let (page, targets, newest) = match found {
        Ok(found) => found,
        Err(error) => return page_error(error),
    };
    let now = now_ms();
    let sort = query.sort.as_param();
    let order = if query.descending { "desc" } else { "asc" };
    let status = query.status.map(|s| s.as_str()).unwrap_or("");
    let target = query.target.clone().unwrap_or_default();
    let text = query.text.clone().unwrap_or_default();
    let per_page = query.limit;
    let page_number = query.offset / per_page + 1;
    let pages = page.total.div_ceil(per_page).max(1);
    let per_page_text = per_page.to_string();
    let link = |sort: &str, order: &str, page: u64| {
        let page = page.to_string();
        let per_page = if per_page == 50 { "" } else { per_page_text.as_str() };
        let page = if page == "1" { "" } else { page.as_str() };
        let sort = if sort == "number" { "" } else { sort };
        let order = if order == "desc" { "" } else { order };
        let q = query_string(&[
            ("status", status),
            ("target", &target),
            ("q", &text),
            ("sort", sort),
            ("order", order),
            ("page", page),
            ("per_page", per_page),
        ]);
        if q.is_empty() {
            "/".to_owned()
        } else {
            format!("/?{q}")
        }
    };

    // What the page's script needs to show runs added after it loaded: the newest run number
    // now, the filters, and whether new runs belong at the top of this view.
    let newest_text = newest.to_string();
    let filters = query_string(&[("status", status), ("target", &target), ("q", &text)]);
    let live_new = sort == "number" && order == "desc" && page_number == 1;
    let mut html = Html::new();
    html.open(
        "div",
        &[
            ("id", Some("runs-live")),
            ("data-newest", Some(&newest_text)),
            ("data-filters", Some(&filters)),
            ("data-per-page", Some(&per_page_text)),
            ("data-live-new", Some(if live_new { "true" } else { "false" })),
        ],
    );
    html.close("div");
    html.raw("<div class=\"title-row\"><h1>Runs</h1>");
    html.open("span", &[("class", Some("muted")), ("id", Some("total"))])
        .display(page.total)
        .text(if page.total == 1 { " run" } else { " runs" })
        .close("span");
    html.raw("</div>");

    // Filters: a plain GET form, so every view has an address.
    html.raw("<form class=\"filters\" method=\"get\" action=\"/\"><label>Status <select name=\"status\"><option value=\"\">any</option>");
    for s in RunStatus::ALL {
        let selected = (s.as_str() == status).then_some("");
        html.open("option", &[("value", Some(s.as_str())), ("selected", selected)])
            .text(s.as_str())
            .close("option");
    }
    html.raw("</select></label><label>Target <select name=\"target\"><option value=\"\">any</option>");
    for t in &targets {
        let selected = (*t == target).then_some("");
        html.open("option", &[("value", Some(t)), ("selected", selected)])
            .text(t)
            .close("option");
    }
    html.raw("</select></label><label class=\"grow\">Search ");
    html.open(
        "input",
        &[
            ("type", Some("search")),
            ("name", Some("q")),
            ("value", Some(&text)),
            ("placeholder", Some("run id, number, script or argument")),
        ],
    );
    html.raw("</label>");
    if sort != "number" {
        html.open(
            "input",
            &[("type", Some("hidden")), ("name", Some("sort")), ("value", Some(&sort))],
        );
    }
    if order != "desc" {
        html.open(
            "input",
            &[
                ("type", Some("hidden")),
                ("name", Some("order")),
                ("value", Some(order)),
            ],
        );
    }
    html.raw("<button type=\"submit\">Filter</button>");
    if !(status.is_empty() && target.is_empty() && text.is_empty()) {
        html.raw("<a class=\"button-link\" href=\"/\">Clear</a>");
    }
    html.raw("</form><div id=\"new-runs\" class=\"new-runs\" hidden></div>");

    // With no rows, the (hidden) table is still written where new runs would show, so the
    // page's script can add them there.
    let empty = page.runs.is_empty();
    if empty {
        html.element(
            "p",
            &[("class", Some("empty")), ("id", Some("runs-empty"))],
            if page.total == 0 && status.is_empty() && target.is_empty() && text.is_empty() {
                "No runs yet. Submit one with `xp experiment submit SCRIPT`."
            } else {
                "No runs match."
            },
        );
        if !live_new {
            return layout(&state, "Runs", "Runs", html);
        }
    }

    let mut metric_names = BTreeSet::new();
    for run in &page.runs {
        metric_names.extend(run.metrics.keys().cloned());
    }
    let metric_names: Vec<String> = metric_names.into_iter().take(MAX_METRIC_COLUMNS).collect();

    html.open(
        "form",
        &[
            ("id", Some("compare-form")),
            ("method", Some("get")),
            ("action", Some("/compare")),
            ("hidden", empty.then_some("")),
        ],
    );
    html.raw("<div class=\"actions\"><button type=\"submit\" id=\"compare-button\">Compare selected</button><span class=\"muted\" id=\"selected-count\"></span></div>");
    let metric_list = serde_json::to_string(&metric_names).unwrap_or_else(|_| "[]".into());
    html.raw("<div class=\"table-wrap\">");
    html.open(
        "table",
        &[
            ("class", Some("runs")),
            ("id", Some("runs")),
            ("data-metrics", Some(&metric_list)),
        ],
    );
    html.raw("<thead><tr><th class=\"check\"><input type=\"checkbox\" id=\"select-all\" title=\"Select all on this page\"></th>");
    let header = |html: &mut Html, key: &str, label: &str, numeric: bool| {
        let active = sort == key;
        let next_order = if active && order == "desc" { "asc" } else { "desc" };
        let class = match (active, numeric) {
            (true, true) => "sorted num",
            (true, false) => "sorted",
            (false, true) => "num",
            (false, false) => "",
        };
        html.open("th", &[("class", (!class.is_empty()).then_some(class))]);
        let href = link(key, next_order, 1);
        html.open("a", &[("href", Some(&href))]).text(label);
        if active {
            html.raw(if order == "desc" { " ▾" } else { " ▴" });
        }
        html.close("a").close("th");
    };
    for (key, label) in COLUMNS {
        header(&mut html, key, label, matches!(key, "number" | "duration"));
    }
    for name in &metric_names {
        header(&mut html, &SortKey::Metric(name.clone()).as_param(), name, true);
    }
    html.raw("</tr></thead><tbody>");
    for run in &page.runs {
        let number = run.run_number.to_string();
        let final_text = if run.status.is_final() { "true" } else { "false" };
        html.open(
            "tr",
            &[
                ("data-number", Some(&number)),
                ("data-run", Some(&run.run_id)),
                ("data-final", Some(final_text)),
            ],
        );
        html.raw("<td class=\"check\">");
        html.open(
            "input",
            &[
                ("type", Some("checkbox")),
                ("name", Some("run")),
                ("value", Some(&run.run_id)),
            ],
        );
        html.raw("</td><td class=\"num\">")
            .text(&number)
            .raw("</td><td class=\"id\">");
        html.open("a", &[("href", Some(&run_href(run)))])
            .text(&run.run_id)
            .close("a");
        html.raw("</td><td data-col=\"status\">");
        status_badge(&mut html, run.status, run.driver_gone());
        html.raw("</td>");
        html.element("td", &[], &run.target);
        html.element("td", &[("class", Some("mono"))], &run.script);
        let arguments = run.arguments.join(" ");
        html.element(
            "td",
            &[("class", Some("mono args")), ("title", Some(&arguments))],
            &arguments,
        );
        html.element(
            "td",
            &[("class", Some("time"))],
            &format_utc(run.started_ms.unwrap_or(run.created_ms)),
        );
        html.element(
            "td",
            &[("class", Some("num")), ("data-col", Some("duration"))],
            &duration_text(run, now),
        );
        for name in &metric_names {
            let value = run.metrics.get(name).map(value_text).unwrap_or_default();
            html.element("td", &[("class", Some("num")), ("data-metric", Some(name))], &value);
        }
        html.raw("</tr>");
    }
    html.raw("</tbody></table></div></form>");
    if empty {
        return layout(&state, "Runs", "Runs", html);
    }

    html.raw("<nav class=\"pager\">");
    let pager_link = |html: &mut Html, label: &str, target_page: u64, enabled: bool| {
        if enabled {
            let href = link(&sort, order, target_page);
            html.open("a", &[("href", Some(&href))]).text(label).close("a");
        } else {
            html.element("span", &[("class", Some("disabled"))], label);
        }
    };
    pager_link(&mut html, "« First", 1, page_number > 1);
    pager_link(&mut html, "‹ Newer", page_number.saturating_sub(1), page_number > 1);
    html.open("span", &[("class", Some("muted"))])
        .text("Page ")
        .display(page_number)
        .text(" of ")
        .display(pages)
        .close("span");
    pager_link(&mut html, "Older ›", page_number + 1, page_number < pages);
    pager_link(&mut html, "Last »", pages, page_number < pages);
    html.raw("</nav>");
    layout(&state, "Runs", "Runs", html)
}

/// Writes a metric's chart card: title, point counts, the SVG.
pub fn chart_card(html: &mut Html, series: &data::Series, x: XAxis, color_index: usize) {
    let last_step = series.last_step.to_string();
    html.open(
        "figure",
        &[
            ("class", Some("chart-card")),
            ("data-series", Some(&series.name)),
            ("data-last-step", Some(&last_step)),
        ],
    );
    html.raw("<figcaption>");
    html.element("span", &[("class", Some("chart-title"))], &series.name);
    html.open("span", &[("class", Some("muted"))]);
    if series.downsampled {
        html.display(series.points.len())
            .text(" of ")
            .display(series.total)
            .text(" points drawn");
    } else {
        html.display(series.total)
            .text(if series.total == 1 { " point" } else { " points" });
    }
    html.text(" · last ").text(&value_text(&series.last)).close("span");
    html.raw("</figcaption>");
    let lines = [chart::Line {
        label: &series.name,
        color: chart::color(color_index, 10),
        points: &series.points,
    }];
    chart::render(html, &series.name, x, &lines);
    html.raw("<div class=\"hover\" hidden></div></figure>");
}

/// One chart card, for the run page's script to swap in when a series grows.
pub async fn chart_fragment(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(params): Query<SeriesParams>,
) -> Response {
    let x = match x_axis(params.x.as_deref()) {
        Ok(x) => x,
        Err(error) => return page_error(error),
    };
    let Some(name) = params.name.filter(|n| !n.is_empty()) else {
        return page_error(UiError::BadRequest("name=: which metric?".into()));
    };
    let loaded = state
        .read(move |store| {
            let record = store.get(&id)?;
            let names = store.series_names(record.run_number)?;
            let index = names
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| UiError::NotFound(format!("run {} has no metric '{name}'", record.run_id)))?;
            Ok((
                data::load_series(store, record.run_number, &name, x, Some(chart::PLOT_COLUMNS))?,
                index,
            ))
        })
        .await;
    match loaded {
        Ok((series, index)) => {
            let mut html = Html::new();
            chart_card(&mut html, &series, x, index);
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html.into_string()).into_response()
        }
        Err(error) => page_error(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            query_string(&[("q", "a b&c=d/é"), ("empty", ""), ("sort", "metric:loss")]),
            "q=a%20b%26c%3Dd%2F%C3%A9&sort=metric%3Aloss"
        );
    }
}
