//! Virtual environments built from a project's pip list and cached by content.
//!
//! What goes in comes from the SDK's [`PackagePlan`], as on xp's own targets: the conda
//! file's conda packages under their PyPI names (a venv has no conda), then its `pip:` list.
//!
//! An environment lives in `<state_dir>/venvs/<hash>/`, where the hash covers the base
//! interpreter (its path and exact version), what pip installs, the contents of the local
//! files the pip list names (wheels), and the target's wheelhouse (names and sizes of its
//! files). A second run with the same inputs reuses it.
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

use xp_plugin_api::LogStream;
use xp_plugin_api::{Dependencies, Events, PluginFailure, Target};

use crate::fingerprint::Fingerprint;
use crate::interpreter::{find_interpreter, Interpreter};
use crate::pip_failure::{pip_failure, PIP_ERROR_LINES};
use xp_plugin_sdk::packages::{PackagePlan, Wheelhouse};
use xp_plugin_sdk::process;

/// Written into an environment once it is complete; folders without it are never used.
const READY_MARKER: &str = ".xp-ready";
/// The pip list as pip read it, kept in the environment for reference.
pub(crate) const REQUIREMENTS_FILE: &str = "xp-requirements.txt";
/// Bump when the layout of a cached environment changes, so old ones are not reused.
const CACHE_FORMAT: &str = "xp-venv/2";
/// Why pip installs the conda packages here, for the run's log.
const WITHOUT_CONDA: &str = "a venv target has no conda";

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

/// What the environment of `spec` installs, and from where.
pub(crate) struct Contents {
    pub plan: PackagePlan,
    pub wheelhouse: Option<Wheelhouse>,
}

impl Contents {
    fn of(spec: &Spec<'_>) -> Result<Contents, PluginFailure> {
        let plan = PackagePlan::new(spec.dependencies, spec.project_dir, false)
            .map_err(|e| PluginFailure::new(format!("{e}; a venv target installs conda packages with pip")))?;
        let wheelhouse = Wheelhouse::from_target(spec.target, spec.project_dir)?;
        Ok(Contents { plan, wheelhouse })
    }

    /// The requirements file pip reads: the wheelhouse's options, then one requirement a line.
    fn requirements(&self) -> String {
        let mut text = String::new();
        if let Some(wheelhouse) = &self.wheelhouse {
            // pip splits option lines as a shell would: the folder is quoted.
            let dir = wheelhouse.dir.to_string_lossy().replace('"', "\\\"");
            text.push_str(&format!("--no-index\n--find-links \"{dir}\"\n"));
        }
        for requirement in &self.plan.pip {
            text.push_str(&requirement.pip);
            text.push('\n');
        }
        text
    }
}

/// The hash naming the environment of these inputs.
fn environment_hash(contents: &Contents, interpreter: &Interpreter) -> Result<String, PluginFailure> {
    let mut fingerprint = Fingerprint::default();
    fingerprint.field("format", CACHE_FORMAT.as_bytes());
    fingerprint.field("python", interpreter.executable.as_os_str().as_encoded_bytes());
    fingerprint.field("version", interpreter.full_version.as_bytes());
    for requirement in &contents.plan.pip {
        fingerprint.field("pip", requirement.pip.as_bytes());
        if let Some(path) = &requirement.local_file {
            fingerprint
                .file("file", path)
                .map_err(|e| PluginFailure::new(format!("reading {} (pip list): {e}", path.display())))?;
        }
    }
    if let Some(wheelhouse) = &contents.wheelhouse {
        fingerprint.field("wheelhouse", wheelhouse.identity().as_bytes());
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

pub(crate) fn dependency_file_name(dependencies: &Dependencies) -> String {
    dependencies
        .conda
        .as_ref()
        .map(|path| path.display().to_string())
        .unwrap_or_else(|| "the conda dependencies file".to_owned())
}

/// Says in the run's log what the environment installs how, and whether the interpreter is
/// the Python the conda file asks for.
fn tell_plan(spec: &Spec<'_>, contents: &Contents, interpreter: &Interpreter, events: &Events<'_>) {
    for line in contents.plan.describe(WITHOUT_CONDA) {
        events.info(&line);
    }
    let interpreter_name = format!(
        "pythonLocation of aml_config/{}.compute ({})",
        spec.target.name,
        interpreter.executable.display()
    );
    if let Some(note) = contents.plan.python_note(&interpreter.version, &interpreter_name) {
        events.info(&format!("{note}. Set pythonLocation to change it."));
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
    let contents = Contents::of(spec)?;
    tell_plan(spec, &contents, &interpreter, events);
    let hash = environment_hash(&contents, &interpreter)?;
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
    let packages = &contents.plan.pip;
    events.info(&format!(
        "Building virtual environment {hash} with Python {} ({}) from {} package(s) of {}",
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
    let ended = process::run_streaming_with(venv, "python -m venv", events, |_, line| {
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

    // 2. What pip installs, as a requirements file (as conda does with the pip list), so
    // option lines (`--find-links ./wheels`) work too. pip runs in the project folder:
    // relative paths in the list are relative to the project.
    let requirements = staging.dir.join(REQUIREMENTS_FILE);
    let text = contents.requirements();
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
        let ended = process::run_streaming_with(pip, "pip", events, |stream, line| {
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
            return Err(pip_failure(
                spec,
                &contents.plan,
                ended.exit_code,
                &errors,
                last_stdout.into(),
            ));
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

#[cfg(test)]
mod tests {
    use super::*;

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
