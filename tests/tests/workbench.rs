//! An Azure ML Workbench project runs unchanged: its aml_config/ as Workbench wrote it, and a
//! script that logs through `azureml.logging`.

use xp_tests::{service_env, TestProject};

const WORKBENCH_COMPUTE: &str = r#"# Defines the local compute target
type: "local"
# Path of the Python interpreter
pythonLocation: "python"
# Directory shared across runs of the project
nativeSharedDirectory: "~/.azureml/share/"
"#;

const WORKBENCH_RUNCONFIG: &str = r#"ArgumentVector:
  - "$file"
Target: "local"
EnvironmentVariables:
  "EXAMPLE_ENV_VAR": "Example Value"
Framework: "Python"
CondaDependenciesFile: "aml_config/conda_dependencies.yml"
SparkDependenciesFile: "aml_config/spark_dependencies.yml"
PrepareEnvironment: false
TrackedRun: true
UseSampling: true
DataSourceSubstitutions: {}
DataSourceSettings: {}
"#;

const WORKBENCH_CONDA: &str = r#"name: project_environment
dependencies:
  - python=3.5.2
  - scikit-learn
  - pip:
    - azureml-logging
"#;

const IRIS_LIKE: &str = r#"import os, sys
from azureml.logging import get_azureml_logger

run_logger = get_azureml_logger()
reg = float(sys.argv[1]) if len(sys.argv) > 1 else 0.01
run_logger.log("Regularization Rate", reg)
run_logger.log("Accuracy", 0.6792452830188679)
run_logger.log("Precision", [0.5, 0.75, 1.0])
share = os.environ["AZUREML_NATIVE_SHARE_DIRECTORY"]
marker = os.path.join(share, "seen.txt")
print("share exists:", os.path.isdir(share), "seen before:", os.path.exists(marker))
open(marker, "w").write("x")
print("EXAMPLE_ENV_VAR =", os.environ["EXAMPLE_ENV_VAR"])
"#;

#[test]
fn a_workbench_project_runs_unchanged() {
    let project = TestProject::empty();
    project
        .write("aml_config/local.compute", WORKBENCH_COMPUTE)
        .write("aml_config/local.runconfig", WORKBENCH_RUNCONFIG)
        .write("aml_config/conda_dependencies.yml", WORKBENCH_CONDA)
        .write(
            "aml_config/spark_dependencies.yml",
            "configuration: {}\nrepositories: []\npackages: []\n",
        )
        .write("iris_sklearn.py", IRIS_LIKE);

    let first = project
        .xp(["experiment", "submit", "-c", "local", "iris_sklearn.py", "0.05"])
        .run()
        .success();
    assert!(
        first.stdout.contains("share exists: True seen before: False"),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains("EXAMPLE_ENV_VAR = Example Value"),
        "{}",
        first.stdout
    );
    assert!(
        first.stderr.contains("ignoring")
            && first.stderr.contains("UseSampling")
            && first.stderr.contains("DataSourceSettings"),
        "keys xp cannot honour are reported: {}",
        first.stderr
    );

    let record = project.last_record();
    assert_eq!(record["status"], "Completed");
    assert_eq!(record["metrics"]["Regularization Rate"], 0.05);
    assert_eq!(record["metrics"]["Accuracy"], 0.6792452830188679);
    assert_eq!(record["metrics"]["Precision"], serde_json::json!([0.5, 0.75, 1.0]));

    let second = project.xp(["submit", "iris_sklearn.py"]).run().success();
    assert!(
        second.stdout.contains("seen before: True"),
        "the shared directory persists across runs: {}",
        second.stdout
    );
    assert!(
        project.home().join(".azureml/share/proj/seen.txt").is_file(),
        "the shared directory is nativeSharedDirectory/<project>"
    );
}

/// Workbench's local.compute names spark-submit (`sparkSubmitLocation`): a run configuration
/// with `Framework: PySpark` on the local target runs the script with it.
#[test]
fn pyspark_on_the_local_target_runs_with_spark_submit_location() {
    let spark = service_env("spark");
    let project = TestProject::empty();
    let compute = format!(
        "type: \"local\"\npythonLocation: \"python\"\nsparkSubmitLocation: \"{}\"\nnativeSharedDirectory: \"~/.azureml/share/\"\n",
        spark["XP_TEST_SPARK_SUBMIT"]
    );
    project
        .write("aml_config/local.compute", &compute)
        .write(
            "aml_config/local.runconfig",
            &WORKBENCH_RUNCONFIG.replace("Framework: \"Python\"", "Framework: \"PySpark\""),
        )
        .write("aml_config/conda_dependencies.yml", WORKBENCH_CONDA)
        .write(
            "aml_config/spark_dependencies.yml",
            "configuration:\n  \"spark.app.name\": \"xp-local-pyspark\"\nrepositories: []\npackages: []\n",
        )
        .write(
            "count.py",
            "from pyspark.sql import SparkSession\nfrom azureml.logging import get_azureml_logger\nspark = SparkSession.builder.master('local[1]').getOrCreate()\ntotal = spark.sparkContext.parallelize(range(10), 2).sum()\nget_azureml_logger().log('total', total)\nprint('total', total)\nspark.stop()\n",
        );
    let run = project.xp(["submit", "-c", "local", "count.py"]).run().success();
    assert!(run.stdout.contains("total 45"), "{}\n{}", run.stdout, run.stderr);
    let record = project.last_record();
    assert_eq!(record["status"], "Completed");
    assert_eq!(record["metrics"]["total"], 45);

    project.write(
        "aml_config/local.compute",
        &compute.replace(&spark["XP_TEST_SPARK_SUBMIT"], "/no/such/spark-submit"),
    );
    project
        .xp(["submit", "-c", "local", "count.py"])
        .run()
        .error_mentions(&["/no/such/spark-submit", "sparkSubmitLocation", "local.compute"]);
}
