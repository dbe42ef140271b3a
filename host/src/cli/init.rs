use std::path::Path;

use anyhow::Context;

use super::args::InitArgs;
use super::CommandContext;
use xp_plugin_api::TargetTemplate;

use crate::plugins::{self, LoadedPlugin};
use crate::project::{templates, CONFIG_DIR};

fn write_new(path: &Path, text: &str, force: bool, written: &mut Vec<String>) -> anyhow::Result<()> {
    if path.exists() && !force {
        return Ok(());
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    written.push(path.display().to_string());
    Ok(())
}

/// The targets the plugins serving each type offer to write by default, in search order, one
/// per name. A plugin that cannot be loaded is passed over with a warning.
fn init_templates(context: &CommandContext, project_dir: &Path) -> Vec<TargetTemplate> {
    let (_, entries) = plugins::survey(Some(project_dir), &context.dirs, false);
    let mut templates: Vec<TargetTemplate> = Vec::new();
    for entry in entries.iter().filter(|entry| !entry.serves.is_empty()) {
        let Some(manifest) = &entry.manifest else { continue };
        match LoadedPlugin::load(manifest.clone(), &entry.serves[0]) {
            Ok(plugin) => {
                for template in plugin.description.templates {
                    let served = entry
                        .serves
                        .iter()
                        .any(|t| t.eq_ignore_ascii_case(&template.target_type));
                    if template.by_default && served && !templates.iter().any(|t| t.name == template.name) {
                        templates.push(template);
                    }
                }
            }
            Err(error) => eprintln!("warning: {error}; xp init writes no target of this plugin"),
        }
    }
    templates
}

pub fn run(context: &CommandContext, args: InitArgs) -> anyhow::Result<i32> {
    let dir = match args.dir {
        Some(dir) => context.cwd.join(dir),
        None => context.cwd.clone(),
    };
    let config = dir.join(CONFIG_DIR);
    std::fs::create_dir_all(&config).with_context(|| format!("creating {}", config.display()))?;
    let mut written = Vec::new();
    // The targets come from the plugins: each plugin that serves a type offers the targets
    // xp init writes for it (the local target, a docker target).
    for template in init_templates(context, &dir) {
        write_new(
            &config.join(format!("{}.compute", template.name)),
            &template.compute,
            args.force,
            &mut written,
        )?;
        write_new(
            &config.join(format!("{}.runconfig", template.name)),
            &templates::runconfig(&template.name, &template.name, &template.runconfig),
            args.force,
            &mut written,
        )?;
    }
    write_new(
        &config.join("conda_dependencies.yml"),
        templates::CONDA_DEPENDENCIES,
        args.force,
        &mut written,
    )?;
    write_new(
        &config.join("spark_dependencies.yml"),
        templates::SPARK_DEPENDENCIES,
        args.force,
        &mut written,
    )?;

    let gitignore = dir.join(".gitignore");
    let existing = std::fs::read_to_string(&gitignore).unwrap_or_default();
    if !existing
        .lines()
        .any(|line| line.trim() == templates::GITIGNORE_ENTRY || line.trim() == ".xp")
    {
        let separator = if existing.is_empty() || existing.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        let text = format!(
            "{existing}{separator}# xp's run history, logs and artifacts\n{}\n",
            templates::GITIGNORE_ENTRY
        );
        std::fs::write(&gitignore, text).with_context(|| format!("writing {}", gitignore.display()))?;
        written.push(gitignore.display().to_string());
    }
    if !context.quiet {
        if written.is_empty() {
            eprintln!(
                "{} is already an xp project; nothing written (use --force to rewrite xp's files)",
                dir.display()
            );
        } else {
            for path in &written {
                eprintln!("wrote {path}");
            }
            eprintln!("Run a script with: xp experiment submit -c local SCRIPT [ARGS...]");
        }
    }
    Ok(0)
}
