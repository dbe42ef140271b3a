//! Virtual environments built from a project's pip list and cached by content.
//!
//! An environment lives in `<state_dir>/venvs/<hash>/`, where the hash covers the base
//! interpreter (its path and exact version), the pip list as written, and the contents of the
//! local files the list names (wheels). A second run with the same inputs reuses it.
//!
//! Building is safe when runs race: a lock file per hash lets one run build while the others
//! wait; the build happens in a sibling folder (`.building-<hash>-<pid>`) that gets a ready
//! marker only after pip succeeded, and is then renamed into place. A folder without the marker
//! is never used. Should the rename lose a race anyway (a file system without working locks),
//! the winner's environment is used.

use std::collections::VecDeque;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use xp_plugin_api::abi::LogStream;
use xp_plugin_api::{Dependencies, Events, PluginFailure, Target};

use crate::fingerprint::Fingerprint;
use crate::process;

/// The interpreter used when a target names none.
pub const DEFAULT_PYTHON: &str = "python3";
/// Written into an environment once it is complete; folders without it are never used.
const READY_MARKER: &str = ".xp-ready";
/// The pip list as pip read it, kept in the environment for reference.
const REQUIREMENTS_FILE: &str = "xp-requirements.txt";
/// Bump when the layout of a cached environment changes, so old ones are not reused.
const CACHE_FORMAT: &str = "xp-venv/1";
/// How many of pip's last error lines a failure message quotes.
const PIP_ERROR_LINES: usize = 8;

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

/// A ready environment.
#[derive(Debug)]
pub struct Environment {
    pub hash: String,
    pub dir: PathBuf,
    /// True when it existed and nothing was built.
    pub cached: bool,
    pub interpreter: Interpreter,
}

impl Environment {
    pub fn python(&self) -> PathBuf {
        self.dir.join("bin").join("python")
    }

    pub fn bin_dir(&self) -> PathBuf {
        self.dir.join("bin")
    }
}

/// What [`ensure`] leads to.
pub enum Prepared {
    Ready(Environment),
    /// The host cancelled while the environment was being built; nothing was kept.
    Canceled,
}

/// What an environment is made from.
pub struct Spec<'a> {
    pub project_dir: &'a Path,
    pub target: &'a Target,
    pub dependencies: &'a Dependencies,
    pub state_dir: &'a Path,
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix('~'), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            PathBuf::from(home).join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(path),
    }
}

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

/// A pip list entry that names a file of the project (a wheel or an sdist), if it is one.
fn local_file(project_dir: &Path, spec: &str) -> Option<PathBuf> {
    let spec = spec.trim();
    if spec.is_empty() || spec.starts_with('-') || spec.contains("://") {
        return None;
    }
    let path = project_dir.join(expand_home(spec));
    path.is_file().then_some(path)
}

/// The hash naming the environment of these inputs.
fn environment_hash(spec: &Spec<'_>, interpreter: &Interpreter) -> Result<String, PluginFailure> {
    let mut fingerprint = Fingerprint::default();
    fingerprint.field("format", CACHE_FORMAT.as_bytes());
    fingerprint.field("python", interpreter.executable.as_os_str().as_encoded_bytes());
    fingerprint.field("version", interpreter.full_version.as_bytes());
    for line in &spec.dependencies.pip_packages {
        fingerprint.field("pip", line.trim().as_bytes());
        if let Some(path) = local_file(spec.project_dir, line) {
            fingerprint
                .file("file", &path)
                .map_err(|e| PluginFailure::new(format!("reading {} (pip list): {e}", path.display())))?;
        }
    }
    Ok(fingerprint.hex())
}

fn is_ready(dir: &Path) -> bool {
    dir.join(READY_MARKER).is_file()
}

/// Removes a half-built folder when dropped, unless disarmed: a failed, cancelled or
/// panicking build leaves nothing behind.
struct Staging {
    dir: PathBuf,
    keep: bool,
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Takes the build lock of one environment, telling the user when another run holds it.
/// `None` when the host cancelled while waiting.
fn lock(path: &Path, hash: &str, events: &Events<'_>) -> Result<Option<File>, PluginFailure> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| PluginFailure::new(format!("creating the lock file {}: {e}", path.display())))?;
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Some(file)),
            Err(TryLockError::WouldBlock) => {
                if !told {
                    events.info(&format!(
                        "Waiting for another run that is building virtual environment {hash}"
                    ));
                    told = true;
                }
                if events.is_cancelled() {
                    return Ok(None);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(TryLockError::Error(e)) => return Err(PluginFailure::new(format!("locking {}: {e}", path.display()))),
        }
    }
}

fn dependency_file_name(dependencies: &Dependencies) -> String {
    dependencies
        .conda
        .as_ref()
        .map(|path| path.display().to_string())
        .unwrap_or_else(|| "the conda dependencies file".to_owned())
}

/// Tells the user about parts of the conda file a venv cannot honour.
fn note_conda_packages(spec: &Spec<'_>, interpreter: &Interpreter, events: &Events<'_>) {
    let mut ignored = Vec::new();
    for package in &spec.dependencies.conda_packages {
        let package = package.trim();
        if let Some(wanted) = package
            .strip_prefix("python")
            .and_then(|rest| rest.strip_prefix("==").or_else(|| rest.strip_prefix('=')))
        {
            let wanted = wanted.trim_end_matches(".*");
            let matches = interpreter.version == wanted || interpreter.version.starts_with(&format!("{wanted}."));
            if !matches {
                events.info(&format!(
                    "note: {} asks for {package}; this target builds with Python {} ({}). Set pythonLocation to change it.",
                    dependency_file_name(spec.dependencies),
                    interpreter.version,
                    interpreter.executable.display()
                ));
            }
        } else if package != "python" && package != "pip" && !package.starts_with("pip=") {
            ignored.push(package);
        }
    }
    if !ignored.is_empty() {
        events.info(&format!(
            "note: the venv target installs the pip list only; ignoring conda packages {}",
            ignored.join(", ")
        ));
    }
}

/// Builds the environment of `spec`, or finds it built.
pub fn ensure(spec: &Spec<'_>, events: &Events<'_>) -> Result<Prepared, PluginFailure> {
    let interpreter = find_interpreter(spec.target, spec.project_dir)?;
    if !interpreter.has_venv {
        return Err(PluginFailure::new(format!(
            "Python {} ({}) lacks the venv and ensurepip modules, which the venv target needs; install them (on Debian and Ubuntu: apt install python3-venv) or set pythonLocation in aml_config/{}.compute to another interpreter",
            interpreter.version,
            interpreter.executable.display(),
            spec.target.name
        )));
    }
    note_conda_packages(spec, &interpreter, events);
    let hash = environment_hash(spec, &interpreter)?;
    let venvs = spec.state_dir.join("venvs");
    let dir = venvs.join(&hash);
    let reuse = |how: &str| {
        events.info(&format!(
            "Reusing virtual environment {hash} (cached{how}): {}",
            dir.display()
        ));
        Prepared::Ready(Environment {
            hash: hash.clone(),
            dir: dir.clone(),
            cached: true,
            interpreter: interpreter.clone(),
        })
    };
    if is_ready(&dir) {
        return Ok(reuse(""));
    }

    std::fs::create_dir_all(&venvs).map_err(|e| PluginFailure::new(format!("creating {}: {e}", venvs.display())))?;
    let Some(_lock) = lock(&venvs.join(format!("{hash}.lock")), &hash, events)? else {
        return Ok(Prepared::Canceled);
    };
    if is_ready(&dir) {
        return Ok(reuse("; another run built it"));
    }
    // We hold the lock: anything unfinished for this hash was left by a run that died.
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| PluginFailure::new(format!("removing the unfinished environment {}: {e}", dir.display())))?;
    }
    let stale_prefix = format!(".building-{hash}-");
    for entry in std::fs::read_dir(&venvs).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with(&stale_prefix) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }

    let started = Instant::now();
    let mut staging = Staging {
        dir: venvs.join(format!("{stale_prefix}{}", std::process::id())),
        keep: false,
    };
    let packages = &spec.dependencies.pip_packages;
    events.info(&format!(
        "Building virtual environment {hash} with Python {} ({}) from {} pip package(s) of {}",
        interpreter.version,
        interpreter.executable.display(),
        packages.len(),
        dependency_file_name(spec.dependencies)
    ));
    let steps = 3;

    // 1. The bare environment.
    let mut venv = Command::new(&interpreter.executable);
    venv.args(["-m", "venv"])
        .arg(&staging.dir)
        .current_dir(spec.project_dir)
        .env_remove("PYTHONHOME")
        .env_remove("PYTHONPATH");
    let mut venv_output = Vec::new();
    let ended = process::run_streaming(venv, "python -m venv", events, |_, line| {
        events.info(line);
        venv_output.push(line.to_owned());
    })?;
    if ended.canceled {
        return Ok(Prepared::Canceled);
    }
    if ended.exit_code != 0 {
        return Err(PluginFailure::new(format!(
            "`{} -m venv` failed (exit code {}): {}\nOn Debian and Ubuntu, install python3-venv; or set pythonLocation in aml_config/{}.compute to another interpreter.",
            interpreter.executable.display(),
            ended.exit_code,
            venv_output.join("\n"),
            spec.target.name
        )));
    }
    events.progress("Building virtual environment", 1, Some(steps));

    // 2. The pip list, as a requirements file (as conda does with it), so option lines
    // (`--find-links ./wheels`) work too. pip runs in the project folder: relative paths in
    // the list are relative to the project.
    let requirements = staging.dir.join(REQUIREMENTS_FILE);
    let mut text = String::new();
    for line in packages {
        text.push_str(line.trim());
        text.push('\n');
    }
    std::fs::write(&requirements, &text)
        .map_err(|e| PluginFailure::new(format!("writing {}: {e}", requirements.display())))?;
    if !packages.is_empty() {
        let mut pip = Command::new(staging.dir.join("bin").join("python"));
        pip.args(["-m", "pip", "install", "--no-input", "--progress-bar", "off", "-r"])
            .arg(&requirements)
            .current_dir(spec.project_dir)
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("PYTHONUNBUFFERED", "1")
            .env("VIRTUAL_ENV", &staging.dir)
            .env_remove("PYTHONHOME")
            .env_remove("PYTHONPATH");
        let mut errors: Vec<String> = Vec::new();
        let mut last_stdout: VecDeque<String> = VecDeque::new();
        let ended = process::run_streaming(pip, "pip", events, |stream, line| {
            if line.trim().is_empty() {
                return;
            }
            events.info(&format!("pip: {line}"));
            if stream == LogStream::Stderr {
                errors.push(line.to_owned());
            } else {
                last_stdout.push_back(line.to_owned());
                if last_stdout.len() > PIP_ERROR_LINES {
                    last_stdout.pop_front();
                }
            }
        })?;
        if ended.canceled {
            return Ok(Prepared::Canceled);
        }
        if ended.exit_code != 0 {
            return Err(pip_failure(spec, ended.exit_code, &errors, last_stdout.into()));
        }
    }
    events.progress("Building virtual environment", 2, Some(steps));

    // 3. Point the environment's scripts at their final place, mark it ready, move it there.
    relocate(&staging.dir, &dir)?;
    let marker = format!(
        "python = {}\nversion = {}\npip_packages = {}\n",
        interpreter.executable.display(),
        interpreter.full_version,
        packages.len()
    );
    std::fs::write(staging.dir.join(READY_MARKER), marker)
        .map_err(|e| PluginFailure::new(format!("writing the ready marker in {}: {e}", staging.dir.display())))?;
    match std::fs::rename(&staging.dir, &dir) {
        Ok(()) => staging.keep = true,
        Err(_) if is_ready(&dir) => return Ok(reuse("; another run built it first")),
        Err(e) => {
            return Err(PluginFailure::new(format!(
                "moving the new environment to {}: {e}",
                dir.display()
            )))
        }
    }
    events.progress("Building virtual environment", steps, Some(steps));
    events.info(&format!(
        "Virtual environment {hash} ready in {:.1}s: {}",
        started.elapsed().as_secs_f64(),
        dir.display()
    ));
    Ok(Prepared::Ready(Environment {
        hash,
        dir,
        cached: false,
        interpreter,
    }))
}

/// What [`clean`] did.
pub struct Cleaned {
    /// Unfinished build folders removed.
    pub removed: Vec<PathBuf>,
    /// Ready environments, left in place.
    pub environments: usize,
}

/// Removes the folders of builds that died before finishing (their lock is free), and counts
/// the ready environments. Those stay: they are shared by every project with the same inputs,
/// and a script may be running in one right now.
pub fn clean(venvs: &Path) -> Result<Cleaned, PluginFailure> {
    let mut cleaned = Cleaned {
        removed: Vec::new(),
        environments: 0,
    };
    for entry in std::fs::read_dir(venvs).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(hash) = name
            .strip_prefix(".building-")
            .and_then(|rest| rest.rsplit_once('-'))
            .map(|(hash, _pid)| hash)
        else {
            if is_ready(&entry.path()) {
                cleaned.environments += 1;
            }
            continue;
        };
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(venvs.join(format!("{hash}.lock")));
        if lock.is_ok_and(|lock| lock.try_lock().is_ok()) {
            std::fs::remove_dir_all(entry.path())
                .map_err(|e| PluginFailure::new(format!("removing {}: {e}", entry.path().display())))?;
            cleaned.removed.push(entry.path());
        }
    }
    Ok(cleaned)
}

/// Rewrites the paths `python -m venv` and pip wrote into the environment's scripts
/// (`#!<staging>/bin/python`, `VIRTUAL_ENV=...`) to the environment's final folder.
fn relocate(staging: &Path, target: &Path) -> Result<(), PluginFailure> {
    let (from, to) = (staging.to_string_lossy(), target.to_string_lossy());
    let mut files: Vec<PathBuf> = std::fs::read_dir(staging.join("bin"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .collect();
    files.push(staging.join("pyvenv.cfg"));
    for path in files {
        let Ok(meta) = path.symlink_metadata() else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // not text: a compiled launcher has no paths of ours
        };
        if text.contains(from.as_ref()) {
            std::fs::write(&path, text.replace(from.as_ref(), to.as_ref()))
                .map_err(|e| PluginFailure::new(format!("updating {}: {e}", path.display())))?;
        }
    }
    Ok(())
}

/// Lower case, with `_` and `.` as `-`: how pip compares project names.
fn normalise(text: &str) -> String {
    text.to_ascii_lowercase().replace(['_', '.'], "-")
}

/// The project a pip requirement names (`Scikit_Learn>=1` -> `scikit-learn`), or the file name
/// of a path, normalised.
fn requirement_name(spec: &str) -> String {
    let spec = spec.trim();
    if spec.contains('/') || spec.ends_with(".whl") || spec.ends_with(".tar.gz") || spec.ends_with(".zip") {
        return normalise(spec.rsplit('/').next().unwrap_or(spec));
    }
    let end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .unwrap_or(spec.len());
    normalise(&spec[..end])
}

/// Whether `word` occurs in `text` with no name character either side.
fn contains_word(text: &str, word: &str) -> bool {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '-';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(is_name_char) && !after.is_some_and(is_name_char)
    })
}

/// The lines of the pip list (numbered from 1) that pip's error output names.
fn failing_lines<'a>(packages: &'a [String], errors: &[String]) -> Vec<(usize, &'a str)> {
    let haystack = errors.join("\n");
    let normalised = normalise(&haystack);
    let mut found: Vec<(usize, &str)> = packages
        .iter()
        .enumerate()
        .filter(|(_, spec)| !spec.trim().is_empty() && !spec.trim().starts_with('-'))
        .filter(|(_, spec)| {
            let name = requirement_name(spec);
            haystack.contains(spec.trim()) || (!name.is_empty() && contains_word(&normalised, &name))
        })
        .map(|(index, spec)| (index + 1, spec.trim()))
        .collect();
    if found.is_empty() {
        // pip names requirements-file lines as `(from -r FILE (line N))`.
        for part in haystack.split(REQUIREMENTS_FILE).skip(1) {
            let number = part
                .split("(line ")
                .nth(1)
                .and_then(|rest| rest.split(')').next())
                .and_then(|n| n.trim().parse::<usize>().ok());
            if let Some(number) = number.filter(|n| (1..=packages.len()).contains(n)) {
                if !found.iter().any(|(n, _)| *n == number) {
                    found.push((number, packages[number - 1].trim()));
                }
            }
        }
    }
    if found.is_empty() && packages.len() == 1 {
        found.push((1, packages[0].trim()));
    }
    found
}

fn pip_failure(spec: &Spec<'_>, exit_code: i32, errors: &[String], last_stdout: Vec<String>) -> PluginFailure {
    let file = dependency_file_name(spec.dependencies);
    let packages = &spec.dependencies.pip_packages;
    let culprits = failing_lines(packages, errors);
    let what = match culprits.as_slice() {
        [] => format!("the pip list of {file}"),
        lines => lines
            .iter()
            .map(|(number, line)| format!("`{line}` (line {number} of the pip list of {file})"))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let tail: Vec<String> = if errors.is_empty() {
        last_stdout
    } else {
        errors.to_vec()
    };
    let tail = &tail[tail.len().saturating_sub(PIP_ERROR_LINES)..];
    PluginFailure::new(format!(
        "pip could not install {what}; pip exited with code {exit_code}:\n  {}\nFix the pip list in {file} (paths are relative to the project {}) and submit again; nothing was cached.",
        tail.join("\n  "),
        spec.project_dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_the_failing_pip_line() {
        let packages = list(&["numpy", "./wheels/missing-0.1-py3-none-any.whl", "Scikit_Learn>=1"]);
        let errors = list(&[
            "WARNING: Requirement './wheels/missing-0.1-py3-none-any.whl' looks like a filename, but the file does not exist",
            "ERROR: Could not install packages due to an OSError: [Errno 2] No such file or directory",
        ]);
        assert_eq!(
            failing_lines(&packages, &errors),
            vec![(2, "./wheels/missing-0.1-py3-none-any.whl")]
        );
        let errors = list(&["ERROR: No matching distribution found for scikit-learn>=1"]);
        assert_eq!(failing_lines(&packages, &errors), vec![(3, "Scikit_Learn>=1")]);
        let errors = list(&["ERROR: something in /tmp/x/xp-requirements.txt (line 1) went wrong"]);
        assert_eq!(failing_lines(&packages, &errors), vec![(1, "numpy")]);
        assert!(failing_lines(&packages, &list(&["ERROR: disk full"])).is_empty());
    }

    #[test]
    fn relocates_scripts() {
        let root = std::env::temp_dir().join(format!("xp-venv-relocate-{}", std::process::id()));
        let staging = root.join(".building-x-1");
        std::fs::create_dir_all(staging.join("bin")).unwrap();
        let script = format!("#!{}/bin/python\nimport tool\n", staging.display());
        std::fs::write(staging.join("bin/tool"), script).unwrap();
        std::fs::write(staging.join("pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        let target = root.join("x");
        relocate(&staging, &target).unwrap();
        let text = std::fs::read_to_string(staging.join("bin/tool")).unwrap();
        assert_eq!(text, format!("#!{}/bin/python\nimport tool\n", target.display()));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
