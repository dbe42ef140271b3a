//! The `azureml` namespace in a run: `azureml.logging` comes from xp's helpers, and every other
//! `azureml` package still imports from where it lives — one the project ships beside its
//! script (a folder without `__init__.py`), and one installed elsewhere on the path the way
//! PyPI's `azureml-*` packages are (a pkgutil-style `azureml/__init__.py`), here a folder the
//! run configuration puts on PYTHONPATH. On the local target and on a remote host over SSH
//! (the docker target: tests/tests/workbench_docker.rs).

use xp_tests::TestProject;

const SCRIPT: &str = r#"import os
from azureml.logging import get_azureml_logger
import azureml.extra
import azureml.sdkish
get_azureml_logger().log("namespace", len(azureml.__path__))
print("extra:", azureml.extra.WHO)
print("sdkish:", azureml.sdkish.WHO)
print("logging from the project:", os.path.abspath(azureml.logging.__file__).startswith(os.getcwd()))
"#;

/// A project shipping `azureml/extra` beside the script and a PyPI-style `azureml/sdkish` in
/// `vendor/`, which run configuration `runconfig` puts on PYTHONPATH.
fn write_namespace_project(project: &TestProject, runconfig: &str) {
    project
        .write("azureml/extra/__init__.py", "WHO = 'the project'\n")
        .write(
            "vendor/azureml/__init__.py",
            "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n",
        )
        .write(
            "vendor/azureml/sdkish/__init__.py",
            "WHO = 'an installed azureml package'\n",
        )
        .write("namespace.py", SCRIPT);
    let path = format!("aml_config/{runconfig}.runconfig");
    let config = project
        .read(&path)
        .replace("\"EXAMPLE_ENV_VAR\": \"Example Value\"", "\"PYTHONPATH\": \"vendor\"");
    assert!(config.contains("PYTHONPATH"), "{config}");
    project.write(&path, &config);
}

fn check_namespace_run(project: &TestProject, runconfig: &str) {
    let run = project.xp(["submit", "-c", runconfig, "namespace.py"]).run().success();
    assert!(run.stdout.contains("extra: the project"), "{}", run.stdout);
    assert!(
        run.stdout.contains("sdkish: an installed azureml package"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("logging from the project: False"),
        "xp's helpers live outside the run's folder: {}",
        run.stdout
    );
    let record = project.last_record();
    assert_eq!(record["status"], "Completed", "{record}");
    let parts = record["metrics"]["namespace"].as_u64().unwrap_or(0);
    assert!(
        parts >= 3,
        "xp's helpers, the project's folder and vendor/ make up the namespace: {record}"
    );
}

#[test]
fn the_projects_azureml_packages_import_beside_xps_logging_locally() {
    let project = TestProject::new();
    write_namespace_project(&project, "local");
    check_namespace_run(&project, "local");
}

#[test]
fn the_projects_azureml_packages_import_beside_xps_logging_on_a_remote_host() {
    let project = TestProject::new();
    project.attach_over_ssh("remote", "r", &[]);
    write_namespace_project(&project, "r");
    check_namespace_run(&project, "r");
}
