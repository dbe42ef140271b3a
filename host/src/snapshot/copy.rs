//! Writing a manifest's files out of the store as private files: reflinks (copy-on-write
//! clones, FICLONE) where the file system has them, plain copies otherwise. Used for runs
//! where no overlay can be mounted, and by `xp history restore`.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::manifest::{Kind, Manifest};
use super::store::Store;

/// `_IOW(0x94, 9, int)`: clone a whole file (btrfs, XFS, bcachefs, ...).
const FICLONE: libc::c_ulong = 0x4004_9409;

/// How the files were written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub reflinked: u64,
    pub copied: u64,
}

/// Writes every entry of `manifest` under `destination` (which must exist) from `store`.
pub fn write_out(store: &Store, manifest: &Manifest, destination: &Path) -> std::io::Result<Written> {
    let mut written = Written::default();
    let mut try_reflink = true;
    let mut folders = Vec::new();
    for entry in &manifest.entries {
        let path = destination.join(OsStr::from_bytes(&entry.path));
        match &entry.kind {
            Kind::Dir => {
                std::fs::create_dir(&path).or_else(|e| if path.is_dir() { Ok(()) } else { Err(e) })?;
                folders.push((path, entry.mode));
            }
            Kind::Link { target } => std::os::unix::fs::symlink(OsStr::from_bytes(target), &path)?,
            Kind::File { hash, .. } => {
                let object = store.object_path(hash);
                let source = File::open(&object)?;
                let target = std::fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
                // SAFETY: ioctl(FICLONE) with two open descriptors; it changes only `target`.
                let cloned =
                    try_reflink && unsafe { libc::ioctl(target.as_raw_fd(), FICLONE, source.as_raw_fd()) } == 0;
                if cloned {
                    written.reflinked += 1;
                } else {
                    // Once refused (ext4, tmpfs, another file system), never asked again.
                    try_reflink = false;
                    let mut source = source;
                    let mut target_file = &target;
                    std::io::copy(&mut source, &mut target_file)?;
                    written.copied += 1;
                }
                target.set_permissions(std::fs::Permissions::from_mode(entry.mode))?;
            }
        }
    }
    for (path, mode) in folders.iter().rev() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode))?;
    }
    Ok(written)
}
