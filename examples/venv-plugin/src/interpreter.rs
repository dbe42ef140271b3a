//! The base interpreter a venv is made from: found on PATH or by path, and asked its version.

use std::path::{Path, PathBuf};
use std::process::Command;

use xp_plugin_api::{PluginFailure, Target};

/// The interpreter used when a target names none.
pub const DEFAULT_PYTHON: &str = "python3";

/// A base interpreter, as it describes itself.
#[derive(Debug, Clone)]
pub struct Interpreter {
    /// The real executable (a pyenv shim or a symlink resolved by Python itself).
    pub executable: PathBuf,
    /// `3.11.7`.
    pub version: String,
    /// `sys.version`, build details included: a rebuilt interpreter gets a new environment.
    pub full_version: String,
    /// Whether `venv` and `ensurepip` are there (Debian splits them into `python3-venv`).
    pub has_venv: bool,
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

pub(crate) use xp_plugin_sdk::resolve::expand_home;

/// `program` as a path (relative ones against the project) or looked up on PATH.
fn find_program(program: &str, project_dir: &Path) -> Option<PathBuf> {
    if program.contains('/') {
        let path = project_dir.join(expand_home(program));
        return is_executable(&path).then_some(path);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| is_executable(candidate))
    })
}

/// The target's `pythonLocation`, or the default.
pub fn configured_python(target: &Target) -> &str {
    target
        .setting_str("pythonLocation")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .unwrap_or(DEFAULT_PYTHON)
}

const PROBE: &str = "import sys, importlib.util as u\n\
print(sys.executable)\n\
print('%d.%d.%d' % sys.version_info[:3])\n\
print(sys.version.replace('\\n', ' '))\n\
print(int(u.find_spec('venv') is not None and u.find_spec('ensurepip') is not None))\n";

/// Finds the target's base interpreter and asks it what it is. Runs in the project folder, so
/// that version managers (pyenv's `.python-version`) pick the project's Python.
pub fn find_interpreter(target: &Target, project_dir: &Path) -> Result<Interpreter, PluginFailure> {
    let configured = configured_python(target);
    let fix = format!(
        "set pythonLocation in aml_config/{}.compute to an installed Python 3 interpreter, e.g. python3 or /usr/bin/python3",
        target.name
    );
    let path = find_program(configured, project_dir).ok_or_else(|| {
        PluginFailure::new(format!(
            "pythonLocation '{configured}' was not found{}; {fix}",
            if configured.contains('/') {
                " (no such executable file)"
            } else {
                " on PATH"
            }
        ))
    })?;
    let output = Command::new(&path)
        .args(["-c", PROBE])
        .current_dir(project_dir)
        .env_remove("PYTHONHOME")
        .output()
        .map_err(|e| PluginFailure::new(format!("could not run pythonLocation {}: {e}; {fix}", path.display())))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    if !output.status.success() || lines.len() < 4 {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(PluginFailure::new(format!(
            "pythonLocation {} did not run as a Python 3 interpreter ({}): {}; {fix}",
            path.display(),
            output.status,
            stderr.trim()
        )));
    }
    let executable = Some(PathBuf::from(lines[0]))
        .filter(|p| p.is_absolute())
        .unwrap_or(path);
    Ok(Interpreter {
        executable,
        version: lines[1].to_owned(),
        full_version: lines[2].to_owned(),
        has_venv: lines[3] == "1",
    })
}
