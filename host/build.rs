//! Embeds the sources of the plugin API and SDK crates in the `xp` binary, so that
//! `xp plugin new` and `xp plugin install` can build plugins against exactly the API this xp
//! speaks, offline, wherever xp is installed.

use std::path::{Path, PathBuf};

fn collect(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .flatten()
        .collect();
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == "target" || name.starts_with('.') || name == "__pycache__" {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            files.push(path.strip_prefix(root).expect("under the root").to_path_buf());
        }
    }
}

fn main() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ is in the workspace");
    let mut code = String::from("/// (path relative to the workspace, contents) of the plugin API and SDK crates.\npub const API_SOURCES: &[(&str, &[u8])] = &[\n");
    for krate in ["plugin-api", "plugin-sdk"] {
        let root = workspace.join(krate);
        println!("cargo:rerun-if-changed={}", root.display());
        let mut files = Vec::new();
        collect(workspace, &root, &mut files);
        for file in files {
            let absolute = workspace.join(&file);
            println!("cargo:rerun-if-changed={}", absolute.display());
            code.push_str(&format!(
                "    ({:?}, include_bytes!({:?})),\n",
                file.to_string_lossy(),
                absolute.to_string_lossy()
            ));
        }
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("api_sources.rs");
    std::fs::write(out, code).expect("writing api_sources.rs");
}
