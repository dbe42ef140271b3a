//! What names a project on a target: run ids are `<project folder name>_<ms>`, and two
//! projects with the same folder name must still keep their containers, images and run
//! folders apart. One tag of the project's folder, the same in every plugin.

use std::path::Path;

use sha2::{Digest, Sha256};

/// Eight hex digits of the SHA-256 of the project folder's path: `xp-<run id>-<tag>`,
/// `xp-env/<name>-<tag>:...`, `runs/<run id>-<tag>`.
pub fn folder_tag(project_dir: &Path) -> String {
    let hash = Sha256::digest(project_dir.to_string_lossy().as_bytes());
    hash[..4].iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_is_eight_hex_digits_of_the_folder() {
        let tag = folder_tag(Path::new("/home/me/project"));
        assert_eq!(tag.len(), 8);
        assert!(tag.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(tag, folder_tag(Path::new("/home/me/project")));
        assert_ne!(tag, folder_tag(Path::new("/home/you/project")));
    }
}
