use std::collections::BTreeMap;

use serde::Serialize;
use xp_plugin_api::RunStatus;

use super::artifacts::ArtifactLink;

/// One run, as the history keeps it.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub run_id: String,
    pub run_number: u64,
    pub script: String,
    pub arguments: Vec<String>,
    pub target: String,
    pub runconfig: String,
    pub status: RunStatus,
    /// Epoch milliseconds.
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub exit_code: Option<i32>,
    /// Why the run failed, when xp or the plugin knows.
    pub error: Option<String>,
    pub git_commit: Option<String>,
    /// The regular files the script left in `outputs/`, as `outputs/...` written with
    /// [`super::encode_name`] (UTF-8 as is; `\\`, `\n`, `\xHH` escapes for the rest).
    pub artifacts: Vec<String>,
    /// The links the script left in `outputs/`: kept with their target text, never followed.
    pub artifact_links: Vec<ArtifactLink>,
    /// What the run could not keep (its log, metrics, artifacts) and why. A run with anything
    /// here is never plainly Completed.
    pub lost: Vec<String>,
    /// The last value of each metric; filled by [`super::HistoryStore::get`].
    pub metrics: BTreeMap<String, serde_json::Value>,
    /// The run's snapshot: its manifest id, file count and size (none for runs before xp kept
    /// snapshots).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<RunSnapshot>,
    #[serde(skip)]
    pub driver_pid: Option<u32>,
    #[serde(skip)]
    pub driver_start: Option<u64>,
}

/// What a run's snapshot holds.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RunSnapshot {
    pub id: String,
    pub files: u64,
    pub bytes: u64,
}

impl RunRecord {
    /// The status as tables show it: a run that lost data says so beside its status.
    pub fn status_text(&self) -> String {
        if self.lost.is_empty() {
            self.status.to_string()
        } else {
            format!("{} (incomplete)", self.status)
        }
    }

    /// Wall time from start (or creation) to end, or to now for a run still going.
    pub fn duration_ms(&self, now_ms: i64) -> Option<i64> {
        let start = self.started_ms.unwrap_or(self.created_ms);
        Some(self.ended_ms.unwrap_or(now_ms) - start).filter(|d| *d >= 0)
    }
}

/// One value of a metric series.
#[derive(Debug, Clone, Serialize)]
pub struct MetricPoint {
    pub name: String,
    pub step: u64,
    pub value: serde_json::Value,
    pub time_ms: i64,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `2026-11-27 23:45:16` (UTC) from epoch milliseconds.
pub fn format_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `1.234s`, `2m03s`, `1h02m`.
pub fn format_duration(ms: i64) -> String {
    if ms < 60_000 {
        format!("{:.3}s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, ms % 60_000 / 1000)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, ms % 3_600_000 / 60_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00");
        assert_eq!(format_utc(1_795_823_116_000), "2026-11-27 23:45:16");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29 00:00:00");
    }

    #[test]
    fn formats_durations() {
        assert_eq!(format_duration(1234), "1.234s");
        assert_eq!(format_duration(123_000), "2m03s");
        assert_eq!(format_duration(3_720_000), "1h02m");
    }
}
