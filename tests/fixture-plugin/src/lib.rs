//! A plugin that misbehaves on request, so the tests can check that the host survives it.
//! Its `behaviour` setting: `panic` (panics in run), `fail` (reports a failure),
//! `panic-on-attach`, `exit` and `abort` (end the whole process from inside run); and for the secret tests: `secret-check` (reports which secrets each
//! call received, by name and length; its run prints `password ok` when
//! `secrets["password"]` equals the variable `XP_FIXTURE_EXPECTED_PASSWORD`; with
//! `-k` (`generate: [privateKey]`) its attach returns a made-up private key), `leak` (deliberately puts the
//! password into messages, log lines and its error, for the host to scrub) and
//! `leak-on-attach` (returns the password as a setting, which the host must refuse).
//! Not installed beside `xp`: tests point XP_PLUGIN_PATH at it.

use std::collections::BTreeMap;

use xp_plugin_api::{
    AttachReply, AttachRequest, CleanReply, CleanRequest, Events, Executor, PluginDescription, PluginFailure,
    PrepareReply, PrepareRequest, RunOutcome, RunRequest, RunStatus, SecretSource, SettingKind, SettingSpec,
};

#[derive(Default)]
struct Fixture;

/// Runs when the library is loaded, before any call: with `XP_FIXTURE_LOAD_MARKER` set, it
/// writes that file, so tests can tell whether a command loaded (and so ran) the library.
#[used]
#[link_section = ".init_array"]
static ON_LOAD: extern "C" fn() = on_load;

extern "C" fn on_load() {
    if let Some(path) = std::env::var_os("XP_FIXTURE_LOAD_MARKER") {
        let _ = std::fs::write(path, b"loaded");
    }
}

/// `name(length), ...`: which secrets a call received, without their values.
fn secret_names(secrets: &BTreeMap<String, String>) -> String {
    if secrets.is_empty() {
        return "none".into();
    }
    secrets
        .iter()
        .map(|(name, value)| format!("{name}({})", value.len()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A made-up private key, different each time.
fn made_up_key() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let body: String = format!("{nanos:x}{:x}", std::process::id())
        .chars()
        .cycle()
        .take(64)
        .collect();
    format!("-----BEGIN FIXTURE PRIVATE KEY-----\nFIXTUREKEY{body}\n-----END FIXTURE PRIVATE KEY-----\n")
}

impl Executor for Fixture {
    fn describe(&self) -> PluginDescription {
        // The login secrets an SSH target declares, so the host's secret handling (prompted,
        // generated, key file) is tested through a plugin that reports what it received.
        PluginDescription::new("fixture", "0.0.0", &["crashy"])
            .setting(SettingSpec::new(
                "behaviour",
                SettingKind::String,
                "how the fixture misbehaves",
            ))
            .setting(
                SettingSpec::new("password", SettingKind::String, "a password, typed at attach")
                    .secret(SecretSource::Prompted)
                    .flags(&["--password"]),
            )
            .setting(
                SettingSpec::new(
                    "privateKey",
                    SettingKind::String,
                    "a key the fixture makes up at attach",
                )
                .secret(SecretSource::Generated)
                .flags(&["-k", "--use-xp-ssh-key"]),
            )
            .setting(
                SettingSpec::new("privateKeyFile", SettingKind::Path, "a private key file of yours")
                    .flags(&["--private-key-file"]),
            )
            .setting(
                SettingSpec::new("privateKeyPassphrase", SettingKind::String, "the key's passphrase")
                    .secret(SecretSource::Prompted)
                    .flags(&["--private-key-passphrase"]),
            )
    }

    fn attach(&self, request: AttachRequest, events: &Events<'_>) -> Result<AttachReply, PluginFailure> {
        let password = request.context.secrets.get("password").cloned().unwrap_or_default();
        let mut reply = AttachReply::new(request.context.target.settings.clone());
        match request.context.target.setting_str("behaviour") {
            Some("panic-on-attach") => panic!("deliberate panic while attaching"),
            Some("secret-check") => {
                reply.messages.push(format!(
                    "attach received secrets: {}",
                    secret_names(&request.context.secrets)
                ));
                if request.generate.iter().any(|key| key == "privateKey") {
                    reply.secrets.insert("privateKey".into(), made_up_key());
                    reply
                        .messages
                        .push("public key: ssh-fixture AAAAfixture xp@fixture".into());
                    reply
                        .messages
                        .push("add to ~/.ssh/authorized_keys: ssh-fixture AAAAfixture xp@fixture".into());
                }
            }
            Some("leak") => {
                events.info(&format!("attach log: the password is {password}"));
                reply
                    .messages
                    .push(format!("attach message: the password is {password}"));
            }
            Some("leak-on-attach") => {
                reply.settings.insert("loginSecret".into(), password.into());
            }
            _ => {}
        }
        Ok(reply)
    }

    fn prepare(&self, request: PrepareRequest, _events: &Events<'_>) -> Result<PrepareReply, PluginFailure> {
        Ok(PrepareReply::cached().message(format!(
            "prepare received secrets: {}",
            secret_names(&request.context.secrets)
        )))
    }

    fn clean(&self, request: CleanRequest, _events: &Events<'_>) -> Result<CleanReply, PluginFailure> {
        Ok(CleanReply::new().message(format!(
            "clean received secrets: {}",
            secret_names(&request.context.secrets)
        )))
    }

    fn run(&self, request: RunRequest, events: &Events<'_>) -> Result<RunOutcome, PluginFailure> {
        events.status(RunStatus::Running);
        events.stdout("fixture plugin running");
        match request.context.target.setting_str("behaviour") {
            Some("fail") => Err(PluginFailure::new("the fixture failed as asked")),
            Some("panic") => panic!("deliberate panic in run {}", request.run_id),
            // What a plugin must never do: end the host's process with it.
            Some("exit") => std::process::exit(3),
            Some("abort") => std::process::abort(),
            Some("secret-check") => {
                events.stdout(&format!(
                    "run received secrets: {}",
                    secret_names(&request.context.secrets)
                ));
                let expected = std::env::var("XP_FIXTURE_EXPECTED_PASSWORD").ok();
                match (request.context.secrets.get("password"), expected) {
                    (Some(password), Some(expected)) if *password == expected => events.stdout("password ok"),
                    (Some(_), _) => events.stdout("password differs"),
                    (None, _) => events.stdout("no password"),
                }
                if request
                    .context
                    .secrets
                    .get("privateKey")
                    .is_some_and(|key| key.starts_with("-----BEGIN FIXTURE PRIVATE KEY-----"))
                {
                    events.stdout("privateKey ok");
                }
                Ok(RunOutcome::default())
            }
            Some("leak") => {
                let password = request.context.secrets.get("password").cloned().unwrap_or_default();
                events.stdout(&format!("stdout: the password is {password}"));
                events.stderr(&format!("stderr: the password is {password}"));
                events.info(&format!("info: the password is {password}"));
                events.progress(&format!("progress {password}"), 1, Some(1));
                Err(PluginFailure::new(format!("login failed with password {password}")))
            }
            _ => Ok(RunOutcome::default()),
        }
    }
}

xp_plugin_api::export_plugin!(Fixture);
