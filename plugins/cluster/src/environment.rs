//! The Python environment a cluster job ships: a virtual environment with the conda file's
//! packages, installed with pip (the conda packages under their PyPI names, then the `pip:`
//! list, as the SDK's [`PackagePlan`] decides), built on the head node once per content hash,
//! used in place by the driver and shipped to the executors as an archive
//! (`--archives ...#xpenv`).

use sha2::{Digest, Sha256};
use xp_plugin_api::{Dependencies, Events, PluginFailure, Target};
use xp_plugin_sdk::packages::{user_managed, PackagePlan, Wheelhouse, USER_MANAGED_SETTING};
use xp_sshkit::quote::{quote, shell_path};
use xp_sshkit::Connection;

use xp_sshkit::target::remote_directory;

/// Why pip installs the conda packages on this target, for the run's log.
const WITHOUT_CONDA: &str = "the cluster target builds a virtual environment with pip";

/// Lines the build script prints for xp to read.
const DIR_LINE: &str = "xp-env-dir=";
const PYTHON_LINE: &str = "xp-env-python=";

/// A ready environment on the head node.
pub struct PythonEnvironment {
    /// Absolute path of the environment on the head node.
    pub path: String,
    /// Absolute path of its archive.
    pub archive: String,
    pub cached: bool,
}

impl PythonEnvironment {
    pub fn summary(&self) -> String {
        if self.cached {
            format!(
                "Python environment {} is up to date (cached): nothing to build",
                self.path
            )
        } else {
            format!(
                "Built the Python environment {} and its archive for the executors",
                self.path
            )
        }
    }
}

/// The values of the `xp-env-*` lines of the build script's output: (folder, Python version).
fn script_result(lines: &[String]) -> (Option<String>, Option<String>) {
    let value = |prefix: &str| {
        lines
            .iter()
            .rev()
            .find_map(|line| line.trim().strip_prefix(prefix))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    (value(DIR_LINE), value(PYTHON_LINE))
}

/// The environment for these dependencies, built when missing; `None` when there is nothing
/// to install (or the user manages the environment).
pub fn ensure(
    connection: &Connection,
    target: &Target,
    dependencies: &Dependencies,
    project_dir: &std::path::Path,
    events: &Events<'_>,
) -> Result<Option<PythonEnvironment>, PluginFailure> {
    if user_managed(target) {
        events.info(&format!(
            "{USER_MANAGED_SETTING} is true in aml_config/{}.compute: nothing of the conda file is installed; the cluster's Python is used as it is",
            target.name
        ));
        return Ok(None);
    }
    let plan = PackagePlan::new(dependencies, project_dir, false)
        .map_err(|e| PluginFailure::new(format!("{e}; the cluster target installs conda packages with pip")))?;
    for line in plan.describe(WITHOUT_CONDA) {
        events.info(&line);
    }
    if plan.pip.is_empty() {
        return Ok(None);
    }
    let wheelhouse = Wheelhouse::from_target(target, project_dir)?;
    let python = target
        .setting_str("pythonLocation")
        .filter(|p| !p.is_empty())
        .unwrap_or("python3");
    let mut hasher = Sha256::new();
    hasher.update(python.as_bytes());
    let mut wheels = Vec::new();
    let mut arguments = Vec::new();
    for requirement in &plan.pip {
        hasher.update(requirement.pip.as_bytes());
        if let Some(path) = &requirement.local_file {
            let bytes =
                std::fs::read(path).map_err(|e| PluginFailure::new(format!("reading {}: {e}", path.display())))?;
            hasher.update(&bytes);
            let name = path.file_name().expect("a file").to_string_lossy().into_owned();
            arguments.push(format!("\"$W\"/{}", quote(&name)));
            wheels.push((name, bytes));
        } else {
            arguments.push(quote(&requirement.pip));
        }
    }
    if let Some(wheelhouse) = &wheelhouse {
        hasher.update(wheelhouse.identity().as_bytes());
    }
    let hash: String = hasher.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
    let envs = format!("{}/envs", remote_directory(target));
    let note_python = |version: Option<&str>| {
        let note = version.and_then(|v| plan.python_note(v, &format!("the head node's {python}")));
        if let Some(note) = note {
            events.info(&note);
        }
    };
    let ready = connection.exec(
        &format!(
            "cd {} 2>/dev/null && [ -f {hash}/.xp-ready ] && [ -f {hash}.tar.gz ] && echo {DIR_LINE}\"$(pwd)\" && echo {PYTHON_LINE}\"$(cat {hash}/.xp-ready)\"",
            shell_path(&envs)
        ),
        None,
    )?;
    if ready.status == 0 {
        let output: Vec<String> = String::from_utf8_lossy(&ready.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        if let (Some(dir), version) = script_result(&output) {
            note_python(version.as_deref());
            return Ok(Some(PythonEnvironment {
                path: format!("{dir}/{hash}"),
                archive: format!("{dir}/{hash}.tar.gz"),
                cached: true,
            }));
        }
    }

    events.info(&format!(
        "Building the job's Python environment {hash} on the head node (once for these packages)"
    ));
    // Wheels go to a folder of this process's own: a concurrent build must not see them
    // half-written, nor remove them under this one.
    let wheels_name = format!("{hash}.wheels.{}", std::process::id());
    let wheel_dir = format!("{envs}/{wheels_name}");
    connection.run(
        "preparing the environment folder",
        &format!("mkdir -p {}/wheelhouse", shell_path(&wheel_dir)),
        None,
    )?;
    let house_files = wheelhouse.iter().flat_map(|w| &w.files).count();
    if !wheels.is_empty() || house_files > 0 {
        let sftp = connection
            .session()
            .sftp()
            .map_err(|e| PluginFailure::new(format!("opening SFTP to {}: {e}", connection.address)))?;
        for (name, bytes) in &wheels {
            connection.write_file(&sftp, &format!("{wheel_dir}/{name}"), bytes)?;
        }
        if let Some(wheelhouse) = &wheelhouse {
            events.info(&format!(
                "Sending the wheelhouse {} to the head node ({} files, {} MB); pip installs from it alone",
                wheelhouse.dir.display(),
                house_files,
                wheelhouse.bytes().div_ceil(1 << 20)
            ));
            for file in &wheelhouse.files {
                let bytes = std::fs::read(&file.path)
                    .map_err(|e| PluginFailure::new(format!("reading {} (wheelhouse): {e}", file.path.display())))?;
                connection.write_file(&sftp, &format!("{wheel_dir}/wheelhouse/{}", file.name), &bytes)?;
            }
        }
    }
    let options = if wheelhouse.is_some() {
        "--no-index --find-links \"$W\"/wheelhouse "
    } else {
        ""
    };
    // One builder at a time per environment; a half-built one is never taken for ready.
    let script = format!(
        "set -e; cd {envs}; exec 9>{hash}.lock; flock 9; \
         if [ -f {hash}/.xp-ready ] && [ -f {hash}.tar.gz ]; then rm -rf {wheels}; echo {DIR_LINE}\"$(pwd)\"; echo {PYTHON_LINE}\"$(cat {hash}/.xp-ready)\"; exit 0; fi; \
         W=$(cd {wheels} && pwd); \
         rm -rf {hash}.build {hash}; {python} -m venv {hash}.build; \
         {hash}.build/bin/python -m pip install --disable-pip-version-check --no-input --progress-bar off {options}{install}; \
         {hash}.build/bin/python -c 'import sys; print(\"%d.%d.%d\" % sys.version_info[:3])' > {hash}.build/.xp-ready; mv {hash}.build {hash}; \
         tar -C {hash} -czf {hash}.tar.gz.tmp . && mv {hash}.tar.gz.tmp {hash}.tar.gz; rm -rf {wheels}; \
         echo {DIR_LINE}\"$(pwd)\"; echo {PYTHON_LINE}\"$(cat {hash}/.xp-ready)\"",
        wheels = quote(&wheels_name),
        envs = shell_path(&envs),
        python = quote(python),
        install = arguments.join(" "),
    );
    let mut output = Vec::new();
    let (status, tail) = connection.exec_lines(
        &script,
        None,
        &mut |line| {
            if !line.starts_with("xp-env-") {
                events.info(line);
            }
            output.push(line.to_owned());
        },
        &|| events.is_cancelled(),
    )?;
    if status != 0 {
        let named = plan
            .pip_failure(&output)
            .map(|named| format!("{named}\n"))
            .unwrap_or_default();
        return Err(PluginFailure::new(format!(
            "{named}building the job's Python environment on {} failed:\n{}",
            connection.address,
            tail.join("\n")
        )));
    }
    let (dir, version) = script_result(&output);
    let dir = dir.ok_or_else(|| {
        PluginFailure::new(format!(
            "building the job's Python environment on {} ended without saying where it is:\n{}",
            connection.address,
            tail.join("\n")
        ))
    })?;
    note_python(version.as_deref());
    Ok(Some(PythonEnvironment {
        path: format!("{dir}/{hash}"),
        archive: format!("{dir}/{hash}.tar.gz"),
        cached: false,
    }))
}
