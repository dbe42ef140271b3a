//! `xp plugin new NAME [--type T] [DIR]`: a plugin crate that builds, passes its own tests and
//! loads into this xp as it is.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::super::args::PluginNewArgs;
use super::super::CommandContext;
use crate::plugins::sdk;

const TEMPLATES: [(&str, &str); 6] = [
    ("Cargo.toml", include_str!("template/Cargo.toml.in")),
    ("plugin.toml", include_str!("template/plugin.toml.in")),
    ("src/lib.rs", include_str!("template/lib.rs.in")),
    ("README.md", include_str!("template/README.md.in")),
    (".gitignore", include_str!("template/gitignore.in")),
    (".cargo/config.toml", ""),
];

/// Whether `name` can name a plugin, a crate and a library: lowercase letters, digits and `-`,
/// starting with a letter.
fn check_name(what: &str, name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let starts_well = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    if !starts_well
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        bail!("{what} '{name}' is not usable: use lowercase letters, digits and '-', starting with a letter (e.g. my-cluster)");
    }
    Ok(())
}

/// `my-cluster` -> `MyCluster`.
fn type_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect::<String>()
        + "Executor"
}

pub fn run(context: &CommandContext, args: PluginNewArgs) -> anyhow::Result<i32> {
    check_name("the plugin name", &args.name)?;
    let target_type = args.target_type.clone().unwrap_or_else(|| args.name.clone());
    check_name("the target type", &target_type)?;
    let dir = match &args.dir {
        Some(dir) if dir.is_absolute() => dir.clone(),
        Some(dir) => context.cwd.join(dir),
        None => context.cwd.join(&args.name),
    };
    if dir.exists()
        && std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} exists and is not empty; choose another folder (xp plugin new {} OTHER_DIR)",
            dir.display(),
            args.name
        );
    }
    let sources = sdk::write_sources(&context.dirs.data)
        .with_context(|| format!("writing the plugin API sources into {}", context.dirs.data.display()))?;
    let files = render(&args.name, &target_type, &sources);
    write_all(&dir, &files)?;
    if !context.quiet {
        eprintln!(
            "Made plugin '{}' (target type {target_type}) in {}\n  cd {} && cargo test     # its own tests\n  xp plugin install {}    # build and install it",
            args.name,
            dir.display(),
            dir.display(),
            dir.display()
        );
    }
    Ok(0)
}

/// The crate's files, by path.
fn render(name: &str, target_type: &str, sources: &Path) -> Vec<(PathBuf, String)> {
    let api = semver::Version::parse(xp_plugin_api::API_VERSION).expect("the API version is semver");
    let replacements = [
        ("{{name}}", name.to_owned()),
        ("{{type}}", target_type.to_owned()),
        ("{{crate}}", format!("xp-plugin-{name}")),
        ("{{lib}}", format!("xp_plugin_{}", name.replace('-', "_"))),
        ("{{struct}}", type_name(name)),
        ("{{api_req}}", format!("{}.{}", api.major, api.minor)),
        ("{{sources}}", sources.display().to_string()),
    ];
    TEMPLATES
        .iter()
        .map(|(path, template)| {
            let text = if *path == ".cargo/config.toml" {
                sdk::cargo_config_text(sources)
            } else {
                replacements
                    .iter()
                    .fold((*template).to_owned(), |text, (key, value)| text.replace(key, value))
            };
            (PathBuf::from(path), text)
        })
        .collect()
}

fn write_all(dir: &Path, files: &[(PathBuf, String)]) -> anyhow::Result<()> {
    for (relative, text) in files {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().expect("files live in folders"))
            .with_context(|| format!("making {}", dir.display()))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_crate_library_and_type_names() {
        let files = render("my-cluster", "mycluster", Path::new("/sdk"));
        let text = |name: &str| files.iter().find(|(p, _)| p == Path::new(name)).unwrap().1.clone();
        assert!(text("Cargo.toml").contains("name = \"xp-plugin-my-cluster\""));
        assert!(text("Cargo.toml").contains("name = \"xp_plugin_my_cluster\""));
        assert!(text("plugin.toml").contains("target_types = [\"mycluster\"]"));
        assert!(text("plugin.toml").contains("library = \"libxp_plugin_my_cluster.so\""));
        assert!(text("src/lib.rs").contains("struct MyClusterExecutor;"));
        assert!(text(".cargo/config.toml").contains("/sdk/plugin-api"));
        for (path, text) in &files {
            assert!(
                !text.contains("{{"),
                "{} has an unfilled placeholder:\n{text}",
                path.display()
            );
        }
    }

    #[test]
    fn odd_names_are_refused() {
        for name in ["", "My", "1x", "a_b", "a b", "../x"] {
            assert!(check_name("the plugin name", name).is_err(), "{name:?}");
        }
        assert!(check_name("the plugin name", "gpu-cluster2").is_ok());
    }
}
