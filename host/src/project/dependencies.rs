//! `conda_dependencies.yml` and `spark_dependencies.yml`, read once by the host so that
//! plugins get their contents as data.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;
use xp_plugin_api::Dependencies;

use super::{yaml, ProjectError};

#[derive(Deserialize, Default)]
struct CondaFile {
    #[serde(default)]
    channels: Option<Vec<String>>,
    #[serde(default)]
    dependencies: Option<Vec<Value>>,
    // `name`, `prefix` and anything else conda knows are not xp's business.
    #[serde(flatten)]
    _other: BTreeMap<String, Value>,
}

#[derive(Deserialize, Default)]
struct SparkFile {
    #[serde(default)]
    configuration: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    repositories: Option<Vec<String>>,
    #[serde(default)]
    packages: Option<Vec<SparkPackage>>,
    #[serde(flatten)]
    _other: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SparkPackage {
    group: String,
    artifact: String,
    version: Value,
}

fn read(path: &Path) -> Result<String, ProjectError> {
    std::fs::read_to_string(path).map_err(|source| ProjectError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// Fills `dependencies` with the contents of the files it names. `root` is the project.
pub fn read_contents(root: &Path, dependencies: &mut Dependencies) -> Result<(), ProjectError> {
    if let Some(relative) = &dependencies.conda {
        let path = root.join(relative);
        let text = read(&path)?;
        let file: CondaFile = if text.trim().is_empty() {
            CondaFile::default()
        } else {
            yaml::parse(&path, &text)?
        };
        dependencies.channels = file.channels.unwrap_or_default();
        for entry in file.dependencies.unwrap_or_default() {
            match entry {
                Value::String(spec) => dependencies.conda_packages.push(spec),
                Value::Number(number) => dependencies.conda_packages.push(number.to_string()),
                Value::Object(map) if map.contains_key("pip") => {
                    let pip = map.get("pip").cloned().unwrap_or(Value::Null);
                    match pip {
                        Value::Null => {}
                        Value::Array(items) => {
                            for item in items {
                                let spec = scalar_text(&item).ok_or_else(|| ProjectError::BadValue {
                                    path: path.clone(),
                                    line: yaml::line_of_key(&text, "dependencies"),
                                    key: "dependencies/pip".into(),
                                    problem: format!("has {item}; expected a package spec such as `scikit-learn==1.3`"),
                                })?;
                                dependencies.pip_packages.push(spec);
                            }
                        }
                        other => {
                            return Err(ProjectError::BadValue {
                                path: path.clone(),
                                line: yaml::line_of_key(&text, "dependencies"),
                                key: "dependencies/pip".into(),
                                problem: format!("is {other}; expected a list of pip package specs"),
                            })
                        }
                    }
                }
                other => {
                    return Err(ProjectError::BadValue {
                        path: path.clone(),
                        line: yaml::line_of_key(&text, "dependencies"),
                        key: "dependencies".into(),
                        problem: format!("has {other}; expected conda package specs and an optional `- pip:` list"),
                    })
                }
            }
        }
    }
    if let Some(relative) = &dependencies.spark {
        let path = root.join(relative);
        let text = read(&path)?;
        let file: SparkFile = if text.trim().is_empty() {
            SparkFile::default()
        } else {
            yaml::parse(&path, &text)?
        };
        for (key, value) in file.configuration.unwrap_or_default() {
            let text_value = scalar_text(&value).ok_or_else(|| ProjectError::BadValue {
                path: path.clone(),
                line: yaml::line_of_key(&text, "configuration"),
                key: format!("configuration/{key}"),
                problem: "is not a plain value; Spark settings are text, numbers or true/false".into(),
            })?;
            dependencies.spark_configuration.insert(key, text_value);
        }
        dependencies.spark_repositories = file.repositories.unwrap_or_default();
        for package in file.packages.unwrap_or_default() {
            let version = scalar_text(&package.version).unwrap_or_default();
            dependencies
                .spark_packages
                .push(format!("{}:{}:{}", package.group, package.artifact, version));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn reads_workbench_dependency_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("conda.yml"),
            "name: project_environment\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.5.2\n  - scikit-learn\n  - pip:\n    - ./wheels/tiny-0.1-py3-none-any.whl\n    - requests==2.31\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("spark.yml"),
            "configuration:\n  \"spark.executor.memory\": 2g\n  spark.executor.cores: 2\nrepositories:\n  - \"https://mmlspark.azureedge.net/maven\"\npackages:\n  - group: \"com.microsoft.ml.spark\"\n    artifact: \"mmlspark_2.11\"\n    version: \"0.9.9\"\n",
        )
        .unwrap();
        let mut deps = Dependencies {
            conda: Some(PathBuf::from("conda.yml")),
            spark: Some(PathBuf::from("spark.yml")),
            ..Dependencies::default()
        };
        read_contents(dir.path(), &mut deps).unwrap();
        assert_eq!(deps.conda_packages, vec!["python=3.5.2", "scikit-learn"]);
        assert_eq!(
            deps.pip_packages,
            vec!["./wheels/tiny-0.1-py3-none-any.whl", "requests==2.31"]
        );
        assert_eq!(deps.channels, vec!["conda-forge"]);
        assert_eq!(deps.spark_configuration["spark.executor.cores"], "2");
        assert_eq!(deps.spark_packages, vec!["com.microsoft.ml.spark:mmlspark_2.11:0.9.9"]);
    }

    #[test]
    fn a_broken_pip_list_names_the_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("conda.yml"), "dependencies:\n  - pip: scikit-learn\n").unwrap();
        let mut deps = Dependencies {
            conda: Some(PathBuf::from("conda.yml")),
            ..Dependencies::default()
        };
        let error = read_contents(dir.path(), &mut deps).unwrap_err().to_string();
        assert!(
            error.contains("conda.yml") && error.contains("dependencies/pip"),
            "{error}"
        );
    }
}
