//! The only places where the web view touches a run's files: its log, read from a byte offset,
//! and its artifacts, opened without following any link. Paths never come from a URL: the
//! run's folder comes from its record, and an artifact must be one the record lists.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::history::RunRecord;

/// Why an artifact is not served. Every case is answered with the same 404: the reason is for
/// the server's own log, never for the client.
#[derive(Debug, thiserror::Error)]
pub enum NotServed {
    #[error("'{0}' is not an artifact of this run")]
    NotListed(String),
    #[error("'{0}' is not a plain relative path")]
    BadPath(String),
    #[error("'{path}' could not be opened without following a link: {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("'{0}' is not a regular file")]
    NotAFile(String),
}

fn open_at(dir: Option<&OwnedFd>, name: &CString, flags: libc::c_int) -> std::io::Result<OwnedFd> {
    let at = dir.map_or(libc::AT_FDCWD, |fd| fd.as_raw_fd());
    // SAFETY: openat(2) with a NUL-terminated name; the result is checked before it is owned.
    let fd = unsafe { libc::openat(at, name.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens artifact `relative` (e.g. `outputs/model.pkl`) of a run whose folder is `run_dir`,
/// for reading. It must be listed in the run's record, be a plain relative path (no empty,
/// `.` or `..` component), and be reached from `run_dir` one component at a time with
/// `O_NOFOLLOW`, each folder opened relative to the one before: a symbolic link anywhere
/// below the run's folder, or a swap of a folder for a link while this runs, ends in an error,
/// never in a file outside. The file must be a regular file (no FIFO that would block, no
/// device).
///
/// Kept as one function so the product-wide artifact rules can replace it in one place.
pub fn open_artifact(record: &RunRecord, run_dir: &Path, relative: &str) -> Result<(File, u64), NotServed> {
    if !record.artifacts.iter().any(|listed| listed == relative) {
        return Err(NotServed::NotListed(relative.to_owned()));
    }
    let components: Vec<&str> = relative.split('/').collect();
    if components
        .iter()
        .any(|c| c.is_empty() || *c == "." || *c == ".." || c.contains('\0'))
    {
        return Err(NotServed::BadPath(relative.to_owned()));
    }
    let open_error = |source| NotServed::Open {
        path: relative.to_owned(),
        source,
    };
    let base = CString::new(run_dir.as_os_str().as_bytes()).map_err(|_| NotServed::BadPath(relative.to_owned()))?;
    let mut dir = open_at(None, &base, libc::O_RDONLY | libc::O_DIRECTORY).map_err(open_error)?;
    let (last, folders) = components.split_last().expect("split gives at least one component");
    for folder in folders {
        let name = CString::new(*folder).expect("checked for NUL above");
        dir = open_at(Some(&dir), &name, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW).map_err(open_error)?;
    }
    let name = CString::new(*last).expect("checked for NUL above");
    let fd = open_at(Some(&dir), &name, libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK).map_err(open_error)?;
    let file = File::from(fd);
    let metadata = file.metadata().map_err(open_error)?;
    if !metadata.file_type().is_file() {
        return Err(NotServed::NotAFile(relative.to_owned()));
    }
    Ok((file, metadata.len()))
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
