use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::Value;
use xp_plugin_api::{AttachRequest, Settings, Target, SECRET_REFERENCE_PREFIX};

use super::args::{AttachArgs, ComputeTargetCommand, OutputFormat};
use super::output;
use super::CommandContext;
use crate::paths::expand_home;
use crate::plugins;
use crate::project::{templates, validate_name, yaml, Project};
use crate::run::{signals, RunSink};
use crate::secrets::{self, Binding, Redactor, SecretId, SecretStore, MASK};

/// The setting a plugin reads to generate a key pair for the target; not kept in the file.
const USE_XP_SSH_KEY: &str = "useXpSshKey";

pub fn run(context: &CommandContext, command: ComputeTargetCommand) -> anyhow::Result<i32> {
    let project = context.project()?;
    match command {
        ComputeTargetCommand::Attach(args) => attach(context, &project, args),
        ComputeTargetCommand::List(format) => {
            let mut rows = Vec::new();
            let mut records = Vec::new();
            for name in project.target_names() {
                let (kind, problem) = match project.load_target(&name) {
                    Ok(target) => (target.target_type, String::new()),
                    Err(error) => (String::from("?"), error.to_string()),
                };
                rows.push(vec![name.clone(), kind.clone(), problem.clone()]);
                records.push(serde_json::json!({"name": name, "type": kind, "file": project.compute_path(&name), "error": (!problem.is_empty()).then_some(problem)}));
            }
            match format.output {
                OutputFormat::Table => output::print(&output::table(&["NAME", "TYPE", "PROBLEM"], rows)),
                OutputFormat::Json => output::print(&output::json(&records)),
            }
            Ok(0)
        }
        ComputeTargetCommand::Show { name, output: format } => {
            let mut target = project.load_target(&name)?;
            target.settings = masked_settings(&target.settings);
            match format.output {
                OutputFormat::Table => {
                    let rows = target
                        .settings
                        .iter()
                        .map(|(key, value)| vec![key.clone(), display_value(value)])
                        .collect();
                    output::print(&format!("{} ({})", target.name, target.path.display()));
                    output::print(&output::table(&["KEY", "VALUE"], rows));
                }
                OutputFormat::Json => output::print(&output::json(&serde_json::json!({
                    "name": target.name, "type": target.target_type, "file": target.path, "settings": target.settings,
                }))),
            }
            Ok(0)
        }
        ComputeTargetCommand::Detach { name } => {
            let target = project.load_target(&name)?;
            std::fs::remove_file(&target.path).with_context(|| format!("removing {}", target.path.display()))?;
            let mut removed = vec![target.path.display().to_string()];
            if let Ok(runconfig) = project.load_runconfig(&name) {
                if runconfig.target.as_deref() == Some(name.as_str()) {
                    std::fs::remove_file(&runconfig.path)
                        .with_context(|| format!("removing {}", runconfig.path.display()))?;
                    removed.push(runconfig.path.display().to_string());
                }
            }
            let store = SecretStore::new(&context.dirs.config);
            let references = secrets::references(&target.settings);
            let forgotten = forget_secrets(&project, &store, &name, references)?;
            if forgotten > 0 {
                removed.push(format!("{forgotten} secret(s) from {}", store.dir().display()));
            }
            if !context.quiet {
                eprintln!("Detached '{name}': removed {}", removed.join(", "));
            }
            Ok(0)
        }
    }
}

/// Removes the secrets that `target`'s settings referred to (setting, id) from the store:
/// only those stored for this project's target (a reference copied from elsewhere removes
/// nothing), and not those another target of the project still refers to. Returns how many
/// were removed.
fn forget_secrets(
    project: &Project,
    store: &SecretStore,
    target: &str,
    references: Vec<(String, SecretId)>,
) -> anyhow::Result<usize> {
    let mut ids = Vec::new();
    for (setting, id) in references {
        let ours = store
            .get(&id)
            .ok()
            .flatten()
            .is_some_and(|secret| secret.serves(&id, project.root(), target, &setting));
        if ours {
            ids.push(id);
        }
    }
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(0);
    }
    let still_used: Vec<SecretId> = project
        .target_names()
        .iter()
        .filter_map(|name| project.load_target(name).ok())
        .flat_map(|target| secrets::references(&target.settings))
        .map(|(_, id)| id)
        .collect();
    let mut removed = 0;
    for id in ids.iter().filter(|id| !still_used.contains(id)) {
        if store.remove(id)? {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Settings for display: a secret written into the file by hand shows as `****`.
fn masked_settings(settings: &Settings) -> Settings {
    settings
        .iter()
        .map(|(key, value)| match value {
            Value::String(text)
                if secrets::is_secret_setting(key)
                    && !text.is_empty()
                    && !text.starts_with(SECRET_REFERENCE_PREFIX) =>
            {
                (key.clone(), Value::String(MASK.to_owned()))
            }
            other => (key.clone(), other.clone()),
        })
        .collect()
}

pub fn display_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A `--set key=value`: the value is read as YAML so `true` and `3` keep their types.
fn parse_setting(text: &str) -> anyhow::Result<(String, Value)> {
    let Some((key, value)) = text.split_once('=') else {
        bail!("--set {text}: expected KEY=VALUE, e.g. --set sharedVolumes=true");
    };
    let key = key.trim();
    if key.is_empty() {
        bail!("--set {text}: the key is empty; expected KEY=VALUE");
    }
    let parsed = yaml::parse_value(std::path::Path::new("--set"), value)
        .ok()
        .filter(|v| !v.is_object() || value.trim().is_empty())
        .unwrap_or_else(|| Value::String(value.to_owned()));
    let parsed = if value.trim().is_empty() {
        Value::String(String::new())
    } else {
        parsed
    };
    Ok((key.to_owned(), parsed))
}

/// The `.compute` text: `type` first, then the other keys, then the references to secrets,
/// quoted so they read as the strings they are: `password: "secret:<id>"`.
pub fn compute_file_text(target_type: &str, settings: &Settings) -> String {
    let mut rest = settings.clone();
    rest.remove("type");
    let references = secrets::references(&rest);
    for (key, _) in &references {
        rest.remove(key);
    }
    let mut text = format!(
        "# Compute target written by `xp computetarget attach`.\ntype: {}\n",
        yaml::to_string(&target_type).trim_end()
    );
    if !rest.is_empty() {
        text.push_str(&yaml::to_string(&rest));
    }
    if !references.is_empty() {
        text.push_str("# Secrets live in your secret store (outside the project); these name them.\n");
        for (key, id) in references {
            // Ids are letters, digits, '-', '_' and '.': nothing to escape inside the quotes.
            text.push_str(&format!(
                "{}: \"{}\"\n",
                yaml::to_string(&key).trim_end(),
                id.reference()
            ));
        }
    }
    text
}

/// Reads a secret the user types: from the terminal without echo, or the first line of
/// standard input when it is not a terminal (scripts pipe it). Never from the command line.
fn read_secret(what: &str, flag: &str, prompt: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let text = if stdin.is_terminal() {
        rpassword::prompt_password(prompt).with_context(|| format!("reading the {what} from the terminal"))?
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .with_context(|| format!("reading the {what} from standard input"))?;
        line
    };
    let text = text.trim_end_matches(['\n', '\r']).to_owned();
    if text.is_empty() {
        bail!(
            "{flag}: no {what} was given; type it at the prompt, or pipe it as the first line of standard input (e.g. `printf '%s\\n' \"$SECRET\" | xp computetarget attach ... {flag}`)"
        );
    }
    Ok(text)
}

/// A path given on the command line, absolute: `~` expanded, a relative path taken from `cwd`.
fn absolute_path(cwd: &Path, path: &Path) -> PathBuf {
    let expanded = expand_home(&path.to_string_lossy());
    if expanded.is_absolute() {
        expanded
    } else {
        cwd.join(expanded)
    }
}

/// Whether a setting value (at any depth) holds one of the secrets: equal to one, or, for
/// secrets long enough not to match by chance, containing one.
fn reveals_secret(value: &Value, secrets: &[&str], long_ones: &Redactor) -> bool {
    match value {
        Value::String(text) => {
            let trimmed = text.trim_end_matches(['\n', '\r']);
            secrets
                .iter()
                .any(|secret| trimmed == secret.trim_end_matches(['\n', '\r']))
                || long_ones.reveals(text)
        }
        Value::Array(items) => items.iter().any(|item| reveals_secret(item, secrets, long_ones)),
        Value::Object(map) => map.values().any(|item| reveals_secret(item, secrets, long_ones)),
        _ => false,
    }
}

/// Shortest secret that a setting is checked to contain (shorter ones only to equal).
const MIN_CONTAINED_SECRET: usize = 8;

fn attach(context: &CommandContext, project: &Project, args: AttachArgs) -> anyhow::Result<i32> {
    validate_name(&args.name, "compute target")?;
    let compute_path = project.compute_path(&args.name);
    if compute_path.exists() && !args.force {
        bail!(
            "compute target '{}' already exists ({}); detach it first or pass --force",
            args.name,
            compute_path.display()
        );
    }
    let target_type = args.target_type.to_ascii_lowercase();
    let mut settings = Settings::new();
    settings.insert("type".into(), Value::String(target_type.clone()));
    let login = match (&args.username, &args.address) {
        (Some(user), Some(address)) => format!(" for {user}@{address}"),
        (None, Some(address)) => format!(" for {address}"),
        _ => String::new(),
    };
    for (key, value) in [
        ("address", args.address),
        ("username", args.username),
        ("baseDockerImage", args.base_image),
        ("pythonLocation", args.python_location),
    ] {
        if let Some(value) = value {
            settings.insert(key.into(), Value::String(value));
        }
    }
    if args.nvidia_docker {
        settings.insert("nvidiaDocker".into(), Value::Bool(true));
    }
    if args.shared_volumes {
        settings.insert("sharedVolumes".into(), Value::Bool(true));
    }
    for text in &args.settings {
        let (key, value) = parse_setting(text)?;
        let literal_secret = secrets::is_secret_setting(&key)
            && matches!(&value, Value::String(text) if !text.is_empty() && !text.starts_with(SECRET_REFERENCE_PREFIX));
        if literal_secret {
            // The value is not repeated: it is a secret.
            let flag = match secrets::attach_flag(&key) {
                "" => String::from("the flag made for it"),
                flag => flag.to_owned(),
            };
            bail!(
                "--set {key}=...: a {key} never goes on the command line or into the project folder; pass {flag}, which reads it without echo and keeps it in your secret store"
            );
        }
        settings.insert(key, value);
    }
    if let Some(path) = &args.private_key_file {
        let path = absolute_path(&context.cwd, path);
        if !path.is_file() {
            bail!("--private-key-file {}: no such file", path.display());
        }
        settings.insert(
            "privateKeyFile".into(),
            Value::String(path.to_string_lossy().into_owned()),
        );
    }
    if args.use_xp_ssh_key {
        settings.insert(USE_XP_SSH_KEY.into(), Value::Bool(true));
    }

    let plugin = plugins::load_for_type(&target_type, Some(project.root()), &context.dirs)?;
    plugins::warn_passed_over(&plugin);
    // Secrets the user gives now, by the setting that will refer to them.
    let mut given = BTreeMap::new();
    if args.password {
        given.insert(
            "password".to_owned(),
            read_secret("password", "--password", &format!("Password{login}: "))?,
        );
    }
    if args.private_key_passphrase {
        given.insert(
            "privateKeyPassphrase".to_owned(),
            read_secret(
                "passphrase",
                "--private-key-passphrase",
                "Passphrase of the private key: ",
            )?,
        );
    }
    let target = Target {
        name: args.name.clone(),
        target_type: target_type.clone(),
        settings,
    };
    let store = SecretStore::new(&context.dirs.config);
    // References given with --set KEY=secret:ID resolve like those of any target: only to
    // secrets this project's target stored.
    let mut request_secrets = secrets::resolve(project.root(), &compute_path, &target, &store)?;
    request_secrets.extend(given.iter().map(|(key, value)| (key.clone(), value.clone())));

    signals::install();
    let request = AttachRequest {
        context: plugin.context(project.root(), project.name(), target, &context.dirs, request_secrets),
        ..AttachRequest::default()
    };
    let redactor = Redactor::for_secrets(&request.context.secrets);
    let sink = RunSink::new(None, None, !context.quiet, signals::cancel_requested).with_redactor(redactor.clone());
    let reply = plugin
        .attach(&request, &sink)
        .map_err(|error| redactor.call_error(error))
        .with_context(|| {
            format!(
                "attaching '{}' (type {target_type}, plugin {})",
                args.name,
                plugin.name()
            )
        })?;

    let made_a_key = reply.secrets.get("privateKey").is_some_and(|key| !key.is_empty());
    if args.use_xp_ssh_key && !made_a_key {
        bail!(
            "--use-xp-ssh-key: plugin '{}' made no key pair for '{}' (type {target_type} may not log in with SSH keys); nothing was written",
            plugin.name(),
            args.name
        );
    }
    // What goes to the store: the secrets the user gave and those the plugin made.
    let mut to_store = given;
    for (key, value) in &reply.secrets {
        if !value.is_empty() {
            to_store.insert(key.clone(), value.clone());
        }
    }
    let every_secret: Vec<&str> = request
        .context
        .secrets
        .values()
        .chain(reply.secrets.values())
        .map(String::as_str)
        .filter(|secret| !secret.is_empty())
        .collect();
    let redactor = Redactor::new(request.context.secrets.values().chain(reply.secrets.values()));
    let long_ones = Redactor::new(
        request
            .context
            .secrets
            .values()
            .chain(reply.secrets.values())
            .filter(|secret| secret.len() >= MIN_CONTAINED_SECRET),
    );
    let mut settings = reply.settings;
    settings.remove(USE_XP_SSH_KEY);
    // Defensively: a plugin must return secrets in `secrets`, never among the settings.
    for (key, value) in &settings {
        // A value the user gave as it is (a user name that happens to equal the password) is
        // not the plugin's doing.
        let given_as_is = request.context.target.settings.get(key) == Some(value);
        if !given_as_is && reveals_secret(value, &every_secret, &long_ones) {
            bail!(
                "plugin '{}' returned a secret as the value of the setting `{key}`; refusing to write it into {} (the project folder is often committed). This is a bug in the plugin: it must return secrets in AttachReply.secrets",
                plugin.name(),
                compute_path.display()
            );
        }
    }
    let runconfig_framework = reply
        .runconfig
        .get("Framework")
        .filter(|value| !reveals_secret(value, &every_secret, &long_ones))
        .and_then(Value::as_str)
        .map(str::to_owned);

    // The references the file held before, when it is replaced.
    let old_references: Vec<(String, SecretId)> = if compute_path.exists() {
        project
            .load_target(&args.name)
            .map(|old| secrets::references(&old.settings))
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut stored = Vec::new();
    for (setting, value) in &to_store {
        // A new random id each time: nobody can name it without reading this project's files.
        let id = SecretId::generate(&args.name, setting);
        store.put(&id, &Binding::new(project.root(), &args.name, setting), value)?;
        settings.insert(setting.clone(), Value::String(id.reference()));
        stored.push(id);
    }

    if let Err(error) = std::fs::write(&compute_path, compute_file_text(&target_type, &settings)) {
        for id in &stored {
            let _ = store.remove(id);
        }
        return Err(error).with_context(|| format!("writing {}", compute_path.display()));
    }
    // Secrets of the replaced file that the new one no longer uses.
    let orphans = old_references
        .into_iter()
        .filter(|(_, id)| !stored.contains(id))
        .collect();
    forget_secrets(project, &store, &args.name, orphans)?;

    let runconfig_path = project.runconfig_path(&args.name);
    let mut written = vec![compute_path.display().to_string()];
    if !runconfig_path.exists() || args.force {
        let mut overrides = xp_plugin_api::Settings::new();
        if let Some(prepare) = reply.runconfig.get("PrepareEnvironment").and_then(Value::as_bool) {
            overrides.insert("PrepareEnvironment".into(), prepare.into());
        }
        if let Some(framework) = runconfig_framework {
            overrides.insert("Framework".into(), framework.into());
        }
        let text = templates::runconfig(&args.name, &args.name, &overrides);
        std::fs::write(&runconfig_path, text).with_context(|| format!("writing {}", runconfig_path.display()))?;
        written.push(runconfig_path.display().to_string());
    }
    for message in &reply.messages {
        eprintln!("{}", redactor.scrub(message));
    }
    if !context.quiet {
        eprintln!("Attached '{}' ({target_type}): wrote {}", args.name, written.join(", "));
        if !stored.is_empty() {
            let names: Vec<&str> = to_store.keys().map(String::as_str).collect();
            eprintln!(
                "Kept {} in your secret store ({}); {} refers to it",
                names.join(", "),
                store.dir().display(),
                compute_path.display()
            );
        }
        eprintln!("Run on it with: xp experiment submit -c {} SCRIPT [ARGS...]", args.name);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_keep_their_yaml_types() {
        assert_eq!(parse_setting("sharedVolumes=true").unwrap().1, Value::Bool(true));
        assert_eq!(parse_setting("port=22").unwrap().1, serde_json::json!(22));
        assert_eq!(parse_setting("image=a:b").unwrap().1, Value::String("a:b".into()));
        assert_eq!(parse_setting("empty=").unwrap().1, Value::String(String::new()));
        assert!(parse_setting("novalue").is_err());
    }

    #[test]
    fn compute_files_start_with_the_type_and_read_back() {
        let mut settings = Settings::new();
        settings.insert("type".into(), Value::String("docker".into()));
        settings.insert("sharedVolumes".into(), Value::Bool(true));
        let text = compute_file_text("docker", &settings);
        let body: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(body[0], "type: docker");
        let back = crate::project::ComputeTarget::parse("d", std::path::Path::new("d.compute"), &text).unwrap();
        assert_eq!(back.settings["sharedVolumes"], Value::Bool(true));
    }

    #[test]
    fn secret_references_are_written_quoted_and_read_back() {
        let mut settings = Settings::new();
        settings.insert("address".into(), Value::String("h:22".into()));
        settings.insert("password".into(), Value::String("secret:gpu-password-0a1b2c3d".into()));
        settings.insert("privateKeyFile".into(), Value::String("/home/u/.ssh/id".into()));
        let text = compute_file_text("remote", &settings);
        assert!(
            text.contains("\npassword: \"secret:gpu-password-0a1b2c3d\"\n"),
            "{text}"
        );
        let back = crate::project::ComputeTarget::parse("gpu", Path::new("gpu.compute"), &text).unwrap();
        assert_eq!(back.settings.len(), 4);
        assert_eq!(back.settings["password"], "secret:gpu-password-0a1b2c3d");
    }

    #[test]
    fn a_setting_that_holds_a_secret_is_found_at_any_depth() {
        let secrets = ["hunter2", "a-much-longer-secret"];
        let long_ones = Redactor::new(&["a-much-longer-secret".to_owned()]);
        let reveals = |value: Value| reveals_secret(&value, &secrets, &long_ones);
        assert!(reveals(Value::String("hunter2".into())));
        assert!(reveals(serde_json::json!({"nested": ["x", "hunter2\n"]})));
        assert!(reveals(Value::String("user:a-much-longer-secret@host".into())));
        // A short secret only when equal: it may occur in ordinary words by chance.
        assert!(!reveals(Value::String("hunter22".into())));
        assert!(!reveals(serde_json::json!(22)));
    }

    #[test]
    fn literal_secrets_are_masked_for_display() {
        let mut settings = Settings::new();
        settings.insert("password".into(), Value::String("hunter2".into()));
        settings.insert("privateKey".into(), Value::String("secret:x".into()));
        settings.insert("username".into(), Value::String("u".into()));
        let shown = masked_settings(&settings);
        assert_eq!(shown["password"], MASK);
        assert_eq!(shown["privateKey"], "secret:x");
        assert_eq!(shown["username"], "u");
    }
}
