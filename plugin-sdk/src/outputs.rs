//! Bringing a run's `outputs/` back as its artifacts, by the rule of [`crate::artifacts`]:
//! files and folders move, links stay links (never followed), anything else is skipped, and
//! one entry that fails never keeps the others from coming back.

use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use xp_plugin_api::Events;

use crate::artifacts::{clear_place, describe_other, join_bytes, prepare_parents, Report};

/// Moves the entries of `from` (a run's `outputs/` folder) into `to`, replacing entries of
/// the same name, and tells the run's log what was left out and why. Never fails the run.
pub fn collect(from: &Path, to: &Path, events: &Events<'_>) {
    collect_reporting(from, to).send(events);
}

/// [`collect`], returning what was left out instead of sending it.
pub fn collect_reporting(from: &Path, to: &Path) -> Report {
    let mut report = Report::default();
    match std::fs::symlink_metadata(from) {
        Ok(meta) if meta.is_dir() => {}
        Ok(meta) if meta.file_type().is_symlink() => {
            let target = std::fs::read_link(from).unwrap_or_default();
            report.skip(
                b"",
                format!(
                    "outputs/ itself is a link (to {}), not a folder; xp never follows links, so nothing came back",
                    target.display()
                ),
            );
            return report;
        }
        Ok(_) => {
            report.skip(b"", "outputs is not a folder; nothing came back");
            return report;
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => return report,
        Err(error) => {
            report.lose(b"", error);
            return report;
        }
    }
    if std::fs::symlink_metadata(to).is_err() {
        if let Some(parent) = to.parent() {
            if let Err(error) = std::fs::create_dir_all(parent) {
                report.lose(b"", format!("creating {}: {error}", parent.display()));
                return report;
            }
        }
        // One rename moves the whole folder, links as links; what is not a file, a folder or
        // a link is taken out again below.
        if std::fs::rename(from, to).is_ok() {
            remove_others(to, &mut report);
            return report;
        }
    }
    merge(from, to, &[], &mut report);
    report
}

/// Removes entries of a collected folder that the rule does not keep (pipes, sockets,
/// devices), reporting each.
fn remove_others(root: &Path, report: &mut Report) {
    let (entries, problems) = crate::artifacts::walk(root);
    for problem in problems {
        report.lose(b"", problem);
    }
    for entry in entries {
        if let crate::artifacts::EntryKind::Other { what } = entry.kind {
            let _ = std::fs::remove_file(join_bytes(root, &entry.relative));
            report.skip(
                &entry.relative,
                format!("{what}; only files, folders and links come back"),
            );
        }
    }
}

/// Moves (or copies, across file systems) each entry of `from` below `to`; `relative` is
/// where `from` is inside the outputs folder.
fn merge(from: &Path, to: &Path, relative: &[u8], report: &mut Report) {
    let reader = match std::fs::read_dir(from) {
        Ok(reader) => reader,
        Err(error) => {
            report.lose(relative, error);
            return;
        }
    };
    for entry in reader {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                report.lose(relative, error);
                continue;
            }
        };
        let mut inner = relative.to_vec();
        if !inner.is_empty() {
            inner.push(b'/');
        }
        inner.extend_from_slice(entry.file_name().as_encoded_bytes());
        if let Err(error) = move_entry(&entry, to, &inner, report) {
            report.lose(&inner, error);
        }
    }
}

fn move_entry(entry: &std::fs::DirEntry, to: &Path, inner: &[u8], report: &mut Report) -> io::Result<()> {
    let source = entry.path();
    let file_type = entry.file_type()?;
    if file_type.is_dir() {
        let target = prepare_parents(to, inner)?;
        match std::fs::symlink_metadata(&target) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                clear_place(&target)?;
                std::fs::create_dir(&target)?;
            }
            Err(_) => std::fs::create_dir(&target)?,
        }
        merge(&source, to, inner, report);
        return Ok(());
    }
    if !file_type.is_file() && !file_type.is_symlink() {
        report.skip(
            inner,
            format!(
                "{}; only files, folders and links come back",
                describe_other(&file_type)
            ),
        );
        return Ok(());
    }
    let target = prepare_parents(to, inner)?;
    // A rename replaces the entry at `target` itself, never what a link there points to.
    match std::fs::rename(&source, &target) {
        Ok(()) => return Ok(()),
        Err(error) if error.raw_os_error() != Some(libc::EXDEV) => {
            if std::fs::symlink_metadata(&target).is_ok_and(|meta| meta.is_dir()) {
                return Err(io::Error::other(format!(
                    "{} is a folder in the artifacts; a file of that name cannot replace it",
                    target.display()
                )));
            }
            return Err(error);
        }
        Err(_) => {}
    }
    clear_place(&target)?;
    if file_type.is_symlink() {
        let link = std::fs::read_link(&source)?;
        return std::os::unix::fs::symlink(link, &target);
    }
    let mut input = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&source)?;
    let mut output = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&target)?;
    if let Err(error) = io::copy(&mut input, &mut output) {
        // A partial copy is no artifact.
        let _ = std::fs::remove_file(&target);
        return Err(error);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn moves_and_merges() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("snap/outputs");
        std::fs::create_dir_all(from.join("sub")).unwrap();
        std::fs::write(from.join("model.pkl"), "new").unwrap();
        std::fs::write(from.join("sub/a.txt"), "a").unwrap();
        let to = dir.path().join("run/outputs");
        std::fs::create_dir_all(&to).unwrap();
        std::fs::write(to.join("model.pkl"), "old").unwrap();
        std::fs::write(to.join("kept.txt"), "kept").unwrap();
        let report = collect_reporting(&from, &to);
        assert!(report.lost.is_empty() && report.skipped.is_empty(), "{report:?}");
        assert_eq!(std::fs::read_to_string(to.join("model.pkl")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(to.join("sub/a.txt")).unwrap(), "a");
        assert_eq!(std::fs::read_to_string(to.join("kept.txt")).unwrap(), "kept");

        let fresh = dir.path().join("other/outputs");
        std::fs::create_dir_all(dir.path().join("snap2/outputs")).unwrap();
        std::fs::write(dir.path().join("snap2/outputs/x"), "x").unwrap();
        collect_reporting(&dir.path().join("snap2/outputs"), &fresh);
        assert!(fresh.join("x").is_file());
    }

    #[test]
    fn no_outputs_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let report = collect_reporting(&dir.path().join("missing"), &dir.path().join("to"));
        assert!(report.lines().is_empty());
        assert!(!dir.path().join("to").exists());
    }

    #[test]
    fn links_stay_links_and_pipes_are_skipped_without_losing_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("snap/outputs");
        std::fs::create_dir_all(&from).unwrap();
        std::fs::write(from.join("a.txt"), "a").unwrap();
        std::fs::write(from.join(OsStr::from_bytes(b"caf\xe9.txt")), "c").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", from.join("p")).unwrap();
        assert!(std::process::Command::new("mkfifo")
            .arg(from.join("fifo"))
            .status()
            .unwrap()
            .success());
        let to = dir.path().join("run/outputs");
        let report = collect_reporting(&from, &to);
        assert_eq!(std::fs::read_link(to.join("p")).unwrap(), Path::new("/etc/passwd"));
        assert!(std::fs::symlink_metadata(to.join("fifo")).is_err());
        assert_eq!(std::fs::read(to.join(OsStr::from_bytes(b"caf\xe9.txt"))).unwrap(), b"c");
        assert_eq!(std::fs::read(to.join("a.txt")).unwrap(), b"a");
        assert_eq!(report.skipped.len(), 1, "{report:?}");
        assert!(report.lost.is_empty(), "{report:?}");
    }

    #[test]
    fn a_merge_never_writes_through_a_link_already_there() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("victim"), "precious").unwrap();
        let to = dir.path().join("project/outputs");
        std::fs::create_dir_all(&to).unwrap();
        std::os::unix::fs::symlink(&outside, to.join("d")).unwrap();
        std::os::unix::fs::symlink(outside.join("victim"), to.join("f")).unwrap();
        let from = dir.path().join("snap/outputs");
        std::fs::create_dir_all(from.join("d")).unwrap();
        std::fs::write(from.join("d/victim"), "overwritten").unwrap();
        std::fs::write(from.join("f"), "new").unwrap();
        collect_reporting(&from, &to);
        assert_eq!(std::fs::read_to_string(outside.join("victim")).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(to.join("d/victim")).unwrap(), "overwritten");
        assert_eq!(std::fs::read_to_string(to.join("f")).unwrap(), "new");
    }

    #[test]
    fn outputs_that_is_a_link_brings_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("snap")).unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("snap/outputs")).unwrap();
        let to = dir.path().join("run/outputs");
        let report = collect_reporting(&dir.path().join("snap/outputs"), &to);
        assert!(std::fs::symlink_metadata(&to).is_err());
        assert_eq!(report.skipped.len(), 1, "{report:?}");
    }
}
