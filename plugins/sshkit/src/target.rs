//! What every SSH target type (`remote`, `remotedocker`, `cluster`) does the same way: where
//! known_hosts is, how to log in, the `-k` key pair at attach, xp's folder on the host, the
//! snapshot transfer, and the shared directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use xp_plugin_api::{
    AttachReply, AttachRequest, Events, PluginFailure, ReapReply, ReapRequest, RequestContext, RunOutcome, RunRequest,
    SecretSource, SettingKind, SettingSpec, Settings, Target,
};
use xp_plugin_sdk::environment::DEFAULT_SHARED_DIRECTORY;

use crate::connection::{Connection, Credentials, Endpoint};
use crate::quote::{quote, shell_path};
use crate::remote_run::RemoteCommand;
use crate::sync::{self, SyncReport};

/// xp's folder on the host, under the user's home unless absolute.
pub const DEFAULT_REMOTE_DIRECTORY: &str = ".xp-remote";

/// The known_hosts file every SSH plugin shares: in xp's configuration folder (or the
/// plugin's state folder for hosts that predate it).
pub fn known_hosts(user_config_dir: &Path, state_dir: &Path) -> PathBuf {
    if user_config_dir.as_os_str().is_empty() {
        state_dir.join("known_hosts")
    } else {
        user_config_dir.join("known_hosts")
    }
}

/// Where and how a target logs in, ready to connect (and reconnect).
pub struct Login {
    pub endpoint: Endpoint,
    pub credentials: Credentials,
    pub known_hosts: PathBuf,
}

impl Login {
    /// How the target of a request (its context block) logs in.
    pub fn for_context(context: &RequestContext) -> Result<Login, PluginFailure> {
        Login::of(
            &context.target,
            &context.secrets,
            &context.user_config_dir,
            &context.state_dir,
        )
    }

    pub fn of(
        target: &Target,
        secrets: &BTreeMap<String, String>,
        user_config_dir: &Path,
        state_dir: &Path,
    ) -> Result<Login, PluginFailure> {
        Ok(Login {
            endpoint: Endpoint::of(target)?,
            credentials: Credentials::of(target, secrets)?,
            known_hosts: known_hosts(user_config_dir, state_dir),
        })
    }

    /// Connects; first contact with a host is told through `events`.
    pub fn connect(&self, events: Option<&Events<'_>>) -> Result<Connection, PluginFailure> {
        Connection::open(&self.endpoint, &self.credentials, &self.known_hosts, events)
    }
}

/// The attach every SSH target does: its `defaults` (and the shared directory's) fill the
/// settings the user left out; then either `-k` makes an xp key pair, or xp logs in and `check`
/// says what the host offers (a phrase for the user, e.g. the interpreter's version).
pub fn attach(
    request: &AttachRequest,
    defaults: &[(&str, &str)],
    runconfig: Settings,
    events: &Events<'_>,
    check: impl FnOnce(&Connection, &Target) -> Result<String, PluginFailure>,
) -> Result<AttachReply, PluginFailure> {
    let mut settings = request.context.target.settings.clone();
    for (key, value) in defaults {
        settings.entry(*key).or_insert((*value).into());
    }
    settings
        .entry("nativeSharedDirectory")
        .or_insert(DEFAULT_SHARED_DIRECTORY.into());
    // `-k`: the host asks for the key in `generate` (plugin-api 1.1); a 1.0 host sent the
    // `useXpSshKey` setting instead.
    let use_xp_key = take_use_xp_key(&mut settings) || request.generate.iter().any(|key| key == PRIVATE_KEY);
    let target = Target {
        settings: settings.clone(),
        ..request.context.target.clone()
    };
    let mut reply = AttachReply::new(settings);
    reply.runconfig = runconfig;
    if use_xp_key {
        offer_xp_key(&target, &mut reply)?;
        return Ok(reply);
    }
    let login = Login::of(
        &target,
        &request.context.secrets,
        &request.context.user_config_dir,
        &request.context.state_dir,
    )?;
    let connection = login.connect(Some(events))?;
    let offered = check(&connection, &target)?;
    reply.messages.push(format!(
        "Connected to {} as {}: {offered}",
        login.endpoint.address, login.endpoint.username
    ));
    Ok(reply)
}

/// Takes `useXpSshKey` out of attach settings (it is a request, not a setting to keep).
fn take_use_xp_key(settings: &mut Settings) -> bool {
    settings
        .remove("useXpSshKey")
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

/// For `-k`: makes a key pair, hands the private key to the host's secret store through the
/// reply, and tells the user the line to add on the host.
fn offer_xp_key(target: &Target, reply: &mut AttachReply) -> Result<(), PluginFailure> {
    let endpoint = Endpoint::of(target)?;
    let pair = crate::keys::generate(&format!("xp-{}@{}", target.name, endpoint.address.host))?;
    reply.messages.push(format!(
        "xp made a key pair for '{}' and keeps its private key in your secret store. Add this line to ~/.ssh/authorized_keys of {} on {}:\n{}",
        target.name, endpoint.username, endpoint.address, pair.public_key
    ));
    reply.messages.push(format!(
        "For example: ssh -p {} {}@{} 'mkdir -p ~/.ssh && echo \"{}\" >> ~/.ssh/authorized_keys'",
        endpoint.address.port, endpoint.username, endpoint.address.host, pair.public_key
    ));
    reply.secrets.insert(PRIVATE_KEY.into(), pair.private_key);
    Ok(())
}

/// The secret setting that holds a private key xp made or was given.
pub const PRIVATE_KEY: &str = "privateKey";

/// The settings every SSH target has: where to log in and how.
pub fn login_settings() -> Vec<SettingSpec> {
    vec![
        SettingSpec::new("address", SettingKind::String, "the host to reach: HOST or HOST:PORT (port 22 by default)")
            .required()
            .flags(&["--address"]),
        SettingSpec::new("username", SettingKind::String, "the user to log in as on the host")
            .required()
            .flags(&["-u", "--username"]),
        SettingSpec::new(
            "password",
            SettingKind::String,
            "log in with a password, typed at attach (never on the command line) and kept in your secret store",
        )
        .secret(SecretSource::Prompted)
        .flags(&["--password"]),
        SettingSpec::new(
            PRIVATE_KEY,
            SettingKind::String,
            "log in with a key pair xp makes at attach: the private key goes to your secret store, the public key line to the host's authorized_keys",
        )
        .secret(SecretSource::Generated)
        .flags(&["-k", "--use-xp-ssh-key"]),
        SettingSpec::new(
            "privateKeyFile",
            SettingKind::Path,
            "log in with this private key file of yours (it stays where it is)",
        )
        .flags(&["--private-key-file"]),
        SettingSpec::new(
            "privateKeyPassphrase",
            SettingKind::String,
            "the passphrase of the private key, typed at attach and kept in your secret store",
        )
        .secret(SecretSource::Prompted)
        .flags(&["--private-key-passphrase"]),
        SettingSpec::new(
            "remoteDirectory",
            SettingKind::String,
            "xp's folder on the host (snapshot cache, run folders), under the user's home unless absolute",
        )
        .default_value(DEFAULT_REMOTE_DIRECTORY),
        xp_plugin_sdk::settings::native_shared_directory(),
    ]
}

/// The `remoteDirectory` setting, or `.xp-remote`.
pub fn remote_directory(target: &Target) -> String {
    let directory = target
        .setting_str("remoteDirectory")
        .filter(|d| !d.trim().is_empty())
        .unwrap_or(DEFAULT_REMOTE_DIRECTORY)
        .trim_end_matches('/');
    // Paths are taken from the home folder already; `~/` says the same.
    directory.strip_prefix("~/").unwrap_or(directory).to_owned()
}

/// The run's folder on the host: `runs/<run id>-<project folder hash>` (run ids are
/// `<project folder name>_<ms>`, which two projects of the same name could share).
pub fn run_directory(request: &RunRequest) -> String {
    run_directory_of(&request.context, &request.run_id)
}

/// The folder of run `run_id` of the context's project and target on the host.
pub fn run_directory_of(context: &RequestContext, run_id: &str) -> String {
    format!(
        "{}/runs/{}-{}",
        remote_directory(&context.target),
        run_id,
        xp_plugin_sdk::project::folder_tag(&context.project_dir)
    )
}

/// What every SSH target does when a run's driver vanished: the script, detached on the host,
/// may still run; end its process group (and `also`, a shell command such as stopping the
/// run's container), then remove its folder.
pub fn reap(request: &ReapRequest, also: Option<&str>, events: &Events<'_>) -> Result<ReapReply, PluginFailure> {
    let login = Login::for_context(&request.context)?;
    let connection = login.connect(Some(events))?;
    let run_dir = run_directory_of(&request.context, &request.run_id);
    let exists = connection.exec(&format!("test -d {}", shell_path(&run_dir)), None)?;
    if exists.status != 0 {
        return Ok(ReapReply::new().message(format!(
            "nothing of run {} is left on {}",
            request.run_id, connection.address
        )));
    }
    crate::remote_run::cancel(&connection, &run_dir, also)?;
    crate::remote_run::remove(&connection, &run_dir)?;
    Ok(ReapReply::new().ended(format!(
        "the run's processes and folder {run_dir} on {}",
        connection.address
    )))
}

/// Sends the run's snapshot (to `work/`) and xp's Python helpers (to `support/`) into the
/// run's folder, through the host's file cache, and says how much travelled.
pub fn send_snapshot(
    connection: &Connection,
    request: &RunRequest,
    events: &Events<'_>,
) -> Result<SyncReport, PluginFailure> {
    transfer_snapshot(connection, request, None, None, events)
}

/// [`send_snapshot`] and [`crate::remote_run::start`] in two round trips in all: `preflight`
/// (shell commands that must exit 0, e.g. checking the interpreter) runs with the cache
/// query, and the run starts in the command that makes its folder. Returns the cancelled
/// outcome instead when the host asked to cancel before anything started.
pub fn send_snapshot_and_start(
    connection: &Connection,
    request: &RunRequest,
    preflight: &str,
    command: &RemoteCommand,
    events: &Events<'_>,
) -> Result<Option<RunOutcome>, PluginFailure> {
    if events.is_cancelled() {
        return Ok(Some(RunOutcome::canceled(130)));
    }
    let script = crate::remote_run::wrapper_script(command)?;
    transfer_snapshot(connection, request, Some(preflight), Some(&script), events)?;
    Ok(None)
}

fn transfer_snapshot(
    connection: &Connection,
    request: &RunRequest,
    preflight: Option<&str>,
    script: Option<&str>,
    events: &Events<'_>,
) -> Result<SyncReport, PluginFailure> {
    let target = &request.context.target;
    let report = sync::transfer(
        connection,
        &sync::Transfer {
            folders: &[
                sync::Folder {
                    path: &request.snapshot_dir,
                    prefix: "work/",
                    manifest: request.snapshot_manifest.as_deref(),
                },
                sync::Folder {
                    path: &request.support_dir,
                    prefix: "support/",
                    manifest: None,
                },
            ],
            cache_dir: &format!("{}/cache", remote_directory(target)),
            run_dir: &run_directory(request),
            preflight,
            start: script.map(|script| (crate::remote_run::LAUNCH, script)),
        },
        &|| events.is_cancelled(),
    )?;
    events.info(&format!(
        "Snapshot: sent {} of {} files ({} of {} bytes); the rest was in the host's cache",
        report.sent_files, report.files, report.sent_bytes, report.bytes
    ));
    if !report.skipped_links.is_empty() {
        events.info(&format!(
            "Not sent: links to folders outside the project ({}); the script on the host must find that data there",
            report.skipped_links.join(", ")
        ));
    }
    Ok(report)
}

/// `argv` run on the host as every script runs there: xp's variables in its environment, xp's
/// Python helpers on `PYTHONPATH` (set in the preamble, under the run's folder) and the shared
/// directory made first.
pub fn script_command(request: &RunRequest, argv: Vec<String>) -> RemoteCommand {
    let mut environment = xp_plugin_sdk::environment::script_environment(request, "", None, None);
    environment.remove("PYTHONPATH");
    let mut preamble = vec![pythonpath_preamble(request)];
    preamble.extend(shared_directory_preamble(
        &request.context.target,
        &request.context.project_name,
    ));
    RemoteCommand {
        argv,
        environment: environment.into_iter().collect(),
        preamble,
    }
}

/// `nativeSharedDirectory/<project>/` on the host as one shell word (`~/` is the user's home).
pub fn shared_directory_word(target: &Target, project: &str) -> String {
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

/// The lines of a wrapper script that export `AZUREML_NATIVE_SHARE_DIRECTORY` and make it.
pub fn shared_directory_preamble(target: &Target, project: &str) -> Vec<String> {
    vec![
        format!(
            "export AZUREML_NATIVE_SHARE_DIRECTORY={}",
            shared_directory_word(target, project)
        ),
        "mkdir -p \"$AZUREML_NATIVE_SHARE_DIRECTORY\"".to_owned(),
    ]
}

/// The wrapper-script line that puts xp's Python helpers (`support/` beside the run's `work/`,
/// where the script runs) first on `PYTHONPATH`, as every target does, then the run
/// configuration's `PYTHONPATH` or, without one, the host's own: the same rule as
/// [`xp_plugin_sdk::environment::script_environment`] on this machine.
pub fn pythonpath_preamble(request: &RunRequest) -> String {
    let helpers = "export PYTHONPATH=\"$(cd .. && pwd)/support\"";
    match request.environment.get("PYTHONPATH").filter(|path| !path.is_empty()) {
        Some(path) => format!("{helpers}:{}", quote(path)),
        None => format!("{helpers}${{PYTHONPATH:+:$PYTHONPATH}}"),
    }
}

/// Runs `work`, everything after the snapshot reached the host; when it fails, the run's folder
/// on the host is removed over a fresh connection (the old one may be what failed), so failed
/// runs leave nothing behind in the host's `runs/`.
pub fn removing_run_folder_on_error<T>(
    login: &Login,
    run_dir: &str,
    work: impl FnOnce() -> Result<T, PluginFailure>,
) -> Result<T, PluginFailure> {
    let result = work();
    if result.is_err() {
        if let Ok(connection) = login.connect(None) {
            let _ = crate::remote_run::remove(&connection, run_dir);
        }
    }
    result
}
