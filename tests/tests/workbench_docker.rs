//! Workbench projects as they were written, on the docker target with a base image that has
//! pip and no conda (the shared test setup's python image): the conda file's conda packages
//! are installed with pip under their PyPI names, its `python` entry is a note, and the
//! `azureml` namespace holds xp's `azureml.logging` beside the project's own packages.
//!
//! pip installs from a `wheelhouse` (a folder of wheels on this machine) so that no test run
//! depends on an index: the shared setup (`scripts/services.sh start docker`) downloads
//! pandas, scikit-learn, joblib and their dependencies once per machine.

use std::process::Command;

use xp_tests::{make_wheel, service_env, test_image, TestProject};

/// The conda file of issue 14, exactly.
const WORKBENCH_CONDA: &str = "dependencies:
  - python=3.5.2
  - scikit-learn
  - pandas
  - pip:
    - joblib
";

const TRAIN: &str = r#"import sys
import joblib
import pandas as pd
from sklearn.linear_model import LogisticRegression
from azureml.logging import get_azureml_logger
import azureml.extra

frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]})
model = LogisticRegression().fit(frame[["x"]], frame["y"])
get_azureml_logger().log("Accuracy", model.score(frame[["x"]], frame["y"]))
print("pandas", pd.__version__, "joblib", joblib.__version__, "python", "%d.%d" % sys.version_info[:2])
print("azureml.extra from", azureml.extra.WHO)
"#;

fn python_image() -> String {
    test_image("XP_TEST_PYTHON_IMAGE", "xp-test/python:bookworm")
}

/// A project with a docker target `d` on the python image; `extra` settings added.
fn docker_project(extra: &[&str]) -> TestProject {
    let project = TestProject::new();
    let image = python_image();
    let mut args = vec![
        "computetarget",
        "attach",
        "docker",
        "--name",
        "d",
        "--base-image",
        &image,
    ];
    for setting in extra {
        args.extend(["--set", setting]);
    }
    project.xp(args).run().success();
    project
}

/// The tags of the images xp built for `project`.
fn project_images(project: &TestProject) -> Vec<String> {
    let listed = Command::new("docker")
        .args(["images", "--format", "{{.Repository}}:{{.Tag}}", "--filter"])
        .arg(format!("label=xp.project={}", project.root().display()))
        .output()
        .unwrap();
    String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// When dropped (the test passed or not), removes the project's image tags but not their
/// layers: the next test run builds the same Dockerfile from the same files, and the engine
/// reuses those layers (a cache by content), so only the first run on a machine waits for pip.
struct UntagKeepingLayers<'a>(&'a TestProject);

impl Drop for UntagKeepingLayers<'_> {
    fn drop(&mut self) {
        for tag in project_images(self.0) {
            let _ = Command::new("docker").args(["rmi", "--no-prune", &tag]).output();
        }
    }
}

#[test]
fn the_issue_14_project_runs_on_an_image_without_conda_and_reuses_its_environment() {
    let wheels = service_env("docker")["XP_TEST_WORKBENCH_WHEELS"].clone();
    let project = docker_project(&[&format!("wheelhouse={wheels}")]);
    let _untag = UntagKeepingLayers(&project);
    project
        .write("aml_config/conda_dependencies.yml", WORKBENCH_CONDA)
        .write("azureml/extra/__init__.py", "WHO = 'the project'\n")
        .write("train.py", TRAIN);

    let first = project.xp(["submit", "-c", "d", "train.py"]).run();
    let first = first.success();
    assert!(
        first.stdout.contains("pandas 2.2.3 joblib 1.4.2 python 3.11"),
        "the packages of the wheelhouse: {}",
        first.stdout
    );
    assert!(
        first.stdout.contains("azureml.extra from the project"),
        "{}",
        first.stdout
    );
    let said = &first.stderr;
    for line in [
        "aml_config/conda_dependencies.yml: the base image has no conda, so pip installs its conda packages, by their PyPI names: scikit-learn, pandas",
        "aml_config/conda_dependencies.yml: pip installs its pip list: joblib",
        "note: aml_config/conda_dependencies.yml asks for python=3.5.2, and the base image's /usr/bin/python3 is Python 3.11.2",
        "pip installs from the wheelhouse",
        "Building environment image xp-env/proj-",
    ] {
        assert!(said.contains(line), "the run says {line:?}:\n{said}");
    }
    let record = project.last_record();
    assert_eq!(record["status"], "Completed", "{record}");
    assert_eq!(
        record["metrics"]["Accuracy"], 1.0,
        "azureml.logging reached the history"
    );
    let run_id = record["run_id"].as_str().unwrap().to_owned();
    let log = project.xp(["history", "logs", &run_id]).run().success().stdout;
    assert!(
        log.contains("pip installs its conda packages, by their PyPI names: scikit-learn, pandas"),
        "the run's log says what was installed how:\n{log}"
    );

    let second = project.xp(["submit", "-c", "d", "train.py"]).run().success();
    assert!(
        second.stdout.contains("azureml.extra from the project"),
        "{}",
        second.stdout
    );
    assert!(
        second.stderr.contains("is up to date (cached): nothing to build"),
        "{}",
        second.stderr
    );
    assert!(!second.stderr.contains("Building"), "{}", second.stderr);
    assert!(
        second.stderr.contains("pip installs its conda packages"),
        "every run's log says how its environment was made: {}",
        second.stderr
    );
    assert_eq!(project_images(&project).len(), 1, "one environment image");
}

#[test]
fn conda_names_and_pins_reach_pip_and_what_pip_cannot_install_is_named() {
    let project = docker_project(&["wheelhouse=house"]);
    // conda's `pytorch=0.4` is pip's `torch==0.4.*`: a wheel named torch 0.4.1 satisfies it.
    make_wheel(
        &project.path("house"),
        "torch",
        "0.4.1",
        "VALUE = 'torch from the wheelhouse'\n",
    );
    let config = project.read("aml_config/d.runconfig").replace(
        "CondaDependenciesFile: \"aml_config/conda_dependencies.yml\"",
        "CondaDependenciesFile: null",
    );
    assert!(config.contains("CondaDependenciesFile: null"), "{config}");
    project
        .write("aml_config/d.runconfig", &config)
        .write(
            "aml_config/conda_dependencies.yml",
            "dependencies:\n  - python=3\n  - pytorch=0.4\n  - cudatoolkit=9.0\n",
        )
        .write("use.py", "import torch\nprint(torch.VALUE)\n");

    let run = project.xp(["submit", "-c", "d", "use.py"]).run().success();
    assert_eq!(run.stdout.trim(), "torch from the wheelhouse");
    assert!(
        run.stderr.contains("by their PyPI names: pytorch=0.4 as torch==0.4.*"),
        "a null CondaDependenciesFile is Workbench's default file: {}",
        run.stderr
    );
    assert!(run.stderr.contains("not installed: cudatoolkit=9.0"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("asks for python"),
        "python=3 matches: {}",
        run.stderr
    );

    project.write(
        "aml_config/conda_dependencies.yml",
        "dependencies:\n  - pytorch=0.4\n  - xp-no-such-package\n",
    );
    let failed = project.xp(["submit", "-c", "d", "use.py"]).run().error_mentions(&[
        "pip could not install `xp-no-such-package` (a conda package of aml_config/conda_dependencies.yml, installed with pip as `xp-no-such-package`)",
        "No matching distribution found for xp-no-such-package",
    ]);
    assert!(
        !failed.stderr.contains("`pytorch"),
        "only what failed is named: {}",
        failed.stderr
    );
    let record = project.last_record();
    assert_eq!(record["status"], "Failed");
    assert!(
        record["error"].as_str().unwrap().contains("`xp-no-such-package`"),
        "{record}"
    );
    assert_eq!(project_images(&project).len(), 1, "the failed build tagged nothing");

    project.write(
        "aml_config/conda_dependencies.yml",
        "dependencies:\n  - numpy=1.11.1|1.11.3\n",
    );
    project.xp(["submit", "-c", "d", "use.py"]).run().error_mentions(&[
        "aml_config/conda_dependencies.yml",
        "`numpy=1.11.1|1.11.3`",
        "pip:",
    ]);

    // The user manages the environment: nothing is installed, the base image runs as it is.
    project
        .xp([
            "computetarget",
            "attach",
            "docker",
            "--name",
            "mine",
            "--base-image",
            &python_image(),
            "--set",
            "userManagedEnvironment=true",
        ])
        .run()
        .success();
    project.write("plain.py", "print('as it is')\n");
    let mine = project
        .xp(["submit", "-c", "d", "-t", "mine", "plain.py"])
        .run()
        .success();
    assert_eq!(mine.stdout.trim(), "as it is");
    assert!(
        mine.stderr
            .contains("userManagedEnvironment is true in aml_config/mine.compute"),
        "{}",
        mine.stderr
    );
    assert_eq!(project_images(&project).len(), 1, "nothing was built for it");
    project.xp(["experiment", "clean", "-c", "d"]).run().success();
}
