//! A run's artifacts as the host records and reads them, by the rule every target's
//! collection follows (`xp_plugin_sdk::artifacts`): regular files are artifacts, links are
//! recorded with their target text and never followed, names are bytes written with
//! [`encode_name`]. [`open_artifact`] is the one way xp reads an artifact's content.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use xp_plugin_sdk::artifacts::{decode_name, encode_name, is_plain_relative, NAMED_IN_REPORTS};
use xp_plugin_sdk::artifacts::{walk, EntryKind};

/// The folder of a run's artifacts inside its run folder, and the prefix of their names.
pub const ARTIFACTS_FOLDER: &str = "outputs";

/// A link the script left in `outputs/`: recorded, never followed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactLink {
    /// `outputs/...`, written with [`encode_name`].
    pub path: String,
    /// What the link points to, as written in it ([`encode_name`]); never resolved.
    pub target: String,
}

/// What a run's artifacts folder holds, read without following anything.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Regular files, `outputs/...` with [`encode_name`], sorted.
    pub files: Vec<String>,
    pub links: Vec<ArtifactLink>,
    /// Entries that are none of those (left by a plugin that does not follow the rule) and
    /// folders that could not be read, as messages.
    pub skipped: Vec<String>,
}

/// The artifacts under `artifacts_dir` (a run's `outputs/` folder).
pub fn list(artifacts_dir: &Path) -> Listing {
    let (entries, problems) = walk(artifacts_dir);
    let mut listing = Listing {
        skipped: problems,
        ..Listing::default()
    };
    for entry in entries {
        let path = format!("{ARTIFACTS_FOLDER}/{}", encode_name(&entry.relative));
        match entry.kind {
            EntryKind::File { .. } => listing.files.push(path),
            EntryKind::Link { target } => listing.links.push(ArtifactLink {
                path,
                target: encode_name(&target),
            }),
            EntryKind::Other { what } => listing
                .skipped
                .push(format!("{path}: {what}; only files, folders and links are artifacts")),
        }
    }
    listing
}

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("'{name}' is not an artifact name xp writes (expected outputs/... with \\\\, \\n or \\xHH escapes)")]
    BadName { name: String },

    #[error("{name} is a link (to {target}), not a file; xp never follows links in a run's outputs")]
    Link { name: String, target: String },

    #[error("{name} is not a regular file in {}", run_dir.display())]
    NotAFile { name: String, run_dir: PathBuf },

    #[error("{name} is missing from {}", run_dir.display())]
    Missing { name: String, run_dir: PathBuf },

    #[error("{name}: a folder on its way is a link or not a folder in {}; xp never follows links in a run's outputs", run_dir.display())]
    LinkOnTheWay { name: String, run_dir: PathBuf },

    #[error("reading {name} in {}: {source}", run_dir.display())]
    Io {
        name: String,
        run_dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The bytes of a recorded artifact name below the run folder (`outputs/...`), checked to
/// stay inside it.
pub fn name_bytes(name: &str) -> Result<Vec<u8>, ArtifactError> {
    let bad = || ArtifactError::BadName { name: name.to_owned() };
    let bytes = decode_name(name).ok_or_else(bad)?;
    let inside = bytes
        .strip_prefix(ARTIFACTS_FOLDER.as_bytes())
        .and_then(|rest| rest.strip_prefix(b"/"))
        .ok_or_else(bad)?;
    if !is_plain_relative(inside) {
        return Err(bad());
    }
    Ok(bytes)
}

fn open_at(dir: Option<&OwnedFd>, path: &OsStr, flags: libc::c_int) -> std::io::Result<OwnedFd> {
    let path = CString::new(path.as_bytes()).map_err(std::io::Error::other)?;
    let at = dir.map(|fd| fd.as_raw_fd()).unwrap_or(libc::AT_FDCWD);
    // SAFETY: a valid NUL-terminated path and a directory descriptor we own (or AT_FDCWD).
    let fd = unsafe { libc::openat(at, path.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: openat returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the artifact recorded as `name` (`outputs/...`) of the run whose folder is `run_dir`,
/// for reading: only a regular file, and only when no component below `run_dir` is a link.
/// Each folder is opened relative to the one before, so a link swapped in meanwhile is
/// refused too.
pub fn open_artifact(run_dir: &Path, name: &str) -> Result<File, ArtifactError> {
    let bytes = name_bytes(name)?;
    let io = |source: std::io::Error| ArtifactError::Io {
        name: name.to_owned(),
        run_dir: run_dir.to_path_buf(),
        source,
    };
    let mut folder = open_at(None, run_dir.as_os_str(), libc::O_RDONLY | libc::O_DIRECTORY).map_err(io)?;
    let parts: Vec<&[u8]> = bytes.split(|b| *b == b'/').collect();
    let (last, folders) = parts.split_last().expect("a checked name has components");
    let missing = || ArtifactError::Missing {
        name: name.to_owned(),
        run_dir: run_dir.to_path_buf(),
    };
    for part in folders {
        folder = match open_at(
            Some(&folder),
            OsStr::from_bytes(part),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        ) {
            Ok(fd) => fd,
            Err(error) if error.raw_os_error() == Some(libc::ENOENT) => return Err(missing()),
            Err(error) if matches!(error.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                return Err(ArtifactError::LinkOnTheWay {
                    name: name.to_owned(),
                    run_dir: run_dir.to_path_buf(),
                })
            }
            Err(error) => return Err(io(error)),
        };
    }
    // Non-blocking so that a named pipe put there cannot hang the open; a regular file ignores it.
    let fd = match open_at(
        Some(&folder),
        OsStr::from_bytes(last),
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY,
    ) {
        Ok(fd) => fd,
        Err(error) if error.raw_os_error() == Some(libc::ENOENT) => return Err(missing()),
        Err(error) if error.raw_os_error() == Some(libc::ELOOP) => {
            let target = std::fs::read_link(run_dir.join(OsStr::from_bytes(&bytes)))
                .map(|target| encode_name(target.as_os_str().as_bytes()))
                .unwrap_or_else(|_| "?".to_owned());
            return Err(ArtifactError::Link {
                name: name.to_owned(),
                target,
            });
        }
        Err(error) => return Err(io(error)),
    };
    let file = File::from(fd);
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(ArtifactError::NotAFile {
            name: name.to_owned(),
            run_dir: run_dir.to_path_buf(),
        });
    }
    // SAFETY: fcntl on a descriptor we own; clears O_NONBLOCK for ordinary reads.
    unsafe {
        let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
    }
    Ok(file)
}

/// At most [`NAMED_IN_REPORTS`] of `names`, and how many more there are: for messages.
pub fn a_few(names: &[impl AsRef<str>]) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    let shown: Vec<&str> = names.iter().take(NAMED_IN_REPORTS).map(AsRef::as_ref).collect();
    let mut text = shown.join(", ");
    if names.len() > NAMED_IN_REPORTS {
        text.push_str(&format!(" and {} more", names.len() - NAMED_IN_REPORTS));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn run_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let outputs = dir.path().join("outputs");
        std::fs::create_dir_all(outputs.join("sub")).unwrap();
        std::fs::write(outputs.join("sub/model.pkl"), "model").unwrap();
        std::fs::write(outputs.join(OsStr::from_bytes(b"caf\xe9.txt")), "cafe").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", outputs.join("p")).unwrap();
        std::os::unix::fs::symlink("/etc", outputs.join("etc")).unwrap();
        std::os::unix::fs::symlink("sub", outputs.join("linked")).unwrap();
        dir
    }

    fn read(file: File) -> String {
        let mut text = String::new();
        { file }.read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn only_regular_files_reached_without_links_open() {
        let dir = run_dir();
        assert_eq!(
            read(open_artifact(dir.path(), "outputs/sub/model.pkl").unwrap()),
            "model"
        );
        assert_eq!(read(open_artifact(dir.path(), "outputs/caf\\xe9.txt").unwrap()), "cafe");
        assert!(matches!(
            open_artifact(dir.path(), "outputs/p"),
            Err(ArtifactError::Link { target, .. }) if target == "/etc/passwd"
        ));
        assert!(matches!(
            open_artifact(dir.path(), "outputs/etc/passwd"),
            Err(ArtifactError::LinkOnTheWay { .. })
        ));
        assert!(matches!(
            open_artifact(dir.path(), "outputs/linked/model.pkl"),
            Err(ArtifactError::LinkOnTheWay { .. })
        ));
        assert!(matches!(
            open_artifact(dir.path(), "outputs/sub"),
            Err(ArtifactError::NotAFile { .. })
        ));
        assert!(matches!(
            open_artifact(dir.path(), "outputs/none"),
            Err(ArtifactError::Missing { .. })
        ));
        for bad in [
            "outputs/../../etc/passwd",
            "/etc/passwd",
            "outputs/",
            "other/x",
            "outputs/a\\q",
        ] {
            assert!(
                matches!(open_artifact(dir.path(), bad), Err(ArtifactError::BadName { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_named_pipe_neither_hangs_nor_opens() {
        let dir = run_dir();
        let fifo = dir.path().join("outputs/fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        assert!(matches!(
            open_artifact(dir.path(), "outputs/fifo"),
            Err(ArtifactError::NotAFile { .. })
        ));
    }

    #[test]
    fn the_listing_records_links_with_their_targets() {
        let dir = run_dir();
        let listing = list(&dir.path().join("outputs"));
        assert_eq!(listing.files, vec!["outputs/caf\\xe9.txt", "outputs/sub/model.pkl"]);
        let links: Vec<(&str, &str)> = listing
            .links
            .iter()
            .map(|l| (l.path.as_str(), l.target.as_str()))
            .collect();
        assert_eq!(
            links,
            vec![
                ("outputs/etc", "/etc"),
                ("outputs/linked", "sub"),
                ("outputs/p", "/etc/passwd")
            ]
        );
        assert!(listing.skipped.is_empty());
    }

    #[test]
    fn messages_name_a_few() {
        let names: Vec<String> = (0..10_000).map(|i| format!("outputs/f{i}")).collect();
        let text = a_few(&names);
        assert!(text.ends_with("and 9990 more"), "{text}");
        assert!(text.len() < 200);
    }
}
