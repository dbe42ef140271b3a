//! Puts this plugin's manifest beside the `xp` executable that `cargo build` makes, so the
//! host finds the in-tree plugins with no install step.

fn main() {
    println!("cargo:rerun-if-changed=plugin.toml");
    let out_dir = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR is <target>/<profile>/build/<crate>-<hash>/out.
    let Some(profile_dir) = out_dir.ancestors().nth(3) else {
        return;
    };
    let manifest = std::fs::read_to_string("plugin.toml").expect("plugin.toml sits beside Cargo.toml");
    let _ = std::fs::write(profile_dir.join("local.plugin.toml"), manifest);
}
