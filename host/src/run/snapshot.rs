//! The private copy of the project a run executes in.

use std::path::Path;

use ignore::WalkBuilder;

/// Folders at the project root that never travel: version control, results, xp's own.
const NEVER_COPIED: [&str; 3] = [".git", "outputs", crate::project::XP_DIR];

/// Copies `project` into `destination`, honouring `.gitignore` and `.amlignore` files (also
/// outside git repositories) and skipping [`NEVER_COPIED`]. Returns the number of files.
pub fn copy_project(project: &Path, destination: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(destination)?;
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
    let mut files = 0;
    for entry in walker {
        let entry = entry.map_err(std::io::Error::other)?;
        let relative = entry
            .path()
            .strip_prefix(project)
            .expect("the walk stays inside the project");
        if relative.as_os_str().is_empty() {
            continue;
        }
        let target = destination.join(relative);
        let Some(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            std::fs::create_dir_all(&target)?;
        } else if kind.is_symlink() {
            // A link to a file becomes a copy of it, so the snapshot travels whole to any
            // target. A link to a folder (often a data set outside the project) stays a link,
            // made absolute so it still resolves from the snapshot.
            let link = std::fs::read_link(entry.path())?;
            let resolved = entry.path().parent().unwrap_or(project).join(&link);
            if resolved.is_file() {
                std::fs::copy(&resolved, &target)?;
                files += 1;
            } else {
                std::os::unix::fs::symlink(&resolved, &target)?;
            }
        } else {
            std::fs::copy(entry.path(), &target)?;
            files += 1;
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let destination = tempfile::tempdir().unwrap();
        copy_project(p, destination.path()).unwrap();
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
        let destination = tempfile::tempdir().unwrap();
        copy_project(p, destination.path()).unwrap();
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
}
