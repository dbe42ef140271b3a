use anyhow::{bail, Context};
use serde_json::Value;
use xp_plugin_api::{AttachRequest, Settings, Target};

use super::args::{AttachArgs, ComputeTargetCommand, OutputFormat};
use super::output;
use super::CommandContext;
use crate::plugins;
use crate::project::{templates, validate_name, yaml, Project};
use crate::run::{signals, RunSink};

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
            let target = project.load_target(&name)?;
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
            if !context.quiet {
                eprintln!("Detached '{name}': removed {}", removed.join(", "));
            }
            Ok(0)
        }
    }
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

/// The `.compute` text: `type` first, then the other keys.
pub fn compute_file_text(target_type: &str, settings: &Settings) -> String {
    let mut rest = settings.clone();
    rest.remove("type");
    let mut text = format!(
        "# Compute target written by `xp computetarget attach`.\ntype: {}\n",
        yaml::to_string(&target_type).trim_end()
    );
    if !rest.is_empty() {
        text.push_str(&yaml::to_string(&rest));
    }
    text
}

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
    for text in &args.settings {
        let (key, value) = parse_setting(text)?;
        settings.insert(key, value);
    }

    let plugin = plugins::load_for_type(&target_type, Some(project.root()), &context.dirs)?;
    signals::install();
    let request = AttachRequest {
        project_dir: project.root().to_path_buf(),
        target: Target {
            name: args.name.clone(),
            target_type: target_type.clone(),
            settings,
        },
        state_dir: context.dirs.plugin_state_dir(plugin.name()),
        secrets: Default::default(),
        user_config_dir: context.dirs.config.clone(),
    };
    let sink = RunSink::new(None, None, !context.quiet, signals::cancel_requested);
    let reply = plugin.attach(&request, &sink).with_context(|| {
        format!(
            "attaching '{}' (type {target_type}, plugin {})",
            args.name,
            plugin.name()
        )
    })?;

    std::fs::write(&compute_path, compute_file_text(&target_type, &reply.settings))
        .with_context(|| format!("writing {}", compute_path.display()))?;
    let runconfig_path = project.runconfig_path(&args.name);
    let mut written = vec![compute_path.display().to_string()];
    if !runconfig_path.exists() || args.force {
        let prepare = reply
            .runconfig
            .get("PrepareEnvironment")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut text = templates::runconfig(&args.name, prepare);
        if let Some(Value::String(framework)) = reply.runconfig.get("Framework") {
            text = text.replace("Framework: \"Python\"", &format!("Framework: \"{framework}\""));
        }
        std::fs::write(&runconfig_path, text).with_context(|| format!("writing {}", runconfig_path.display()))?;
        written.push(runconfig_path.display().to_string());
    }
    for message in &reply.messages {
        eprintln!("{message}");
    }
    if !context.quiet {
        eprintln!("Attached '{}' ({target_type}): wrote {}", args.name, written.join(", "));
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
}
