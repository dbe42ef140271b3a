//! Reading the project into the store: the walk (ignore rules, folders that never travel,
//! links), the stat index that spares unchanged files, and the manifest that comes out.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use ignore::WalkBuilder;

use super::index::{Index, Stamp};
use super::manifest::{Entry, Kind, Manifest};
use super::store::Store;
use super::SnapshotError;

/// Folders at the project root that never travel: version control, results, xp's own.
pub const NEVER_COPIED: [&str; 3] = [".git", "outputs", crate::project::XP_DIR];

fn wall_clock_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Walks `project`, honouring `.gitignore` and `.amlignore` files (also outside git
/// repositories) and skipping [`NEVER_COPIED`], puts every new content in `store`, and
/// returns the manifest. A link to a file is taken as the file it points to, so the snapshot
/// travels whole to any target; a link to a folder (often a data set outside the project)
/// stays a link, made absolute so it still resolves from the snapshot.
pub fn ingest(store: &Store, project: &Path) -> Result<Manifest, SnapshotError> {
    let scan_started = wall_clock_ns();
    let index_path = store.index_path();
    let mut index = Index::load(&index_path);
    let before = index.len();
    let mut changed = false;
    let root = project.to_path_buf();
    let walker = WalkBuilder::new(project)
        .hidden(false)
        .git_global(false)
        .require_git(false)
        .add_custom_ignore_filename(".amlignore")
        .filter_entry(move |entry| {
            let at_root = entry.path().parent() == Some(root.as_path());
            !(at_root && NEVER_COPIED.iter().any(|name| entry.file_name() == *name))
        })
        .build();
    let mut entries = Vec::new();
    for entry in walker {
        let entry = entry.map_err(|error| SnapshotError::Walk {
            project: project.to_path_buf(),
            message: error.to_string(),
        })?;
        let path = entry.path();
        let relative = path.strip_prefix(project).expect("the walk stays inside the project");
        if relative.as_os_str().is_empty() {
            continue;
        }
        let io = |source| SnapshotError::Io {
            what: "reading",
            path: path.to_path_buf(),
            source,
        };
        let name = relative.as_os_str().as_bytes().to_vec();
        let Some(kind) = entry.file_type() else {
            continue;
        };
        let mut meta = entry.metadata().map_err(|e| SnapshotError::Walk {
            project: project.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut source = path.to_path_buf();
        if kind.is_symlink() {
            let link = std::fs::read_link(path).map_err(io)?;
            let resolved = path.parent().unwrap_or(project).join(&link);
            match std::fs::metadata(&resolved) {
                Ok(target) if target.is_file() => {
                    meta = target;
                    source = resolved;
                }
                _ => {
                    entries.push(Entry {
                        path: name,
                        mode: 0o777,
                        kind: Kind::Link {
                            target: resolved.as_os_str().as_bytes().to_vec(),
                        },
                    });
                    continue;
                }
            }
        } else if kind.is_dir() {
            entries.push(Entry {
                path: name,
                mode: meta.mode() & 0o7777,
                kind: Kind::Dir,
            });
            continue;
        } else if !kind.is_file() {
            // Sockets, fifos and devices are not project files.
            continue;
        }
        let stamp = Stamp::of(&meta);
        let hash = match index.lookup(&name, &stamp) {
            Some(hash) => hash,
            None => {
                let (hash, size) = store.add_file(&source, stamp.size, stamp.mode).map_err(io)?;
                // The file changed while it was read: its stamp no longer describes the bytes.
                let stamp_now = std::fs::metadata(&source).map(|m| Stamp::of(&m)).ok();
                if size == stamp.size && stamp_now == Some(stamp) {
                    index.record(name.clone(), stamp, hash, scan_started);
                }
                changed = true;
                entries.push(Entry {
                    path: name,
                    mode: stamp.mode & 0o777,
                    kind: Kind::File { hash, size },
                });
                continue;
            }
        };
        entries.push(Entry {
            path: name,
            mode: stamp.mode & 0o777,
            kind: Kind::File { hash, size: stamp.size },
        });
    }
    let manifest = Manifest::new(entries);
    let files = manifest.summary().files as usize;
    if index.len() > files {
        // Files that left the project (or the snapshot, through an ignore rule) leave the index.
        index.retain_paths(|path| manifest.get(path).is_some_and(|e| matches!(e.kind, Kind::File { .. })));
    }
    if changed || index.len() != before {
        // Only a cache: a failure to save it costs the next submit some hashing, nothing else.
        let _ = index.save(&index_path);
    }
    Ok(manifest)
}
