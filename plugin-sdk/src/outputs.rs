//! Bringing a run's `outputs/` back as its artifacts.

use std::io;
use std::path::Path;

/// Moves the files of `from` (a run's `outputs/` folder) into `to`, replacing files of the same
/// name. A rename when both are on one file system, a copy otherwise.
pub fn collect(from: &Path, to: &Path) -> io::Result<()> {
    if !from.is_dir() {
        return Ok(());
    }
    if !to.exists() {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if std::fs::rename(from, to).is_ok() {
            return Ok(());
        }
    }
    merge(from, to)
}

fn merge(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            merge(&source, &target)?;
        } else if std::fs::rename(&source, &target).is_err() {
            std::fs::copy(&source, &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        collect(&from, &to).unwrap();
        assert_eq!(std::fs::read_to_string(to.join("model.pkl")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(to.join("sub/a.txt")).unwrap(), "a");
        assert_eq!(std::fs::read_to_string(to.join("kept.txt")).unwrap(), "kept");

        let fresh = dir.path().join("other/outputs");
        std::fs::create_dir_all(dir.path().join("snap2/outputs")).unwrap();
        std::fs::write(dir.path().join("snap2/outputs/x"), "x").unwrap();
        collect(&dir.path().join("snap2/outputs"), &fresh).unwrap();
        assert!(fresh.join("x").is_file());
    }

    #[test]
    fn no_outputs_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        collect(&dir.path().join("missing"), &dir.path().join("to")).unwrap();
        assert!(!dir.path().join("to").exists());
    }
}
