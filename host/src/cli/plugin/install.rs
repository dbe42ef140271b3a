//! `xp plugin install PATH|URL` and `xp plugin remove NAME`: a plugin crate built with cargo
//! (release), checked against this xp, then copied into the user's plugins folder; and taken
//! out again.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use super::super::args::{PluginInstallArgs, PluginRemoveArgs};
use super::super::CommandContext;
use crate::plugins::{sdk, Compatibility, LoadedPlugin, Manifest};

/// Whether `source` names a git repository rather than a folder.
fn is_git_url(source: &str) -> bool {
    source.contains("://") || (source.starts_with("git@") && source.contains(':'))
}

/// A folder that is removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run_tool(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("{what}: could not start {:?}", command.get_program()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(25).collect();
        bail!(
            "{what} failed ({}):\n{}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(())
}

pub fn install(context: &CommandContext, args: PluginInstallArgs) -> anyhow::Result<i32> {
    let work = context.dirs.cache.join("plugin-builds");
    std::fs::create_dir_all(&work).with_context(|| format!("making {}", work.display()))?;
    let (crate_dir, _clone) = if is_git_url(&args.source) {
        let clone = Scratch(work.join(format!("clone-{}", std::process::id())));
        let _ = std::fs::remove_dir_all(&clone.0);
        if !context.quiet {
            eprintln!("Cloning {} ...", args.source);
        }
        run_tool(
            Command::new("git")
                .args(["clone", "--quiet", "--depth", "1", &args.source])
                .arg(&clone.0),
            &format!("cloning {}", args.source),
        )?;
        (clone.0.clone(), Some(clone))
    } else {
        let dir = context.cwd.join(&args.source);
        (dir, None)
    };
    let cargo_toml = crate_dir.join("Cargo.toml");
    let manifest_path = crate_dir.join("plugin.toml");
    for needed in [&cargo_toml, &manifest_path] {
        if !needed.is_file() {
            bail!(
                "{} has no {}: `xp plugin install` takes a plugin crate (Cargo.toml and plugin.toml; `xp plugin new` makes one)",
                args.source,
                needed.file_name().unwrap_or_default().to_string_lossy()
            );
        }
    }
    // The manifest first: a plugin that needs another plugin-api is refused before building.
    let declared = Manifest::read(&manifest_path)?;
    if let Compatibility::Incompatible(reason) = declared.compatibility_of_api() {
        bail!("{reason}; nothing was built or installed");
    }
    let destination = context.dirs.plugins_dir().join(&declared.name);
    if destination.exists() && !args.force {
        bail!(
            "plugin '{}' is already installed in {}; add --force to replace it, or `xp plugin remove {}` first",
            declared.name,
            destination.display(),
            declared.name
        );
    }

    let sources = sdk::write_sources(&context.dirs.data)
        .with_context(|| format!("writing the plugin API sources into {}", context.dirs.data.display()))?;
    // A CARGO_TARGET_DIR of the user's is where their cargo builds go; otherwise xp's cache.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| work.join("target"));
    if !context.quiet {
        eprintln!(
            "Building {} (cargo build --release) against plugin-api {} ...",
            crate_dir.display(),
            xp_plugin_api::API_VERSION
        );
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_tool(
        Command::new(cargo)
            .arg("build")
            .arg("--release")
            .arg("--manifest-path")
            .arg(&cargo_toml)
            .arg("--target-dir")
            .arg(&target_dir)
            .args(sdk::cargo_patch_args(&sources))
            .env_remove("CARGO_TARGET_DIR"),
        &format!("building {}", crate_dir.display()),
    )?;
    let library_name = declared
        .library
        .file_name()
        .context("the manifest's library names no file")?
        .to_owned();
    let built = target_dir.join("release").join(&library_name);
    if !built.is_file() {
        bail!(
            "the build succeeded but made no {} (plugin.toml's `library`): does Cargo.toml's [lib] name match, with crate-type = [\"cdylib\"]?",
            built.display()
        );
    }

    // Load the built library before installing anything: the ABI check and describe() speak.
    let mut as_built = declared.clone();
    as_built.library = built.clone();
    for target_type in &as_built.target_types {
        LoadedPlugin::load(as_built.clone(), target_type)
            .map_err(|error| anyhow::anyhow!("{error}; nothing was installed"))?;
    }

    let staging = context
        .dirs
        .plugins_dir()
        .join(format!(".installing-{}-{}", declared.name, std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).with_context(|| format!("making {}", staging.display()))?;
    let copy = |from: &Path, name: &std::ffi::OsStr| {
        std::fs::copy(from, staging.join(name)).with_context(|| format!("copying {}", from.display()))
    };
    copy(&manifest_path, "plugin.toml".as_ref())?;
    copy(&built, &library_name)?;
    if destination.exists() {
        std::fs::remove_dir_all(&destination).with_context(|| format!("removing {}", destination.display()))?;
    }
    std::fs::rename(&staging, &destination).with_context(|| format!("installing into {}", destination.display()))?;
    eprintln!(
        "Installed plugin '{}' {} (target types: {}) in {}",
        declared.name,
        declared.version,
        declared.target_types.join(", "),
        destination.display()
    );
    Ok(0)
}

pub fn remove(context: &CommandContext, args: PluginRemoveArgs) -> anyhow::Result<i32> {
    let plugins = context.dirs.plugins_dir();
    let installed: Vec<(PathBuf, Manifest)> = std::fs::read_dir(&plugins)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let manifest = Manifest::read(&entry.path().join("plugin.toml")).ok()?;
            Some((entry.path(), manifest))
        })
        .collect();
    let Some((dir, _)) = installed.iter().find(|(_, manifest)| manifest.name == args.name) else {
        let names: Vec<&str> = installed.iter().map(|(_, m)| m.name.as_str()).collect();
        bail!(
            "no plugin named '{}' is installed in {} (installed: {}); plugins found elsewhere on the search path are not xp's to remove",
            args.name,
            plugins.display(),
            if names.is_empty() { "none".to_owned() } else { names.join(", ") }
        );
    };
    std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    eprintln!("Removed plugin '{}' ({})", args.name, dir.display());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_urls_and_folders_are_told_apart() {
        for url in [
            "https://host/x.git",
            "file:///srv/x",
            "ssh://git@host/x",
            "git@host:team/x.git",
        ] {
            assert!(is_git_url(url), "{url}");
        }
        for folder in [".", "my-plugin", "/abs/path", "../x"] {
            assert!(!is_git_url(folder), "{folder}");
        }
    }
}
