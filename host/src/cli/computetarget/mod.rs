//! `xp computetarget`: attach (from the plugin's schema), list, show, detach.

mod attach;
mod files;
mod flags;
mod settings;

use std::collections::BTreeMap;

use anyhow::Context;
use serde_json::Value;

use super::args::{ComputeTargetCommand, OutputFormat};
use super::output;
use super::CommandContext;
use crate::plugins;
use crate::project::Project;
use crate::secrets::{self, masked_settings, SecretId, SecretStore};

pub fn run(context: &CommandContext, command: ComputeTargetCommand) -> anyhow::Result<i32> {
    if let ComputeTargetCommand::Attach(args) = &command {
        // Its command line depends on the plugin: read before the project is needed.
        return attach::attach(context, &args.args);
    }
    if let ComputeTargetCommand::Settings { target_type, markdown } = &command {
        return settings::settings(context, target_type, *markdown);
    }
    let project = context.project()?;
    match command {
        ComputeTargetCommand::Attach(_) | ComputeTargetCommand::Settings { .. } => unreachable!("handled above"),
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
            // The plugin says which settings are secrets and what each means.
            let plugin = plugins::load_for_type(&target.target_type, Some(project.root()), &context.dirs).ok();
            let description = plugin.as_ref().map(|plugin| &plugin.description);
            target.settings = masked_settings(&target.settings, description);
            let doc = |key: &str| -> String {
                description
                    .and_then(|d| d.setting_spec(key))
                    .map(|spec| spec.doc.clone())
                    .unwrap_or_default()
            };
            match format.output {
                OutputFormat::Table => {
                    let rows = target
                        .settings
                        .iter()
                        .map(|(key, value)| vec![key.clone(), display_value(value), doc(key)])
                        .collect();
                    output::print(&format!("{} ({})", target.name, target.path.display()));
                    output::print(&output::table(&["KEY", "VALUE", "MEANING"], rows));
                    if let Some(description) = description {
                        let unset: Vec<&str> = description
                            .settings
                            .iter()
                            .filter(|spec| !target.settings.contains_key(&spec.key))
                            .map(|spec| spec.key.as_str())
                            .collect();
                        if !unset.is_empty() && !context.quiet {
                            eprintln!(
                                "Not set (defaults apply): {}; `xp computetarget attach {} --help` says what each means",
                                unset.join(", "),
                                target.target_type
                            );
                        }
                    }
                }
                OutputFormat::Json => output::print(&output::json(&serde_json::json!({
                    "name": target.name, "type": target.target_type, "file": target.path, "settings": target.settings,
                    "docs": target.settings.keys().map(|key| (key.clone(), doc(key))).collect::<BTreeMap<_, _>>(),
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
pub(super) fn forget_secrets(
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

pub fn display_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
