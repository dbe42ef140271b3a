//! Plugins on the search path, and a plugin that misbehaves: the host survives and records it.

use xp_tests::{fixture_plugin_dir, profile_dir, TestProject};

#[test]
fn plugin_list_shows_the_in_tree_local_plugin_beside_xp() {
    let project = TestProject::new();
    let run = project.xp(["plugin", "list", "-o", "json"]).run().success();
    let plugins: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    let local = plugins
        .iter()
        .find(|p| p["name"] == "local")
        .expect("the local plugin is found");
    assert_eq!(local["compatible"], true);
    assert_eq!(local["target_types"], "local");
    assert!(local["manifest"]
        .as_str()
        .unwrap()
        .starts_with(profile_dir().to_str().unwrap()));
}

#[test]
fn a_panicking_plugin_fails_the_run_and_the_host_records_it() {
    let project = TestProject::new();
    let plugins = fixture_plugin_dir(&project);
    project.write("ok.py", "print('ok')\n");
    project
        .xp([
            "computetarget",
            "attach",
            "crashy",
            "--name",
            "boom",
            "--set",
            "behaviour=panic",
        ])
        .env("XP_PLUGIN_PATH", &plugins)
        .run()
        .success();
    let run = project
        .xp(["submit", "-c", "boom", "ok.py"])
        .env("XP_PLUGIN_PATH", &plugins)
        .run();
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("plugin 'fixture' panicked: deliberate panic in run"),
        "{}",
        run.stderr
    );
    let record = project.xp(["history", "last", "-o", "json"]).run().success();
    let record: serde_json::Value = serde_json::from_str(&record.stdout).unwrap();
    assert_eq!(record["status"], "Failed");
    assert!(
        record["error"].as_str().unwrap().contains("deliberate panic"),
        "{record}"
    );
}

#[test]
fn a_plugin_failure_and_a_panic_while_attaching_are_clear_errors() {
    let project = TestProject::new();
    let plugins = fixture_plugin_dir(&project);
    project.write("ok.py", "print('ok')\n");
    project
        .xp([
            "computetarget",
            "attach",
            "crashy",
            "--name",
            "bad",
            "--set",
            "behaviour=fail",
        ])
        .env("XP_PLUGIN_PATH", &plugins)
        .run()
        .success();
    project
        .xp(["submit", "-c", "bad", "ok.py"])
        .env("XP_PLUGIN_PATH", &plugins)
        .run()
        .error_mentions(&["target 'bad'", "bad.compute", "the fixture failed as asked"]);
    let run = project
        .xp([
            "computetarget",
            "attach",
            "crashy",
            "--name",
            "p",
            "--set",
            "behaviour=panic-on-attach",
        ])
        .env("XP_PLUGIN_PATH", &plugins)
        .run();
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("deliberate panic while attaching"),
        "{}",
        run.stderr
    );
    assert!(!project.path("aml_config/p.compute").exists());
}

/// A manifest in `dir` for the fixture library under another name, serving `target_type`.
fn fixture_manifest(dir: &std::path::Path, name: &str, target_type: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let library = profile_dir().join("libxp_fixture_plugin.so");
    std::fs::write(
        dir.join(format!("{name}.plugin.toml")),
        format!(
            "name = \"{name}\"\nversion = \"0.0.0\"\ntarget_types = [\"{target_type}\"]\nplugin_api = \"^1.0\"\nlibrary = \"{}\"\n",
            library.display()
        ),
    )
    .unwrap();
}

#[test]
fn a_plugin_that_ends_the_process_is_named_in_the_runs_record() {
    let project = TestProject::new();
    let plugins = fixture_plugin_dir(&project);
    project.write("ok.py", "print('ok')\n");
    for behaviour in ["exit", "abort"] {
        project
            .xp(["computetarget", "attach", "crashy", "--name", behaviour, "--set"])
            .arg(format!("behaviour={behaviour}"))
            .env("XP_PLUGIN_PATH", &plugins)
            .run()
            .success();
        // Attached: xp itself ends with the plugin.
        let run = project
            .xp(["submit", "-c", behaviour, "ok.py"])
            .env("XP_PLUGIN_PATH", &plugins)
            .run();
        assert_ne!(run.code, Some(0), "{run:?}");
        let record = project.last_record();
        assert_eq!(record["status"], "Failed", "{record}");
        let error = record["error"].as_str().unwrap();
        let library = profile_dir().join("libxp_fixture_plugin.so");
        let how = if behaviour == "exit" {
            "the plugin called exit"
        } else {
            "the plugin ended the process with signal 06"
        };
        for needle in [
            "ended without recording an outcome",
            "plugin 'fixture'",
            library.to_str().unwrap(),
            "was running run",
            how,
        ] {
            assert!(error.contains(needle), "the record names {needle:?}: {error}");
        }

        // Detached: the supervisor ends with it, and the record says so just the same.
        let submitted = project
            .xp(["submit", "-a", "-c", behaviour, "ok.py"])
            .env("XP_PLUGIN_PATH", &plugins)
            .run()
            .success();
        let run_id = submitted.stdout.trim().to_owned();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let record = loop {
            let record = project.run_record(&run_id);
            if record["status"] == "Failed" {
                break record;
            }
            assert!(std::time::Instant::now() < deadline, "{record}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        let error = record["error"].as_str().unwrap();
        assert!(error.contains("plugin 'fixture'") && error.contains(how), "{record}");
    }
}

#[test]
fn a_broken_plugin_earlier_on_the_path_is_passed_over_by_name() {
    let project = TestProject::new();
    let plugins = project.home().join("early-plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::write(plugins.join("libbroken.so"), b"not a library").unwrap();
    std::fs::write(
        plugins.join("broken-local.plugin.toml"),
        "name = \"broken-local\"\nversion = \"0.0.0\"\ntarget_types = [\"local\"]\nplugin_api = \"^1.0\"\nlibrary = \"libbroken.so\"\n",
    )
    .unwrap();
    project.write("ok.py", "print('ran locally')\n");
    let run = project
        .xp(["submit", "-c", "local", "ok.py"])
        .env("XP_PLUGIN_PATH", &plugins)
        .run()
        .success();
    assert!(run.stdout.contains("ran locally"), "{}", run.stdout);
    assert!(
        run.stderr.contains("passed over") && run.stderr.contains("plugin 'broken-local'"),
        "the broken plugin is named, not skipped silently: {}",
        run.stderr
    );
    assert_eq!(project.last_record()["status"], "Completed");

    let list = project
        .xp(["plugin", "list", "--check", "-o", "json"])
        .env("XP_PLUGIN_PATH", &plugins)
        .run()
        .success();
    let entries: Vec<serde_json::Value> = serde_json::from_str(&list.stdout).unwrap();
    let broken = entries.iter().find(|e| e["name"] == "broken-local").unwrap();
    assert_eq!(broken["compatible"], false, "{broken}");
    let local = entries.iter().find(|e| e["name"] == "local").unwrap();
    assert_eq!(local["serves"], serde_json::json!(["local"]), "{local}");
}

#[test]
fn list_marks_which_plugin_serves_a_type_and_runs_no_plugin_code_unless_asked() {
    let project = TestProject::new();
    let plugins = project.home().join("three");
    for name in ["first", "second", "third"] {
        fixture_manifest(&plugins, name, "crashy");
    }
    let marker = project.home().join("loaded");
    let list = project
        .xp(["plugin", "list", "-o", "json"])
        .env("XP_PLUGIN_PATH", &plugins)
        .env("XP_FIXTURE_LOAD_MARKER", &marker)
        .run()
        .success();
    assert!(!marker.exists(), "plugin list loaded a library without --check");
    let entries: Vec<serde_json::Value> = serde_json::from_str(&list.stdout).unwrap();
    let entry = |name: &str| entries.iter().find(|e| e["name"] == name).unwrap().clone();
    assert_eq!(entry("first")["serves"], serde_json::json!(["crashy"]));
    for name in ["second", "third"] {
        assert_eq!(entry(name)["serves"], serde_json::json!([]), "{}", entry(name));
        assert_eq!(entry(name)["shadowed"]["crashy"], "first", "{}", entry(name));
    }
    let table = project
        .xp(["plugin", "list"])
        .env("XP_PLUGIN_PATH", &plugins)
        .env("XP_FIXTURE_LOAD_MARKER", &marker)
        .run()
        .success();
    assert!(table.stdout.contains("shadowed by 'first'"), "{}", table.stdout);
    assert!(!marker.exists());

    project
        .xp(["plugin", "list", "--check"])
        .env("XP_PLUGIN_PATH", &plugins)
        .env("XP_FIXTURE_LOAD_MARKER", &marker)
        .run()
        .success();
    assert!(marker.exists(), "--check loads the libraries");
}
