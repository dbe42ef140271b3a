//! `<name>.compute`: where to run.

use std::path::{Path, PathBuf};

use xp_plugin_api::{Settings, Target};

use super::yaml;
use super::ProjectError;

#[derive(Debug, Clone)]
pub struct ComputeTarget {
    pub name: String,
    pub path: PathBuf,
    /// `type`, lower-cased and otherwise as written: a Workbench alias stays an alias, for a
    /// plugin that serves it to claim.
    pub target_type: String,
    /// Every key of the file, `type` included; unknown keys belong to the plugin.
    pub settings: Settings,
}

impl ComputeTarget {
    pub fn parse(name: &str, path: &Path, text: &str) -> Result<ComputeTarget, ProjectError> {
        let value = yaml::parse_value(path, text)?;
        let serde_json::Value::Object(settings) = value else {
            return Err(ProjectError::BadValue {
                path: path.to_path_buf(),
                line: Some(1),
                key: "(document)".to_owned(),
                problem: "is not a mapping; expected `key: value` lines such as `type: local`".to_owned(),
            });
        };
        let target_type = match settings.get("type") {
            Some(serde_json::Value::String(kind)) if !kind.trim().is_empty() => kind.trim().to_ascii_lowercase(),
            Some(_) => {
                return Err(ProjectError::BadValue {
                    path: path.to_path_buf(),
                    line: yaml::line_of_key(text, "type"),
                    key: "type".to_owned(),
                    problem: "must be the name of a target type, e.g. `type: local`".to_owned(),
                })
            }
            None => {
                return Err(ProjectError::BadValue {
                    path: path.to_path_buf(),
                    line: None,
                    key: "type".to_owned(),
                    problem: "is missing; every .compute file needs one, e.g. `type: local`".to_owned(),
                })
            }
        };
        Ok(ComputeTarget {
            name: name.to_owned(),
            path: path.to_path_buf(),
            target_type,
            settings,
        })
    }

    /// The target as plugins see it.
    pub fn to_plugin_target(&self) -> Target {
        Target {
            name: self.name.clone(),
            target_type: self.target_type.clone(),
            settings: self.settings.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_every_key_for_the_plugin() {
        let target = ComputeTarget::parse(
            "local",
            Path::new("local.compute"),
            "type: \"local\"\npythonLocation: \"python\"\nnativeSharedDirectory: \"~/.azureml/share/\"\ncustom: 3\n",
        )
        .unwrap();
        assert_eq!(target.target_type, "local");
        assert_eq!(target.settings["custom"], 3);
        assert_eq!(target.settings["pythonLocation"], "python");
    }

    #[test]
    fn a_missing_type_is_an_error_naming_the_key() {
        let error = ComputeTarget::parse("x", Path::new("x.compute"), "address: host\n").unwrap_err();
        assert!(error.to_string().contains("`type` is missing"), "{error}");
    }
}
