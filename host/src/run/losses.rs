//! What a run could not keep — lines of its log, metric values, artifacts — gathered while it
//! goes, so that its record says what was lost and why and the terminal says it once.

use std::collections::BTreeMap;
use std::path::Path;

use xp_plugin_sdk::artifacts::NOT_COLLECTED;

/// An I/O error about `path` in words a user acts on.
pub fn describe_io(error: &std::io::Error, path: &Path) -> String {
    match error.raw_os_error() {
        Some(libc::ENOSPC) => format!("no space left on device on {}", path.display()),
        Some(libc::EDQUOT) => format!("disk quota exceeded on {}", path.display()),
        Some(libc::EROFS) => format!("{} is on a read-only file system", path.display()),
        _ => format!("{error} ({})", path.display()),
    }
}

#[derive(Debug, Default)]
pub struct Losses {
    /// Lines of the log that were not written, the line number of the first, and why.
    log: Option<(u64, u64, String)>,
    /// Per metric name: values not recorded, and the first reason.
    metrics: BTreeMap<String, (u64, String)>,
    /// Other history writes (status changes) that failed.
    history: Vec<String>,
    /// Entries of `outputs/` that did not come back, as the plugin reported them.
    artifacts: Vec<String>,
}

impl Losses {
    /// Line `line` of the log (1-based) could not be written.
    pub fn log_line(&mut self, line: u64, why: impl FnOnce() -> String) {
        match &mut self.log {
            Some((count, _, _)) => *count += 1,
            None => self.log = Some((1, line, why())),
        }
    }

    pub fn metric(&mut self, name: &str, why: impl FnOnce() -> String) {
        match self.metrics.get_mut(name) {
            Some((count, _)) => *count += 1,
            None => {
                self.metrics.insert(name.to_owned(), (1, why()));
            }
        }
    }

    pub fn history(&mut self, what: String) {
        if !self.history.contains(&what) {
            self.history.push(what);
        }
    }

    /// Takes a plugin message that reports an entry of `outputs/` as not collected; false for
    /// any other message.
    pub fn artifact_message(&mut self, line: &str) -> bool {
        match line.strip_prefix(NOT_COLLECTED) {
            Some(rest) => {
                self.artifacts.push(format!("artifacts: {rest}"));
                true
            }
            None => false,
        }
    }

    /// What was lost, one entry per kind of loss, each saying why.
    pub fn entries(&self) -> Vec<String> {
        let mut entries = Vec::new();
        if let Some((count, first, why)) = &self.log {
            entries.push(format!(
                "log: {count} line(s) from line {first} on were not written: {why}"
            ));
        }
        if !self.metrics.is_empty() {
            let total: u64 = self.metrics.values().map(|(count, _)| count).sum();
            let names: Vec<&str> = self.metrics.keys().map(String::as_str).collect();
            let why = &self.metrics.values().next().expect("not empty").1;
            entries.push(format!(
                "metrics: {total} value(s) of {} were not recorded: {why}",
                crate::history::artifacts::a_few(&names)
            ));
        }
        entries.extend(self.history.iter().cloned());
        entries.extend(self.artifacts.iter().cloned());
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_are_told_once_per_kind_with_why() {
        let mut losses = Losses::default();
        for line in 12..20 {
            losses.log_line(line, || "no space left on device on /p/.xp/runs/r".into());
        }
        losses.metric("loss", || "disk full".into());
        losses.metric("loss", || "never asked".into());
        losses.metric("accuracy", || "disk full".into());
        assert!(losses.artifact_message(&format!("{NOT_COLLECTED}outputs/big.bin: no space")));
        assert!(!losses.artifact_message("outputs: skipped outputs/fifo: a named pipe"));
        assert_eq!(
            losses.entries(),
            vec![
                "log: 8 line(s) from line 12 on were not written: no space left on device on /p/.xp/runs/r",
                "metrics: 3 value(s) of accuracy, loss were not recorded: disk full",
                "artifacts: outputs/big.bin: no space",
            ]
        );
    }

    #[test]
    fn io_errors_in_words() {
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(
            describe_io(&full, Path::new("/p/log")),
            "no space left on device on /p/log"
        );
    }
}
