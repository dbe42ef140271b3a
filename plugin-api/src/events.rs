use abi_stable::std_types::RStr;

use crate::abi::{LogStream, SinkRef};
use crate::protocol::RunStatus;

/// A plugin's handle on the host's event sink, with typed helpers.
///
/// `Events` is `Sync`: reader threads of stdout and stderr can share `&Events` through
/// `std::thread::scope`.
pub struct Events<'a> {
    sink: SinkRef<'a>,
}

impl<'a> Events<'a> {
    #[doc(hidden)]
    pub fn new(sink: SinkRef<'a>) -> Self {
        Events { sink }
    }

    pub fn log(&self, stream: LogStream, line: &str) {
        self.sink.log(stream, RStr::from_str(line));
    }

    pub fn stdout(&self, line: &str) {
        self.log(LogStream::Stdout, line);
    }

    pub fn stderr(&self, line: &str) {
        self.log(LogStream::Stderr, line);
    }

    /// A message of the plugin's own, shown to the user apart from the script's output.
    pub fn info(&self, line: &str) {
        self.log(LogStream::Info, line);
    }

    pub fn status(&self, status: RunStatus) {
        self.sink.status(RStr::from_str(status.as_str()));
    }

    pub fn progress(&self, label: &str, done: u64, total: Option<u64>) {
        self.sink.progress(RStr::from_str(label), done, total.unwrap_or(0));
    }

    /// Reports a metric the plugin read from the script through a channel of its own.
    /// (Metrics printed by xp's Python helpers on stdout are picked up by the host.)
    pub fn metric(&self, name: &str, value: &serde_json::Value) {
        let json = value.to_string();
        self.sink.metric(RStr::from_str(name), RStr::from_str(&json));
    }

    /// Whether the host asked to stop. Poll it and end what you started when it turns true.
    pub fn is_cancelled(&self) -> bool {
        self.sink.is_cancelled()
    }
}
