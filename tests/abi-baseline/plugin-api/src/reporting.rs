use abi_stable::std_types::RStr;
use serde::Serialize;

use crate::abi::{LogStream, SinkRef};
use crate::protocol::events::{self, MetricEvent, ProgressEvent, StatusEvent};
use crate::protocol::RunStatus;

/// A plugin's handle on the host's event sink, with typed helpers.
///
/// `Events` is `Sync`: reader threads of stdout and stderr can share `&Events` through
/// `std::thread::scope`. It is borrowed for the duration of one call: never keep it past the
/// return of the method that received it.
pub struct Events<'a> {
    sink: SinkRef<'a>,
}

impl<'a> Events<'a> {
    /// Wraps a sink. The host (or a test harness) makes the sink; plugins receive `Events`.
    pub fn new(sink: SinkRef<'a>) -> Self {
        Events { sink }
    }

    /// A line of output on `stream`, without its line terminator.
    pub fn log(&self, stream: LogStream, line: &str) {
        self.sink.log(stream, RStr::from_str(line));
    }

    /// A line the script wrote to standard output (metric lines of xp's Python helpers
    /// included: the host picks them out).
    pub fn stdout(&self, line: &str) {
        self.log(LogStream::Stdout, line);
    }

    /// A line the script wrote to standard error.
    pub fn stderr(&self, line: &str) {
        self.log(LogStream::Stderr, line);
    }

    /// A message of the plugin's own, shown to the user apart from the script's output.
    pub fn info(&self, line: &str) {
        self.log(LogStream::Info, line);
    }

    /// The run moved to `status` (`Preparing` while building, `Running` just before the
    /// script starts). Final statuses are the host's: it ignores them from plugins.
    pub fn status(&self, status: RunStatus) {
        self.event(
            events::STATUS,
            &StatusEvent {
                status: status.as_str().to_owned(),
            },
        );
    }

    /// Progress of a long step; `total` is None when unknown.
    pub fn progress(&self, label: &str, done: u64, total: Option<u64>) {
        self.event(
            events::PROGRESS,
            &ProgressEvent {
                label: label.to_owned(),
                done,
                total,
            },
        );
    }

    /// Reports a metric the plugin read from the script through a channel of its own.
    /// (Metrics printed by xp's Python helpers on stdout are picked up by the host.)
    pub fn metric(&self, name: &str, value: &serde_json::Value) {
        self.event(
            events::METRIC,
            &MetricEvent {
                name: name.to_owned(),
                value: value.clone(),
            },
        );
    }

    /// An event of any kind, with a JSON payload: for kinds a later plugin-api adds. A host
    /// that does not know `kind` ignores it.
    pub fn event<T: Serialize>(&self, kind: &str, payload: &T) {
        // Event payloads are plain data; a value serde cannot encode is a plugin bug that must
        // not end the run, so it is dropped.
        if let Ok(json) = serde_json::to_string(payload) {
            self.sink.event(RStr::from_str(kind), RStr::from_str(&json));
        }
    }

    /// Whether the host asked to stop. Poll it (every 50-200 ms) during anything long, and
    /// end what you started when it turns true.
    pub fn is_cancelled(&self) -> bool {
        self.sink.is_cancelled()
    }
}
