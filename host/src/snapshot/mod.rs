//! Snapshots: the project's files in a content-addressed store (`.xp/store/`), a manifest per
//! run, and each run's private view of its files, made at the cost of what changed.
//!
//! How a run's snapshot is materialised, in order of preference (`XP_SNAPSHOT=copy` forces
//! the last, `XP_SNAPSHOT=overlay` makes a failed mount an error):
//! 1. an overlay mount of the manifest's read-only tree of hard links with an upper layer of
//!    the run's own (where xp may mount: root or CAP_SYS_ADMIN) — copy-on-write, whoever
//!    writes; a few milliseconds whatever the size;
//! 2. per file, a reflink of the object (btrfs, XFS: copy-on-write clones);
//! 3. per file, a copy of the object.
//!
//! Never hard links alone: a link to an object is the object, and a read-only mode does not
//! stop root (or the file's owner, who may chmod it) from writing through it.

pub mod code;
mod copy;
mod index;
mod ingest;
mod manifest;
mod overlay;
mod store;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

pub use copy::Written;
pub use ingest::NEVER_COPIED;
pub use manifest::{Entry, Hash, Kind, Manifest, ParseError, Summary};
pub use store::{Access, Store};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("reading the project {}: {message}", project.display())]
    Walk { project: PathBuf, message: String },

    #[error("XP_SNAPSHOT=overlay, but the snapshot could not be mounted at {}: {source}; unset XP_SNAPSHOT to fall back to copies", path.display())]
    OverlayRequired {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("XP_SNAPSHOT={0}: expected overlay, copy or auto")]
    BadMethod(String),
}

/// How a run's snapshot was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Overlay,
    /// Reflinks and copies, with how many of each.
    Files(Written),
}

/// A project's files as one run sees them.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub id: Hash,
    pub manifest: Manifest,
}

impl Snapshot {
    pub fn summary(&self) -> Summary {
        self.manifest.summary()
    }
}

/// Reads `project` into the store of `xp_dir` (only what changed since the last time is
/// read) and returns the store, locked shared, with the snapshot's manifest.
pub fn take(xp_dir: &Path, project: &Path) -> Result<(Store, Snapshot), SnapshotError> {
    let store = Store::open(xp_dir, Access::Shared)?;
    let manifest = ingest::ingest(&store, project)?;
    Ok((
        store,
        Snapshot {
            id: manifest.id(),
            manifest,
        },
    ))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Preference {
    Auto,
    Overlay,
    Copy,
}

fn preference() -> Result<Preference, SnapshotError> {
    match std::env::var("XP_SNAPSHOT").ok().as_deref() {
        None | Some("") | Some("auto") => Ok(Preference::Auto),
        Some("overlay") => Ok(Preference::Overlay),
        Some("copy") => Ok(Preference::Copy),
        Some(other) => Err(SnapshotError::BadMethod(other.to_owned())),
    }
}

/// Makes `destination` (inside `run_dir`) the run's private view of `snapshot`.
pub fn materialize(
    store: &Store,
    snapshot: &Snapshot,
    run_dir: &Path,
    destination: &Path,
) -> Result<Method, SnapshotError> {
    let preference = preference()?;
    if preference != Preference::Copy {
        let tree = overlay::tree(store, &snapshot.manifest, &snapshot.id).map_err(|source| SnapshotError::Io {
            what: "building the snapshot's tree in",
            path: store.root().join("trees"),
            source,
        })?;
        match overlay::mount(&tree, &overlay::layers(run_dir), destination) {
            Ok(()) => return Ok(Method::Overlay),
            Err(source) if preference == Preference::Overlay => {
                return Err(SnapshotError::OverlayRequired {
                    path: destination.to_path_buf(),
                    source,
                })
            }
            Err(_) => {}
        }
    }
    let io = |source| SnapshotError::Io {
        what: "writing the snapshot to",
        path: destination.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(destination).map_err(io)?;
    copy::write_out(store, &snapshot.manifest, destination)
        .map(Method::Files)
        .map_err(io)
}

/// The manifest as a file of the store (`manifests/<id>`), for plugins that send the snapshot
/// elsewhere; written once per distinct manifest.
pub fn manifest_file(store: &Store, snapshot: &Snapshot) -> std::io::Result<PathBuf> {
    let folder = store.root().join("manifests");
    let path = folder.join(snapshot.id.hex());
    if !path.exists() {
        std::fs::create_dir_all(&folder)?;
        let staging = folder.join(format!(".{}-{}", snapshot.id.hex(), std::process::id()));
        std::fs::write(&staging, snapshot.manifest.encode())?;
        std::fs::rename(&staging, &path)?;
    }
    Ok(path)
}

/// Ends a run's view of its snapshot: unmounts it (if it was mounted) and removes it with its
/// layers. Safe to call more than once.
pub fn release(run_dir: &Path, destination: &Path) {
    overlay::unmount(destination);
    let layers = overlay::layers(run_dir);
    for path in [destination, &layers.upper, &layers.work] {
        if path.exists() {
            overlay::remove_tree(path);
        }
    }
}

/// Releases the snapshots still mounted under `runs_dir` (a project's `.xp/runs/`) of the
/// runs `finished` says are over: their driver died before it could. Returns how many.
pub fn release_finished(runs_dir: &Path, finished: impl Fn(&str) -> bool) -> usize {
    let mut released = 0;
    for mount in overlay::mounted_under(runs_dir) {
        let Some(run_dir) = mount.target.parent() else {
            continue;
        };
        let Some(run_id) = run_dir.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if run_dir.parent() == Some(runs_dir) && finished(run_id) {
            release(run_dir, &mount.target);
            released += 1;
        }
    }
    released
}

/// Writes a manifest's exact files (contents, modes, links) into `destination`.
pub fn restore(store: &Store, manifest: &Manifest, destination: &Path) -> std::io::Result<Written> {
    std::fs::create_dir_all(destination)?;
    copy::write_out(store, manifest, destination)
}

/// What a prune freed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub objects: u64,
    pub bytes: u64,
    pub kept: u64,
}

/// Removes every object of the store that no manifest in `referenced` names, with the trees
/// no mounted snapshot uses; takes the store's lock exclusively, so it waits for submits
/// that are reading the project.
pub fn prune(xp_dir: &Path, referenced: &[Manifest]) -> Result<Pruned, SnapshotError> {
    let store = Store::open(xp_dir, Access::Exclusive)?;
    let keep: HashSet<Hash> = referenced.iter().flat_map(|m| m.hashes()).collect();
    let io = |source| SnapshotError::Io {
        what: "pruning the snapshot store",
        path: store.objects_dir(),
        source,
    };
    let mut pruned = Pruned::default();
    let mut removed = HashSet::new();
    for (hash, path, size) in store.all_objects().map_err(io)? {
        if keep.contains(&hash) {
            pruned.kept += 1;
            continue;
        }
        std::fs::remove_file(&path).map_err(io)?;
        removed.insert(hash);
        pruned.objects += 1;
        pruned.bytes += size;
    }
    store.clear_staging();
    let ids: HashSet<String> = referenced.iter().map(|m| m.id().hex()).collect();
    if let Ok(files) = std::fs::read_dir(store.root().join("manifests")) {
        for file in files.flatten() {
            if !ids.contains(file.file_name().to_string_lossy().as_ref()) {
                let _ = std::fs::remove_file(file.path());
            }
        }
    }
    if !removed.is_empty() {
        let mut index = index::Index::load(&store.index_path());
        index.retain_hashes(|hash| !removed.contains(hash));
        index.save(&store.index_path()).map_err(io)?;
    }
    overlay::remove_unused_trees(&store, None, Some(0));
    Ok(pruned)
}

/// Removes trees no run uses beyond the few kept for the next runs.
pub fn tidy_trees(xp_dir: &Path) {
    if let Ok(store) = Store::open(xp_dir, Access::Shared) {
        overlay::remove_unused_trees(&store, None, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The project's snapshot written out, with the store's folder (kept while looked at).
    fn take_and_restore(project: &Path) -> (tempfile::TempDir, tempfile::TempDir) {
        let xp = tempfile::tempdir().unwrap();
        let (store, snapshot) = take(xp.path(), project).unwrap();
        let out = tempfile::tempdir().unwrap();
        restore(&store, &snapshot.manifest, out.path()).unwrap();
        (xp, out)
    }

    #[test]
    fn skips_ignored_files_and_xps_folders() {
        let project = tempfile::tempdir().unwrap();
        let p = project.path();
        for file in [
            "train.py",
            "data/a.csv",
            "outputs/old.pkl",
            ".git/HEAD",
            ".xp/history.db",
            "big/blob.bin",
            "src/outputs/kept.txt",
            "notes.tmp",
        ] {
            std::fs::create_dir_all(p.join(file).parent().unwrap()).unwrap();
            std::fs::write(p.join(file), file).unwrap();
        }
        std::fs::write(p.join(".amlignore"), "big/\n").unwrap();
        std::fs::write(p.join(".gitignore"), "*.tmp\n").unwrap();
        let (_, destination) = take_and_restore(p);
        let d = destination.path();
        assert!(d.join("train.py").is_file());
        assert!(d.join("data/a.csv").is_file());
        assert!(
            d.join("src/outputs/kept.txt").is_file(),
            "only the root outputs/ is skipped"
        );
        for skipped in ["outputs", ".git", ".xp", "big", "notes.tmp"] {
            assert!(!d.join(skipped).exists(), "{skipped} must not be copied");
        }
    }

    #[test]
    fn links_to_files_become_copies_and_links_to_folders_still_resolve() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("big.csv"), "1,2").unwrap();
        let project = tempfile::tempdir().unwrap();
        let p = project.path();
        std::fs::write(p.join("config.yml"), "a: 1").unwrap();
        std::os::unix::fs::symlink("config.yml", p.join("alias.yml")).unwrap();
        std::os::unix::fs::symlink(outside.path(), p.join("data")).unwrap();
        let (_, destination) = take_and_restore(p);
        let alias = destination.path().join("alias.yml");
        assert!(
            !alias.symlink_metadata().unwrap().file_type().is_symlink(),
            "a file link is copied"
        );
        assert_eq!(std::fs::read_to_string(alias).unwrap(), "a: 1");
        assert_eq!(
            std::fs::read_to_string(destination.path().join("data/big.csv")).unwrap(),
            "1,2"
        );
    }

    #[test]
    fn unchanged_files_are_not_read_again_and_edits_are_seen() {
        let project = tempfile::tempdir().unwrap();
        let xp = tempfile::tempdir().unwrap();
        let p = project.path();
        std::fs::write(p.join("a.txt"), "one").unwrap();
        let (store, first) = take(xp.path(), p).unwrap();
        drop(store);
        // Same size, same second: only the index's distrust of fresh files and the changed
        // inode/ctime catch this edit.
        std::fs::write(p.join("a.txt"), "two").unwrap();
        let (store, second) = take(xp.path(), p).unwrap();
        assert_ne!(first.id, second.id);
        let entry = second.manifest.get(b"a.txt").unwrap();
        assert_eq!(
            entry.kind,
            Kind::File {
                hash: Hash::of(b"two"),
                size: 3
            }
        );
        assert!(store.has(&Hash::of(b"one")) && store.has(&Hash::of(b"two")));
        drop(store);
        let (store, third) = take(xp.path(), p).unwrap();
        assert_eq!(third.id, second.id, "nothing changed, same manifest");
        assert_eq!(index::Index::load(&store.index_path()).len(), 1);
        drop(store);
        std::fs::write(p.join("b.txt"), "b").unwrap();
        take(xp.path(), p).unwrap();
        std::fs::remove_file(p.join("b.txt")).unwrap();
        let (store, _) = take(xp.path(), p).unwrap();
        assert_eq!(
            index::Index::load(&store.index_path()).len(),
            1,
            "a removed file leaves the index"
        );
    }
}
