//! The `remote` executor: runs the snapshot on a Linux host over SSH with a Python the user
//! manages there. The snapshot travels incrementally (files cached on the host by content);
//! the script runs detached from the connection in a per-run folder, its output followed
//! live and picked up again after a dropped connection; `outputs/` comes back as artifacts.

use std::path::PathBuf;

use xp_plugin_api::{
    AttachReply, AttachRequest, Events, Executor, PluginDescription, PluginFailure, PrepareReply, PrepareRequest,
    RunOutcome, RunRequest, RunStatus, Target,
};
use xp_plugin_support::environment::{script_environment, DEFAULT_SHARED_DIRECTORY};
use xp_sshkit::connection::Endpoint;
use xp_sshkit::quote::{quote, shell_path};
use xp_sshkit::remote_run::{self, RemoteCommand};
use xp_sshkit::{keys, sync, Connection, Credentials};

const DEFAULT_PYTHON: &str = "python3";
/// xp's folder on the host, under the user's home unless absolute.
const DEFAULT_REMOTE_DIRECTORY: &str = ".xp-remote";

#[derive(Default)]
struct RemoteExecutor;

fn known_hosts(user_config_dir: &std::path::Path, state_dir: &std::path::Path) -> PathBuf {
    if user_config_dir.as_os_str().is_empty() {
        state_dir.join("known_hosts")
    } else {
        user_config_dir.join("known_hosts")
    }
}

fn python(target: &Target) -> &str {
    target
        .setting_str("pythonLocation")
        .filter(|p| !p.trim().is_empty())
        .unwrap_or(DEFAULT_PYTHON)
}

fn remote_directory(target: &Target) -> String {
    target
        .setting_str("remoteDirectory")
        .filter(|d| !d.trim().is_empty())
        .unwrap_or(DEFAULT_REMOTE_DIRECTORY)
        .trim_end_matches('/')
        .to_owned()
}

/// Checks that the interpreter exists on the host; returns its version line.
fn check_python(connection: &Connection, target: &Target) -> Result<String, PluginFailure> {
    let python = python(target);
    let finished = connection.exec(&format!("{} --version 2>&1", quote(python)), None)?;
    if finished.status != 0 {
        return Err(PluginFailure::new(format!(
            "pythonLocation '{python}' was not found on {} (aml_config/{}.compute); install Python there or set pythonLocation to its path",
            connection.address, target.name
        )));
    }
    Ok(String::from_utf8_lossy(&finished.stdout).trim().to_owned())
}

/// `nativeSharedDirectory` on the host as a shell word, with the project's folder under it.
fn shared_directory_word(target: &Target, project: &str) -> String {
    let base = target
        .setting_str("nativeSharedDirectory")
        .filter(|d| !d.trim().is_empty())
        .unwrap_or(DEFAULT_SHARED_DIRECTORY);
    let base = base.trim_end_matches('/');
    let path = format!("{}/{project}/", base.strip_prefix("~/").unwrap_or(base));
    if base.starts_with('/') {
        quote(&path)
    } else {
        shell_path(&path)
    }
}

fn connect(
    target: &Target,
    secrets: &std::collections::BTreeMap<String, String>,
    known_hosts: &std::path::Path,
    events: Option<&Events<'_>>,
) -> Result<Connection, PluginFailure> {
    let endpoint = Endpoint::of(target)?;
    let credentials = Credentials::of(target, secrets)?;
    Connection::open(&endpoint, &credentials, known_hosts, events)
}

impl Executor for RemoteExecutor {
    fn describe(&self) -> PluginDescription {
        PluginDescription {
            name: "remote".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            api_version: xp_plugin_api::API_VERSION.into(),
            target_types: vec!["remote".into()],
        }
    }

    fn attach(&self, request: AttachRequest, events: &Events<'_>) -> Result<AttachReply, PluginFailure> {
        let mut settings = request.target.settings.clone();
        settings.entry("pythonLocation").or_insert(DEFAULT_PYTHON.into());
        settings
            .entry("nativeSharedDirectory")
            .or_insert(DEFAULT_SHARED_DIRECTORY.into());
        let use_xp_key = settings
            .remove("useXpSshKey")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let target = Target {
            settings: settings.clone(),
            ..request.target.clone()
        };
        let endpoint = Endpoint::of(&target)?;
        let mut reply = AttachReply {
            settings,
            ..AttachReply::default()
        };
        if use_xp_key {
            let pair = keys::generate(&format!("xp-{}@{}", target.name, endpoint.address.host))?;
            reply.messages.push(format!(
                "xp made a key pair for '{}' and keeps its private key in your secret store. Add this line to ~/.ssh/authorized_keys of {} on {}:\n{}",
                target.name, endpoint.username, endpoint.address, pair.public_key
            ));
            reply.messages.push(format!(
                "For example: ssh -p {} {}@{} 'mkdir -p ~/.ssh && echo \"{}\" >> ~/.ssh/authorized_keys'",
                endpoint.address.port, endpoint.username, endpoint.address.host, pair.public_key
            ));
            reply.secrets.insert("privateKey".into(), pair.private_key);
            return Ok(reply);
        }
        let known_hosts = known_hosts(&request.user_config_dir, &request.state_dir);
        let connection = connect(&target, &request.secrets, &known_hosts, Some(events))?;
        let version = check_python(&connection, &target)?;
        reply.messages.push(format!(
            "Connected to {} as {}: {version}",
            endpoint.address, endpoint.username
        ));
        Ok(reply)
    }

    fn prepare(&self, request: PrepareRequest, events: &Events<'_>) -> Result<PrepareReply, PluginFailure> {
        let known_hosts = known_hosts(&request.user_config_dir, &request.state_dir);
        let connection = connect(&request.target, &request.secrets, &known_hosts, Some(events))?;
        let version = check_python(&connection, &request.target)?;
        Ok(PrepareReply {
            cached: true,
            messages: vec![format!(
                "{} is reachable and has {version}; the remote target uses that interpreter as it is",
                connection.address
            )],
        })
    }

    fn run(&self, request: RunRequest, events: &Events<'_>) -> Result<RunOutcome, PluginFailure> {
        events.status(RunStatus::Preparing);
        let target = &request.target;
        let known_hosts = known_hosts(&request.user_config_dir, &request.state_dir);
        let endpoint = Endpoint::of(target)?;
        let credentials = Credentials::of(target, &request.secrets)?;
        let open = || Connection::open(&endpoint, &credentials, &known_hosts, None);
        let connection = Connection::open(&endpoint, &credentials, &known_hosts, Some(events))?;
        let program = if request.framework == "PySpark" {
            target
                .setting_str("sparkSubmitLocation")
                .unwrap_or("spark-submit")
                .to_owned()
        } else {
            check_python(&connection, target)?;
            python(target).to_owned()
        };

        let base = remote_directory(target);
        let run_dir = format!("{base}/runs/{}", request.run_id);
        let report = sync::sync(
            &connection,
            &[(&request.snapshot_dir, "work/"), (&request.support_dir, "support/")],
            &format!("{base}/cache"),
            &run_dir,
        )?;
        events.info(&format!(
            "Snapshot: sent {} of {} files ({} of {} bytes); the rest was in the host's cache",
            report.sent_files, report.files, report.sent_bytes, report.bytes
        ));

        let mut environment = script_environment(&request, "", None, None);
        let user_pythonpath = request.environment.get("PYTHONPATH").cloned();
        environment.remove("PYTHONPATH");
        let mut preamble = vec![match user_pythonpath {
            Some(path) if !path.is_empty() => format!("export PYTHONPATH=\"$(cd .. && pwd)/support\":{}", quote(&path)),
            _ => "export PYTHONPATH=\"$(cd .. && pwd)/support\"".to_owned(),
        }];
        preamble.push(format!(
            "export AZUREML_NATIVE_SHARE_DIRECTORY={}",
            shared_directory_word(target, &request.project_name)
        ));
        preamble.push("mkdir -p \"$AZUREML_NATIVE_SHARE_DIRECTORY\"".to_owned());
        let command = RemoteCommand {
            argv: std::iter::once(program)
                .chain(request.arguments.iter().cloned())
                .collect(),
            environment: environment.into_iter().collect(),
            preamble,
        };
        if events.is_cancelled() {
            let _ = remote_run::remove(&connection, &run_dir);
            return Ok(RunOutcome {
                exit_code: 130,
                canceled: true,
            });
        }
        remote_run::start(&connection, &run_dir, &command)?;
        events.status(RunStatus::Running);
        let (outcome, connection) = remote_run::follow(connection, &open, &run_dir, None, events)?;
        remote_run::fetch_outputs(&connection, &run_dir, &request.artifacts_dir)?;
        remote_run::remove(&connection, &run_dir)?;
        Ok(outcome)
    }
}

xp_plugin_api::export_plugin!(RemoteExecutor);
