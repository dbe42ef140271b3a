//! Tar archives: build contexts and snapshots going into the engine, outputs coming back.

use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::artifacts::{clear_place, is_plain_relative, join_bytes, prepare_parents, Report};

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

/// Unpacks a tar of a run's `outputs/` (entries under one top folder, as an engine or `tar`
/// sends a folder) into `destination`, without that top folder, by the rule of
/// [`crate::artifacts`]: files and folders are written, links are made as links with their
/// target text once every file is in place (so no entry is ever written through one), and
/// anything else is skipped. An entry that fails or is refused is reported and the others
/// still come back; so does what came before a damaged end of the archive.
pub fn unpack_outputs(archive: impl Read, destination: &Path) -> Report {
    let mut report = Report::default();
    if let Err(error) = std::fs::create_dir_all(destination) {
        report.lose(b"", format!("creating {}: {error}", destination.display()));
        return report;
    }
    let mut archive = tar::Archive::new(archive);
    let mut links: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let entries = match archive.entries() {
        Ok(entries) => entries,
        Err(error) => {
            report.lose(b"", format!("reading the archive: {error}"));
            return report;
        }
    };
    for entry in entries {
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                report.lose(b"", format!("the archive of outputs/ is damaged: {error}"));
                break;
            }
        };
        let full = entry.path_bytes().into_owned();
        // Without the top folder, and without `.` or empty components (`./outputs/a`).
        let parts: Vec<&[u8]> = full
            .split(|b| *b == b'/')
            .filter(|part| !part.is_empty() && *part != b".")
            .skip(1)
            .collect();
        let inner = parts.join(&b'/');
        let kind = entry.header().entry_type();
        if inner.is_empty() {
            if !kind.is_dir() {
                report.skip(
                    b"",
                    "outputs is not a folder (a link or a file); xp never follows links, so nothing came back",
                );
            }
            continue;
        }
        if !is_plain_relative(&inner) {
            report.skip(&inner, "its name leads outside outputs/; refused");
            continue;
        }
        let placed = if kind.is_dir() {
            prepare_parents(destination, &inner).and_then(|path| match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => Ok(()),
                Ok(_) => Err(io::Error::other(format!(
                    "{} exists and is not a folder",
                    path.display()
                ))),
                Err(_) => std::fs::create_dir(&path),
            })
        } else if kind.is_file() {
            unpack_file(&mut entry, destination, &inner)
        } else if kind.is_symlink() {
            match entry.link_name_bytes() {
                Some(target) => links.push((inner.clone(), target.into_owned())),
                None => report.skip(&inner, "a link without a target; skipped"),
            }
            Ok(())
        } else if kind.is_hard_link() {
            hard_link(&entry, destination, &inner)
        } else {
            let what = match kind {
                tar::EntryType::Fifo => "a named pipe",
                tar::EntryType::Char | tar::EntryType::Block => "a device",
                _ => "neither a file, a folder nor a link",
            };
            report.skip(&inner, format!("{what}; only files, folders and links come back"));
            Ok(())
        };
        if let Err(error) = placed {
            report.lose(&inner, error);
        }
    }
    for (inner, target) in links {
        let path = match prepare_parents(destination, &inner) {
            Ok(path) => path,
            Err(error) => {
                report.skip(&inner, format!("a link inside a link or a file: {error}"));
                continue;
            }
        };
        if std::fs::symlink_metadata(&path).is_ok() {
            report.skip(
                &inner,
                "a link whose name the archive also gave to a file or folder; the link was not made",
            );
            continue;
        }
        if let Err(error) = std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), &path) {
            report.lose(&inner, error);
        }
    }
    report
}

fn unpack_file<R: Read>(entry: &mut tar::Entry<'_, R>, destination: &Path, inner: &[u8]) -> io::Result<()> {
    let path = prepare_parents(destination, inner)?;
    clear_place(&path)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o644 | (entry.header().mode().unwrap_or(0o644) & 0o111))
        .open(&path)?;
    if let Err(error) = io::copy(entry, &mut file) {
        // A partial file is no artifact.
        let _ = std::fs::remove_file(&path);
        return Err(error);
    }
    Ok(())
}

/// A second name of a file already unpacked (tar keeps hard links that way).
fn hard_link<R: Read>(entry: &tar::Entry<'_, R>, destination: &Path, inner: &[u8]) -> io::Result<()> {
    let Some(target) = entry.link_name_bytes() else {
        return Err(io::Error::other("a hard link without a target"));
    };
    let target: Vec<&[u8]> = target
        .split(|b| *b == b'/')
        .filter(|part| !part.is_empty() && *part != b".")
        .skip(1)
        .collect();
    let target = target.join(&b'/');
    if !is_plain_relative(&target) {
        return Err(io::Error::other("a hard link to a name outside outputs/"));
    }
    let source = join_bytes(destination, &target);
    match std::fs::symlink_metadata(&source) {
        Ok(meta) if meta.is_file() => {}
        _ => return Err(io::Error::other("a hard link to a file that did not come back")),
    }
    let path = prepare_parents(destination, inner)?;
    clear_place(&path)?;
    std::fs::hard_link(&source, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link_header() -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header
    }

    fn file_header(size: usize) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_size(size as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header
    }

    #[test]
    fn links_come_back_as_links_and_are_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append_link(&mut link_header(), "outputs/d", &outside).unwrap();
        builder
            .append_data(&mut file_header(5), "outputs/d/written", &b"owned"[..])
            .unwrap();
        builder
            .append_link(&mut link_header(), "outputs/p", "/etc/passwd")
            .unwrap();
        builder
            .append_data(&mut file_header(2), "outputs/ok.txt", &b"ok"[..])
            .unwrap();
        let bytes = builder.into_inner().unwrap();
        let destination = dir.path().join("dest");
        let report = unpack_outputs(bytes.as_slice(), &destination);
        assert!(
            std::fs::read_dir(&outside).unwrap().next().is_none(),
            "nothing written outside"
        );
        assert_eq!(
            std::fs::read_link(destination.join("p")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert_eq!(std::fs::read(destination.join("ok.txt")).unwrap(), b"ok");
        // The folder the archive also named `d` won; the link of that name was skipped.
        assert!(destination.join("d").is_dir());
        assert_eq!(report.skipped.len(), 1, "{report:?}");
        assert!(report.lost.is_empty(), "{report:?}");
    }

    #[test]
    fn names_leading_outside_are_refused_and_the_rest_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut raw = Vec::new();
        // tar::Builder refuses `..` itself: write the header by hand, as a hostile host would.
        let mut header = file_header(4);
        header.as_gnu_mut().unwrap().name[..22].copy_from_slice(b"outputs/../../escaped!");
        header.set_cksum();
        raw.extend_from_slice(header.as_bytes());
        raw.extend_from_slice(b"evil");
        raw.extend_from_slice(&[0u8; 508]);
        let mut builder = tar::Builder::new(raw);
        let odd = std::ffi::OsStr::from_bytes(b"outputs/caf\xe9.txt");
        builder.append_data(&mut file_header(1), odd, &b"c"[..]).unwrap();
        let bytes = builder.into_inner().unwrap();
        let destination = dir.path().join("a/b/dest");
        let report = unpack_outputs(bytes.as_slice(), &destination);
        assert!(!dir.path().join("a/escaped!").exists());
        assert_eq!(report.skipped.len(), 1, "{report:?}");
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
        assert_eq!(std::fs::read(destination.join(name)).unwrap(), b"c");
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
        let report = unpack_outputs(bytes.as_slice(), &destination);
        assert!(report.lines().is_empty(), "{report:?}");
        assert_eq!(std::fs::read_to_string(destination.join("a.txt")).unwrap(), "a");
        assert_eq!(std::fs::read_to_string(destination.join("sub/b.txt")).unwrap(), "b");
        assert_eq!(std::fs::read_to_string(destination.join("c.txt")).unwrap(), "c");
    }

    #[test]
    fn a_damaged_archive_keeps_what_came_before() {
        let dir = tempfile::tempdir().unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        builder
            .append_data(&mut file_header(2), "outputs/first", &b"11"[..])
            .unwrap();
        builder
            .append_data(&mut file_header(2), "outputs/second", &b"22"[..])
            .unwrap();
        let mut bytes = builder.into_inner().unwrap();
        bytes.truncate(512 + 512 + 100);
        let destination = dir.path().join("dest");
        let report = unpack_outputs(bytes.as_slice(), &destination);
        assert_eq!(std::fs::read(destination.join("first")).unwrap(), b"11");
        assert_eq!(report.lost.len(), 1, "{report:?}");
    }
}
