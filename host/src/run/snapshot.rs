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
            let link = std::fs::read_link(entry.path())?;
            std::os::unix::fs::symlink(link, &target)?;
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
}
