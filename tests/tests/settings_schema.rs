//! Targets describe themselves: each plugin's settings schema gives `xp computetarget attach
//! TYPE` its flags and help, checks a target's settings before anything runs, and makes the
//! README's tables of settings (kept equal here).

use xp_tests::{workspace_root, TestProject};

/// The built-in types whose settings the README lists.
const BUILT_IN_TYPES: &[&str] = &["local", "docker", "remote", "remotedocker", "cluster"];

fn runs_recorded(project: &TestProject) -> usize {
    let listed = project.xp(["history", "list", "-o", "json"]).run().success();
    serde_json::from_str::<Vec<serde_json::Value>>(&listed.stdout)
        .unwrap()
        .len()
}

#[test]
fn a_plugin_setting_of_the_wrong_type_stops_submit_and_prepare_naming_file_line_and_key() {
    let project = TestProject::new();
    project.write("train.py", "print('ran')\n");
    // `xp init` wrote docker.compute from the docker plugin's template; break one setting.
    let compute = project.read("aml_config/docker.compute");
    let line = compute
        .lines()
        .position(|line| line.starts_with("sharedVolumes:"))
        .expect("the docker template sets sharedVolumes")
        + 1;
    let broken: String = compute
        .lines()
        .map(|line| {
            if line.starts_with("sharedVolumes:") {
                "sharedVolumes: 5"
            } else {
                line
            }
        })
        .map(|line| format!("{line}\n"))
        .collect();
    project.write("aml_config/docker.compute", &broken);
    for command in [
        vec!["experiment", "submit", "-c", "docker", "train.py"],
        vec!["experiment", "prepare", "-c", "docker"],
    ] {
        project.xp(&command).run().error_mentions(&[
            "docker.compute",
            &format!("line {line}"),
            "`sharedVolumes` is 5",
            "plugin 'docker' expects true or false",
        ]);
    }
    assert_eq!(runs_recorded(&project), 0, "nothing was recorded");

    // The same on the local target, whose interpreter setting is text.
    let compute = project.read("aml_config/local.compute");
    let fixed: String = compute
        .lines()
        .filter(|line| !line.starts_with("pythonLocation"))
        .map(|line| format!("{line}\n"))
        .collect();
    project.write("aml_config/local.compute", &format!("{fixed}pythonLocation: [1, 2]\n"));
    project.xp(["submit", "train.py"]).run().error_mentions(&[
        "local.compute",
        "`pythonLocation` is [1,2]",
        "expects text",
    ]);
    assert_eq!(runs_recorded(&project), 0, "nothing was recorded");
    // Fixed, it runs.
    project.write("aml_config/local.compute", &format!("{fixed}pythonLocation: python3\n"));
    let ran = project.xp(["submit", "train.py"]).run().success();
    assert!(ran.stdout.contains("ran"), "{}", ran.stdout);
}

#[test]
fn attach_checks_the_settings_before_writing_anything() {
    let project = TestProject::new();
    project
        .xp([
            "computetarget",
            "attach",
            "docker",
            "--name",
            "gpu",
            "--set",
            "sharedVolumes=5",
        ])
        .run()
        .error_mentions(&["gpu.compute", "`sharedVolumes` is 5", "true or false"]);
    assert!(!project.path("aml_config/gpu.compute").exists());
    assert!(!project.path("aml_config/gpu.runconfig").exists());
    // A flag the docker plugin does not declare is clap's error, with the usage.
    let unknown = project
        .xp(["computetarget", "attach", "docker", "--name", "gpu", "--address", "h"])
        .run();
    assert_ne!(unknown.code, Some(0));
    assert!(unknown.stderr.contains("--address"), "{}", unknown.stderr);
    assert!(!project.path("aml_config/gpu.compute").exists());
    // Declared flags become settings.
    project
        .xp([
            "computetarget",
            "attach",
            "docker",
            "--name",
            "gpu",
            "--base-image",
            "xp-test/python:bookworm",
            "--nvidia-docker",
        ])
        .run()
        .success();
    let compute = project.read("aml_config/gpu.compute");
    assert!(
        compute.contains("baseDockerImage: xp-test/python:bookworm"),
        "{compute}"
    );
    assert!(compute.contains("nvidiaDocker: true"), "{compute}");
}

#[test]
fn attach_help_lists_the_settings_and_flags_of_the_types_plugin() {
    let project = TestProject::new();
    let help = project
        .xp(["computetarget", "attach", "remote", "--help"])
        .run()
        .success();
    for needle in [
        "--address <ADDRESS>",
        "-u, --username <USERNAME>",
        "--password",
        "-k, --use-xp-ssh-key",
        "--private-key-file <PRIVATEKEYFILE>",
        "Settings of type remote (plugin 'remote'",
        "remoteDirectory",
        "[default: .xp-remote]",
    ] {
        assert!(help.stdout.contains(needle), "{needle:?} in:\n{}", help.stdout);
    }
    assert!(!help.stdout.contains("--base-image"), "{}", help.stdout);
    let docker = project
        .xp(["computetarget", "attach", "docker", "--help"])
        .run()
        .success();
    assert!(docker.stdout.contains("--base-image"), "{}", docker.stdout);
    assert!(!docker.stdout.contains("--address"), "{}", docker.stdout);
    // Without a type: the types the plugins serve.
    let base = project.xp(["computetarget", "attach", "--help"]).run().success();
    for kind in BUILT_IN_TYPES {
        assert!(base.stdout.contains(kind), "{kind} in:\n{}", base.stdout);
    }
}

/// The README's table for `kind`: between `<!-- settings: KIND -->` and `<!-- /settings -->`.
fn readme_table(readme: &str, kind: &str) -> Option<String> {
    let start = format!("<!-- settings: {kind} -->\n");
    let from = readme.find(&start)? + start.len();
    let to = from + readme[from..].find("<!-- /settings -->")?;
    Some(readme[from..to].to_owned())
}

#[test]
fn the_readme_lists_every_setting_each_plugin_declares() {
    let project = TestProject::new();
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    for kind in BUILT_IN_TYPES {
        let declared = project
            .xp(["computetarget", "settings", kind, "--markdown"])
            .run()
            .success()
            .stdout;
        assert!(declared.lines().count() > 3, "{kind} declares settings:\n{declared}");
        let table =
            readme_table(&readme, kind).unwrap_or_else(|| panic!("README.md has no `<!-- settings: {kind} -->` table"));
        assert_eq!(
            table, declared,
            "README.md's table of {kind} settings differs from what the plugin declares; scripts/readme-settings.sh rewrites it"
        );
    }
}
