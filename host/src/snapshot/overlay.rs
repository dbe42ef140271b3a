//! Copy-on-write snapshots through overlayfs, where xp may mount (root, or CAP_SYS_ADMIN).
//!
//! Each distinct manifest gets a read-only tree in `.xp/store/trees/<manifest id>/`: its
//! folders, links, and hard links to the store's objects. A run's snapshot is an overlay
//! mount with that tree as the lower layer and an upper layer of the run's own, so whatever
//! the run writes, deletes or chmods (in place, as root or not) lands in its upper layer and
//! the objects, the project and every other run stay as they were. Mounting costs a few
//! milliseconds whatever the project's size; the tree costs one link per file, once per
//! distinct manifest.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::manifest::{Hash, Kind, Manifest};
use super::store::Store;

/// Unused trees kept for the next runs (the newest first); older ones are removed.
const KEEP_UNUSED_TREES: usize = 3;

/// The mounted snapshot's layers, beside the mount point in the run's folder.
pub struct Layers {
    pub upper: PathBuf,
    pub work: PathBuf,
}

pub fn layers(run_dir: &Path) -> Layers {
    Layers {
        upper: run_dir.join(".snapshot-upper"),
        work: run_dir.join(".snapshot-work"),
    }
}

/// The read-only tree of `manifest`, built when missing.
pub fn tree(store: &Store, manifest: &Manifest, id: &Hash) -> std::io::Result<PathBuf> {
    let trees = store.root().join("trees");
    let tree = trees.join(id.hex());
    if tree.is_dir() {
        // Marks it used: unused trees are removed oldest first.
        if let Ok(folder) = std::fs::File::open(&tree) {
            let _ = folder.set_modified(std::time::SystemTime::now());
        }
        return Ok(tree);
    }
    std::fs::create_dir_all(&trees)?;
    let staging = trees.join(format!(".build-{}-{}", id.hex(), std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging)?;
    let built = build_tree(store, manifest, &staging);
    if let Err(error) = built {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(error);
    }
    if let Err(error) = std::fs::rename(&staging, &tree) {
        let _ = std::fs::remove_dir_all(&staging);
        if !tree.is_dir() {
            return Err(error);
        }
    }
    Ok(tree)
}

fn build_tree(store: &Store, manifest: &Manifest, root: &Path) -> std::io::Result<()> {
    let mut folders = Vec::new();
    for entry in &manifest.entries {
        let path = root.join(std::ffi::OsStr::from_bytes(&entry.path));
        match &entry.kind {
            Kind::Dir => {
                std::fs::create_dir(&path)?;
                folders.push((path, entry.mode));
            }
            Kind::Link { target } => std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), &path)?,
            Kind::File { hash, .. } => {
                let object = store.object_path(hash);
                let object_mode = std::fs::metadata(&object)?.permissions().mode() & 0o7777;
                if object_mode == entry.mode {
                    std::fs::hard_link(&object, &path)?;
                } else {
                    // The same content with another mode: a copy of its own.
                    std::fs::copy(&object, &path)?;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(entry.mode))?;
                }
            }
        }
    }
    // Modes last, deepest first: a read-only folder must be filled before it is made so.
    for (path, mode) in folders.iter().rev() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode))?;
    }
    Ok(())
}

/// Characters overlayfs's option string cannot carry in a path.
fn mountable(path: &Path) -> bool {
    !path
        .as_os_str()
        .as_bytes()
        .iter()
        .any(|b| matches!(b, b',' | b':' | b'\\' | b'\n' | b' ' | b'\t'))
}

/// Mounts `lower` copy-on-write at `target` with the run's own layers. Fails (changing
/// nothing) where this process may not mount or the file system cannot be a layer.
pub fn mount(lower: &Path, layers: &Layers, target: &Path) -> std::io::Result<()> {
    for path in [lower, &layers.upper, &layers.work, target] {
        if !mountable(path) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} has a character overlayfs options cannot carry", path.display()),
            ));
        }
    }
    std::fs::create_dir_all(&layers.upper)?;
    std::fs::create_dir_all(&layers.work)?;
    std::fs::create_dir_all(target)?;
    let c = |path: &Path| CString::new(path.as_os_str().as_bytes()).expect("no NUL in a path");
    let target_c = c(target);
    let source = CString::new("xp-snapshot").expect("no NUL");
    let kind = CString::new("overlay").expect("no NUL");
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        layers.upper.display(),
        layers.work.display()
    );
    // `volatile`: the run's upper layer is scratch, so skip the sync that makes unmounting
    // take a second; kernels before 5.10 refuse it, and then it goes without.
    let mut last = std::io::Error::from_raw_os_error(libc::EINVAL);
    for data in [format!("{options},volatile"), options] {
        let data = CString::new(data).expect("no NUL in the options");
        // SAFETY: mount(2) with NUL-terminated strings that outlive the call.
        let result = unsafe {
            libc::mount(
                source.as_ptr(),
                target_c.as_ptr(),
                kind.as_ptr(),
                0,
                data.as_ptr().cast(),
            )
        };
        if result == 0 {
            return Ok(());
        }
        last = std::io::Error::last_os_error();
        if last.raw_os_error() != Some(libc::EINVAL) {
            break;
        }
    }
    let _ = std::fs::remove_dir(&layers.upper);
    let _ = std::fs::remove_dir_all(&layers.work);
    Err(last)
}

/// Detaches the overlay mounted at `target` (lazily: a process the run left behind keeps
/// its view until it ends). Returns false when nothing was mounted there.
pub fn unmount(target: &Path) -> bool {
    let Ok(target) = CString::new(target.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: umount2(2) with a NUL-terminated path.
    unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) == 0 }
}

/// One overlay mount of this machine, from `/proc/self/mountinfo`.
pub struct Mounted {
    pub target: PathBuf,
    pub lower: Option<PathBuf>,
}

/// `\040`-style escapes of mountinfo fields.
fn unescape_octal(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b)) {
            let value = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(out))
}

/// The overlay mounts whose mount point is under `under`.
pub fn mounted_under(under: &Path) -> Vec<Mounted> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for line in text.lines() {
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        let mut after = after.split(' ');
        if after.next() != Some("overlay") {
            continue;
        }
        let Some(target) = before.split(' ').nth(4).map(unescape_octal) else {
            continue;
        };
        if !target.starts_with(under) {
            continue;
        }
        let lower = after
            .nth(1)
            .and_then(|options| options.split(',').find_map(|o| o.strip_prefix("lowerdir=")))
            .map(unescape_octal);
        found.push(Mounted { target, lower });
    }
    found
}

/// Removes trees no mount uses, but the newest [`KEEP_UNUSED_TREES`] and `keep`.
pub fn remove_unused_trees(store: &Store, keep: Option<&Path>, keep_unused: Option<usize>) {
    let trees = store.root().join("trees");
    let in_use: Vec<PathBuf> = mounted_under(Path::new("/"))
        .into_iter()
        .filter_map(|mount| mount.lower)
        .collect();
    let Ok(entries) = std::fs::read_dir(&trees) else {
        return;
    };
    let mut unused: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| Some(path.as_path()) != keep && !in_use.iter().any(|lower| lower == path))
        .filter(|path| !path.file_name().is_some_and(|n| n.as_bytes().starts_with(b".build-")))
        .map(|path| {
            let modified = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (modified, path)
        })
        .collect();
    unused.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
    // Without the exclusive lock another submit may have just built one it is about to mount.
    let recent = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    if keep_unused.is_none() {
        unused.retain(|(modified, _)| *modified < recent);
    }
    for (_, path) in unused.into_iter().skip(keep_unused.unwrap_or(KEEP_UNUSED_TREES)) {
        remove_tree(&path);
    }
}

/// Removes a tree whose folders may be read-only.
pub fn remove_tree(path: &Path) {
    if std::fs::remove_dir_all(path).is_ok() {
        return;
    }
    for entry in walkdir_folders(path) {
        let _ = std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o700));
    }
    let _ = std::fs::remove_dir_all(path);
}

fn walkdir_folders(root: &Path) -> Vec<PathBuf> {
    let mut found = vec![root.to_path_buf()];
    let mut pending = vec![root.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let _ = std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700));
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                found.push(entry.path());
                pending.push(entry.path());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_read() {
        assert_eq!(unescape_octal("/a\\040b"), PathBuf::from("/a b"));
        assert_eq!(unescape_octal("/plain"), PathBuf::from("/plain"));
    }

    #[test]
    fn paths_overlayfs_cannot_carry_are_refused() {
        assert!(mountable(Path::new("/work/p/.xp/store/trees/ab")));
        assert!(!mountable(Path::new("/work/a,b")));
        assert!(!mountable(Path::new("/work/a:b")));
    }
}
