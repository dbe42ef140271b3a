//! The router, the shared state (a few history connections, reused), errors as responses, and
//! the headers every response carries.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::auth::{self, Access};
use super::{api, assets, code, code_page, live, pages};
use crate::history::{HistoryError, HistoryStore};
use crate::paths::UserDirs;
use crate::project::Project;

/// History connections kept open between requests (SQLite opens in about a millisecond, but
/// a kept connection also keeps its page cache and prepared statements).
const IDLE_CONNECTIONS: usize = 4;

pub struct AppState {
    pub project: Project,
    pub dirs: UserDirs,
    pub access: Access,
    pub series_cache: super::data::SeriesCache,
    idle: Mutex<Vec<HistoryStore>>,
}

#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("{0}")]
    Internal(String),
}

impl UiError {
    pub fn status(&self) -> StatusCode {
        match self {
            UiError::NotFound(_) | UiError::History(HistoryError::NoSuchRun(_)) => StatusCode::NOT_FOUND,
            UiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// API errors are JSON: `{"error": "..."}`.
impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        (
            self.status(),
            axum::Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

impl AppState {
    pub fn new(project: Project, dirs: UserDirs, access: Access) -> Result<AppState, HistoryError> {
        // Open one now: a history that cannot be read is an error at start, not per request.
        let first = HistoryStore::open_read(&project.xp_dir())?;
        Ok(AppState {
            project,
            dirs,
            access,
            series_cache: Default::default(),
            idle: Mutex::new(vec![first]),
        })
    }

    pub fn xp_dir(&self) -> PathBuf {
        self.project.xp_dir()
    }

    /// Runs `work` with a history connection on the blocking pool (SQLite calls block).
    pub async fn read<T, F>(self: &Arc<Self>, work: F) -> Result<T, UiError>
    where
        T: Send + 'static,
        F: FnOnce(&HistoryStore) -> Result<T, UiError> + Send + 'static,
    {
        let state = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let kept = state.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let store = match kept {
                Some(store) => store,
                None => HistoryStore::open_read(&state.xp_dir())?,
            };
            let result = work(&store);
            let mut idle = state.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < IDLE_CONNECTIONS {
                idle.push(store);
            }
            result
        })
        .await
        .map_err(|e| UiError::Internal(format!("a history read failed: {e}")))?
    }
}

/// Headers for every response: no framing, no sniffing, no referrer (a token in a URL never
/// travels on), and scripts and styles from this server only.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn static_file(Path(name): Path<String>) -> Response {
    match assets::get(&name) {
        Some((content_type, body)) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            body,
        )
            .into_response(),
        None => pages::not_found("No such file."),
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(pages::runs))
        .route("/runs/{id}", get(pages::run))
        .route("/runs/{id}/chart", get(pages::chart_fragment))
        .route("/runs/{id}/artifacts/{*path}", get(api::artifact))
        .route("/runs/{id}/code", get(code_page::code_index))
        .route("/runs/{id}/code/{*path}", get(code_page::code_file))
        .route("/compare", get(pages::compare))
        .route("/assets", get(pages::assets))
        .route("/targets", get(pages::targets))
        .route("/static/{name}", get(static_file))
        .route("/api/runs", get(api::runs))
        .route("/api/runs/{id}", get(api::run))
        .route("/api/runs/{id}/metrics", get(api::metrics))
        .route("/api/runs/{id}/log", get(api::log))
        .route("/api/runs/{id}/events", get(live::events))
        .route("/api/runs/{id}/artifacts/{*path}", get(api::artifact))
        .route("/api/runs/{id}/code", get(code::api_code))
        .route("/api/runs/{id}/code/{*path}", get(code::api_code_file))
        .route("/api/runs/{id}/cancel", post(api::cancel))
        .route("/api/compare", get(api::compare))
        .route("/api/assets", get(api::assets))
        .route("/api/targets", get(api::targets))
        .fallback(|| async { pages::not_found("No such page.") })
        .layer(middleware::from_fn_with_state(Arc::clone(&state), auth::guard))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}
