use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use abi_stable::std_types::RStr;
use xp_plugin_api::abi::{EventSink, LogStream};
use xp_plugin_api::abi_stable;
use xp_plugin_api::protocol::events::{self, MetricEvent, ProgressEvent, StatusEvent};
use xp_plugin_api::METRIC_LINE_PREFIX;

/// Everything a plugin reported during one call, in order of arrival per kind.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// Log lines with their stream (metric lines of stdout are not here: see `metrics`).
    pub lines: Vec<(LogStream, String)>,
    /// Status names (`Preparing`, `Running`).
    pub statuses: Vec<String>,
    pub progress: Vec<ProgressEvent>,
    /// Metrics, from `events.metric` and from metric lines on stdout, as the host reads them.
    pub metrics: Vec<(String, serde_json::Value)>,
    /// Events of kinds this plugin-api does not know, with their JSON payloads.
    pub other_events: Vec<(String, String)>,
}

impl Recorded {
    fn stream(&self, wanted: LogStream) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|(stream, _)| *stream == wanted)
            .map(|(_, line)| line.as_str())
            .collect()
    }

    /// Lines of the script's standard output.
    pub fn stdout(&self) -> Vec<&str> {
        self.stream(LogStream::Stdout)
    }

    /// Lines of the script's standard error.
    pub fn stderr(&self) -> Vec<&str> {
        self.stream(LogStream::Stderr)
    }

    /// The plugin's own messages.
    pub fn info(&self) -> Vec<&str> {
        self.stream(LogStream::Info)
    }

    /// Every value of the metric `name`, in order.
    pub fn metric(&self, name: &str) -> Vec<&serde_json::Value> {
        self.metrics
            .iter()
            .filter(|(metric, _)| metric == name)
            .map(|(_, value)| value)
            .collect()
    }
}

type CancelWhen = Box<dyn Fn(&Recorded) -> bool + Send + Sync>;

/// An [`EventSink`] that records what it is told, and says "cancelled" when asked to.
#[derive(Default)]
pub struct RecordingSink {
    recorded: Mutex<Recorded>,
    cancelled: AtomicBool,
    cancel_when: Option<CancelWhen>,
}

impl RecordingSink {
    pub fn new() -> Self {
        RecordingSink::default()
    }

    /// A sink that turns cancelled as soon as `when` holds for what was recorded so far.
    pub fn cancelling_when(when: impl Fn(&Recorded) -> bool + Send + Sync + 'static) -> Self {
        RecordingSink {
            cancel_when: Some(Box::new(when)),
            ..RecordingSink::default()
        }
    }

    /// Asks the plugin to stop, as Ctrl-C or `xp experiment cancel` would.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    /// A copy of what was recorded so far.
    pub fn recorded(&self) -> Recorded {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        // A panic in a plugin thread must not hide what was recorded before it.
        self.recorded.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn metric_line(&self, json: &str) {
        let parsed: Option<(String, serde_json::Value)> = serde_json::from_str::<serde_json::Value>(json)
            .ok()
            .and_then(|line| Some((line.get("name")?.as_str()?.to_owned(), line.get("value")?.clone())));
        match parsed {
            Some(metric) => self.lock().metrics.push(metric),
            None => self
                .lock()
                .lines
                .push((LogStream::Stdout, format!("{METRIC_LINE_PREFIX}{json}"))),
        }
    }
}

impl EventSink for RecordingSink {
    fn log(&self, stream: LogStream, line: RStr<'_>) {
        let line = line.as_str();
        if stream == LogStream::Stdout {
            if let Some(at) = line.find(METRIC_LINE_PREFIX) {
                if at > 0 {
                    self.lock().lines.push((stream, line[..at].to_owned()));
                }
                self.metric_line(&line[at + METRIC_LINE_PREFIX.len()..]);
                return;
            }
        }
        self.lock().lines.push((stream, line.to_owned()));
    }

    fn event(&self, kind: RStr<'_>, payload_json: RStr<'_>) {
        let payload = payload_json.as_str();
        let mut recorded = self.lock();
        let known = match kind.as_str() {
            events::STATUS => serde_json::from_str::<StatusEvent>(payload)
                .map(|event| recorded.statuses.push(event.status))
                .is_ok(),
            events::PROGRESS => serde_json::from_str::<ProgressEvent>(payload)
                .map(|event| recorded.progress.push(event))
                .is_ok(),
            events::METRIC => serde_json::from_str::<MetricEvent>(payload)
                .map(|event| recorded.metrics.push((event.name, event.value)))
                .is_ok(),
            _ => false,
        };
        if !known {
            recorded
                .other_events
                .push((kind.as_str().to_owned(), payload.to_owned()));
        }
    }

    fn is_cancelled(&self) -> bool {
        if self.cancelled.load(Ordering::SeqCst) {
            return true;
        }
        if let Some(when) = &self.cancel_when {
            if when(&self.lock()) {
                self.cancel();
                return true;
            }
        }
        false
    }
}
