//! Compute targets and run configurations: attach, list, show, detach, create, delete.

use xp_tests::TestProject;

#[test]
fn attach_list_show_and_detach_a_target() {
    let project = TestProject::new();
    project
        .xp([
            "computetarget",
            "attach",
            "local",
            "--name",
            "cpu",
            "--set",
            "nativeSharedDirectory=/tmp/xp-share",
            "--set",
            "custom=3",
        ])
        .run()
        .success();
    let compute = project.read("aml_config/cpu.compute");
    assert!(compute.contains("type: local"), "{compute}");
    assert!(
        compute.contains("pythonLocation: python3"),
        "the plugin filled its default: {compute}"
    );
    assert!(
        compute.contains("custom: 3"),
        "unknown keys are kept for the plugin: {compute}"
    );
    let runconfig = project.read("aml_config/cpu.runconfig");
    assert!(runconfig.contains("Target: \"cpu\""), "{runconfig}");

    let listed = project.xp(["computetarget", "list", "-o", "json"]).run().success();
    let names: Vec<String> = serde_json::from_str::<Vec<serde_json::Value>>(&listed.stdout)
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, vec!["cpu", "docker", "local"], "xp init made local and docker");
    let shown = project
        .xp(["computetarget", "show", "cpu", "-o", "json"])
        .run()
        .success();
    let shown: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(shown["settings"]["nativeSharedDirectory"], "/tmp/xp-share");

    project
        .xp(["computetarget", "attach", "local", "--name", "cpu"])
        .run()
        .error_mentions(&["already exists", "--force"]);
    project.xp(["computetarget", "detach", "cpu"]).run().success();
    assert!(!project.path("aml_config/cpu.compute").exists());
    assert!(!project.path("aml_config/cpu.runconfig").exists());
    project
        .xp(["computetarget", "detach", "cpu"])
        .run()
        .error_mentions(&["cpu"]);
}

#[test]
fn attaching_an_unserved_type_or_a_bad_interpreter_writes_nothing() {
    let project = TestProject::new();
    project
        .xp(["computetarget", "attach", "mainframe", "--name", "m"])
        .run()
        .error_mentions(&["mainframe", "no plugin"]);
    project
        .xp([
            "computetarget",
            "attach",
            "local",
            "--name",
            "bad",
            "--python-location",
            "/nope/python",
        ])
        .run()
        .error_mentions(&["/nope/python", "pythonLocation"]);
    assert!(!project.path("aml_config/m.compute").exists());
    assert!(!project.path("aml_config/bad.compute").exists());
    assert!(!project.path("aml_config/bad.runconfig").exists());
}

#[test]
fn run_configurations_can_be_created_listed_shown_and_deleted() {
    let project = TestProject::new();
    project
        .xp([
            "runconfiguration",
            "create",
            "spark",
            "--target",
            "local",
            "--framework",
            "pyspark",
        ])
        .run()
        .success();
    let shown = project
        .xp(["runconfiguration", "show", "spark", "-o", "json"])
        .run()
        .success();
    let shown: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(shown["Framework"], "PySpark");
    assert_eq!(shown["Target"], "local");
    let listed = project.xp(["runconfiguration", "list"]).run().success();
    assert!(
        listed.stdout.contains("spark") && listed.stdout.contains("local"),
        "{}",
        listed.stdout
    );
    project
        .xp(["runconfiguration", "create", "x", "--target", "nowhere"])
        .run()
        .error_mentions(&["nowhere"]);
    project.xp(["runconfiguration", "delete", "spark"]).run().success();
    assert!(!project.path("aml_config/spark.runconfig").exists());
    project
        .xp(["runconfiguration", "delete", "spark"])
        .run()
        .error_mentions(&["spark"]);
}

#[test]
fn init_writes_a_workbench_style_project_and_keeps_existing_files() {
    let project = TestProject::empty();
    project.write(".gitignore", "*.pyc");
    project.xp(["init"]).run().success();
    for file in [
        "local.compute",
        "local.runconfig",
        "docker.compute",
        "docker.runconfig",
        "conda_dependencies.yml",
        "spark_dependencies.yml",
    ] {
        let text = project.read(&format!("aml_config/{file}"));
        assert!(text.starts_with('#'), "{file} explains itself with comments");
    }
    assert_eq!(
        project.read(".gitignore").lines().collect::<Vec<_>>(),
        vec!["*.pyc", "# xp's run history, logs and artifacts", ".xp/"]
    );
    project.write("aml_config/local.compute", "type: local\npythonLocation: python3\n");
    project.xp(["init"]).run().success();
    assert_eq!(
        project.read("aml_config/local.compute"),
        "type: local\npythonLocation: python3\n",
        "init keeps what exists"
    );
    assert_eq!(project.read(".gitignore").matches(".xp/").count(), 1);
}
