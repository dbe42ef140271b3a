//! Output that arrives in chunks (container attach streams, SSH channels), cut into lines per
//! stream for the event sink.

use xp_plugin_api::abi::LogStream;
use xp_plugin_api::Events;

/// Looks at a line of output; returns why the run should stop, if it should.
pub type Watcher<'w> = &'w dyn Fn(&str) -> Option<String>;

/// Splits chunks into lines per stream, keeping unfinished lines for later. An optional
/// watcher sees every line and may ask for the run to stop (with a reason).
#[derive(Default)]
pub struct LineSplitter<'w> {
    pending: [Vec<u8>; 2],
    watch: Option<Watcher<'w>>,
    abort: Option<String>,
}

impl<'w> LineSplitter<'w> {
    pub fn watching(watch: Watcher<'w>) -> Self {
        LineSplitter {
            watch: Some(watch),
            ..LineSplitter::default()
        }
    }

    /// Adds a chunk of `stream` and sends every completed line.
    pub fn push(&mut self, stream: LogStream, bytes: &[u8], events: &Events<'_>) {
        // The plugin's own notes do not come in chunks; anything else is the script's stderr.
        let index = if stream == LogStream::Stdout { 0 } else { 1 };
        let buffer = &mut self.pending[index];
        buffer.extend_from_slice(bytes);
        while let Some(at) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=at).collect();
            let line = &line[..line.len() - 1];
            let text = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line));
            if self.abort.is_none() {
                self.abort = self.watch.and_then(|watch| watch(&text));
            }
            events.log(stream, &text);
        }
    }

    /// Sends what is left of unfinished lines.
    pub fn finish(&mut self, events: &Events<'_>) {
        for (index, stream) in [LogStream::Stdout, LogStream::Stderr].into_iter().enumerate() {
            if !self.pending[index].is_empty() {
                events.log(stream, &String::from_utf8_lossy(&self.pending[index]));
                self.pending[index].clear();
            }
        }
    }

    /// Why the watcher asked to stop, if it did.
    pub fn abort_reason(&self) -> Option<&str> {
        self.abort.as_deref()
    }

    pub fn take_abort_reason(&mut self) -> Option<String> {
        self.abort.take()
    }
}
