//! xp's Python helpers (`xp_logging`, and `azureml.logging` for Workbench scripts), written
//! once per project into `.xp/support/<content hash>/` and put on every run's PYTHONPATH.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

const FILES: [(&str, &str); 3] = [
    (
        "xp_logging.py",
        include_str!("../../../plugin-sdk/python/xp_logging.py"),
    ),
    (
        "azureml/__init__.py",
        include_str!("../../../plugin-sdk/python/azureml/__init__.py"),
    ),
    (
        "azureml/logging.py",
        include_str!("../../../plugin-sdk/python/azureml/logging.py"),
    ),
];

fn content_tag() -> String {
    // Stable across runs of the same build: DefaultHasher::new() uses fixed keys.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    FILES.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// The support folder for this build of xp, written if absent.
pub fn ensure(xp_dir: &Path) -> std::io::Result<PathBuf> {
    let dir = xp_dir.join("support").join(content_tag());
    if dir.is_dir() {
        return Ok(dir);
    }
    // Write beside, then rename: concurrent runs never see a half-written folder.
    let staging = xp_dir.join("support").join(format!(".staging-{}", std::process::id()));
    for (name, text) in FILES {
        let path = staging.join(name);
        std::fs::create_dir_all(path.parent().expect("files live in a folder"))?;
        std::fs::write(path, text)?;
    }
    match std::fs::rename(&staging, &dir) {
        Ok(()) => Ok(dir),
        Err(_) if dir.is_dir() => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(dir)
        }
        Err(error) => Err(error),
    }
}
