//! Version discipline with real files: a plugin that needs another plugin-api is refused before
//! any of its code is loaded; a library that is not a plugin, or a plugin built against an
//! incompatible plugin-api whose manifest lies about it, is refused at load by abi_stable's
//! checks. Every refusal is an error naming the plugin and the file, never a crash, and no run
//! is recorded. (What does load, across versions, is in plugin_compat.rs.)

use std::path::{Path, PathBuf};

use xp_tests::out_of_tree::{build_baseline_plugin_against, host_api_version};
use xp_tests::{TestProject, XpCommand};

/// Installs a plugin folder `<plugins>/<folder>/` with a manifest and a library file.
fn install(plugins: &Path, folder: &str, manifest: &str, library_name: &str, library: &[u8]) -> PathBuf {
    let dir = plugins.join(folder);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("plugin.toml"), manifest).unwrap();
    let library_path = dir.join(library_name);
    std::fs::write(&library_path, library).unwrap();
    library_path
}

fn manifest(name: &str, target_type: &str, plugin_api: &str, library: &str) -> String {
    format!(
        "name = \"{name}\"\nversion = \"1.0.0\"\ntarget_types = [\"{target_type}\"]\nplugin_api = \"{plugin_api}\"\nlibrary = \"{library}\"\n"
    )
}

fn xp<I: IntoIterator<Item = &'static str>>(project: &TestProject, plugins: &Path, args: I) -> XpCommand {
    project.xp(args).env("XP_PLUGIN_PATH", plugins)
}

/// `xp plugin list -o json`'s entry for `name`.
fn listed(project: &TestProject, plugins: &Path, name: &str) -> serde_json::Value {
    let list = xp(project, plugins, ["plugin", "list", "--check", "-o", "json"])
        .run()
        .success();
    assert!(!list.stderr.contains("panicked"), "{}", list.stderr);
    let entries: Vec<serde_json::Value> = serde_json::from_str(&list.stdout).unwrap();
    entries
        .into_iter()
        .find(|entry| entry["name"] == name)
        .unwrap_or_else(|| panic!("plugin '{name}' is listed:\n{}", list.stdout))
}

/// A target of `target_type` and a run configuration for it, written by hand: attaching would
/// need the plugin.
fn add_target(project: &TestProject, name: &str, target_type: &str) {
    project.write(&format!("aml_config/{name}.compute"), &format!("type: {target_type}\n"));
    project.write(
        &format!("aml_config/{name}.runconfig"),
        &format!("ArgumentVector:\n  - \"$file\"\nTarget: \"{name}\"\nFramework: \"Python\"\nTrackedRun: true\n"),
    );
    project.write("train.py", "print('must not run')\n");
}

/// Nothing was recorded in the run history.
fn assert_no_runs(project: &TestProject) {
    let list = project.xp(["history", "list", "-o", "json"]).run().success();
    let runs: Vec<serde_json::Value> = serde_json::from_str(&list.stdout).unwrap();
    assert!(runs.is_empty(), "no run is recorded: {runs:?}");
}

#[test]
fn a_plugin_needing_a_newer_plugin_api_is_refused_with_both_versions() {
    let project = TestProject::new();
    let plugins = project.home().join("plugins");
    // Garbage on purpose: the semver gate must refuse the plugin before loading anything.
    install(
        &plugins,
        "future",
        &manifest("future", "future", "^9.0", "libxp_plugin_future.so"),
        "libxp_plugin_future.so",
        b"never loaded",
    );
    let manifest_path = plugins.join("future/plugin.toml").display().to_string();
    let host = host_api_version();

    let entry = listed(&project, &plugins, "future");
    assert_eq!(entry["compatible"], false, "{entry}");
    let status = entry["status"].as_str().unwrap();
    assert!(status.starts_with("incompatible"), "{status}");
    for needle in [
        "future",
        "needs plugin-api ^9.0",
        &format!("has plugin-api {host}"),
        &manifest_path,
    ] {
        assert!(status.contains(needle), "the reason mentions {needle:?}: {status}");
    }

    add_target(&project, "f", "future");
    let run = xp(&project, &plugins, ["submit", "-c", "f", "train.py"])
        .run()
        .error_mentions(&["plugin 'future'", "^9.0", &host, &manifest_path]);
    assert!(!run.stdout.contains("must not run"), "{}", run.stdout);
    assert_no_runs(&project);
}

#[test]
fn a_library_that_is_not_a_plugin_is_refused_naming_the_file() {
    let project = TestProject::new();
    let plugins = project.home().join("plugins");
    let library = install(
        &plugins,
        "garbage",
        &manifest("garbage", "garbage", "^1.0", "libxp_plugin_garbage.so"),
        "libxp_plugin_garbage.so",
        b"\x7fELF? no: these bytes are not a shared library\n",
    );
    let library = library.display().to_string();

    let entry = listed(&project, &plugins, "garbage");
    assert_eq!(entry["compatible"], false, "{entry}");
    let status = entry["status"].as_str().unwrap();
    assert!(
        status.contains("plugin 'garbage'") && status.contains(&library),
        "{status}"
    );

    xp(
        &project,
        &plugins,
        ["computetarget", "attach", "garbage", "--name", "g"],
    )
    .run()
    .error_mentions(&["plugin 'garbage'", &library, "could not be loaded"]);
    assert!(!project.path("aml_config/g.compute").exists());

    add_target(&project, "g", "garbage");
    xp(&project, &plugins, ["submit", "-c", "g", "train.py"])
        .run()
        .error_mentions(&["plugin 'garbage'", &library, "could not be loaded"]);
    assert_no_runs(&project);
}

#[test]
fn a_plugin_built_for_another_abi_is_refused_at_load_even_when_its_manifest_lies() {
    // The baseline plugin's sources built against today's plugin-api made a major version
    // newer: an ABI this host does not have.
    let built = build_baseline_plugin_against("api-2.0", "2.0.0", &[]);
    let project = TestProject::new();
    let plugins = project.home().join("plugins");
    let host = host_api_version();
    assert!(
        host.starts_with("1."),
        "this test pairs plugin-api 2.0.0 with a 1.x host; update it for plugin-api {host}"
    );
    // The manifest claims the host's plugin-api, so the semver gate lets the library through:
    // abi_stable's own check must refuse it.
    let library = install(
        &plugins,
        "baseline",
        &manifest("baseline", "baseline", "^1.0", "libxp_plugin_baseline.so"),
        "libxp_plugin_baseline.so",
        &std::fs::read(&built).unwrap(),
    );
    let library = library.display().to_string();

    let entry = listed(&project, &plugins, "baseline");
    assert_eq!(entry["compatible"], false, "{entry}");
    let status = entry["status"].as_str().unwrap();
    for needle in [
        "plugin 'baseline'",
        library.as_str(),
        "could not be loaded",
        &format!("its ABI does not match this xp (plugin-api {host})"),
        "2.0.0",
        "Rebuild the plugin",
    ] {
        assert!(status.contains(needle), "the refusal mentions {needle:?}:\n{status}");
    }
    assert!(
        !status.contains("needs plugin-api"),
        "the library is refused at load, not by the manifest's (lying) semver requirement:\n{status}"
    );

    xp(
        &project,
        &plugins,
        ["computetarget", "attach", "baseline", "--name", "v"],
    )
    .run()
    .error_mentions(&["plugin 'baseline'", &library, "ABI does not match"]);
    assert!(!project.path("aml_config/v.compute").exists());

    add_target(&project, "v", "baseline");
    let run = xp(&project, &plugins, ["submit", "-c", "v", "train.py"])
        .run()
        .error_mentions(&[
            "plugin 'baseline'",
            &library,
            "ABI does not match",
            "2.0.0",
            "Rebuild the plugin",
        ]);
    assert!(!run.stdout.contains("must not run"), "{}", run.stdout);
    assert_no_runs(&project);
}
