//! Bad input: each a clear error naming the file and what was expected; nothing recorded as a
//! successful run; never a panic.

use xp_tests::TestProject;

fn assert_no_completed_run(project: &TestProject) {
    let list = project.xp(["history", "list", "-o", "json"]).run().success();
    let runs: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert!(
        runs.as_array().unwrap().iter().all(|run| run["status"] != "Completed"),
        "no run may be recorded as successful: {runs}"
    );
}

#[test]
fn malformed_yaml_names_the_file_and_line() {
    let project = TestProject::new();
    project.write("ok.py", "print('never')\n");
    project.write(
        "aml_config/local.runconfig",
        "ArgumentVector:\n  - \"$file\"\nTarget: [local\n",
    );
    let run = project
        .xp(["submit", "ok.py"])
        .run()
        .error_mentions(&["aml_config/local.runconfig:3"]);
    assert!(!run.stdout.contains("never"));
    assert_no_completed_run(&project);
}

#[test]
fn an_unknown_runconfig_key_names_the_key_and_the_known_ones() {
    let project = TestProject::new();
    project.write("ok.py", "print('never')\n");
    let config = project
        .read("aml_config/local.runconfig")
        .replace("Framework:", "Framwork:");
    project.write("aml_config/local.runconfig", &config);
    project
        .xp(["submit", "ok.py"])
        .run()
        .error_mentions(&["local.runconfig", "Framwork", "Framework"]);
    assert_no_completed_run(&project);
}

#[test]
fn a_bad_value_names_the_key_and_the_choices() {
    let project = TestProject::new();
    project.write("ok.py", "print('never')\n");
    let config = project
        .read("aml_config/local.runconfig")
        .replace("Framework: \"Python\"", "Framework: \"Jython\"");
    project.write("aml_config/local.runconfig", &config);
    project
        .xp(["submit", "ok.py"])
        .run()
        .error_mentions(&["local.runconfig", "Jython", "PySpark"]);
}

#[test]
fn missing_runconfig_target_and_script_are_named() {
    let project = TestProject::new();
    project.write("ok.py", "print('never')\n");
    project
        .xp(["submit", "-c", "gpu", "ok.py"])
        .run()
        .error_mentions(&["gpu", "gpu.runconfig", "local"]);
    project.xp(["submit", "-t", "cloud", "ok.py"]).run().error_mentions(&[
        "cloud",
        "cloud.compute",
        "computetarget attach",
    ]);
    project
        .xp(["submit", "nope.py"])
        .run()
        .error_mentions(&["nope.py", "not found"]);
    project
        .xp(["submit", "../outside.py"])
        .run()
        .error_mentions(&["outside.py"]);
    assert_no_completed_run(&project);
}

#[test]
fn a_target_type_no_plugin_serves_is_named() {
    let project = TestProject::new();
    project.write("ok.py", "print('never')\n");
    project.write("aml_config/quantum.compute", "type: quantum\n");
    project.write("aml_config/quantum.runconfig", "Target: quantum\n");
    project
        .xp(["submit", "-c", "quantum", "ok.py"])
        .run()
        .error_mentions(&["quantum", "no plugin", "XP_PLUGIN_PATH"]);
    project.write("aml_config/broken.compute", "address: somewhere\n");
    project
        .xp(["submit", "-t", "broken", "ok.py"])
        .run()
        .error_mentions(&["broken.compute", "type"]);
    assert_no_completed_run(&project);
}

#[test]
fn a_missing_interpreter_fails_the_run_with_the_reason() {
    let project = TestProject::new();
    project.write("ok.py", "print('never')\n");
    let compute = project
        .read("aml_config/local.compute")
        .replace("pythonLocation: \"python3\"", "pythonLocation: \"/opt/no/python9\"");
    project.write("aml_config/local.compute", &compute);
    project
        .xp(["submit", "ok.py"])
        .run()
        .error_mentions(&["/opt/no/python9", "pythonLocation", "local.compute"]);
    let record = project.last_record();
    assert_eq!(record["status"], "Failed");
    assert!(record["error"].as_str().unwrap().contains("python9"), "{record}");
}

#[test]
fn outside_a_project_xp_says_how_to_make_one() {
    let project = TestProject::empty();
    project.write("ok.py", "print('never')\n");
    project
        .xp(["submit", "ok.py"])
        .run()
        .error_mentions(&["not inside an xp project", "xp init"]);
    project.xp(["history", "list"]).run().error_mentions(&["xp init"]);
}

#[test]
fn no_panic_on_odd_input() {
    let project = TestProject::new();
    project.write("ok.py", "print('ok')\n");
    for (file, text) in [
        ("aml_config/local.compute", ""),
        ("aml_config/local.compute", "- a\n- list\n"),
        ("aml_config/local.compute", "type: 3\n"),
        ("aml_config/local.runconfig", "EnvironmentVariables:\n  A: [1, 2]\n"),
        ("aml_config/local.runconfig", "\u{0}\u{1}binary"),
        ("aml_config/conda_dependencies.yml", "dependencies: 7\n"),
    ] {
        let original = project.read(file);
        project.write(file, text);
        let run = project.xp(["submit", "ok.py"]).run();
        assert_eq!(run.code, Some(1), "{file} = {text:?} must be an error:\n{}", run.stderr);
        assert!(
            run.stderr.contains(file.rsplit('/').next().unwrap()),
            "the error names {file}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        project.write(file, &original);
    }
    project
        .xp(["history", "info", "no-such-run"])
        .run()
        .error_mentions(&["no-such-run"]);
    project
        .xp(["history", "list", "--status", "Sleeping"])
        .run()
        .error_mentions(&["Sleeping", "Completed"]);
    project
        .xp(["computetarget", "show", "../../etc/passwd"])
        .run()
        .error_mentions(&["not a valid"]);
}
