//! Defence in depth: the secrets of a request are replaced by [`MASK`] in whatever the host
//! prints, logs or records on a plugin's behalf (messages, errors, log lines).

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::plugins::CallError;

/// What a secret is replaced with.
pub const MASK: &str = "****";

/// Lines of a multi-line secret (a private key) shorter than this are not searched for alone.
const MIN_LINE_NEEDLE: usize = 16;

/// Replaces known secret values in text. Without secrets it costs one branch per call.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so that a secret containing another is masked whole.
    needles: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} needles)", self.needles.len())
    }
}

impl Redactor {
    /// A redactor for these secret values. A multi-line value (a private key) is also
    /// searched for line by line, since output is scrubbed a line at a time.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a String>) -> Redactor {
        let mut needles: Vec<String> = Vec::new();
        for secret in secrets {
            let trimmed = secret.trim_end_matches(['\r', '\n']);
            if trimmed.is_empty() {
                continue;
            }
            needles.push(trimmed.to_owned());
            if trimmed.contains('\n') {
                needles.extend(
                    trimmed
                        .lines()
                        .map(str::trim)
                        .filter(|line| line.len() >= MIN_LINE_NEEDLE && !line.starts_with("-----"))
                        .map(str::to_owned),
                );
            }
        }
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        needles.dedup();
        Redactor { needles }
    }

    /// A redactor for the secrets of a request.
    pub fn for_secrets(secrets: &BTreeMap<String, String>) -> Redactor {
        Redactor::new(secrets.values())
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every secret replaced by [`MASK`]; borrowed when there is nothing to hide.
    pub fn scrub<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.needles.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut result = Cow::Borrowed(text);
        for needle in &self.needles {
            if result.contains(needle.as_str()) {
                result = Cow::Owned(result.replace(needle.as_str(), MASK));
            }
        }
        result
    }

    /// Whether `text` holds one of the secrets.
    pub fn reveals(&self, text: &str) -> bool {
        self.needles.iter().any(|needle| text.contains(needle.as_str()))
    }

    /// Each of `lines`, scrubbed.
    pub fn scrub_all(&self, lines: &[String]) -> Vec<String> {
        lines.iter().map(|line| self.scrub(line).into_owned()).collect()
    }

    /// A plugin's error with its own words scrubbed.
    pub fn call_error(&self, error: CallError) -> CallError {
        if self.is_empty() {
            return error;
        }
        match error {
            CallError::Failed(message) => CallError::Failed(self.scrub(&message).into_owned()),
            CallError::Panicked { plugin, message } => CallError::Panicked {
                plugin,
                message: self.scrub(&message).into_owned(),
            },
            CallError::Protocol { plugin, message } => CallError::Protocol {
                plugin,
                message: self.scrub(&message).into_owned(),
            },
            other @ CallError::Predates { .. } => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_secrets_text_is_borrowed_as_is() {
        let redactor = Redactor::default();
        assert!(matches!(redactor.scrub("hunter2"), Cow::Borrowed("hunter2")));
        let redactor = Redactor::new([&String::new()]);
        assert!(redactor.is_empty());
    }

    #[test]
    fn every_occurrence_of_every_secret_is_masked() {
        let secrets = ["hunter2".to_owned(), "hunter2-long".to_owned()];
        let redactor = Redactor::new(&secrets);
        assert_eq!(
            redactor.scrub("login hunter2 then hunter2-long, hunter2"),
            "login **** then ****, ****"
        );
        assert!(matches!(redactor.scrub("nothing here"), Cow::Borrowed(_)));
        assert!(redactor.reveals("xhunter2x"));
    }

    #[test]
    fn a_private_key_is_masked_line_by_line_too() {
        let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\nAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----\n".to_owned();
        let redactor = Redactor::new([&key]);
        assert_eq!(
            redactor.scrub("debug: b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"),
            "debug: ****"
        );
        assert_eq!(redactor.scrub(&format!("key: {key}")), "key: ****\n");
        assert_eq!(
            redactor.scrub("-----BEGIN OPENSSH PRIVATE KEY-----"),
            "-----BEGIN OPENSSH PRIVATE KEY-----"
        );
    }

    #[test]
    fn plugin_errors_are_scrubbed() {
        let redactor = Redactor::new([&"hunter2".to_owned()]);
        let error = redactor.call_error(CallError::Failed("bad password hunter2".into()));
        assert_eq!(error.to_string(), "bad password ****");
        let error = redactor.call_error(CallError::Panicked {
            plugin: "p".into(),
            message: "hunter2".into(),
        });
        assert!(!error.to_string().contains("hunter2"));
    }
}
