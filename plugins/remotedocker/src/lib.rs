//! The `remotedocker` executor: runs the snapshot in a container on a Linux host's Docker
//! engine reached over SSH, in an environment image built there with the same recipe (and the
//! same content-hash cache) as the local docker target. The snapshot travels incrementally
//! like the remote target's and is mounted into the container; the `docker run` itself runs
//! detached on the host, so a dropped connection does not end it.

mod images;

use images::RemoteImages;
use xp_dockerkit::environment::{ensure_environment, Environment, EnvironmentRequest};
use xp_plugin_api::{
    AttachReply, AttachRequest, CleanReply, CleanRequest, Events, Executor, PluginDescription, PluginFailure,
    PrepareReply, PrepareRequest, RunOutcome, RunRequest, RunStatus, Settings,
};
use xp_plugin_support::environment::script_environment;
use xp_sshkit::quote::{quote, shell_path};
use xp_sshkit::remote_run::{self, RemoteCommand};
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
        PluginDescription::new("remotedocker", env!("CARGO_PKG_VERSION"), &["remotedocker"])
    }

    fn attach(&self, request: AttachRequest, events: &Events<'_>) -> Result<AttachReply, PluginFailure> {
        if request
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
        let login = Login::for_request(&request)?;
        let connection = login.connect(Some(events))?;
        let environment = environment(&connection, &EnvironmentRequest::for_prepare(&request), events)?;
        Ok(PrepareReply {
            cached: environment.cached,
            messages: vec![environment.summary()],
        })
    }

    fn run(&self, request: RunRequest, events: &Events<'_>) -> Result<RunOutcome, PluginFailure> {
        events.status(RunStatus::Preparing);
        let target = &request.target;
        let login = Login::for_request(&request)?;
        let connection = login.connect(Some(events))?;
        let environment = environment(&connection, &EnvironmentRequest::for_run(&request), events)?;
        let python = environment
            .probe
            .python
            .clone()
            .ok_or_else(|| PluginFailure::new(format!("image {} has no python3 or python", environment.image)))?;
        let run_dir = target::run_directory(&request);
        target::removing_run_folder_on_error(&login, &run_dir, || {
            target::send_snapshot(&connection, &request, events)?;

            // Absolute paths on the host for the bind mounts, and the user to run as (so the
            // outputs stay the user's and the run's folder can be removed).
            let facts = remote_text(
                &connection,
                "reading the run's folder",
                &format!(
                    "cd {} && pwd && id -u && id -g && mkdir -p {shared} && cd {shared} && pwd",
                    shell_path(&run_dir),
                    shared = target::shared_directory_word(target, &request.project_name),
                ),
            )?;
            let facts: Vec<&str> = facts.lines().collect();
            let [run_path, uid, gid, shared] = facts[..] else {
                return Err(PluginFailure::new(format!(
                    "unexpected answer from {}: {facts:?}",
                    connection.address
                )));
            };
            let name = xp_dockerkit::container_name(&request.run_id, &request.project_dir);
            // --init: the script is not PID 1, so it reacts to SIGTERM as it would elsewhere.
            let mut argv: Vec<String> = vec![
                "docker".into(),
                "run".into(),
                "--rm".into(),
                "--init".into(),
                "--name".into(),
                name.clone(),
            ];
            for (key, value) in xp_dockerkit::run_labels(&request.run_id, &request.project_dir) {
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
            for (key, value) in script_environment(&request, "/xp-support", None, Some("/azureml-share/")) {
                argv.extend(["-e".into(), format!("{key}={value}")]);
            }
            argv.push(environment.image.clone());
            argv.push(python);
            argv.extend(request.arguments.iter().cloned());
            let command = RemoteCommand {
                argv,
                environment: Vec::new(),
                preamble: Vec::new(),
            };
            if let Some(cancelled) = remote_run::start(&connection, &run_dir, &command, events)? {
                return Ok(cancelled);
            }
            events.status(RunStatus::Running);
            // Stopping the container itself: the `docker run` client only proxies signals.
            let stop = format!("setsid docker stop -t 3 {} </dev/null >/dev/null 2>&1 &", quote(&name));
            let reconnect = || login.connect(None);
            let (outcome, connection) = remote_run::follow(connection, &reconnect, &run_dir, Some(&stop), events)?;
            remote_run::fetch_outputs(&connection, &run_dir, &request.artifacts_dir, events)?;
            let _ = connection.exec(&format!("docker rm -f {} >/dev/null 2>&1", quote(&name)), None);
            remote_run::remove(&connection, &run_dir)?;
            Ok(outcome)
        })
    }

    fn clean(&self, request: CleanRequest, events: &Events<'_>) -> Result<CleanReply, PluginFailure> {
        let login = Login::for_request(&request)?;
        let connection = login.connect(Some(events))?;
        RemoteImages {
            connection: &connection,
        }
        .check()?;
        let label = format!(
            "{}={}",
            xp_dockerkit::engine::PROJECT_LABEL,
            request.project_dir.display()
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
        Ok(CleanReply {
            messages: if tags.is_empty() {
                vec![format!(
                    "no images built by xp for this project on {}",
                    connection.address
                )]
            } else {
                Vec::new()
            },
            removed: tags,
        })
    }
}

xp_plugin_api::export_plugin!(RemoteDockerExecutor);
