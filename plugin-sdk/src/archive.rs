//! Tar archives: build contexts and snapshots going into the engine, outputs coming back.

use std::io::{self, Read};
use std::path::{Component, Path};

/// A tar of each `(folder, name in the archive)`, and of each `(bytes, path in the archive)`.
pub fn tar(folders: &[(&Path, &str)], files: &[(&str, &[u8])]) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    for (folder, name) in folders {
        builder.append_dir_all(name, folder)?;
    }
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, *bytes)?;
    }
    builder.into_inner()
}

/// Unpacks a tar whose entries live under one top folder (`outputs/...`, as the engine sends
/// a folder) into `destination`, without that top folder. Entries that would land outside
/// `destination` are refused.
pub fn unpack_folder(archive: impl Read, destination: &Path) -> io::Result<usize> {
    let mut archive = tar::Archive::new(archive);
    let mut files = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let inner: std::path::PathBuf = path.components().skip(1).collect();
        if inner.as_os_str().is_empty() {
            continue;
        }
        if inner.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(io::Error::other(format!("refusing archive entry {}", path.display())));
        }
        let target = destination.join(&inner);
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&target)?;
            continue;
        }
        // Only plain files: a link could point outside `destination` and a later entry write
        // through it (the archive comes from a remote host or a container).
        if !kind.is_file() {
            return Err(io::Error::other(format!(
                "refusing archive entry {}: only files and folders come back as outputs",
                path.display()
            )));
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        entry.unpack(&target)?;
        files += 1;
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_in_an_archive_are_refused() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder.append_link(&mut header, "outputs/x", "/tmp").unwrap();
        let bytes = builder.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let error = unpack_folder(bytes.as_slice(), &dir.path().join("dest")).unwrap_err();
        assert!(error.to_string().contains("refusing"), "{error}");
        assert!(!dir.path().join("dest/x").exists());
    }

    #[test]
    fn round_trips_a_folder_without_its_top_name() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("src");
        std::fs::create_dir_all(source.join("sub")).unwrap();
        std::fs::write(source.join("a.txt"), "a").unwrap();
        std::fs::write(source.join("sub/b.txt"), "b").unwrap();
        let bytes = tar(&[(&source, "outputs")], &[("extra/c.txt", b"c")]).unwrap();
        let destination = dir.path().join("dest");
        let files = unpack_folder(bytes.as_slice(), &destination).unwrap();
        assert_eq!(files, 3);
        assert_eq!(std::fs::read_to_string(destination.join("a.txt")).unwrap(), "a");
        assert_eq!(std::fs::read_to_string(destination.join("sub/b.txt")).unwrap(), "b");
        assert_eq!(std::fs::read_to_string(destination.join("c.txt")).unwrap(), "c");
    }
}
