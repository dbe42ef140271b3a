//! Event kinds and their JSON payloads, for [`crate::abi::EventSink::event`].
//!
//! A later plugin-api may add kinds (a host ignores kinds it does not know) and payload fields
//! (with `#[serde(default)]`).

use serde::{Deserialize, Serialize};

/// A change of run status: [`StatusEvent`].
pub const STATUS: &str = "status";
/// Progress of a long step: [`ProgressEvent`].
pub const PROGRESS: &str = "progress";
/// A metric value: [`MetricEvent`].
pub const METRIC: &str = "metric";

/// `status`: the run moved to `status` (`Preparing`, `Running`). Final statuses are the host's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatusEvent {
    pub status: String,
}

/// `progress`: `done` of `total` (None when unknown) of the step `label`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProgressEvent {
    pub label: String,
    pub done: u64,
    #[serde(default)]
    pub total: Option<u64>,
}

/// `metric`: a value (a number, a string, or a list) of the metric `name`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MetricEvent {
    pub name: String,
    pub value: serde_json::Value,
}
