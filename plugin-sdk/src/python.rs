//! xp's Python helpers, which every run gets first on `PYTHONPATH` (the host writes them into
//! the request's `support_dir`): `xp_logging.log_metric` and, for Workbench scripts,
//! `azureml.logging.get_azureml_logger`. Both print metric lines
//! ([`xp_plugin_api::METRIC_LINE_PREFIX`]) on standard output.

use std::path::Path;

/// The helper files, by path relative to the support folder.
pub const FILES: [(&str, &str); 3] = [
    ("xp_logging.py", include_str!("../python/xp_logging.py")),
    ("azureml/__init__.py", include_str!("../python/azureml/__init__.py")),
    ("azureml/logging.py", include_str!("../python/azureml/logging.py")),
];

/// Writes the helpers into `dir` (created).
pub fn write_helpers(dir: &Path) -> std::io::Result<()> {
    for (name, text) in FILES {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("files live in a folder"))?;
        std::fs::write(path, text)?;
    }
    Ok(())
}
