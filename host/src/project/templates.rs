//! The files `xp init` writes: a Workbench-style `aml_config/`, with comments.

pub const LOCAL_COMPUTE: &str = r#"# The local compute target: runs the script on this machine.
# type: the target type; a plugin that declares it runs the script.
type: "local"
# The interpreter to run scripts with (a name on PATH or a full path).
pythonLocation: "python3"
# A folder shared by every run of this project on this target; scripts find it in
# the AZUREML_NATIVE_SHARE_DIRECTORY environment variable.
nativeSharedDirectory: "~/.azureml/share/"
"#;

pub const DOCKER_COMPUTE: &str = r#"# A docker compute target: runs the script in a fresh container on the local Docker
# engine, in an environment image built from conda_dependencies.yml (cached by content).
type: "docker"
# The image to build on: one your Docker engine has (`docker images`), with python3.
baseDockerImage: "python:3.11-slim"
# Mount the run's private snapshot into the container (false: copy it in and out).
sharedVolumes: true
# Give the container every GPU (needs the NVIDIA container runtime).
nvidiaDocker: false
# Shared by every run of this project; mounted at /azureml-share in the container.
nativeSharedDirectory: "~/.azureml/share/"
"#;

/// A run configuration for `target`.
pub fn runconfig(target: &str, prepare_environment: bool) -> String {
    format!(
        r#"# How to run: `xp experiment submit -c {target} SCRIPT [ARGS...]`.
# The interpreter's arguments; $file is replaced by the script. Arguments given on
# the command line are appended.
ArgumentVector:
  - "$file"
# The compute target (aml_config/{target}.compute).
Target: "{target}"
# Environment variables set for the script.
EnvironmentVariables:
  "EXAMPLE_ENV_VAR": "Example Value"
# Python or PySpark.
Framework: "Python"
# Dependencies of the script, for targets that build an environment.
CondaDependenciesFile: "aml_config/conda_dependencies.yml"
SparkDependenciesFile: "aml_config/spark_dependencies.yml"
# Build the target's environment as part of the submit when it is not ready.
PrepareEnvironment: {prepare_environment}
# Record the run in the run history.
TrackedRun: true
"#
    )
}

pub const CONDA_DEPENDENCIES: &str = r#"# The script's dependencies, as a conda environment file. Targets that build an
# environment (docker, remotedocker, cluster, venv) install these: conda packages with
# conda where the target has it, otherwise with pip under their PyPI names. The local and
# remote targets use the interpreter as it is.
name: project_environment
dependencies:
  - python=3
  # Packages from pip, local wheels included (paths relative to the project):
  - pip:
    # - scikit-learn
"#;

pub const SPARK_DEPENDENCIES: &str = r#"# Spark settings and packages for PySpark runs.
configuration:
  # "spark.app.name": "xp"
repositories:
  # - "https://example.org/maven"
packages:
  # - group: "com.example"
  #   artifact: "library"
  #   version: "1.0.0"
"#;

/// The line `xp init` adds to `.gitignore`: xp's folder holds run history, logs and artifacts.
pub const GITIGNORE_ENTRY: &str = ".xp/";
