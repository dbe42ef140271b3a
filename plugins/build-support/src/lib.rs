//! Used from the in-tree plugins' build scripts: puts the plugin's manifest beside the `xp`
//! executable that `cargo build` makes, so the host finds in-tree plugins with no install step.

/// Copies `plugin.toml` (beside the plugin's Cargo.toml) to `<target>/<profile>/<name>.plugin.toml`.
pub fn install_manifest(name: &str) {
    println!("cargo:rerun-if-changed=plugin.toml");
    let out_dir = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR is <target>/<profile>/build/<crate>-<hash>/out.
    let Some(profile_dir) = out_dir.ancestors().nth(3) else {
        return;
    };
    let manifest = std::fs::read_to_string("plugin.toml").expect("plugin.toml sits beside Cargo.toml");
    if let Err(error) = std::fs::write(profile_dir.join(format!("{name}.plugin.toml")), manifest) {
        println!("cargo:warning=could not install the {name} plugin manifest beside xp: {error}");
    }
}
