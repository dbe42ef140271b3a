//! The only places where the web view touches a run's files: its log, read from a byte offset,
//! and its artifacts, opened without following any link. Paths never come from a URL: the
//! run's folder comes from its record, and an artifact must be one the record lists.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::history::RunRecord;

/// Why an artifact is not served. Every case is answered with the same 404: the reason is for
/// the server's own log, never for the client.
#[derive(Debug, thiserror::Error)]
pub enum NotServed {
    #[error("'{0}' is not an artifact of this run")]
    NotListed(String),
    #[error(transparent)]
    Refused(#[from] crate::history::ArtifactError),
    #[error("'{path}': {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Opens artifact `relative` (e.g. `outputs/model.pkl`) of a run whose folder is `run_dir`,
/// for reading, with its size. It must be listed in the run's record; the product's one
/// artifact rule ([`crate::history::open_artifact`]) then opens it without following any link,
/// and only if it is a regular file.
pub fn open_artifact(record: &RunRecord, run_dir: &Path, relative: &str) -> Result<(File, u64), NotServed> {
    if !record.artifacts.iter().any(|listed| listed == relative) {
        return Err(NotServed::NotListed(relative.to_owned()));
    }
    let file = crate::history::open_artifact(run_dir, relative)?;
    let size = file
        .metadata()
        .map_err(|source| NotServed::Io {
            path: relative.to_owned(),
            source,
        })?
        .len();
    Ok((file, size))
}

/// What a read of a log from an offset gave.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogChunk {
    pub offset: u64,
    pub next_offset: u64,
    /// The bytes as text (invalid UTF-8 replaced); an incomplete character at the end is left
    /// for the next read.
    pub text: String,
    /// Bytes left after `next_offset` that did not fit in this read.
    pub more: bool,
}

/// Reads at most `max` bytes of the log at `path` from byte `offset`. A log that does not
/// exist yet reads as empty.
pub fn read_log(path: &Path, offset: u64, max: usize) -> std::io::Result<LogChunk> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(LogChunk {
                offset,
                next_offset: offset,
                text: String::new(),
                more: false,
            })
        }
        Err(error) => return Err(error),
    };
    let length = file.metadata()?.len();
    let offset = offset.min(length);
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.take(max as u64).read_to_end(&mut bytes)?;
    // Leave a character cut by the read's end for the next read.
    let complete = match std::str::from_utf8(&bytes) {
        Ok(_) => bytes.len(),
        Err(error) if error.error_len().is_none() => error.valid_up_to(),
        Err(_) => bytes.len(),
    };
    bytes.truncate(complete);
    let next_offset = offset + bytes.len() as u64;
    Ok(LogChunk {
        offset,
        next_offset,
        text: String::from_utf8_lossy(&bytes).into_owned(),
        more: next_offset < length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(artifacts: &[&str]) -> RunRecord {
        RunRecord {
            run_id: "p_1".into(),
            run_number: 1,
            script: "s.py".into(),
            arguments: vec![],
            target: "local".into(),
            runconfig: "local".into(),
            status: xp_plugin_api::RunStatus::Completed,
            created_ms: 0,
            started_ms: None,
            ended_ms: None,
            exit_code: None,
            error: None,
            git_commit: None,
            artifacts: artifacts.iter().map(|a| a.to_string()).collect(),
            metrics: Default::default(),
            driver_pid: None,
            driver_start: None,
            snapshot: None,
            artifact_links: Vec::new(),
            lost: Vec::new(),
        }
    }

    #[test]
    fn serves_listed_regular_files_only_and_never_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let run_dir = dir.path().join("run");
        let outside = dir.path().join("secret.txt");
        std::fs::write(&outside, "outside").unwrap();
        std::fs::create_dir_all(run_dir.join("outputs/sub")).unwrap();
        std::fs::write(run_dir.join("outputs/model.pkl"), "model").unwrap();
        std::os::unix::fs::symlink(&outside, run_dir.join("outputs/link.txt")).unwrap();
        std::os::unix::fs::symlink(dir.path(), run_dir.join("outputs/up")).unwrap();
        let record = record(&[
            "outputs/model.pkl",
            "outputs/link.txt",
            "outputs/up/secret.txt",
            "outputs/sub",
            "outputs/../../secret.txt",
        ]);

        let (mut file, length) = open_artifact(&record, &run_dir, "outputs/model.pkl").unwrap();
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        assert_eq!((text.as_str(), length), ("model", 5));

        for refused in [
            "outputs/link.txt",
            "outputs/up/secret.txt",
            "outputs/sub",
            "outputs/../../secret.txt",
            "outputs/other.pkl",
            "/etc/passwd",
        ] {
            assert!(
                open_artifact(&record, &run_dir, refused).is_err(),
                "{refused} was served"
            );
        }
    }

    #[test]
    fn logs_read_from_an_offset_without_cutting_a_character() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output.log");
        std::fs::write(&path, "héllo\nworld\n").unwrap();
        let first = read_log(&path, 0, 2).unwrap();
        assert_eq!((first.text.as_str(), first.next_offset, first.more), ("h", 1, true));
        let rest = read_log(&path, first.next_offset, 1 << 20).unwrap();
        assert_eq!((rest.text.as_str(), rest.more), ("éllo\nworld\n", false));
        let missing = read_log(&dir.path().join("none"), 7, 10).unwrap();
        assert_eq!((missing.text.as_str(), missing.next_offset), ("", 7));
    }
}
