//! The files `xp init` writes: a Workbench-style `aml_config/`, with comments.

/// Run configuration `name` for `target`, with the values of `overrides` (keys of the run
/// configuration a plugin asks for: `Framework`, `PrepareEnvironment`, ...) in place of the
/// defaults. Keys the run configuration does not have are left out.
pub fn runconfig(name: &str, target: &str, overrides: &xp_plugin_api::Settings) -> String {
    let value = |key: &str, default: &str| -> String {
        overrides
            .get(key)
            .filter(|value| value.is_string() || value.is_boolean())
            // JSON strings and booleans are YAML too.
            .map(|value| value.to_string())
            .unwrap_or_else(|| default.to_owned())
    };
    format!(
        r#"# How to run: `xp experiment submit -c {name} SCRIPT [ARGS...]`.
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
Framework: {framework}
# Dependencies of the script, for targets that build an environment.
CondaDependenciesFile: "aml_config/conda_dependencies.yml"
SparkDependenciesFile: "aml_config/spark_dependencies.yml"
# Build the target's environment as part of the submit when it is not ready.
PrepareEnvironment: {prepare}
# Record the run in the run history.
TrackedRun: true
"#,
        framework = value("Framework", "\"Python\""),
        prepare = value("PrepareEnvironment", "false"),
    )
}

pub const CONDA_DEPENDENCIES: &str = r#"# The script's dependencies, as a conda environment file. Targets that build an
# environment install these: conda packages with conda where the target has it, otherwise
# with pip under their PyPI names. Targets that use an interpreter as it is (userManaged-
# Environment) install nothing; `xp computetarget settings TYPE` says what a type does.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugins_runconfig_keys_replace_the_defaults() {
        let plain = runconfig("t", "t", &xp_plugin_api::Settings::new());
        assert!(plain.contains("Framework: \"Python\"\n") && plain.contains("PrepareEnvironment: false\n"));
        let overrides = serde_json::json!({"Framework": "PySpark", "PrepareEnvironment": true, "Other": 1});
        let text = runconfig("t", "t", overrides.as_object().unwrap());
        assert!(text.contains("Framework: \"PySpark\"\n"), "{text}");
        assert!(text.contains("PrepareEnvironment: true\n"), "{text}");
        assert!(!text.contains("Other"), "{text}");
    }
}
