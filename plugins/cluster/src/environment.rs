//! The Python environment a cluster job ships: a virtual environment with the conda file's
//! `pip:` packages, built on the head node once per content hash, used in place by the driver
//! and shipped to the executors as an archive (`--archives ...#xpenv`).

use sha2::{Digest, Sha256};
use xp_plugin_api::{Dependencies, Events, PluginFailure, Target};
use xp_sshkit::quote::{quote, shell_path};
use xp_sshkit::Connection;

use xp_sshkit::target::remote_directory;

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

/// The environment for these dependencies, built when missing; `None` when the conda file has
/// no pip packages.
pub fn ensure(
    connection: &Connection,
    target: &Target,
    dependencies: &Dependencies,
    project_dir: &std::path::Path,
    events: &Events<'_>,
) -> Result<Option<PythonEnvironment>, PluginFailure> {
    if dependencies.pip_packages.is_empty() {
        return Ok(None);
    }
    let python = target
        .setting_str("pythonLocation")
        .filter(|p| !p.is_empty())
        .unwrap_or("python3");
    let mut hasher = Sha256::new();
    hasher.update(python.as_bytes());
    let mut wheels = Vec::new();
    let mut arguments = Vec::new();
    for entry in &dependencies.pip_packages {
        hasher.update(entry.as_bytes());
        let path = project_dir.join(entry);
        let local = (entry.starts_with("./") || entry.starts_with("../") || entry.ends_with(".whl")) && path.is_file();
        if local {
            let bytes =
                std::fs::read(&path).map_err(|e| PluginFailure::new(format!("reading {}: {e}", path.display())))?;
            hasher.update(&bytes);
            let name = path.file_name().expect("a file").to_string_lossy().into_owned();
            arguments.push(format!("WHEELS/{name}"));
            wheels.push((name, bytes));
        } else {
            arguments.push(entry.clone());
        }
    }
    let hash: String = hasher.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
    let envs = format!("{}/envs", remote_directory(target));
    let ready = connection.exec(
        &format!(
            "cd {} 2>/dev/null && [ -f {hash}/.xp-ready ] && [ -f {hash}.tar.gz ] && pwd",
            shell_path(&envs)
        ),
        None,
    )?;
    if ready.status == 0 {
        let dir = String::from_utf8_lossy(&ready.stdout).trim().to_owned();
        return Ok(Some(PythonEnvironment {
            path: format!("{dir}/{hash}"),
            archive: format!("{dir}/{hash}.tar.gz"),
            cached: true,
        }));
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
        &format!("mkdir -p {}", shell_path(&wheel_dir)),
        None,
    )?;
    if !wheels.is_empty() {
        let sftp = connection
            .session()
            .sftp()
            .map_err(|e| PluginFailure::new(format!("opening SFTP to {}: {e}", connection.address)))?;
        for (name, bytes) in &wheels {
            connection.write_file(&sftp, &format!("{wheel_dir}/{name}"), bytes)?;
        }
    }
    let install: Vec<String> = arguments
        .iter()
        .map(|a| match a.strip_prefix("WHEELS/") {
            Some(name) => format!("\"$W\"/{}", quote(name)),
            None => quote(a),
        })
        .collect();
    // One builder at a time per environment; a half-built one is never taken for ready.
    let script = format!(
        "set -e; cd {envs}; exec 9>{hash}.lock; flock 9; \
         if [ -f {hash}/.xp-ready ] && [ -f {hash}.tar.gz ]; then rm -rf {wheels}; pwd; exit 0; fi; \
         W=$(cd {wheels} && pwd); \
         rm -rf {hash}.build {hash}; {python} -m venv {hash}.build; \
         {hash}.build/bin/python -m pip install --disable-pip-version-check --no-input {install}; \
         touch {hash}.build/.xp-ready; mv {hash}.build {hash}; \
         tar -C {hash} -czf {hash}.tar.gz.tmp . && mv {hash}.tar.gz.tmp {hash}.tar.gz; rm -rf {wheels}; pwd",
        wheels = quote(&wheels_name),
        envs = shell_path(&envs),
        python = quote(python),
        install = install.join(" "),
    );
    let mut last = String::new();
    let (status, tail) = connection.exec_lines(
        &script,
        None,
        &mut |line| {
            events.info(line);
            last = line.to_owned();
        },
        &|| events.is_cancelled(),
    )?;
    if status != 0 {
        return Err(PluginFailure::new(format!(
            "building the job's Python environment on {} failed:\n{}",
            connection.address,
            tail.join("\n")
        )));
    }
    let dir = last.trim().to_owned();
    Ok(Some(PythonEnvironment {
        path: format!("{dir}/{hash}"),
        archive: format!("{dir}/{hash}.tar.gz"),
        cached: false,
    }))
}
