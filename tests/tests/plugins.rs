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
