use std::path::Path;

use anyhow::Context;

use super::args::InitArgs;
use super::CommandContext;
use crate::project::{templates, CONFIG_DIR};

fn write_new(path: &Path, text: &str, force: bool, written: &mut Vec<String>) -> anyhow::Result<()> {
    if path.exists() && !force {
        return Ok(());
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    written.push(path.display().to_string());
    Ok(())
}

pub fn run(context: &CommandContext, args: InitArgs) -> anyhow::Result<i32> {
    let dir = match args.dir {
        Some(dir) => context.cwd.join(dir),
        None => context.cwd.clone(),
    };
    let config = dir.join(CONFIG_DIR);
    std::fs::create_dir_all(&config).with_context(|| format!("creating {}", config.display()))?;
    let mut written = Vec::new();
    write_new(
        &config.join("local.compute"),
        templates::LOCAL_COMPUTE,
        args.force,
        &mut written,
    )?;
    write_new(
        &config.join("local.runconfig"),
        &templates::runconfig("local", false),
        args.force,
        &mut written,
    )?;
    write_new(
        &config.join("docker.compute"),
        templates::DOCKER_COMPUTE,
        args.force,
        &mut written,
    )?;
    write_new(
        &config.join("docker.runconfig"),
        &templates::runconfig("docker", true),
        args.force,
        &mut written,
    )?;
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
