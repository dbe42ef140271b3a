//! The JSON API under `/api/` (documented in the README's "Web view" section), and artifact
//! downloads.

use std::io::Read;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::data::{self, ListParams};
use super::downsample::XAxis;
use super::files::{self, open_artifact};
use super::server::{AppState, UiError};
use crate::history::now_ms;

/// Largest log chunk one request returns.
pub const LOG_CHUNK: usize = 1 << 20;
/// Downsampling widths accepted (pixel columns).
const MAX_WIDTH: usize = 10_000;

#[derive(Debug, Default, serde::Deserialize)]
pub struct SeriesParams {
    pub name: Option<String>,
    pub width: Option<usize>,
    /// `step` (default) or `time`.
    pub x: Option<String>,
}

pub fn x_axis(text: Option<&str>) -> Result<XAxis, UiError> {
    match text {
        None | Some("") | Some("step") => Ok(XAxis::Step),
        Some("time") => Ok(XAxis::Time),
        Some(other) => Err(UiError::BadRequest(format!("x={other}: expected step or time"))),
    }
}

fn width(value: Option<usize>) -> Result<Option<usize>, UiError> {
    match value {
        Some(w) if w == 0 || w > MAX_WIDTH => Err(UiError::BadRequest(format!(
            "width={w}: expected 1 to {MAX_WIDTH} (pixel columns)"
        ))),
        other => Ok(other),
    }
}

pub async fn runs(
    State(state): State<Arc<AppState>>,
    Query(params): Query<ListParams>,
) -> Result<Json<Value>, UiError> {
    let query = params.to_query()?;
    let (page, per_page) = (query.offset / query.limit + 1, query.limit);
    let found = state.read(move |store| Ok(store.find_runs(&query)?)).await?;
    let now = now_ms();
    Ok(Json(json!({
        "total": found.total,
        "page": page,
        "per_page": per_page,
        "runs": found.runs.iter().map(|r| data::run_json(r, now)).collect::<Vec<_>>(),
    })))
}

pub async fn run(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Json<Value>, UiError> {
    let (record, series) = state
        .read(move |store| {
            let record = store.get(&id)?;
            let series = store.series(record.run_number)?;
            Ok((record, series))
        })
        .await?;
    let mut value = data::run_json(&record, now_ms());
    value["series"] = json!(series);
    Ok(Json(value))
}

pub async fn metrics(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(params): Query<SeriesParams>,
) -> Result<Json<Value>, UiError> {
    let x = x_axis(params.x.as_deref())?;
    let width = width(params.width)?;
    let state2 = Arc::clone(&state);
    let (record, series) = state
        .read(move |store| {
            let record = store.get(&id)?;
            let names: Vec<String> = match params.name {
                Some(name) => vec![name],
                None => store.series_names(record.run_number)?,
            };
            let mut series = Vec::new();
            for name in names {
                let loaded = state2.series_cache.load(store, &record, &name, x, width)?;
                if loaded.total == 0 {
                    return Err(UiError::NotFound(format!(
                        "run {} has no metric '{name}'",
                        record.run_id
                    )));
                }
                series.push(loaded);
            }
            Ok((record, series))
        })
        .await?;
    Ok(Json(json!({
        "run_id": record.run_id,
        "x": if x == XAxis::Time { "time" } else { "step" },
        "width": width,
        "series": series.iter().map(data::series_json).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct LogParams {
    pub offset: Option<u64>,
}

pub async fn log(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(params): Query<LogParams>,
) -> Result<Json<Value>, UiError> {
    let (record, chunk) = state
        .read(move |store| {
            let record = store.get(&id)?;
            let path = store.run_dir(&record.run_id).join("output.log");
            let chunk = files::read_log(&path, params.offset.unwrap_or(0), LOG_CHUNK)
                .map_err(|e| UiError::Internal(format!("reading the log of run {}: {e}", record.run_id)))?;
            Ok((record, chunk))
        })
        .await?;
    let mut value = json!(chunk);
    value["status"] = json!(record.status);
    value["complete"] = json!(record.status.is_final() && !chunk.more);
    Ok(Json(value))
}

/// The file name for a download: the artifact's last component, reduced to characters that
/// need no quoting in a header.
pub fn download_name(relative: &str) -> String {
    let base = relative.rsplit('/').next().unwrap_or("artifact");
    let safe: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() {
        "artifact".into()
    } else {
        safe
    }
}

/// One artifact's bytes, streamed. Anything not served (not listed, odd path, a link on the
/// way, not a regular file, missing) is the same 404 with no content of any file.
pub async fn artifact(State(state): State<Arc<AppState>>, Path((id, path)): Path<(String, String)>) -> Response {
    let opened = state
        .read(move |store| {
            let record = store
                .get(&id)
                .map_err(|_| UiError::NotFound("no such artifact".into()))?;
            let run_dir = store.run_dir(&record.run_id);
            open_artifact(&record, &run_dir, &path)
                .map(|(file, length)| (file, length, path.clone()))
                .map_err(|refusal| {
                    eprintln!("xp ui: not serving {path} of run {}: {refusal}", record.run_id);
                    UiError::NotFound("no such artifact".into())
                })
        })
        .await;
    let (file, length, path) = match opened {
        Ok(opened) => opened,
        Err(_) => return (StatusCode::NOT_FOUND, "no such artifact").into_response(),
    };
    download(file, length, &path)
}

/// `file` (`length` bytes) as a download named after the last part of `path`, read in 64 KiB
/// pieces on the blocking pool: a large artifact never sits in memory whole.
pub fn download(file: std::fs::File, length: u64, path: &str) -> Response {
    let stream = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let read = tokio::task::spawn_blocking(move || {
            let mut buffer = vec![0u8; 64 * 1024];
            let n = file.read(&mut buffer)?;
            buffer.truncate(n);
            Ok::<_, std::io::Error>((file, buffer))
        })
        .await;
        match read {
            Ok(Ok((_, buffer))) if buffer.is_empty() => None,
            Ok(Ok((file, buffer))) => Some((Ok(Bytes::from(buffer)), Some(file))),
            Ok(Err(error)) => Some((Err(error), None)),
            Err(error) => Some((Err(std::io::Error::other(error)), None)),
        }
    });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", download_name(path))) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

pub async fn cancel(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Json<Value>, UiError> {
    let outcome = state
        .read(move |store| {
            let outcome = crate::run::cancel(store, &id)?;
            Ok(match outcome {
                crate::run::Cancelled::AlreadyEnded(r) => {
                    json!({"run_id": r.run_id, "status": r.status, "outcome": "already ended"})
                }
                crate::run::Cancelled::Ended(r) => json!({"run_id": r.run_id, "status": r.status, "outcome": "ended"}),
                crate::run::Cancelled::StillRunning(r) => {
                    json!({"run_id": r.run_id, "status": r.status, "outcome": "asked to cancel; still running"})
                }
            })
        })
        .await?;
    Ok(Json(outcome))
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct CompareParams {
    pub runs: Option<String>,
    pub width: Option<usize>,
    pub x: Option<String>,
}

pub async fn compare(
    State(state): State<Arc<AppState>>,
    Query(params): Query<CompareParams>,
) -> Result<Json<Value>, UiError> {
    let runs = data::parse_run_list(params.runs.as_deref())?;
    let x = x_axis(params.x.as_deref())?;
    let width = width(params.width)?.unwrap_or(super::chart::PLOT_COLUMNS);
    let comparison = {
        let state2 = Arc::clone(&state);
        state
            .read(move |store| data::compare(store, &state2.series_cache, &runs, x, width))
            .await
    }?;
    Ok(Json(data::comparison_json(&comparison)))
}

/// The project's assets, each with `exists`: whether its run lists the artifact and it opens
/// as a download would.
pub async fn checked_assets(state: &Arc<AppState>) -> Result<Vec<Value>, UiError> {
    let project = state.project.clone();
    state
        .read(move |store| {
            let mut links = data::assets(&project);
            for link in &mut links {
                let (Some(run), Some(artifact)) = (link["run_id"].as_str(), link["artifact_path"].as_str()) else {
                    continue;
                };
                let exists = store
                    .get(run)
                    .ok()
                    .is_some_and(|record| open_artifact(&record, &store.run_dir(&record.run_id), artifact).is_ok());
                link["exists"] = json!(exists);
            }
            Ok(links)
        })
        .await
}

pub async fn assets(State(state): State<Arc<AppState>>) -> Result<Json<Value>, UiError> {
    Ok(Json(json!(checked_assets(&state).await?)))
}

pub async fn targets(State(state): State<Arc<AppState>>) -> Result<Json<Value>, UiError> {
    let state2 = Arc::clone(&state);
    let value = tokio::task::spawn_blocking(move || data::targets(&state2.project, &state2.dirs))
        .await
        .map_err(|e| UiError::Internal(e.to_string()))?;
    Ok(Json(value))
}
