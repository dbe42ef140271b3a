//! The command line of `xp computetarget attach TYPE ...`: its flags come from the settings
//! schema of the plugin that serves TYPE, so `--help` lists that plugin's settings and a
//! third-party plugin gets flags by declaring them.

use std::path::Path;

use clap::{Arg, ArgAction, Command};
use serde_json::Value;
use xp_plugin_api::{PluginDescription, SecretSource, SettingKind, SettingSpec, Settings};

use super::files::parse_setting;
use crate::paths::expand_home;

/// What the command line asks of an attach.
#[derive(Debug, Default)]
pub struct AttachOptions {
    pub target_type: String,
    pub name: String,
    /// Settings given with the plugin's flags and `--set`, typed.
    pub settings: Settings,
    /// `--set` settings, by key, for checks that concern what the user typed literally.
    pub set_keys: Vec<String>,
    /// Secret settings whose flag was given: to read from the terminal or standard input.
    pub prompted: Vec<String>,
    /// Secret settings whose flag was given: for the plugin to make.
    pub generate: Vec<String>,
    pub force: bool,
    pub quiet: bool,
    pub project: Option<String>,
}

/// The result of reading the command line.
pub enum Parsed {
    /// `--help`: the text to print.
    Help(String),
    Options(AttachOptions),
}

const BASE_FLAGS: &[&str] = &[
    "--name",
    "-n",
    "--set",
    "--force",
    "--help",
    "-h",
    "--quiet",
    "-q",
    "--project",
];

/// The command without any plugin's flags.
fn base_command() -> Command {
    Command::new("xp computetarget attach")
        .about("Attach a compute target: writes aml_config/NAME.compute (and NAME.runconfig) with the settings the target type's plugin completes and checks")
        .override_usage("xp computetarget attach TYPE --name NAME [TYPE's flags] [--set KEY=VALUE]... [--force]")
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(
            Arg::new("type")
                .value_name("TYPE")
                .required(true)
                .help("The target type: any type a plugin on the search path serves (listed below)"),
        )
        .arg(
            Arg::new("name")
                .short('n')
                .long("name")
                .value_name("NAME")
                .required(true)
                .help("The target's name: aml_config/NAME.compute"),
        )
        .arg(
            Arg::new("set")
                .long("set")
                .value_name("KEY=VALUE")
                .action(ArgAction::Append)
                .help("Any setting, as the .compute file spells it (repeatable); VALUE is read as YAML: 5 is a number, true a boolean"),
        )
        .arg(
            Arg::new("force")
                .long("force")
                .action(ArgAction::SetTrue)
                .help("Replace an existing target of the same name"),
        )
        .arg(
            Arg::new("quiet")
                .short('q')
                .long("quiet")
                .action(ArgAction::SetTrue)
                .help("Print only errors"),
        )
        .arg(Arg::new("project").long("project").value_name("DIR").help("The project folder"))
        .arg(
            Arg::new("help")
                .short('h')
                .long("help")
                .action(ArgAction::SetTrue)
                .help("Print help (with TYPE: the settings of its plugin)"),
        )
}

fn arg_id(key: &str) -> String {
    format!("setting:{key}")
}

/// One line of help for a setting: its doc, its default, what a flag does.
fn setting_help(spec: &SettingSpec) -> String {
    let mut help = spec.doc.clone();
    match spec.secret {
        Some(SecretSource::Generated) => help.push_str(" [made by the plugin; kept in your secret store]"),
        Some(_) => help.push_str(" [read without echo; kept in your secret store]"),
        None => {}
    }
    if let Some(default) = &spec.default {
        help.push_str(&format!(" [default: {}]", super::display_value(default)));
    }
    if spec.required {
        help.push_str(" [required]");
    }
    help
}

/// The command with the flags `description` declares. Flags that would clash with the base
/// ones or with each other are left out (the setting stays reachable with `--set`).
fn command_for(description: &PluginDescription) -> Command {
    let mut command = base_command();
    let mut taken: Vec<String> = BASE_FLAGS.iter().map(|f| (*f).to_owned()).collect();
    for spec in &description.settings {
        let flags: Vec<&String> = spec.flags.iter().filter(|flag| !taken.contains(flag)).collect();
        let long = flags
            .iter()
            .find_map(|flag| flag.strip_prefix("--"))
            .filter(|l| !l.is_empty());
        let short = flags.iter().find_map(|flag| {
            let mut chars = flag.strip_prefix('-')?.chars();
            let first = chars.next()?;
            (chars.next().is_none() && first != '-').then_some(first)
        });
        if long.is_none() && short.is_none() {
            continue;
        }
        let mut arg = Arg::new(clap::Id::from(arg_id(&spec.key).leak() as &'static str)).help(setting_help(spec));
        if let Some(long) = long {
            arg = arg.long(&*long.to_owned().leak());
            taken.push(format!("--{long}"));
        }
        if let Some(short) = short {
            arg = arg.short(short);
            taken.push(format!("-{short}"));
        }
        arg = if spec.secret.is_some() || spec.kind == SettingKind::Boolean {
            arg.action(ArgAction::SetTrue)
        } else {
            arg.value_name(&*spec.key.to_ascii_uppercase().leak())
                .action(ArgAction::Set)
        };
        command = command.arg(arg);
    }
    command
}

/// Every setting of the type, for `--help`: those with a flag are in the options above.
fn settings_help(description: &PluginDescription, target_type: &str) -> String {
    let mut text = format!(
        "\nSettings of type {target_type} (plugin '{}' {}), as aml_config/NAME.compute spells them; set any with --set KEY=VALUE:\n",
        description.name, description.version
    );
    if description.settings.is_empty() {
        text.push_str("  (the plugin declares none: every --set is passed to it unchecked)\n");
    }
    for spec in &description.settings {
        let expected = crate::plugins::schema::expected_words(spec);
        text.push_str(&format!("  {:<24} {expected}: {}\n", spec.key, setting_help(spec)));
    }
    text
}

/// Help for `xp computetarget attach` without a type (or for a type no plugin serves).
pub fn base_help(types: &[String], problem: Option<&str>) -> String {
    let mut text = base_command().render_help().to_string();
    text.push_str(&format!(
        "\nTarget types the plugins on the search path serve: {}\n`xp computetarget attach TYPE --help` lists a type's settings and flags.\n",
        if types.is_empty() { "none".to_owned() } else { types.join(", ") }
    ));
    if let Some(problem) = problem {
        text.push_str(&format!("\n{problem}\n"));
    }
    text
}

/// Reads `args` (everything after `attach`, starting with TYPE) with the flags of
/// `description`. Paths given to path settings are made absolute from `cwd`.
pub fn parse(args: &[String], description: &PluginDescription, cwd: &Path) -> Result<Parsed, clap::Error> {
    let mut command = command_for(description);
    let target_type = args.first().cloned().unwrap_or_default();
    // Help wins over everything else, missing required flags included.
    if args.iter().any(|arg| arg == "--help" || arg == "-h") {
        let help = command.render_help().to_string() + &settings_help(description, &target_type);
        return Ok(Parsed::Help(help));
    }
    let matches = command
        .clone()
        .try_get_matches_from(std::iter::once("attach".to_owned()).chain(args.iter().cloned()))?;
    let mut options = AttachOptions {
        target_type: target_type.to_ascii_lowercase(),
        name: matches.get_one::<String>("name").cloned().unwrap_or_default(),
        force: matches.get_flag("force"),
        quiet: matches.get_flag("quiet"),
        project: matches.get_one::<String>("project").cloned(),
        ..AttachOptions::default()
    };
    for spec in &description.settings {
        let id = arg_id(&spec.key);
        if command.get_arguments().all(|arg| arg.get_id().as_str() != id) {
            continue;
        }
        match spec.secret {
            Some(SecretSource::Generated) if matches.get_flag(&id) => options.generate.push(spec.key.clone()),
            Some(_) if matches.get_flag(&id) => options.prompted.push(spec.key.clone()),
            Some(_) => {}
            None if spec.kind == SettingKind::Boolean => {
                if matches.get_flag(&id) {
                    options.settings.insert(spec.key.clone(), Value::Bool(true));
                }
            }
            None => {
                if let Some(value) = matches.get_one::<String>(&id) {
                    let value = if spec.kind == SettingKind::Path {
                        absolute(cwd, value)
                    } else {
                        value.clone()
                    };
                    options.settings.insert(spec.key.clone(), Value::String(value));
                }
            }
        }
    }
    for text in matches.get_many::<String>("set").into_iter().flatten() {
        let (key, value) =
            parse_setting(text).map_err(|error| command.error(clap::error::ErrorKind::ValueValidation, error))?;
        options.set_keys.push(key.clone());
        options.settings.insert(key, value);
    }
    Ok(Parsed::Options(options))
}

/// A path given on the command line, absolute: `~` expanded, a relative path taken from `cwd`.
fn absolute(cwd: &Path, path: &str) -> String {
    let expanded = expand_home(path);
    let path = if expanded.is_absolute() {
        expanded
    } else {
        cwd.join(expanded)
    };
    path.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn description() -> PluginDescription {
        PluginDescription::new("demo", "1.0.0", &["demo"])
            .setting(SettingSpec::new("address", SettingKind::String, "where").flags(&["--address"]))
            .setting(SettingSpec::new("gpu", SettingKind::Boolean, "all GPUs").flags(&["--gpu"]))
            .setting(SettingSpec::new("keyFile", SettingKind::Path, "a key").flags(&["--key-file"]))
            .setting(
                SettingSpec::new("password", SettingKind::String, "typed")
                    .secret(SecretSource::Prompted)
                    .flags(&["--password"]),
            )
            .setting(
                SettingSpec::new("key", SettingKind::String, "made")
                    .secret(SecretSource::Generated)
                    .flags(&["-k", "--make-key"]),
            )
            // Clashes with a base flag: reachable through --set only, and no panic.
            .setting(SettingSpec::new("clash", SettingKind::String, "x").flags(&["--name"]))
    }

    fn parse_args(args: &[&str]) -> Result<Parsed, clap::Error> {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        parse(&args, &description(), Path::new("/work"))
    }

    #[test]
    fn flags_from_the_schema_become_settings() {
        let Parsed::Options(options) = parse_args(&[
            "demo",
            "--name",
            "d",
            "--address",
            "h:22",
            "--gpu",
            "--key-file",
            "keys/id",
            "--password",
            "-k",
            "--set",
            "retries=3",
            "--force",
        ])
        .unwrap() else {
            panic!("not help")
        };
        assert_eq!(options.target_type, "demo");
        assert_eq!(options.name, "d");
        assert_eq!(options.settings["address"], "h:22");
        assert_eq!(options.settings["gpu"], true);
        assert_eq!(options.settings["keyFile"], "/work/keys/id");
        assert_eq!(options.settings["retries"], 3);
        assert_eq!(options.prompted, ["password"]);
        assert_eq!(options.generate, ["key"]);
        assert!(options.force);
    }

    #[test]
    fn help_lists_the_plugins_settings() {
        let Parsed::Help(help) = parse_args(&["demo", "--help"]).unwrap() else {
            panic!("help")
        };
        for needle in [
            "--address <ADDRESS>",
            "--gpu",
            "-k, --make-key",
            "Settings of type demo",
            "clash",
        ] {
            assert!(help.contains(needle), "{needle:?} in:\n{help}");
        }
    }

    #[test]
    fn unknown_flags_and_missing_names_are_clap_errors() {
        assert!(parse_args(&["demo", "--name", "d", "--no-such-flag"]).is_err());
        assert!(parse_args(&["demo", "--address", "h"]).is_err());
    }
}
