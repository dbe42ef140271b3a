//! The host's end of a plugin's event stream: echoes output live, keeps the run's log, and
//! records status and metrics in the history while the run goes.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::sync::Mutex;

use abi_stable::std_types::RStr;
use xp_plugin_api::abi::{EventSink, LogStream};
use xp_plugin_api::protocol::events::{self, MetricEvent, ProgressEvent, StatusEvent};
use xp_plugin_api::{RunStatus, METRIC_LINE_PREFIX};

use super::losses::{describe_io, Losses};
use crate::history::HistoryStore;
use crate::secrets::Redactor;

/// Where a tracked run's events are recorded.
pub struct Recorder<'a> {
    pub store: &'a Mutex<HistoryStore>,
    pub run_number: u64,
}

/// A run's log file, and how many lines went to it.
struct Log {
    file: File,
    path: std::path::PathBuf,
    lines: u64,
}

pub struct RunSink<'a> {
    recorder: Option<Recorder<'a>>,
    log_file: Mutex<Option<Log>>,
    metric_steps: Mutex<HashMap<String, u64>>,
    /// What could not be written (log, metrics, history, artifacts); recorded with the run and
    /// told once when it ends, instead of interrupting it.
    losses: Mutex<Losses>,
    echo: bool,
    /// Echo the plugin's own messages (environment builds, transfers) too; off with --quiet.
    echo_info: bool,
    cancel_requested: fn() -> bool,
    /// Masks the request's secrets in every line before it is echoed or logged.
    redactor: Redactor,
    /// The script's last lines of output (either stream), for the record of a failed run.
    last_errors: Mutex<std::collections::VecDeque<String>>,
}

/// How many of the last lines of output a failed run's record keeps.
const LAST_ERROR_LINES: usize = 5;

/// A logging framework's informational line (`26/11/28 00:30:40 INFO SparkContext: ...`):
/// not what explains a failure, and a JVM prints many of them after the error.
/// So is a JVM stack frame (`\tat org.apache...(File.scala:86)`): the exception's message
/// above it is what says what went wrong.
fn is_chatter(line: &str) -> bool {
    let trimmed = line.trim_start();
    (trimmed.starts_with("at ") && trimmed.ends_with(')') && line.len() > trimmed.len())
        || trimmed.starts_with("... ") && trimmed.ends_with("more")
        || line
            .split_whitespace()
            .take(4)
            .any(|word| matches!(word, "INFO" | "DEBUG" | "TRACE"))
}

impl<'a> RunSink<'a> {
    /// `log_file` is the run's log and its path (named when writing it fails).
    pub fn new(
        recorder: Option<Recorder<'a>>,
        log_file: Option<(File, std::path::PathBuf)>,
        echo: bool,
        cancel_requested: fn() -> bool,
    ) -> Self {
        RunSink {
            recorder,
            log_file: Mutex::new(log_file.map(|(file, path)| Log { file, path, lines: 0 })),
            metric_steps: Mutex::new(HashMap::new()),
            losses: Mutex::new(Losses::default()),
            echo,
            echo_info: echo,
            cancel_requested,
            redactor: Redactor::default(),
            last_errors: Mutex::new(Default::default()),
        }
    }

    /// The script's last lines of output (secrets masked). Both streams: Spark, for one,
    /// prints the Python driver's traceback on standard output.
    pub fn last_error_lines(&self) -> Vec<String> {
        self.last_errors
            .lock()
            .expect("no panics while held")
            .iter()
            .cloned()
            .collect()
    }

    /// Keeps the plugin's own messages off the terminal (they still go to the run's log).
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.echo_info = self.echo && !quiet;
        self
    }

    /// Masks these secrets in whatever the sink prints, logs or records.
    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    /// What the run could not keep so far, one entry per kind, each saying why (secrets
    /// masked).
    pub fn losses(&self) -> Vec<String> {
        let entries = self.losses.lock().expect("no panics while held").entries();
        self.redactor.scrub_all(&entries)
    }

    fn problem(&self, what: String) {
        let what = self.redactor.scrub(&what).into_owned();
        self.losses.lock().expect("no panics while held").history(what);
    }

    /// Writes a note of xp's own to the run's log only: the caller tells the terminal in its
    /// own words.
    pub fn log_note(&self, line: &str) {
        self.write_line_quietly(LogStream::Info, line);
    }

    fn write_line(&self, stream: LogStream, line: &str) {
        self.write_line_echoing(stream, line, true);
    }

    fn write_line_quietly(&self, stream: LogStream, line: &str) {
        self.write_line_echoing(stream, line, false);
    }

    fn write_line_echoing(&self, stream: LogStream, line: &str, echo: bool) {
        let line = self.redactor.scrub(line);
        let line = line.as_ref();
        if stream != LogStream::Info && !line.trim().is_empty() && !is_chatter(line) {
            let mut last = self.last_errors.lock().expect("no panics while held");
            if last.len() == LAST_ERROR_LINES {
                last.pop_front();
            }
            last.push_back(line.to_owned());
        }
        if echo && self.echo && (stream != LogStream::Info || self.echo_info) {
            // Output goes straight to the terminal: a closed pipe must not stop the run.
            let _ = match stream {
                LogStream::Stdout => writeln!(std::io::stdout().lock(), "{line}"),
                LogStream::Stderr | LogStream::Info => writeln!(std::io::stderr().lock(), "{line}"),
            };
        }
        if let Some(log) = self.log_file.lock().expect("no panics while held").as_mut() {
            log.lines += 1;
            if let Err(error) = writeln!(log.file, "{line}") {
                let line_number = log.lines;
                self.losses
                    .lock()
                    .expect("no panics while held")
                    .log_line(line_number, || describe_io(&error, &log.path));
            }
        }
    }

    fn record_metric(&self, name: &str, value: serde_json::Value) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        let step = {
            let mut steps = self.metric_steps.lock().expect("no panics while held");
            let next = steps.entry(name.to_owned()).or_insert(0);
            let step = *next;
            *next += 1;
            step
        };
        let name = self.redactor.scrub(name);
        let value = match value {
            serde_json::Value::String(text) if self.redactor.reveals(&text) => {
                serde_json::Value::String(self.redactor.scrub(&text).into_owned())
            }
            other => other,
        };
        let store = recorder.store.lock().expect("no panics while held");
        if let Err(error) = store.add_metric(recorder.run_number, &name, step, &value) {
            let why = self.redactor.scrub(&error.to_string()).into_owned();
            self.losses.lock().expect("no panics while held").metric(&name, || why);
        }
    }

    fn status(&self, status: &str) {
        let Some(status) = RunStatus::parse(status) else {
            self.problem(format!("the plugin reported an unknown status '{status}'"));
            return;
        };
        // Final statuses are the host's to record, from the run's outcome.
        if status.is_final() {
            return;
        }
        if let Some(recorder) = &self.recorder {
            let store = recorder.store.lock().expect("no panics while held");
            if let Err(error) = store.set_status(recorder.run_number, status) {
                self.problem(format!("history: recording status {status}: {error}"));
            }
        }
    }

    fn progress(&self, event: &ProgressEvent) {
        if self.echo_info {
            let total = event.total.map(|total| format!("/{total}")).unwrap_or_default();
            let label = self.redactor.scrub(&event.label);
            let _ = writeln!(std::io::stderr().lock(), "{label}: {}{total}", event.done);
        }
    }

    /// A metric line from xp's Python helper: `{"name": ..., "value": ...}`.
    fn metric_line(&self, json: &str) {
        #[derive(serde::Deserialize)]
        struct Metric {
            name: String,
            value: serde_json::Value,
        }
        match serde_json::from_str::<Metric>(json) {
            Ok(metric) => self.record_metric(&metric.name, metric.value),
            // Python writes NaN and Infinity, which JSON lacks: keep the text.
            Err(_) => match json.split_once("\"value\": ") {
                Some((head, value)) if head.contains("\"name\"") => {
                    let name = head.split('"').nth(3).unwrap_or("metric").to_owned();
                    self.record_metric(
                        &name,
                        serde_json::Value::String(value.trim_end_matches('}').trim().to_owned()),
                    );
                }
                _ => self.write_line(LogStream::Stdout, json),
            },
        }
    }
}

impl EventSink for RunSink<'_> {
    fn log(&self, stream: LogStream, line: RStr<'_>) {
        let line = line.as_str();
        if stream == LogStream::Info && self.losses.lock().expect("no panics while held").artifact_message(line) {
            // Kept in the log; the terminal hears of it once, when the run ends.
            self.write_line_quietly(stream, line);
            return;
        }
        if stream == LogStream::Stdout {
            if let Some(at) = line.find(METRIC_LINE_PREFIX) {
                // Output printed without a newline before the metric stays in the log.
                if at > 0 {
                    self.write_line(stream, &line[..at]);
                }
                self.metric_line(&line[at + METRIC_LINE_PREFIX.len()..]);
                return;
            }
        }
        self.write_line(stream, line);
    }

    fn event(&self, kind: RStr<'_>, payload_json: RStr<'_>) {
        let payload = payload_json.as_str();
        match kind.as_str() {
            events::STATUS => match serde_json::from_str::<StatusEvent>(payload) {
                Ok(event) => self.status(&event.status),
                Err(error) => self.problem(format!("the plugin sent a status event xp cannot read: {error}")),
            },
            events::PROGRESS => match serde_json::from_str::<ProgressEvent>(payload) {
                Ok(event) => self.progress(&event),
                Err(error) => self.problem(format!("the plugin sent a progress event xp cannot read: {error}")),
            },
            events::METRIC => match serde_json::from_str::<MetricEvent>(payload) {
                Ok(event) => self.record_metric(&event.name, event.value),
                Err(error) => self.problem(format!("the plugin sent a metric event xp cannot read: {error}")),
            },
            // A kind from a newer plugin-api: this host has nothing to do with it.
            _ => {}
        }
    }

    fn is_cancelled(&self) -> bool {
        (self.cancel_requested)()
    }
}

#[cfg(test)]
mod tests {
    use super::is_chatter;

    #[test]
    fn log_chatter_and_jvm_frames_are_not_the_reason_of_a_failure() {
        assert!(is_chatter(
            "26/11/28 00:30:40 INFO SparkContext: Successfully stopped SparkContext"
        ));
        assert!(is_chatter(
            "\tat org.apache.spark.deploy.SparkSubmit.main(SparkSubmit.scala)"
        ));
        assert!(is_chatter("\t... 12 more"));
        assert!(!is_chatter(
            "Exception in thread \"main\" java.lang.NumberFormatException: Size must be specified as bytes"
        ));
        assert!(!is_chatter("RuntimeError: the job found bad data"));
        assert!(!is_chatter("  File \"train.py\", line 3, in <module>"));
    }
}
