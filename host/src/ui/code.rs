//! A run's code snapshot for the web view: its files (from the manifest the history keeps),
//! one file's bytes (from the store, by the hash the manifest gives), and a diff against
//! another run, as JSON and as downloads. The pages are in `code_page`.
//!
//! A path from a URL is only ever looked up in the run's manifest: it is never joined onto a
//! folder, so `..`, absolute paths and encoded escapes find nothing and get 404.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::pages::decode_bytes;
use super::server::{AppState, UiError};
use crate::history::{HistoryStore, RunRecord};
use crate::snapshot::code::{self, CodeDiff, CodeError, Objects};
use crate::snapshot::{Hash, Kind, Manifest};

/// Files larger than this are offered as a download rather than shown.
pub const MAX_VIEW_BYTES: u64 = 1 << 20;

impl From<CodeError> for UiError {
    fn from(error: CodeError) -> UiError {
        match error {
            CodeError::History(error) => UiError::History(error),
            CodeError::NoSnapshot(_) | CodeError::NoManifest { .. } => UiError::NotFound(error.to_string()),
            other => UiError::Internal(other.to_string()),
        }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct CodeParams {
    /// Another run (id or number) to compare this run's code with.
    pub diff: Option<String>,
}

impl CodeParams {
    pub fn other(&self) -> Option<&str> {
        self.diff.as_deref().map(str::trim).filter(|d| !d.is_empty())
    }
}

/// A run and its manifest.
pub fn run_code(store: &HistoryStore, id: &str) -> Result<(RunRecord, Manifest), UiError> {
    let record = store.get(id)?;
    let manifest = code::manifest_of(store, &record)?;
    Ok((record, manifest))
}

/// Run `other`'s code compared with run `id`'s: what changed from `other` to `id`.
pub fn diff_with(store: &HistoryStore, objects: &Objects, id: &str, other: &str) -> Result<CodeDiff, UiError> {
    let (record, manifest) = run_code(store, id)?;
    let (base, base_manifest) = run_code(store, other)?;
    Ok(code::diff(
        objects,
        &base.run_id,
        &base_manifest,
        &record.run_id,
        &manifest,
    )?)
}

/// A file of the snapshot by its path as written in the manifest; anything else (a folder, a
/// link, a path not in it) is `None`.
pub fn file_entry(manifest: &Manifest, path: &[u8]) -> Option<(Hash, u64, u32)> {
    let entry = manifest.get(path)?;
    match entry.kind {
        Kind::File { hash, size } => Some((hash, size, entry.mode)),
        _ => None,
    }
}

pub fn files_json(manifest: &Manifest) -> Vec<Value> {
    manifest
        .entries
        .iter()
        .filter(|entry| entry.kind != Kind::Dir)
        .map(|entry| match &entry.kind {
            Kind::File { hash, size } => json!({
                "path": entry.path_text(),
                "kind": "file",
                "size": size,
                "mode": format!("{:o}", entry.mode),
                "sha256": hash.hex(),
            }),
            Kind::Link { target } => json!({
                "path": entry.path_text(),
                "kind": "link",
                "target": String::from_utf8_lossy(target),
            }),
            Kind::Dir => Value::Null,
        })
        .collect()
}

/// `GET /api/runs/RUN/code`: the run's files; with `?diff=OTHER`, what changed from run
/// OTHER to this run (as `xp history diff OTHER RUN -o json`).
pub async fn api_code(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(params): Query<CodeParams>,
) -> Result<Json<Value>, UiError> {
    let objects = Objects::of(&state.xp_dir());
    let other = params.other().map(str::to_owned);
    state
        .read(move |store| match other {
            Some(other) => Ok(Json(json!(diff_with(store, &objects, &id, &other)?))),
            None => {
                let (record, manifest) = run_code(store, &id)?;
                let summary = manifest.summary();
                Ok(Json(json!({
                    "run_id": record.run_id,
                    "snapshot": record.snapshot.as_ref().map(|s| &s.id),
                    "files": summary.files,
                    "bytes": summary.bytes,
                    "entries": files_json(&manifest),
                })))
            }
        })
        .await
}

/// The same 404 for every path not served, whatever the reason.
/// The run id and the file path of a `/runs/RUN/code/PATH` (or `/api/runs/...`) URL, decoded
/// by hand from the URL as sent: a file name need not be UTF-8 (axum's path extractors refuse
/// what is not), and the path is only ever looked up in the run's manifest.
pub fn id_and_path(uri: &Uri) -> Option<(String, Vec<u8>)> {
    let path = uri.path();
    let rest = path
        .strip_prefix("/api/runs/")
        .or_else(|| path.strip_prefix("/runs/"))?;
    // The id is one segment (a `/` in it arrives encoded), so the first `/code/` ends it.
    let (id, file) = rest.split_once("/code/")?;
    Some((String::from_utf8(decode_bytes(id)).ok()?, decode_bytes(file)))
}

fn no_such_file() -> Response {
    (StatusCode::NOT_FOUND, "no such file").into_response()
}

/// `GET /api/runs/RUN/code/PATH`: one file's bytes, as a download.
pub async fn api_code_file(State(state): State<Arc<AppState>>, uri: Uri) -> Response {
    let Some((id, path)) = id_and_path(&uri) else {
        return no_such_file();
    };
    let objects = Objects::of(&state.xp_dir());
    let opened = state
        .read(move |store| {
            let (_, manifest) = run_code(store, &id)?;
            let (hash, _, _) = file_entry(&manifest, &path).ok_or_else(|| UiError::NotFound("no such file".into()))?;
            let (file, length) = objects.open(&hash)?;
            Ok((file, length, path))
        })
        .await;
    let Ok((file, length, path)) = opened else {
        return no_such_file();
    };
    super::api::download(file, length, &String::from_utf8_lossy(&path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Entry;

    #[test]
    fn only_files_listed_in_the_manifest_are_found() {
        let manifest = Manifest::new(vec![
            Entry {
                path: b"src".to_vec(),
                mode: 0o755,
                kind: Kind::Dir,
            },
            Entry {
                path: b"src/train.py".to_vec(),
                mode: 0o644,
                kind: Kind::File {
                    hash: Hash::of(b"x"),
                    size: 1,
                },
            },
            Entry {
                path: b"data".to_vec(),
                mode: 0o777,
                kind: Kind::Link {
                    target: b"/etc".to_vec(),
                },
            },
        ]);
        assert_eq!(file_entry(&manifest, b"src/train.py"), Some((Hash::of(b"x"), 1, 0o644)));
        for path in [
            "src",
            "data",
            "data/passwd",
            "/src/train.py",
            "src/../src/train.py",
            "./src/train.py",
            "src//train.py",
            "../history.db",
            "",
        ] {
            assert_eq!(file_entry(&manifest, path.as_bytes()), None, "{path}");
        }
        let listed = files_json(&manifest);
        assert_eq!(listed.len(), 2, "folders are not listed: {listed:?}");
        assert_eq!(listed[0]["kind"], "link");
        assert_eq!(listed[1]["size"], 1);
    }
}
