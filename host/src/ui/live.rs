//! Server-sent events for a run's page: new log bytes, metric series that grew, status
//! changes, and `end` once the run is over and its log is sent whole. The server polls the log
//! file and the history, which a run's driver writes to, at a modest interval.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use serde_json::json;
use xp_plugin_api::RunStatus;

use super::files::read_log;
use super::server::{AppState, UiError};

/// How often a followed run is looked at: well under a second of added latency, and a few
/// cheap reads per interval.
const POLL: Duration = Duration::from_millis(250);
/// Log bytes sent per event at most (a run that printed a lot catches up in several).
const LOG_EVENT_BYTES: usize = 256 * 1024;

#[derive(Debug, Default, serde::Deserialize)]
pub struct EventParams {
    /// The byte of the log to start from (what the page already shows).
    pub offset: Option<u64>,
}

struct Follow {
    state: Arc<AppState>,
    run_number: u64,
    log_path: std::path::PathBuf,
    offset: u64,
    status: Option<RunStatus>,
    /// Per series: last step and its time, as last sent.
    series: HashMap<String, (u64, i64)>,
    first: bool,
    done: bool,
}

/// One look at the run: the events it gives.
fn look(follow: &mut Follow, store: &crate::history::HistoryStore) -> Result<Vec<Event>, UiError> {
    let mut events = Vec::new();
    let (status, ended_ms) = store
        .status_of(follow.run_number)?
        .ok_or_else(|| UiError::NotFound("the run was deleted".into()))?;
    // Status first, log after: once a final status is read, the driver has written the log
    // whole, so the read below gets its end.
    let chunk = read_log(&follow.log_path, follow.offset, LOG_EVENT_BYTES)
        .map_err(|e| UiError::Internal(format!("reading {}: {e}", follow.log_path.display())))?;
    if !chunk.text.is_empty() {
        events.push(Event::default().event("log").data(json!(chunk).to_string()));
        follow.offset = chunk.next_offset;
    }
    for (name, last_step, last_time_ms) in store.series_heads(follow.run_number)? {
        let now = (last_step, last_time_ms);
        if follow.series.get(&name) != Some(&now) {
            events.push(
                Event::default()
                    .event("metric")
                    .data(json!({"name": name, "last_step": last_step, "last_time_ms": last_time_ms}).to_string()),
            );
            follow.series.insert(name, now);
        }
    }
    if follow.status != Some(status) {
        events.push(
            Event::default()
                .event("status")
                .data(json!({"status": status, "ended_ms": ended_ms}).to_string()),
        );
        follow.status = Some(status);
    }
    if status.is_final() && !chunk.more {
        events.push(
            Event::default()
                .event("end")
                .data(json!({"status": status}).to_string()),
        );
        follow.done = true;
    }
    Ok(events)
}

pub async fn events(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(params): Query<EventParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, UiError> {
    let (run_number, log_path) = state
        .read(move |store| {
            let record = store.get(&id)?;
            Ok((record.run_number, store.run_dir(&record.run_id).join("output.log")))
        })
        .await?;
    let follow = Follow {
        state,
        run_number,
        log_path,
        offset: params.offset.unwrap_or(0),
        status: None,
        series: HashMap::new(),
        first: true,
        done: false,
    };
    let batches = stream::unfold(follow, |mut follow| async move {
        if follow.done {
            return None;
        }
        if !follow.first {
            tokio::time::sleep(POLL).await;
        }
        follow.first = false;
        let state = Arc::clone(&follow.state);
        let result = state
            .read(move |store| {
                let events = look(&mut follow, store);
                Ok((follow, events))
            })
            .await;
        match result {
            Ok((follow, Ok(events))) => Some((events, follow)),
            Ok((mut follow, Err(error))) => {
                follow.done = true;
                Some((vec![Event::default().event("failure").data(error.to_string())], follow))
            }
            Err(_) => None,
        }
    });
    let events = batches.flat_map(|batch| stream::iter(batch.into_iter().map(Ok)));
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
