use std::path::PathBuf;

use super::yaml::YamlError;

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn at_line(line: &Option<usize>) -> String {
    line.map(|line| format!(":{line}")).unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("{} is not inside an xp project: no aml_config/ folder there or in any parent.\nRun `xp init` to make it one, or pass --project DIR.", start.display())]
    NotAProject { start: PathBuf },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{} does not exist", path.display())]
    Missing { path: PathBuf },

    #[error("{0}")]
    Yaml(#[from] YamlError),

    #[error("no run configuration named '{name}': {} does not exist.\nAvailable: {}. Create one with `xp runconfiguration create {name} --target TARGET`.", path.display(), list(available))]
    MissingRunConfig {
        name: String,
        path: PathBuf,
        available: Vec<String>,
    },

    #[error("no compute target named '{name}': {} does not exist.\nAvailable: {}. Attach one with `xp computetarget attach TYPE --name {name}`.", path.display(), list(available))]
    MissingTarget {
        name: String,
        path: PathBuf,
        available: Vec<String>,
    },

    #[error("{}{}: `{key}` {problem}", path.display(), at_line(line))]
    BadValue {
        path: PathBuf,
        line: Option<usize>,
        key: String,
        problem: String,
    },

    #[error("{}{}: unknown key `{key}`; expected one of: {}", path.display(), at_line(line), known.join(", "))]
    UnknownKey {
        path: PathBuf,
        line: Option<usize>,
        key: String,
        known: Vec<String>,
    },

    #[error("'{name}' is not a valid {what} name: use letters, digits, '-', '_' and '.', not starting with '.'")]
    BadName { name: String, what: String },
}
