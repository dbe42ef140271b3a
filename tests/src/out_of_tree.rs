//! Building plugins out of tree, as third parties do: with cargo, in workspaces of their own,
//! against a copy of plugin-api that may be frozen (the baseline) or made newer or older here.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::workspace_root;

/// The target folder every out-of-tree build of the tests shares, so that their dependencies
/// (abi_stable, serde, ...) are compiled once.
pub fn shared_target_dir() -> PathBuf {
    workspace_root().join("target/out-of-tree")
}

/// Builds in the shared target folder, one at a time (libraries of the same name overwrite
/// each other there), and copies `library` (a file name) out to `keep_as` before the next.
pub fn build_and_keep(manifest: &Path, library: &str, keep_as: &Path) -> PathBuf {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let target_dir = shared_target_dir();
    cargo_build(manifest, &target_dir);
    std::fs::create_dir_all(keep_as.parent().expect("a file in a folder")).unwrap();
    std::fs::copy(target_dir.join("debug").join(library), keep_as)
        .unwrap_or_else(|e| panic!("keeping {library} as {}: {e}", keep_as.display()));
    keep_as.to_path_buf()
}

/// `cargo build --manifest-path MANIFEST --target-dir TARGET_DIR` (debug), failing the test
/// with cargo's output when the build fails.
pub fn cargo_build(manifest: &Path, target_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .arg("build")
        .arg("--manifest-path")
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("cargo starts");
    assert!(
        output.status.success(),
        "building {} out of tree failed:\n{}",
        manifest.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Copies `from` to `to`, writing only files whose contents changed (so cargo's cache holds),
/// leaving out build output and lock files.
pub fn sync_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let name = entry.file_name();
        if name == "target" || name == "Cargo.lock" {
            continue;
        }
        let (source, target) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() {
            sync_tree(&source, &target);
        } else {
            write_if_changed(&target, &std::fs::read(&source).unwrap());
        }
    }
}

pub fn write_if_changed(path: &Path, contents: &[u8]) {
    if std::fs::read(path).ok().as_deref() != Some(contents) {
        std::fs::write(path, contents).unwrap();
    }
}

/// The `version = "..."` of a Cargo.toml.
pub fn package_version(manifest: &Path) -> String {
    std::fs::read_to_string(manifest)
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("version = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{} has a version", manifest.display()))
        .to_owned()
}

/// The host's plugin-api version, from plugin-api/Cargo.toml.
pub fn host_api_version() -> String {
    package_version(&workspace_root().join("plugin-api/Cargo.toml"))
}

/// The frozen baseline workspace (tests/abi-baseline): the plugin-api 1.0.0 copy and a plugin
/// written against it.
pub fn baseline_dir() -> PathBuf {
    workspace_root().join("tests/abi-baseline")
}

/// Builds the baseline plugin against the frozen API copy, and returns the library.
pub fn build_baseline_plugin() -> PathBuf {
    build_and_keep(
        &baseline_dir().join("plugin/Cargo.toml"),
        "libxp_plugin_baseline.so",
        &workspace_root().join("target/abi-builds/baseline/libxp_plugin_baseline.so"),
    )
}

/// Builds the baseline plugin's sources against a copy of *today's* plugin-api whose version is
/// `version` and whose verb list has `extra_verbs` appended: a plugin from another release of
/// the API. `name` keeps builds of different versions apart.
pub fn build_baseline_plugin_against(name: &str, version: &str, extra_verbs: &[&str]) -> PathBuf {
    let root = workspace_root();
    let scratch = root.join("target/abi-builds").join(name);
    let sources = scratch.join("src");
    sync_tree(&root.join("plugin-api"), &sources.join("plugin-api"));
    let manifest = sources.join("plugin-api/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let current = format!("version = \"{}\"", package_version(&manifest));
    write_if_changed(
        &manifest,
        text.replacen(&current, &format!("version = \"{version}\""), 1)
            .as_bytes(),
    );
    if !extra_verbs.is_empty() {
        let verbs = sources.join("plugin-api/src/protocol/verbs.rs");
        let text = std::fs::read_to_string(&verbs).unwrap();
        let list = "pub const ALL: &[&str] = &[";
        assert!(
            text.contains(list),
            "{} lists the verbs as `{list}...`",
            verbs.display()
        );
        let added: String = extra_verbs.iter().map(|verb| format!("\"{verb}\", ")).collect();
        write_if_changed(&verbs, text.replacen(list, &format!("{list}{added}"), 1).as_bytes());
    }
    sync_tree(&baseline_dir().join("plugin"), &sources.join("plugin"));
    build_and_keep(
        &sources.join("plugin/Cargo.toml"),
        "libxp_plugin_baseline.so",
        &scratch.join("libxp_plugin_baseline.so"),
    )
}

/// Installs a plugin folder `<plugins>/<folder>/` with `manifest` and a copy of `library`.
pub fn install_plugin(plugins: &Path, folder: &str, manifest: &str, library: &Path) -> PathBuf {
    let dir = plugins.join(folder);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("plugin.toml"), manifest).unwrap();
    let installed = dir.join(library.file_name().expect("a library file"));
    std::fs::copy(library, &installed).unwrap_or_else(|e| panic!("copying {}: {e}", library.display()));
    installed
}
