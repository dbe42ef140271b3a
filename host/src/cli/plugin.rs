use super::args::{OutputFormat, PluginCommand};
use super::output;
use super::CommandContext;
use crate::plugins::{find_plugins, search_path, Compatibility, LoadedPlugin};
use crate::project::Project;

pub fn run(context: &CommandContext, command: PluginCommand) -> anyhow::Result<i32> {
    let PluginCommand::List(format) = command;
    let project = context.project().ok();
    let path = search_path(project.as_ref().map(Project::root), &context.dirs);
    let mut rows = Vec::new();
    let mut records = Vec::new();
    for found in find_plugins(&path) {
        let (name, version, types, status) = match &found.manifest {
            Err(error) => (
                "?".to_owned(),
                "?".to_owned(),
                String::new(),
                format!("unreadable manifest: {error}"),
            ),
            Ok(manifest) => {
                let status = match manifest.compatibility() {
                    Compatibility::Incompatible(reason) => format!("incompatible: {reason}"),
                    // The manifest matches: load the library too, so the ABI check speaks.
                    Compatibility::Compatible => {
                        match LoadedPlugin::load(manifest.clone(), &manifest.target_types[0]) {
                            Ok(_) => "compatible".to_owned(),
                            Err(error) => format!("incompatible: {error}"),
                        }
                    }
                };
                (
                    manifest.name.clone(),
                    manifest.version.clone(),
                    manifest.target_types.join(", "),
                    status,
                )
            }
        };
        let location = found.manifest_path.display().to_string();
        records.push(serde_json::json!({
            "name": name, "version": version, "target_types": types, "manifest": location,
            "compatible": status == "compatible", "status": status,
        }));
        // The table keeps the first sentence; `-o json` has the whole reason.
        let short = match status.find("; ") {
            Some(at) if status.len() > 160 => format!("{} ...", &status[..at]),
            _ => status,
        };
        rows.push(vec![name, version, types, location, short]);
    }
    match format.output {
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
