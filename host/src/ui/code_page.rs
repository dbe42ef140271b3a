//! The code pages: a run's files (`/runs/RUN/code`), one file (`/runs/RUN/code/PATH`), a diff
//! against another run (`/runs/RUN/code?diff=OTHER`), and the code card of the run page.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::Uri;
use axum::response::Response;

use super::code::{diff_with, file_entry, id_and_path, run_code, CodeParams, MAX_VIEW_BYTES};
use super::html::Html;
use super::pages::{encode_bytes, layout, not_found, page_error, run_href};
use super::run_page::size_text;
use super::server::{AppState, UiError};
use crate::history::RunRecord;
use crate::snapshot::code::{text_of_bytes, CodeDiff, Objects};
use crate::snapshot::{Kind, Manifest};

/// Files the run page lists; the rest are on the code page.
const FILES_ON_RUN_PAGE: usize = 40;

/// The address of a file's view (`raw`: its download).
pub fn file_href(record: &RunRecord, path: &[u8], raw: bool) -> String {
    let encoded: Vec<String> = path.split(|byte| *byte == b'/').map(encode_bytes).collect();
    let prefix = if raw { "/api" } else { "" };
    format!("{prefix}{}/code/{}", run_href(record), encoded.join("/"))
}

fn diff_form(html: &mut Html, record: &RunRecord, value: &str) {
    let action = format!("{}/code", run_href(record));
    let suggestion = record.run_number.saturating_sub(1).max(1).to_string();
    html.open(
        "form",
        &[
            ("class", Some("diff-form")),
            ("method", Some("get")),
            ("action", Some(&action)),
        ],
    );
    html.raw("<label>Compare with run ");
    html.open(
        "input",
        &[
            ("type", Some("search")),
            ("name", Some("diff")),
            ("id", Some("diff-with")),
            ("value", Some(value)),
            ("placeholder", Some(&suggestion)),
            ("size", Some("12")),
        ],
    );
    html.raw("</label><button type=\"submit\">Diff</button></form>");
}

fn files_table(html: &mut Html, record: &RunRecord, manifest: &Manifest, limit: usize) {
    html.raw("<table class=\"files\" id=\"code-files\"><tbody>");
    let entries = manifest.entries.iter().filter(|e| e.kind != Kind::Dir);
    for entry in entries.clone().take(limit) {
        let path = entry.path_text();
        html.raw("<tr><td class=\"mono path\">");
        match &entry.kind {
            Kind::File { size, .. } => {
                html.open("a", &[("href", Some(&file_href(record, &entry.path, false)))])
                    .text(&path)
                    .close("a");
                html.raw("</td>");
                html.element("td", &[("class", Some("num muted"))], &size_text(*size));
            }
            Kind::Link { target } => {
                html.text(&path).raw("</td>");
                let note = format!("link to {} (not followed)", String::from_utf8_lossy(target));
                html.element("td", &[("class", Some("num muted"))], &note);
            }
            Kind::Dir => {}
        }
        html.raw("</tr>");
    }
    html.raw("</tbody></table>");
    let more = entries.count().saturating_sub(limit);
    if more > 0 {
        let href = format!("{}/code", run_href(record));
        html.open("p", &[("class", Some("muted"))])
            .text(&format!("and {more} more: "));
        html.open("a", &[("href", Some(&href))]).text("all files").close("a");
        html.close("p");
    }
}

/// The run page's code card: the first files with sizes, and a diff form.
pub fn code_card(html: &mut Html, record: &RunRecord, manifest: &Result<Manifest, String>) {
    html.raw("<section class=\"card\" id=\"code\"><div class=\"title-row\"><h2>Code</h2>");
    match manifest {
        Ok(manifest) => {
            let summary = manifest.summary();
            let text = format!(
                "{} file{}, {}",
                summary.files,
                if summary.files == 1 { "" } else { "s" },
                size_text(summary.bytes)
            );
            html.element("span", &[("class", Some("muted"))], &text);
            diff_form(html, record, "");
            html.raw("</div>");
            files_table(html, record, manifest, FILES_ON_RUN_PAGE);
        }
        Err(why) => {
            html.raw("</div>");
            html.element("p", &[("class", Some("muted"))], why);
        }
    }
    html.raw("</section>");
}

fn title(html: &mut Html, record: &RunRecord, rest: &[(&str, Option<String>)]) {
    html.raw("<div class=\"title-row\"><h1 class=\"crumbs\">");
    html.open("a", &[("href", Some(&run_href(record)))])
        .text("Run ")
        .display(record.run_number)
        .close("a");
    for (label, href) in rest {
        html.raw(" <span class=\"muted\">›</span> ");
        match href {
            Some(href) => html.open("a", &[("href", Some(href))]).text(label).close("a"),
            None => html.element("span", &[("class", Some("mono"))], label),
        };
    }
    html.raw("</h1>");
}

fn diff_lines(html: &mut Html, diff: &str) {
    html.raw("<pre class=\"diff\">");
    for line in diff.split_inclusive('\n') {
        let class = if line.starts_with("+++") || line.starts_with("---") {
            "d-file"
        } else if line.starts_with("@@") {
            "d-hunk"
        } else if line.starts_with('+') {
            "d-add"
        } else if line.starts_with('-') {
            "d-del"
        } else {
            "d-same"
        };
        html.open("span", &[("class", Some(class))]).text(line).close("span");
    }
    html.raw("</pre>");
}

fn diff_body(html: &mut Html, report: &CodeDiff) {
    let summary = format!(
        "{} added, {} removed, {} changed",
        report.added, report.removed, report.changed
    );
    html.open("p", &[("id", Some("diff-summary"))])
        .text("From run ")
        .element("span", &[("class", Some("mono"))], &report.from)
        .text(" to run ")
        .element("span", &[("class", Some("mono"))], &report.to)
        .text(": ")
        .text(&summary)
        .close("p");
    if report.changes.is_empty() {
        html.element("p", &[("class", Some("empty"))], "The two runs ran the same code.");
        return;
    }
    html.raw("<section class=\"card\"><table class=\"files\" id=\"changes\"><tbody>");
    for (index, change) in report.changes.iter().enumerate() {
        let class = format!("change c-{}", change.change);
        let anchor = format!("#change-{index}");
        html.raw("<tr><td>");
        html.element("span", &[("class", Some(&class))], change.change);
        html.raw("</td><td class=\"mono path\">");
        html.open("a", &[("href", Some(&anchor))]).text(&change.path).close("a");
        html.raw("</td>");
        html.element("td", &[("class", Some("muted"))], change.note.as_deref().unwrap_or(""));
        html.raw("</tr>");
    }
    html.raw("</tbody></table></section>");
    for (index, change) in report.changes.iter().enumerate() {
        let id = format!("change-{index}");
        let class = format!("change c-{}", change.change);
        html.open("section", &[("class", Some("card file-diff")), ("id", Some(&id))]);
        html.raw("<div class=\"title-row\">");
        html.element("span", &[("class", Some(&class))], change.change);
        html.element("h2", &[("class", Some("mono"))], &change.path);
        if let Some(note) = &change.note {
            html.element("span", &[("class", Some("muted"))], note);
        }
        html.raw("</div>");
        match &change.diff {
            Some(diff) if !diff.is_empty() => diff_lines(html, diff),
            Some(_) => {
                html.element("p", &[("class", Some("muted"))], "Empty file.");
            }
            None => {
                html.element(
                    "p",
                    &[("class", Some("muted"))],
                    "No text diff: binary, a link, or too large.",
                );
            }
        }
        html.raw("</section>");
    }
}

/// `GET /runs/RUN/code`: every file; with `?diff=OTHER`, the diff from run OTHER to this run.
pub async fn code_index(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(params): Query<CodeParams>,
) -> Response {
    let objects = Objects::of(&state.xp_dir());
    let other = params.other().map(str::to_owned);
    let loaded = state
        .read(move |store| {
            let (record, manifest) = run_code(store, &id)?;
            let report = match &other {
                Some(other) => Some(diff_with(store, &objects, &id, other)?),
                None => None,
            };
            Ok((record, manifest, report))
        })
        .await;
    let (record, manifest, report) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return page_error(error),
    };
    let mut html = Html::new();
    let code_href = format!("{}/code", run_href(&record));
    match &report {
        Some(_) => title(&mut html, &record, &[("Code", Some(code_href)), ("Diff", None)]),
        None => title(&mut html, &record, &[("Code", None)]),
    }
    diff_form(&mut html, &record, params.other().unwrap_or(""));
    html.raw("</div>");
    match &report {
        Some(report) => diff_body(&mut html, report),
        None => {
            let summary = manifest.summary();
            let text = format!("{} files, {}", summary.files, size_text(summary.bytes));
            html.raw("<section class=\"card\">");
            html.element("p", &[("class", Some("muted"))], &text);
            files_table(&mut html, &record, &manifest, usize::MAX);
            html.raw("</section>");
        }
    }
    let page_title = format!("Code of run {}", record.run_number);
    layout(&state, &page_title, "Runs", html)
}

/// A file's view: its text, or why it is not shown.
enum Shown {
    Text(String),
    Binary,
    TooLarge,
}

/// `GET /runs/RUN/code/PATH`: one file, as text when it is, with its download.
pub async fn code_file(State(state): State<Arc<AppState>>, uri: Uri) -> Response {
    let Some((id, path)) = id_and_path(&uri) else {
        return not_found("No such file in the run's code.");
    };
    let objects = Objects::of(&state.xp_dir());
    let loaded = state
        .read(move |store| {
            let (record, manifest) = run_code(store, &id)?;
            let (hash, size, mode) = file_entry(&manifest, &path)
                .ok_or_else(|| UiError::NotFound("No such file in the run's code.".into()))?;
            let shown = if size > MAX_VIEW_BYTES {
                Shown::TooLarge
            } else {
                let (bytes, _) = objects.read(&hash, MAX_VIEW_BYTES)?;
                text_of_bytes(bytes).map_or(Shown::Binary, Shown::Text)
            };
            Ok((record, path, size, mode, shown))
        })
        .await;
    let (record, path, size, mode, shown) = match loaded {
        Ok(loaded) => loaded,
        Err(UiError::NotFound(message)) => return not_found(&message),
        Err(error) => return page_error(error),
    };
    let mut html = Html::new();
    let code_href = format!("{}/code", run_href(&record));
    let shown_path = String::from_utf8_lossy(&path);
    title(&mut html, &record, &[("Code", Some(code_href)), (&shown_path, None)]);
    let facts = format!("{} · mode {mode:o}", size_text(size));
    html.element("span", &[("class", Some("muted"))], &facts);
    let raw = file_href(&record, &path, true);
    html.open(
        "a",
        &[
            ("class", Some("button-link")),
            ("href", Some(&raw)),
            ("download", Some("")),
        ],
    )
    .text("Download")
    .close("a");
    html.raw("</div><section class=\"card\">");
    match shown {
        Shown::Text(text) => {
            html.raw("<pre class=\"code\" id=\"code-text\">");
            for line in text.split_inclusive('\n') {
                html.raw("<span class=\"line\">").text(line).raw("</span>");
            }
            html.raw("</pre>");
        }
        Shown::Binary => {
            html.element(
                "p",
                &[("class", Some("muted")), ("id", Some("not-shown"))],
                "A binary file: not shown here. Download it to look inside.",
            );
        }
        Shown::TooLarge => {
            let text = format!(
                "Larger than {}: not shown here. Download it to read it.",
                size_text(MAX_VIEW_BYTES)
            );
            html.element("p", &[("class", Some("muted")), ("id", Some("not-shown"))], &text);
        }
    }
    html.raw("</section>");
    let page_title = format!("{shown_path} · run {}", record.run_number);
    layout(&state, &page_title, "Runs", html)
}
