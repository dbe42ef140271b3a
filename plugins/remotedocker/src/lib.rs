//! The `remotedocker` executor: runs the snapshot in a container on a Linux host's Docker
//! engine reached over SSH, in an environment image built there with the same recipe (and the
//! same content-hash cache) as the local docker target. The snapshot travels incrementally
//! like the remote target's and is mounted into the container; the `docker run` itself runs
//! detached on the host, so a dropped connection does not end it. `Framework: PySpark` runs
//! the image's spark-submit, with `spark_dependencies.yml` applied, as the docker target does.

mod images;

use images::RemoteImages;
use xp_dockerkit::environment::{container_user_environment, ensure_environment, Environment, EnvironmentRequest};
use xp_plugin_api::{
    AttachReply, AttachRequest, CleanReply, CleanRequest, Events, Executor, PluginDescription, PluginFailure,
    PrepareReply, PrepareRequest, ReapReply, ReapRequest, RunOutcome, RunRequest, RunStatus, Settings,
};
use xp_plugin_sdk::environment::script_environment;
use xp_sshkit::lifecycle::{DetachedRun, Start};
use xp_sshkit::quote::{quote, shell_path};
use xp_sshkit::remote_run::RemoteCommand;
use xp_sshkit::target::{self, Login};
use xp_sshkit::Connection;

#[derive(Default)]
struct RemoteDockerExecutor;

/// One line of shell output, trimmed.
fn remote_text(connection: &Connection, what: &str, command: &str) -> Result<String, PluginFailure> {
    Ok(String::from_utf8_lossy(&connection.run(what, command, None)?)
        .trim()
        .to_owned())
}

/// The environment image on the host's engine, built there when allowed.
fn environment(
    connection: &Connection,
    request: &EnvironmentRequest<'_>,
    events: &Events<'_>,
) -> Result<Environment, PluginFailure> {
    let images = RemoteImages { connection };
    images.check()?;
    ensure_environment(&images, request, events)
}

impl Executor for RemoteDockerExecutor {
    fn describe(&self) -> PluginDescription {
        target::login_settings()
            .into_iter()
            .fold(
                PluginDescription::new("remotedocker", env!("CARGO_PKG_VERSION"), &["remotedocker"]),
                PluginDescription::setting,
            )
            .setting(xp_dockerkit::base_image_setting())
            .setting(xp_dockerkit::nvidia_docker_setting())
            .setting(xp_plugin_sdk::settings::user_managed_environment())
            .setting(xp_plugin_sdk::settings::wheelhouse())
    }

    fn attach(&self, request: AttachRequest, events: &Events<'_>) -> Result<AttachReply, PluginFailure> {
        if request
            .context
            .target
            .setting_str("baseDockerImage")
            .is_none_or(|v| v.trim().is_empty())
        {
            return Err(PluginFailure::new(
                "a remotedocker target needs a base image: pass --base-image IMAGE (an image the host's engine has)",
            ));
        }
        let mut runconfig = Settings::new();
        runconfig.insert("PrepareEnvironment".into(), true.into());
        target::attach(&request, &[], runconfig, events, |connection, _| {
            let version = RemoteImages { connection }.check()?;
            Ok(format!("Docker {version}"))
        })
    }

    fn prepare(&self, request: PrepareRequest, events: &Events<'_>) -> Result<PrepareReply, PluginFailure> {
        let login = Login::for_context(&request.context)?;
        let connection = login.connect(Some(events))?;
        let environment = environment(&connection, &EnvironmentRequest::for_prepare(&request), events)?;
        Ok(PrepareReply::new(environment.cached).message(environment.summary()))
    }

    fn run(&self, request: RunRequest, events: &Events<'_>) -> Result<RunOutcome, PluginFailure> {
        events.status(RunStatus::Preparing);
        let target = &request.context.target;
        let login = Login::for_context(&request.context)?;
        let connection = login.connect(Some(events))?;
        if target.setting_bool("sharedVolumes") == Some(false) {
            events.info(&format!(
                "note: sharedVolumes: false in aml_config/{}.compute changes nothing here: the run's folder on the host is mounted into the container, and its outputs/ come back over SSH",
                target.name
            ));
        }
        let environment = environment(&connection, &EnvironmentRequest::for_run(&request), events)?;
        if environment.cached {
            events.info(&environment.summary());
        }
        // The image's interpreter, or for PySpark its spark-submit with the Spark file applied.
        let script_command = environment.command(&request)?;
        let name = xp_dockerkit::container_name(&request.run_id, &request.context.project_dir);
        let run_dir = target::run_directory(&request);
        let gpus = target.setting_bool("nvidiaDocker").unwrap_or(false);
        // The `docker run` line needs the run folder's absolute path on the host, known once
        // the snapshot is there.
        let make_command = |connection: &Connection| -> Result<RemoteCommand, PluginFailure> {
            // Absolute paths on the host for the bind mounts, and the user to run as (so the
            // outputs stay the user's and the run's folder can be removed).
            let facts = remote_text(
                connection,
                "reading the run's folder",
                &format!(
                    "cd {} && pwd && id -u && id -g && id -un && mkdir -p {shared} && cd {shared} && pwd",
                    shell_path(&run_dir),
                    shared = target::shared_directory_word(target, &request.context.project_name),
                ),
            )?;
            let facts: Vec<&str> = facts.lines().collect();
            let [run_path, uid, gid, user_name, shared] = facts[..] else {
                return Err(PluginFailure::new(format!(
                    "unexpected answer from {}: {facts:?}",
                    connection.address
                )));
            };
            // --init: the script is not PID 1, so it reacts to SIGTERM as it would elsewhere.
            let mut argv: Vec<String> = vec![
                "docker".into(),
                "run".into(),
                "--rm".into(),
                "--init".into(),
                "--name".into(),
                name.clone(),
            ];
            // Workbench's way to the GPUs of a remote host (its nvidia-docker); --gpus today.
            if gpus {
                argv.extend(["--gpus".into(), "all".into()]);
            }
            for (key, value) in xp_dockerkit::run_labels(&request.run_id, &request.context.project_dir) {
                argv.extend(["--label".into(), format!("{key}={value}")]);
            }
            argv.extend([
                "--user".into(),
                format!("{uid}:{gid}"),
                "-v".into(),
                format!("{run_path}/work:/azureml-run"),
                "-v".into(),
                format!("{run_path}/support:/xp-support:ro"),
                "-v".into(),
                format!("{shared}:/azureml-share"),
                "-w".into(),
                "/azureml-run".into(),
            ]);
            let mut variables: Vec<(String, String)> =
                script_environment(&request, "/xp-support", None, Some("/azureml-share/"))
                    .into_iter()
                    .collect();
            variables.extend(container_user_environment(&request, user_name));
            for (key, value) in variables {
                argv.extend(["-e".into(), format!("{key}={value}")]);
            }
            argv.push(environment.image.clone());
            argv.extend(script_command.iter().cloned());
            Ok(RemoteCommand {
                argv,
                environment: Vec::new(),
                preamble: Vec::new(),
            })
        };
        let address = connection.address.clone();
        let no_gpus = |line: &str| {
            (gpus && line.contains("could not select device driver")).then(|| {
                format!(
                    "nvidiaDocker: true asks for GPUs, but the Docker engine on {address} has no GPU support (no NVIDIA container runtime): {}",
                    line.trim()
                )
            })
        };
        DetachedRun {
            login: &login,
            request: &request,
            // Stopping the container itself: the `docker run` client only proxies signals.
            on_cancel: Some(format!(
                "setsid docker stop -t 3 {} </dev/null >/dev/null 2>&1 &",
                quote(&name)
            )),
            after: Some(format!("docker rm -f {} >/dev/null 2>&1", quote(&name))),
            watch: &no_gpus,
        }
        .run(connection, Start::AfterSnapshot(&make_command), || {}, events)
    }

    fn clean(&self, request: CleanRequest, events: &Events<'_>) -> Result<CleanReply, PluginFailure> {
        let login = Login::for_context(&request.context)?;
        let connection = login.connect(Some(events))?;
        RemoteImages {
            connection: &connection,
        }
        .check()?;
        let label = format!(
            "{}={}",
            xp_dockerkit::engine::PROJECT_LABEL,
            request.context.project_dir.display()
        );
        let listed = remote_text(
            &connection,
            "listing images",
            &format!(
                "docker images --filter {} --format '{{{{.Repository}}}}:{{{{.Tag}}}}'",
                quote(&format!("label={label}"))
            ),
        )?;
        let tags: Vec<String> = listed.lines().map(str::to_owned).filter(|t| !t.is_empty()).collect();
        for tag in &tags {
            connection.run("removing an image", &format!("docker rmi -f {}", quote(tag)), None)?;
        }
        let reply = if tags.is_empty() {
            CleanReply::new().message(format!(
                "no images built by xp for this project on {}",
                connection.address
            ))
        } else {
            CleanReply::new()
        };
        Ok(reply.removed_all(tags))
    }

    /// The container and the `docker run` that drives it outlive a vanished driver on the host:
    /// remove the container, end the group, remove the run's folder.
    fn reap(&self, request: ReapRequest, events: &Events<'_>) -> Result<ReapReply, PluginFailure> {
        let name = xp_dockerkit::container_name(&request.run_id, &request.context.project_dir);
        let remove = format!("docker rm -f {} >/dev/null 2>&1", quote(&name));
        target::reap(&request, Some(&remove), events)
    }
}

xp_plugin_api::export_plugin!(RemoteDockerExecutor);

#[cfg(test)]
mod tests;
