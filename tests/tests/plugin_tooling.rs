//! Cargo-style plugin tooling, as a team that ships its own target type uses it: `xp plugin new`
//! makes a crate that passes its own tests and loads as it is; `xp plugin install` builds one
//! from a folder or a git repository and refuses what this xp cannot load before installing
//! anything; `xp plugin remove` takes it out.

use std::path::Path;
use std::process::Command;

use xp_tests::out_of_tree::shared_target_dir;
use xp_tests::{Finished, TestProject};

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(["-c", "user.name=xp tests", "-c", "user.email=tests@xp.invalid"])
        .args(args)
        .current_dir(dir)
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?} in {}", dir.display());
}

fn said(finished: &Finished) -> String {
    format!("{}{}", finished.stdout, finished.stderr)
}

/// The plugin folders installed under the project's XP_HOME.
fn installed(project: &TestProject) -> Vec<String> {
    let dir = project.home().join(".xp-home/config/plugins");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_new_plugin_passes_its_tests_installs_from_git_runs_and_is_removed() {
    let project = TestProject::new();
    let crate_dir = project.home().join("gpu-plugin");
    let new = project
        .xp(["plugin", "new", "gpu", "--type", "gpubox"])
        .arg(&crate_dir)
        .run()
        .success();
    assert!(said(&new).contains("Made plugin 'gpu' (target type gpubox)"), "{new:?}");
    for file in ["Cargo.toml", "plugin.toml", "src/lib.rs", "README.md"] {
        assert!(crate_dir.join(file).is_file(), "{file} was written");
    }

    // Its own tests, through the SDK's harness, as its README says: `cd DIR && cargo test`
    // (cargo reads the crate's .cargo/config.toml from the folder it runs in).
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let tests = Command::new(&cargo)
        .arg("test")
        .current_dir(&crate_dir)
        .arg("--target-dir")
        .arg(shared_target_dir())
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("cargo runs");
    let output = String::from_utf8_lossy(&tests.stdout);
    assert!(
        tests.status.success(),
        "the new plugin's own tests pass:\n{output}\n{}",
        String::from_utf8_lossy(&tests.stderr)
    );
    assert!(output.contains("test result: ok. 2 passed"), "{output}");

    // Installed from a git repository, as a team shares it.
    git(&crate_dir, &["init", "--quiet"]);
    git(&crate_dir, &["add", "."]);
    git(&crate_dir, &["commit", "--quiet", "-m", "gpu plugin"]);
    let url = format!("file://{}", crate_dir.display());
    let install = project
        .xp(["plugin", "install"])
        .arg(&url)
        .env("CARGO_TARGET_DIR", shared_target_dir())
        .run()
        .success();
    assert!(
        said(&install).contains("Installed plugin 'gpu' 0.1.0 (target types: gpubox)"),
        "{install:?}"
    );
    assert_eq!(installed(&project), ["gpu"]);

    let list = project.xp(["plugin", "list", "-o", "json"]).run().success();
    let entries: Vec<serde_json::Value> = serde_json::from_str(&list.stdout).unwrap();
    let gpu = entries.iter().find(|e| e["name"] == "gpu").expect("listed");
    assert_eq!(gpu["serves"], serde_json::json!(["gpubox"]), "{gpu}");

    // It runs.
    project
        .xp(["computetarget", "attach", "gpubox", "--name", "g"])
        .run()
        .success();
    project.write("train.py", "import sys\nprint('on gpubox', sys.argv[1:])\n");
    let run = project.xp(["submit", "-c", "g", "train.py", "x"]).run().success();
    assert!(run.stdout.contains("on gpubox ['x']"), "{}", run.stdout);
    assert_eq!(project.last_record()["status"], "Completed");

    // Installing over it needs --force.
    project
        .xp(["plugin", "install"])
        .arg(&crate_dir)
        .env("CARGO_TARGET_DIR", shared_target_dir())
        .run()
        .error_mentions(&["plugin 'gpu' is already installed", "--force"]);
    project
        .xp(["plugin", "install", "--force"])
        .arg(&crate_dir)
        .env("CARGO_TARGET_DIR", shared_target_dir())
        .run()
        .success();

    // Removed: gone from the folder, and nothing serves the type any more.
    let remove = project.xp(["plugin", "remove", "gpu"]).run().success();
    assert!(said(&remove).contains("Removed plugin 'gpu'"), "{remove:?}");
    assert!(installed(&project).is_empty());
    project
        .xp(["submit", "-c", "g", "train.py"])
        .run()
        .error_mentions(&["no plugin serves target type 'gpubox'"]);
    project
        .xp(["plugin", "remove", "gpu"])
        .run()
        .error_mentions(&["no plugin named 'gpu' is installed"]);
}

#[test]
fn install_refuses_what_this_xp_cannot_load_before_installing_anything() {
    let project = TestProject::new();
    let crate_dir = project.home().join("future-plugin");
    project.xp(["plugin", "new", "future"]).arg(&crate_dir).run().success();

    // A plugin that needs another plugin-api: refused from its manifest, before any build.
    let manifest = crate_dir.join("plugin.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("plugin_api = \"^1.", "plugin_api = \"^9.")).unwrap();
    let refused = project.xp(["plugin", "install"]).arg(&crate_dir).run();
    let refused = refused.error_mentions(&[
        "plugin 'future'",
        "needs plugin-api ^9.",
        "nothing was built or installed",
    ]);
    assert!(!said(&refused).contains("Building"), "{refused:?}");
    assert!(installed(&project).is_empty());

    // A crate that does not build: cargo's error, nothing installed.
    std::fs::write(&manifest, text).unwrap();
    let lib = crate_dir.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, format!("{source}\nfn broken( {{\n")).unwrap();
    project
        .xp(["plugin", "install"])
        .arg(&crate_dir)
        .env("CARGO_TARGET_DIR", shared_target_dir())
        .run()
        .error_mentions(&["building", "failed", "error"]);
    assert!(installed(&project).is_empty());

    // Not a plugin crate at all.
    project
        .xp(["plugin", "install"])
        .arg(project.root())
        .run()
        .error_mentions(&["has no Cargo.toml", "xp plugin new"]);
}
