//! `xp computetarget attach TYPE --name N ...`: the plugin serving TYPE declares the flags,
//! checks and completes the settings, and may make secrets; the host asks for the secrets the
//! user gives, keeps every secret in the user's store, and writes the `.compute` file (with
//! references only) and a run configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use serde_json::Value;
use xp_plugin_api::AttachRequest;

use super::files::{compute_file_text, read_secret, reveals_secret, MIN_CONTAINED_SECRET};
use super::flags::{self, AttachOptions, Parsed};
use super::{forget_secrets, CommandContext};
use crate::plugins::schema::{self, SecretSettings};
use crate::plugins::{self, LoadedPlugin};
use crate::project::{templates, validate_name, ComputeTarget, Project};
use crate::run::{signals, TargetCall};
use crate::secrets::{self, Binding, Redactor, SecretId, SecretStore};

/// The types the plugins on the search path serve, for help without a type.
fn served_types(context: &CommandContext) -> Vec<String> {
    let project = context.project().ok();
    let (_, entries) = plugins::survey(project.as_ref().map(Project::root), &context.dirs, false);
    entries.into_iter().flat_map(|entry| entry.serves).collect()
}

pub fn attach(context: &CommandContext, args: &[String]) -> anyhow::Result<i32> {
    let wants_help = args.iter().any(|arg| arg == "--help" || arg == "-h");
    let Some(target_type) = args.first().filter(|first| !first.starts_with('-')) else {
        if wants_help {
            print!("{}", flags::base_help(&served_types(context), None));
            return Ok(0);
        }
        bail!(
            "xp computetarget attach TYPE --name NAME ...: the target type comes first (one of: {}); `xp computetarget attach --help` says more",
            served_types(context).join(", ")
        );
    };
    let target_type = target_type.to_ascii_lowercase();
    let project_root = context.project().ok().map(|project| project.root().to_path_buf());
    let plugin = match plugins::load_for_type(&target_type, project_root.as_deref(), &context.dirs) {
        Ok(plugin) => plugin,
        Err(error) if wants_help => {
            print!("{}", flags::base_help(&served_types(context), Some(&error.to_string())));
            return Ok(0);
        }
        Err(error) => return Err(error.into()),
    };
    plugins::warn_passed_over(&plugin);
    let options = match flags::parse(args, &plugin.description, &context.cwd) {
        Ok(Parsed::Help(help)) => {
            print!("{help}");
            return Ok(0);
        }
        Ok(Parsed::Options(options)) => options,
        // clap's own words: the flag it did not know, the value it missed, with usage.
        Err(error) => {
            let rendered = error.render().to_string();
            bail!(
                "{}\n\n`xp computetarget attach {target_type} --help` lists the flags of type {target_type}; --set KEY=VALUE sets any setting",
                rendered.trim_end().trim_start_matches("error: ")
            )
        }
    };
    let quiet = context.quiet || options.quiet;
    let project = match &options.project {
        Some(dir) => Project::discover(&context.cwd.join(dir))?,
        None => context.project()?,
    };
    attach_with(context, &project, plugin, options, quiet)
}

fn attach_with(
    context: &CommandContext,
    project: &Project,
    plugin: LoadedPlugin,
    options: AttachOptions,
    quiet: bool,
) -> anyhow::Result<i32> {
    let AttachOptions {
        target_type,
        name,
        settings: given_settings,
        set_keys,
        prompted,
        generate,
        force,
        ..
    } = options;
    validate_name(&name, "compute target")?;
    let compute_path = project.compute_path(&name);
    if compute_path.exists() && !force {
        bail!(
            "compute target '{name}' already exists ({}); detach it first or pass --force",
            compute_path.display()
        );
    }
    let secret_settings = SecretSettings::of(&plugin.description);
    // A secret never goes on the command line or into the project folder.
    for key in set_keys.iter().filter(|key| secret_settings.contains(key)) {
        let literal = matches!(given_settings.get(key), Some(Value::String(text))
            if !text.is_empty() && !text.starts_with(xp_plugin_api::SECRET_REFERENCE_PREFIX));
        if literal {
            let flag = secret_settings
                .flag(key)
                .map(str::to_owned)
                .unwrap_or_else(|| "the flag made for it".to_owned());
            bail!(
                "--set {key}=...: a {key} never goes on the command line or into the project folder; pass {flag}, which reads it without echo and keeps it in your secret store"
            );
        }
    }
    // What the user gave must fit before the plugin is asked anything.
    schema::validate_given(&given_settings, &plugin.description, &compute_path)?;
    let mut settings = given_settings;
    settings.insert("type".into(), Value::String(target_type.clone()));

    // Secrets the user gives now, by the setting that will refer to them.
    let mut given = BTreeMap::new();
    for key in &prompted {
        let flag = secret_settings.flag(key).unwrap_or(key).to_owned();
        let value = read_secret(key, &flag, &format!("{key} of target '{name}': "))?;
        given.insert(key.clone(), value);
    }
    let target = ComputeTarget {
        name: name.clone(),
        path: compute_path.clone(),
        target_type: target_type.clone(),
        settings,
    };
    let store = SecretStore::new(&context.dirs.config);
    // References given with --set KEY=secret:ID resolve like those of any target: only to
    // secrets this project's target stored.
    let mut request_secrets = secrets::resolve(
        project.root(),
        &compute_path,
        &target.to_plugin_target(),
        &store,
        &secret_settings,
    )?;
    request_secrets.extend(given.iter().map(|(key, value)| (key.clone(), value.clone())));

    signals::install();
    // The same pipeline as every call about a target: its context, a masked sink, masked errors.
    let call = TargetCall::with_secrets(target, plugin, request_secrets);
    let plugin = &call.plugin;
    let request = AttachRequest {
        context: call.context(project, &context.dirs),
        generate: generate.clone(),
    };
    let sink = call.sink(!quiet, signals::cancel_requested);
    let reply = plugin
        .attach(&request, &sink)
        .map_err(|error| call.redactor.call_error(error))
        .with_context(|| format!("attaching '{name}' (type {target_type}, plugin {})", plugin.name()))?;

    for key in &generate {
        if reply.secrets.get(key).is_none_or(|value| value.is_empty()) {
            bail!(
                "{}: plugin '{}' made no {key} for '{name}' (the secret this flag asks it to make); nothing was written",
                secret_settings.flag(key).unwrap_or(key),
                plugin.name()
            );
        }
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
    let runconfig: xp_plugin_api::Settings = reply
        .runconfig
        .iter()
        .filter(|(_, value)| !reveals_secret(value, &every_secret, &long_ones))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();

    // The references the file held before, when it is replaced.
    let old_references: Vec<(String, SecretId)> = if compute_path.exists() {
        project
            .load_target(&name)
            .map(|old| secrets::references(&old.settings))
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    // The settings as they will be written (secrets as references) must fit the schema:
    // checked before anything is stored or written.
    for key in to_store.keys() {
        settings.insert(
            key.clone(),
            Value::String(format!("{}{key}", xp_plugin_api::SECRET_REFERENCE_PREFIX)),
        );
    }
    let text = compute_file_text(&target_type, &settings);
    schema::validate(&settings, &plugin.description, &compute_path, &text)?;
    let mut stored = Vec::new();
    for (setting, value) in &to_store {
        // A new random id each time: nobody can name it without reading this project's files.
        let id = SecretId::generate(&name, setting);
        store.put(&id, &Binding::new(project.root(), &name, setting), value)?;
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
    forget_secrets(project, &store, &name, orphans)?;

    let runconfig_path = project.runconfig_path(&name);
    let mut written: Vec<PathBuf> = vec![compute_path.clone()];
    if !runconfig_path.exists() || force {
        let text = templates::runconfig(&name, &name, &runconfig);
        std::fs::write(&runconfig_path, text).with_context(|| format!("writing {}", runconfig_path.display()))?;
        written.push(runconfig_path);
    }
    for message in &reply.messages {
        eprintln!("{}", redactor.scrub(message));
    }
    if !quiet {
        let written: Vec<String> = written.iter().map(|path| path.display().to_string()).collect();
        eprintln!("Attached '{name}' ({target_type}): wrote {}", written.join(", "));
        if !stored.is_empty() {
            let names: Vec<&str> = to_store.keys().map(String::as_str).collect();
            eprintln!(
                "Kept {} in your secret store ({}); {} refers to it",
                names.join(", "),
                store.dir().display(),
                compute_path.display()
            );
        }
        eprintln!("Run on it with: xp experiment submit -c {name} SCRIPT [ARGS...]");
    }
    Ok(0)
}
