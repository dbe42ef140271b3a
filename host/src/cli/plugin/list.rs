use super::super::args::{OutputFormat, PluginListArgs};
use super::super::output;
use super::super::CommandContext;
use crate::plugins::{survey, PluginState};
use crate::project::Project;

pub fn run(context: &CommandContext, args: PluginListArgs) -> anyhow::Result<i32> {
    let project = context.project().ok();
    let (path, entries) = survey(project.as_ref().map(Project::root), &context.dirs, args.check);
    let mut rows = Vec::new();
    let mut records = Vec::new();
    for entry in &entries {
        let (name, version, types, library) = match &entry.manifest {
            Some(manifest) => (
                manifest.name.clone(),
                manifest.version.clone(),
                manifest.target_types.join(", "),
                manifest.library.display().to_string(),
            ),
            None => ("?".to_owned(), "?".to_owned(), String::new(), String::new()),
        };
        let status = entry.status();
        let api_version = match &entry.state {
            PluginState::Loaded(description) => Some(description.api_version.clone()),
            _ => None,
        };
        let manifest_path = entry.manifest_path.display().to_string();
        records.push(serde_json::json!({
            "name": name,
            "version": version,
            "target_types": types,
            "manifest": manifest_path,
            "library": library,
            // Known only with --check; without it, a usable manifest counts as compatible.
            "compatible": entry.usable(),
            "checked": args.check,
            "api_version": api_version,
            "serves": entry.serves,
            "shadowed": entry.shadowed,
            "status": status,
        }));
        // The table keeps the first sentence; `-o json` has the whole reason.
        let short = match status.find("; ") {
            Some(at) if status.len() > 160 => format!("{} ...", &status[..at]),
            _ => status,
        };
        rows.push(vec![name, version, types, manifest_path, short]);
    }
    match args.output.output {
        OutputFormat::Table => {
            output::print(&output::table(
                &["NAME", "VERSION", "TARGET TYPES", "MANIFEST", "STATUS"],
                rows,
            ));
            if !context.quiet {
                eprintln!(
                    "plugin-api {}; searched {}",
                    xp_plugin_api::API_VERSION,
                    path.iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        OutputFormat::Json => output::print(&output::json(&records)),
    }
    Ok(0)
}
