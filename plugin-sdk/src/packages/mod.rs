//! What a target's environment installs from the project's conda file, decided in one place
//! for every target that builds environments (xp's docker, remotedocker and cluster targets,
//! and third-party ones such as the venv example).
//!
//! Workbench projects list most packages as conda packages. Where the target has conda, conda
//! installs them as written. Where it has none, pip installs them under the same names, with
//! conda's pins converted and the few names PyPI spells differently renamed ([`conda`]); the
//! `pip:` list follows, as written. A `python=X.Y` entry is checked against the target's
//! interpreter ([`PackagePlan::python_note`]): a mismatch is a note, not an error, since a
//! target without conda cannot install another Python. [`PackagePlan::describe`] says in the
//! run's log what is installed how, and [`PackagePlan::pip_failure`] names the entries pip
//! could not install.
//!
//! Two target settings concern every such target: `userManagedEnvironment: true` installs
//! nothing (the user manages the environment, as Workbench's setting meant), and `wheelhouse`
//! ([`Wheelhouse`]) installs from a folder of wheels on this machine, offline.
//!
//! ```
//! use xp_plugin_api::Dependencies;
//! use xp_plugin_sdk::packages::PackagePlan;
//!
//! let dependencies = Dependencies {
//!     conda: Some("aml_config/conda_dependencies.yml".into()),
//!     conda_packages: vec!["python=3.5.2".into(), "scikit-learn=0.18.1".into(), "pytorch".into()],
//!     pip_packages: vec!["joblib".into()],
//!     ..Dependencies::default()
//! };
//! let plan = PackagePlan::new(&dependencies, std::path::Path::new("."), false).unwrap();
//! let pip: Vec<&str> = plan.pip.iter().map(|r| r.pip.as_str()).collect();
//! assert_eq!(pip, ["scikit-learn==0.18.1.*", "torch", "joblib"]);
//! assert!(plan.python_note("3.11.2", "the image's python3").unwrap().contains("python=3.5.2"));
//! ```

pub mod conda;
mod failure;
pub mod python;
mod wheelhouse;

use std::fmt;
use std::path::{Path, PathBuf};

use xp_plugin_api::{Dependencies, Target};

pub use conda::{conda_to_pip, CondaPackage, CondaSpec, CondaSpecError, NOT_PYTHON_PACKAGES, RENAMED};
pub use wheelhouse::{Wheelhouse, WheelhouseFile, WHEELHOUSE_SETTING};

/// The `.compute` setting by which the user says they manage the environment themselves.
pub const USER_MANAGED_SETTING: &str = "userManagedEnvironment";

/// Whether the target's `userManagedEnvironment` is true: then nothing is installed.
pub fn user_managed(target: &Target) -> bool {
    target.setting_bool(USER_MANAGED_SETTING).unwrap_or(false)
}

/// For targets that run the interpreter as it is and install nothing (local, remote): a note
/// when the target says `userManagedEnvironment: false`, which they cannot honour.
pub fn unmanaged_note(target: &Target) -> Option<String> {
    (target.setting_bool(USER_MANAGED_SETTING) == Some(false)).then(|| {
        format!(
            "note: {USER_MANAGED_SETTING} is false in aml_config/{}.compute, but a {} target installs nothing: it runs the interpreter as it is (docker, remotedocker and cluster targets install the conda file)",
            target.name, target.target_type
        )
    })
}

/// Which list of the conda file an entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A conda package, installed with pip for want of conda.
    Conda,
    /// The `pip:` list.
    Pip,
}

/// One thing pip installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// What pip is given: a requirement (`torch==0.4.*`), a URL, or a path as the file writes it.
    pub pip: String,
    /// The entry as the conda file writes it (`pytorch=0.4`).
    pub entry: String,
    pub origin: Origin,
    /// Its position (from 1) in the conda file's `pip:` list, or among its conda entries.
    pub line: usize,
    /// The project's file the entry names (a wheel or an sdist), when it names one.
    pub local_file: Option<PathBuf>,
}

impl Requirement {
    /// How a message names it: "`joblib` (line 1 of the pip list of FILE)" or "`pytorch`
    /// (a conda package of FILE, installed with pip as `torch`)".
    pub fn describe(&self, file: &str) -> String {
        match self.origin {
            Origin::Pip => format!("`{}` (line {} of the pip list of {file})", self.entry, self.line),
            Origin::Conda => format!(
                "`{}` (a conda package of {file}, installed with pip as `{}`)",
                self.entry, self.pip
            ),
        }
    }
}

/// A conda entry that cannot be installed with pip, with the file that lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageError {
    pub file: String,
    pub source: CondaSpecError,
}

impl fmt::Display for PackageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.source)
    }
}

impl std::error::Error for PackageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// What an environment installs, in order: conda's packages (only where the target has
/// conda), then with pip the conda packages (where it has none) and the `pip:` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackagePlan {
    /// The conda file as messages name it (`aml_config/conda_dependencies.yml`).
    pub file: String,
    /// Conda channels, for conda.
    pub channels: Vec<String>,
    /// Specs conda installs, as written (empty unless the target has conda).
    pub conda: Vec<String>,
    /// What pip installs, in one call.
    pub pip: Vec<Requirement>,
    /// The `python` entry (`python=3.5.2`), checked against the interpreter.
    pub python: Option<String>,
    /// Conda entries not installed, and why.
    pub skipped: Vec<(String, String)>,
    /// What changed on the way to pip (renames, dropped channels and build strings).
    pub notes: Vec<String>,
}

/// A pip-list entry that names a file of the project (a wheel or an sdist) rather than a
/// package on an index: a path (`./wheels/x.whl`, `../x.tar.gz`, `~/x.whl`) or a file name
/// with a distribution's extension, that exists relative to `project_dir`.
pub fn local_file(entry: &str, project_dir: &Path) -> Option<PathBuf> {
    let entry = entry.trim();
    if entry.starts_with('-') || entry.contains("://") {
        return None;
    }
    let looks_local = entry.starts_with("./")
        || entry.starts_with("../")
        || entry.starts_with('/')
        || entry.starts_with('~')
        || [".whl", ".tar.gz", ".tar.bz2", ".zip"]
            .iter()
            .any(|ext| entry.ends_with(ext));
    if !looks_local {
        return None;
    }
    let path = project_dir.join(crate::resolve::expand_home(entry));
    path.is_file().then_some(path)
}

fn is_interpreter_or_pip(entry: &str) -> bool {
    CondaSpec::parse(entry)
        .map(|spec| matches!(conda::normalise_name(&spec.name).as_str(), "python" | "pip"))
        .unwrap_or(false)
}

impl PackagePlan {
    /// The plan for `dependencies` (paths relative to `project_dir`), on a target that has
    /// conda (`with_conda`) or not. Fails on a conda entry pip cannot express.
    pub fn new(dependencies: &Dependencies, project_dir: &Path, with_conda: bool) -> Result<PackagePlan, PackageError> {
        let file = dependencies
            .conda
            .as_ref()
            .map(|path| path.display().to_string())
            .unwrap_or_else(|| "the conda dependencies file".to_owned());
        let mut plan = PackagePlan {
            file: file.clone(),
            channels: dependencies.channels.clone(),
            ..PackagePlan::default()
        };
        for (index, entry) in dependencies.conda_packages.iter().enumerate() {
            let entry = entry.trim();
            let spec = CondaSpec::parse(entry);
            if spec
                .as_ref()
                .is_ok_and(|spec| conda::normalise_name(&spec.name) == "python")
            {
                plan.python = Some(entry.to_owned());
            }
            if with_conda {
                // Conda reads its own syntax. The target's Python and pip stay: conda installs
                // the packages into them.
                if !is_interpreter_or_pip(entry) {
                    plan.conda.push(entry.to_owned());
                }
                continue;
            }
            let spec = spec.map_err(|source| PackageError {
                file: file.clone(),
                source,
            })?;
            match spec.to_pip().map_err(|source| PackageError {
                file: file.clone(),
                source,
            })? {
                CondaPackage::Pip { requirement, notes } => {
                    plan.notes.extend(notes);
                    plan.pip.push(Requirement {
                        pip: requirement,
                        entry: entry.to_owned(),
                        origin: Origin::Conda,
                        line: index + 1,
                        local_file: None,
                    });
                }
                CondaPackage::Skipped { reason } => plan.skipped.push((entry.to_owned(), reason)),
            }
        }
        for (index, entry) in dependencies.pip_packages.iter().enumerate() {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            plan.pip.push(Requirement {
                pip: entry.to_owned(),
                entry: entry.to_owned(),
                origin: Origin::Pip,
                line: index + 1,
                local_file: local_file(entry, project_dir),
            });
        }
        Ok(plan)
    }

    /// True when neither conda nor pip has anything to install.
    pub fn is_empty(&self) -> bool {
        self.conda.is_empty() && self.pip.is_empty()
    }

    /// Lines for the run's log saying what is installed how. `without_conda` says why pip
    /// installs the conda packages ("the base image has no conda").
    pub fn describe(&self, without_conda: &str) -> Vec<String> {
        let mut lines = Vec::new();
        if !self.conda.is_empty() {
            let channels = if self.channels.is_empty() {
                String::new()
            } else {
                format!(" (channels {})", self.channels.join(", "))
            };
            lines.push(format!(
                "{}: conda installs {}{channels}",
                self.file,
                self.conda.join(", ")
            ));
        }
        let from_conda: Vec<String> = self
            .pip
            .iter()
            .filter(|r| r.origin == Origin::Conda)
            .map(|r| {
                if r.pip == r.entry {
                    r.pip.clone()
                } else {
                    format!("{} as {}", r.entry, r.pip)
                }
            })
            .collect();
        if !from_conda.is_empty() {
            lines.push(format!(
                "{}: {without_conda}, so pip installs its conda packages, by their PyPI names: {}",
                self.file,
                from_conda.join(", ")
            ));
        }
        let pip_list: Vec<&str> = self
            .pip
            .iter()
            .filter(|r| r.origin == Origin::Pip)
            .map(|r| r.entry.as_str())
            .collect();
        if !pip_list.is_empty() {
            lines.push(format!(
                "{}: pip installs its pip list: {}",
                self.file,
                pip_list.join(", ")
            ));
        }
        for (entry, reason) in &self.skipped {
            if !is_interpreter_or_pip(entry) {
                lines.push(format!("{}: not installed: {entry} ({reason})", self.file));
            }
        }
        lines.extend(self.notes.iter().map(|note| format!("{}: {note}", self.file)));
        lines
    }

    /// A note when the conda file's `python` entry does not match the interpreter the target
    /// has (`interpreter_version` `3.11.2`; `interpreter` names it: "the image's python3").
    pub fn python_note(&self, interpreter_version: &str, interpreter: &str) -> Option<String> {
        let entry = self.python.as_deref()?;
        (python::interpreter_satisfies(entry, interpreter_version) == Some(false)).then(|| {
            format!(
                "note: {} asks for {entry}, and {interpreter} is Python {interpreter_version}: the script runs with that, and the packages are installed for it",
                self.file
            )
        })
    }

    /// The entries pip's output says it could not install.
    pub fn failing(&self, pip_output: &[String]) -> Vec<&Requirement> {
        failure::failing(&self.pip, pip_output)
    }

    /// "pip could not install `X` (line 1 of the pip list of FILE), ..." naming the entries
    /// pip's output blames, or `None` when it blames none of them.
    pub fn pip_failure(&self, pip_output: &[String]) -> Option<String> {
        let failing = self.failing(pip_output);
        (!failing.is_empty()).then(|| {
            let named: Vec<String> = failing.iter().map(|r| r.describe(&self.file)).collect();
            format!("pip could not install {}", named.join(", "))
        })
    }
}

#[cfg(test)]
mod tests;
