//! `<name>.runconfig`: how to run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::yaml;
use super::ProjectError;

/// The keys xp reads, as Workbench wrote them.
pub const KNOWN_KEYS: [&str; 8] = [
    "ArgumentVector",
    "Target",
    "EnvironmentVariables",
    "Framework",
    "CondaDependenciesFile",
    "SparkDependenciesFile",
    "PrepareEnvironment",
    "TrackedRun",
];

/// Workbench keys xp cannot honour: reported as ignored, never silently dropped.
fn is_ignored_key(key: &str) -> bool {
    key == "UseSampling" || key.starts_with("DataSource")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum Framework {
    #[serde(alias = "python", alias = "PYTHON")]
    Python,
    #[serde(alias = "pyspark", alias = "PYSPARK", alias = "Pyspark")]
    PySpark,
}

impl Framework {
    pub fn as_str(self) -> &'static str {
        match self {
            Framework::Python => "Python",
            Framework::PySpark => "PySpark",
        }
    }
}

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub name: String,
    pub path: PathBuf,
    pub argument_vector: Vec<String>,
    /// The compute target's name; `None` when the file names none.
    pub target: Option<String>,
    pub environment_variables: BTreeMap<String, String>,
    pub framework: Framework,
    /// Relative to the project root. `None` (the key is absent or `null`): Workbench's default,
    /// `aml_config/conda_dependencies.yml`, when it exists.
    pub conda_dependencies_file: Option<String>,
    pub spark_dependencies_file: Option<String>,
    pub prepare_environment: bool,
    pub tracked_run: bool,
    /// Keys present in the file that xp cannot honour.
    pub ignored_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawRunConfig {
    argument_vector: Option<Vec<Value>>,
    target: Option<String>,
    environment_variables: Option<BTreeMap<String, Value>>,
    framework: Option<Framework>,
    conda_dependencies_file: Option<String>,
    spark_dependencies_file: Option<String>,
    prepare_environment: Option<bool>,
    tracked_run: Option<bool>,
    #[serde(flatten)]
    other: BTreeMap<String, Value>,
}

impl RunConfig {
    pub fn parse(name: &str, path: &Path, text: &str) -> Result<RunConfig, ProjectError> {
        let raw: RawRunConfig = if text.trim().is_empty() {
            yaml::parse(path, "{}")?
        } else {
            yaml::parse(path, text)?
        };
        let bad = |key: &str, problem: String| ProjectError::BadValue {
            path: path.to_path_buf(),
            line: yaml::line_of_key(text, key),
            key: key.to_owned(),
            problem,
        };

        let mut ignored_keys = Vec::new();
        for key in raw.other.keys() {
            if is_ignored_key(key) {
                ignored_keys.push(key.clone());
            } else {
                return Err(ProjectError::UnknownKey {
                    path: path.to_path_buf(),
                    line: yaml::line_of_key(text, key),
                    key: key.clone(),
                    known: KNOWN_KEYS.iter().map(|k| (*k).to_owned()).collect(),
                });
            }
        }

        let mut environment_variables = BTreeMap::new();
        for (key, value) in raw.environment_variables.unwrap_or_default() {
            let text = match value {
                Value::String(text) => text,
                Value::Number(number) => number.to_string(),
                Value::Bool(flag) => flag.to_string(),
                Value::Null => String::new(),
                _ => {
                    return Err(bad(
                        "EnvironmentVariables",
                        format!(
                            "has a list or mapping for `{key}`; expected a plain value (text, number or true/false)"
                        ),
                    ))
                }
            };
            environment_variables.insert(key, text);
        }

        // Workbench's own example lists a number (`- 234`): plain values are arguments as written.
        let mut argument_vector = Vec::new();
        for value in raw.argument_vector.unwrap_or_else(|| vec![Value::from("$file")]) {
            argument_vector.push(match value {
                Value::String(text) => text,
                Value::Number(number) => number.to_string(),
                Value::Bool(flag) => flag.to_string(),
                other => {
                    return Err(bad(
                        "ArgumentVector",
                        format!(
                        "has {other}; expected a list of arguments (text or numbers), e.g. [\"$file\", \"--lr\", 0.1]"
                    ),
                    ))
                }
            });
        }
        let non_empty = |key: &str, value: Option<String>| -> Result<Option<String>, ProjectError> {
            match value {
                Some(text) if text.trim().is_empty() => Err(bad(
                    key,
                    "is empty; expected a file path relative to the project, or remove the key".to_owned(),
                )),
                other => Ok(other),
            }
        };

        Ok(RunConfig {
            name: name.to_owned(),
            path: path.to_path_buf(),
            argument_vector,
            target: raw.target.filter(|target| !target.is_empty()),
            environment_variables,
            framework: raw.framework.unwrap_or(Framework::Python),
            conda_dependencies_file: non_empty("CondaDependenciesFile", raw.conda_dependencies_file)?,
            spark_dependencies_file: non_empty("SparkDependenciesFile", raw.spark_dependencies_file)?,
            prepare_environment: raw.prepare_environment.unwrap_or(false),
            tracked_run: raw.tracked_run.unwrap_or(true),
            ignored_keys,
        })
    }

    /// The argument vector of a run: `ArgumentVector` with `$file` replaced by the script, then
    /// the command line's arguments. A vector without `$file` gets the script in front.
    pub fn arguments_for(&self, script: &str, extra: &[String]) -> Vec<String> {
        let mut arguments: Vec<String> = self
            .argument_vector
            .iter()
            .map(|argument| argument.replace("$file", script))
            .collect();
        if !self.argument_vector.iter().any(|argument| argument.contains("$file")) {
            arguments.insert(0, script.to_owned());
        }
        arguments.extend(extra.iter().cloned());
        arguments
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RunConfig, ProjectError> {
        RunConfig::parse("local", Path::new("aml_config/local.runconfig"), text)
    }

    #[test]
    fn reads_a_workbench_runconfig() {
        let config = parse(
            "ArgumentVector:\n  - \"$file\"\nTarget: \"local\"\nEnvironmentVariables:\n  \"EXAMPLE_ENV_VAR\": \"Example Value\"\n  COUNT: 3\nFramework: \"Python\"\nCondaDependenciesFile: \"aml_config/conda_dependencies.yml\"\nSparkDependenciesFile: \"aml_config/spark_dependencies.yml\"\nPrepareEnvironment: true\nTrackedRun: true\nUseSampling: true\nDataSourceSettings: {}\n",
        )
        .unwrap();
        assert_eq!(config.target.as_deref(), Some("local"));
        assert_eq!(config.environment_variables["COUNT"], "3");
        assert_eq!(config.ignored_keys, vec!["DataSourceSettings", "UseSampling"]);
        assert_eq!(
            config.arguments_for("train.py", &["--lr".into(), "0.1".into()]),
            vec!["train.py", "--lr", "0.1"]
        );
    }

    #[test]
    fn arguments_may_be_numbers_as_in_workbench_s_example() {
        let config = parse("ArgumentVector:\n  - \"myscript.py\"\n  - 234\n  - \"-v\"\n  - 0.5\n  - true\n").unwrap();
        assert_eq!(config.argument_vector, ["myscript.py", "234", "-v", "0.5", "true"]);
        let error = parse("ArgumentVector:\n  - [1, 2]\n").unwrap_err().to_string();
        assert!(
            error.contains("ArgumentVector") && error.contains("expected a list of arguments"),
            "{error}"
        );
    }

    #[test]
    fn unknown_keys_name_the_file_line_and_choices() {
        let error = parse("Target: local\nFramwork: Python\n").unwrap_err().to_string();
        assert!(error.contains("aml_config/local.runconfig:2"), "{error}");
        assert!(error.contains("Framwork"), "{error}");
        assert!(error.contains("Framework"), "{error}");
    }

    #[test]
    fn a_bad_framework_names_the_choices() {
        let error = parse("Framework: Jython\n").unwrap_err().to_string();
        assert!(error.contains("Jython") && error.contains("PySpark"), "{error}");
    }
}
