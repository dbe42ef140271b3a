//! Detached runs: `submit --detach` records and snapshots the run, then hands it to a
//! supervisor — a process of xp's own in its own session, so closing the terminal does not
//! end it — and returns. The supervisor drives the run like an attached submit would, with
//! its output going only to the run's log.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use xp_plugin_api::{RunRequest, RunStatus};

use super::drive::{drive, Reporting};
use super::error::io_error;
use super::launch::Launched;
use super::{signals, Finished, SubmitError};
use crate::history::{process_start, HistoryStore};
use crate::plugins::{LoadedPlugin, Manifest};

/// What the supervisor needs, handed over on its standard input — never through a file: the
/// arguments and environment may hold a secret the user typed, and the project folder must
/// not. The request's secrets are left out even there: the supervisor resolves them again.
#[derive(Serialize, Deserialize)]
struct LaunchFile {
    request: RunRequest,
    plugin_manifest: PathBuf,
}

/// The launch as the supervisor reads it: the request without its secrets.
fn launch_file_bytes(request: &RunRequest, plugin_manifest: &Path) -> Vec<u8> {
    let mut request = request.clone();
    request.context.secrets.clear();
    let file = LaunchFile {
        request,
        plugin_manifest: plugin_manifest.to_path_buf(),
    };
    serde_json::to_vec(&file).expect("plain data")
}

/// Starts the supervisor of `launched` and makes it the run's driver. Returns its pid.
pub fn detach(launched: &Launched, plugin: &LoadedPlugin, store: &mut HistoryStore) -> Result<u32, SubmitError> {
    let run_number = launched.request.run_number;
    let started = start_supervisor(launched, plugin);
    match started {
        Ok(pid) => {
            // Before this process exits: a reader must never see a run whose driver is gone.
            store.set_driver(run_number, pid, process_start(pid))?;
            Ok(pid)
        }
        Err(error) => {
            crate::snapshot::release(&launched.run_dir, &launched.request.snapshot_dir);
            store.finish(run_number, RunStatus::Failed, None, Some(&error.to_string()), &[])?;
            Err(error)
        }
    }
}

fn start_supervisor(launched: &Launched, plugin: &LoadedPlugin) -> Result<u32, SubmitError> {
    let launch = launch_file_bytes(&launched.request, &plugin.manifest.path);
    let exe = std::env::current_exe().map_err(io_error("finding the xp executable", Path::new("xp")))?;
    let supervisor_log = launched.run_dir.join("supervisor.log");
    let log = std::fs::File::create(&supervisor_log).map_err(io_error("creating", &supervisor_log))?;
    let mut command = Command::new(&exe);
    command
        .arg("supervise")
        .arg(&launched.run_dir)
        .stdin(Stdio::piped())
        .stdout(log.try_clone().map_err(io_error("opening", &supervisor_log))?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe; it detaches the supervisor from the terminal's
    // session so that closing the terminal (SIGHUP) does not reach it.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(io_error("starting the supervisor", &exe))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    std::io::Write::write_all(&mut stdin, &launch).map_err(io_error("handing the run to the supervisor", &exe))?;
    Ok(child.id())
}

/// The supervisor's side (`xp supervise RUN_DIR`): loads the plugin the submit chose and
/// drives the run to its end. Whatever goes wrong is recorded in the run.
pub fn supervise(run_dir: &Path) -> Result<Finished, SubmitError> {
    signals::install();
    let mut text = Vec::new();
    let stdin_name = Path::new("standard input");
    std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut text)
        .map_err(io_error("reading the run's launch from", stdin_name))?;
    let file: LaunchFile = serde_json::from_slice(&text).map_err(|error| SubmitError::Io {
        what: "reading the run's launch from",
        path: stdin_name.to_path_buf(),
        source: std::io::Error::other(error),
    })?;
    let mut request = file.request;
    let store = HistoryStore::open(&request.context.project_dir.join(crate::project::XP_DIR))?;
    store.set_driver(
        request.run_number,
        std::process::id(),
        crate::history::current_process_start(),
    )?;
    // The plugin the submit chose, and the target's secrets as its settings refer to them,
    // from the user's store (they never travel through the launch).
    let plugin = Manifest::read(&file.plugin_manifest)
        .map_err(SubmitError::from)
        .and_then(|manifest| {
            LoadedPlugin::load(manifest, &request.context.target.target_type).map_err(SubmitError::from)
        })
        .and_then(|plugin| {
            let compute_file = request
                .context
                .project_dir
                .join(crate::project::CONFIG_DIR)
                .join(format!("{}.compute", request.context.target.name));
            request.context.secrets = crate::secrets::resolve(
                &request.context.project_dir,
                &compute_file,
                &request.context.target,
                &crate::secrets::SecretStore::new(&request.context.user_config_dir),
                &crate::plugins::schema::SecretSettings::of(&plugin.description),
            )?;
            Ok(plugin)
        });
    let plugin = match plugin {
        Ok(plugin) => plugin,
        Err(error) => {
            store.finish(
                request.run_number,
                RunStatus::Failed,
                None,
                Some(&error.to_string()),
                &[],
            )?;
            return Err(error);
        }
    };
    let launched = Launched {
        request,
        run_dir: run_dir.to_path_buf(),
        tracked: true,
    };
    drive(
        &plugin,
        &launched,
        Some(store),
        Reporting {
            echo: false,
            quiet: false,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_launch_file_never_holds_the_secrets() {
        let mut request = RunRequest::default();
        request.context.target.settings.insert(
            "password".into(),
            serde_json::Value::String("secret:gpu-password-0a1b2c3d".into()),
        );
        request.context.secrets.insert("password".into(), "hunter2".into());
        let text = String::from_utf8(launch_file_bytes(&request, Path::new("/p/plugin.toml"))).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("secret:gpu-password-0a1b2c3d"), "{text}");
        let back: LaunchFile = serde_json::from_str(&text).unwrap();
        assert!(back.request.context.secrets.is_empty());
    }
}
