//! The code a run executed, read back: its manifest from the history, a file's bytes from the
//! store, and two runs' files compared. `xp history diff` and the web view (`xp ui`) both read
//! through here, so they agree on what changed.
//!
//! Nothing here writes: objects are read from `.xp/store/objects/` by their hash, never by a
//! path someone gave (a path is only ever looked up in a manifest).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::manifest::{Entry, Hash, Kind, Manifest};
use crate::history::{HistoryError, HistoryStore, RunRecord};

/// Text files larger than this are compared by size and hash only.
pub const MAX_DIFF_BYTES: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    #[error("run {0} has no snapshot: it ran before xp kept the code of every run")]
    NoSnapshot(String),
    #[error("the history has no manifest {id} for run {run}")]
    NoManifest { id: String, run: String },
    #[error("reading the manifest of run {run}: {source}")]
    BadManifest {
        run: String,
        #[source]
        source: super::ParseError,
    },
    #[error("reading {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    History(#[from] HistoryError),
}

/// A run's manifest from the history.
pub fn manifest_of(store: &HistoryStore, record: &RunRecord) -> Result<Manifest, CodeError> {
    let snapshot = record
        .snapshot
        .as_ref()
        .ok_or_else(|| CodeError::NoSnapshot(record.run_id.clone()))?;
    let text = store.manifest(&snapshot.id)?.ok_or_else(|| CodeError::NoManifest {
        id: snapshot.id.clone(),
        run: record.run_id.clone(),
    })?;
    Manifest::decode(&text).map_err(|source| CodeError::BadManifest {
        run: record.run_id.clone(),
        source,
    })
}

/// The objects of a project's store, for reading only: no lock taken, no folder created.
#[derive(Debug, Clone)]
pub struct Objects {
    root: PathBuf,
}

impl Objects {
    /// The objects of the store in a project's `.xp/` folder.
    pub fn of(xp_dir: &Path) -> Objects {
        Objects {
            root: xp_dir.join("store"),
        }
    }

    /// The objects of an open store (which holds its lock meanwhile).
    pub fn in_store(store: &super::Store) -> Objects {
        Objects {
            root: store.root().to_owned(),
        }
    }

    pub fn path(&self, hash: &Hash) -> PathBuf {
        let hex = hash.hex();
        self.root.join("objects").join(&hex[..2]).join(&hex[2..])
    }

    /// An object opened for reading, with its length. A link or anything but a plain file in
    /// the store's place is not an object.
    pub fn open(&self, hash: &Hash) -> Result<(std::fs::File, u64), CodeError> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.path(hash);
        let io = |source| CodeError::Io {
            path: path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io)?;
        let metadata = file.metadata().map_err(io)?;
        if !metadata.is_file() {
            return Err(io(std::io::Error::other("not a plain file")));
        }
        Ok((file, metadata.len()))
    }

    /// At most `limit` bytes of an object, and whether that is all of it.
    pub fn read(&self, hash: &Hash, limit: u64) -> Result<(Vec<u8>, bool), CodeError> {
        let (file, length) = self.open(hash)?;
        let mut bytes = Vec::with_capacity(length.min(limit) as usize);
        file.take(limit)
            .read_to_end(&mut bytes)
            .map_err(|source| CodeError::Io {
                path: self.path(hash),
                source,
            })?;
        Ok((bytes, length <= limit))
    }

    /// The object as text, when it is UTF-8 without NUL bytes and at most `limit` bytes long.
    pub fn text(&self, kind: &Kind, limit: u64) -> Result<Option<String>, CodeError> {
        let Kind::File { hash, size } = kind else {
            return Ok(None);
        };
        if *size > limit {
            return Ok(None);
        }
        let (bytes, whole) = self.read(hash, limit)?;
        Ok(text_of_bytes(bytes).filter(|_| whole))
    }
}

/// Bytes as text, when they look like text (UTF-8, no NUL).
pub fn text_of_bytes(bytes: Vec<u8>) -> Option<String> {
    if bytes.contains(&0) {
        return None;
    }
    String::from_utf8(bytes).ok()
}

/// How one path differs between two snapshots.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub path: String,
    /// added, removed, changed (content), mode (permission bits only), kind (file <-> link...).
    pub change: &'static str,
    /// The unified diff, for text files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Two runs' code compared, path by path (folders only where their kind changes).
#[derive(Debug, Clone, Serialize)]
pub struct CodeDiff {
    pub from: String,
    pub to: String,
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
    pub changes: Vec<Change>,
}

pub fn describe(kind: &Kind) -> &'static str {
    match kind {
        Kind::File { .. } => "file",
        Kind::Dir => "folder",
        Kind::Link { .. } => "link",
    }
}

fn size_note(kind: &Kind) -> String {
    match kind {
        Kind::File { size, .. } => format!("{size} bytes"),
        other => describe(other).to_owned(),
    }
}

fn file_diff(
    objects: &Objects,
    path: &str,
    old: Option<&Kind>,
    new: Option<&Kind>,
) -> Result<Option<String>, CodeError> {
    let side = |kind: Option<&Kind>| match kind {
        Some(kind) => objects.text(kind, MAX_DIFF_BYTES),
        None => Ok(Some(String::new())),
    };
    let (Some(old_text), Some(new_text)) = (side(old)?, side(new)?) else {
        return Ok(None);
    };
    let old_name = if old.is_some() {
        format!("a/{path}")
    } else {
        "/dev/null".into()
    };
    let new_name = if new.is_some() {
        format!("b/{path}")
    } else {
        "/dev/null".into()
    };
    let diff = similar::TextDiff::from_lines(&old_text, &new_text);
    Ok(Some(
        diff.unified_diff()
            .context_radius(3)
            .header(&old_name, &new_name)
            .to_string(),
    ))
}

fn one_sided(objects: &Objects, entry: &Entry, change: &'static str) -> Result<Change, CodeError> {
    let path = entry.path_text();
    let diff = if change == "added" {
        file_diff(objects, &path, None, Some(&entry.kind))?
    } else {
        file_diff(objects, &path, Some(&entry.kind), None)?
    };
    let note = diff.is_none().then(|| size_note(&entry.kind));
    Ok(Change {
        path,
        change,
        diff,
        note,
    })
}

fn both_sides(objects: &Objects, x: &Entry, y: &Entry) -> Result<Change, CodeError> {
    let path = x.path_text();
    Ok(if x.kind == y.kind {
        Change {
            path,
            change: "mode",
            diff: None,
            note: Some(format!("{:o} -> {:o}", x.mode, y.mode)),
        }
    } else if describe(&x.kind) != describe(&y.kind) {
        Change {
            path,
            change: "kind",
            diff: None,
            note: Some(format!("{} -> {}", describe(&x.kind), describe(&y.kind))),
        }
    } else {
        let diff = file_diff(objects, &path, Some(&x.kind), Some(&y.kind))?;
        let mut notes = Vec::new();
        if diff.is_none() {
            notes.push(format!("binary: {} -> {}", size_note(&x.kind), size_note(&y.kind)));
        }
        if x.mode != y.mode {
            notes.push(format!("mode {:o} -> {:o}", x.mode, y.mode));
        }
        Change {
            path,
            change: "changed",
            diff,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        }
    })
}

/// What changed from `old` (run `from`) to `new` (run `to`), in path order.
pub fn diff(objects: &Objects, from: &str, old: &Manifest, to: &str, new: &Manifest) -> Result<CodeDiff, CodeError> {
    let mut report = CodeDiff {
        from: from.to_owned(),
        to: to.to_owned(),
        added: 0,
        removed: 0,
        changed: 0,
        changes: Vec::new(),
    };
    let (mut a, mut b) = (old.entries.iter().peekable(), new.entries.iter().peekable());
    loop {
        let order = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => x.path.cmp(&y.path),
        };
        match order {
            std::cmp::Ordering::Less => {
                let Some(entry) = a.next().filter(|e| e.kind != Kind::Dir) else {
                    continue;
                };
                report.removed += 1;
                report.changes.push(one_sided(objects, entry, "removed")?);
            }
            std::cmp::Ordering::Greater => {
                let Some(entry) = b.next().filter(|e| e.kind != Kind::Dir) else {
                    continue;
                };
                report.added += 1;
                report.changes.push(one_sided(objects, entry, "added")?);
            }
            std::cmp::Ordering::Equal => {
                let (Some(x), Some(y)) = (a.next(), b.next()) else {
                    break;
                };
                if x == y || (x.kind == Kind::Dir && y.kind == Kind::Dir) {
                    continue;
                }
                report.changed += 1;
                report.changes.push(both_sides(objects, x, y)?);
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects_with(dir: &Path, files: &[&[u8]]) -> Objects {
        let objects = Objects::of(dir);
        for bytes in files {
            let path = objects.path(&Hash::of(bytes));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        objects
    }

    fn file(path: &str, bytes: &[u8], mode: u32) -> Entry {
        Entry {
            path: path.as_bytes().to_vec(),
            mode,
            kind: Kind::File {
                hash: Hash::of(bytes),
                size: bytes.len() as u64,
            },
        }
    }

    #[test]
    fn added_removed_changed_and_binary_files_in_path_order() {
        let dir = tempfile::tempdir().unwrap();
        let (old_train, new_train, blob) = (&b"a\nb\nc\n"[..], &b"a\nB\nc\n"[..], &b"\0\x01binary"[..]);
        let objects = objects_with(dir.path(), &[old_train, new_train, blob, b"gone\n", b"new\n"]);
        let old = Manifest::new(vec![
            file("train.py", old_train, 0o644),
            file("gone.txt", b"gone\n", 0o644),
            file("model.bin", blob, 0o644),
            file("run.sh", b"new\n", 0o644),
            Entry {
                path: b"src".to_vec(),
                mode: 0o755,
                kind: Kind::Dir,
            },
        ]);
        let new = Manifest::new(vec![
            file("train.py", new_train, 0o644),
            file("added.txt", b"new\n", 0o644),
            file("model.bin", b"new\n", 0o644),
            file("run.sh", b"new\n", 0o755),
            Entry {
                path: b"src".to_vec(),
                mode: 0o700,
                kind: Kind::Dir,
            },
        ]);
        let report = diff(&objects, "r1", &old, "r2", &new).unwrap();
        let summary: Vec<(&str, &str)> = report.changes.iter().map(|c| (c.path.as_str(), c.change)).collect();
        assert_eq!(
            summary,
            vec![
                ("added.txt", "added"),
                ("gone.txt", "removed"),
                ("model.bin", "changed"),
                ("run.sh", "mode"),
                ("train.py", "changed"),
            ]
        );
        assert_eq!((report.added, report.removed, report.changed), (1, 1, 3));
        let train = &report.changes[4];
        assert!(train.diff.as_deref().unwrap().contains("-b\n+B\n"), "{train:?}");
        assert!(train
            .diff
            .as_deref()
            .unwrap()
            .starts_with("--- a/train.py\n+++ b/train.py\n"));
        let model = &report.changes[2];
        assert_eq!(model.diff, None);
        assert_eq!(model.note.as_deref(), Some("binary: 8 bytes -> 4 bytes"));
    }

    #[test]
    fn a_lost_object_is_an_error_naming_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Objects::of(dir.path());
        let old = Manifest::new(vec![file("a.py", b"x\n", 0o644)]);
        let error = diff(&objects, "r1", &old, "r2", &Manifest::default()).unwrap_err();
        assert!(error.to_string().contains("objects"), "{error}");
    }

    #[test]
    fn text_is_utf8_without_nul_within_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let objects = objects_with(dir.path(), &[b"hello\n", b"\xff\xfe"]);
        let kind = |bytes: &[u8]| Kind::File {
            hash: Hash::of(bytes),
            size: bytes.len() as u64,
        };
        assert_eq!(
            objects.text(&kind(b"hello\n"), 100).unwrap().as_deref(),
            Some("hello\n")
        );
        assert_eq!(objects.text(&kind(b"hello\n"), 3).unwrap(), None);
        assert_eq!(objects.text(&kind(b"\xff\xfe"), 100).unwrap(), None);
        assert_eq!(objects.text(&Kind::Dir, 100).unwrap(), None);
    }
}
