//! Conda package specs (conda's match specifications, as environment files write them) turned
//! into pip requirements, for targets that build environments without conda.
//!
//! - `name=1.2` (conda: 1.2 or any 1.2.x) becomes `name==1.2.*`; `name==1.2` stays exact;
//!   `name>=1.2,<2`, `name!=1.3`, `name~=1.2` pass through; `name 1.2` (a space) is exact.
//! - A build string (`name=1.2=py36_0`) and a channel (`conda-forge::name`) have no pip
//!   equivalent: they are dropped, with a note.
//! - The few packages PyPI names differently are renamed by [`RENAMED`]; the libraries conda
//!   provides that are no Python packages ([`NOT_PYTHON_PACKAGES`]) are skipped, with a note.
//! - What pip cannot express (`1.2|1.3`, `name[version=...]`) is an error naming the entry.

use std::fmt;

/// Conda packages that PyPI publishes under another name: `(conda name, PyPI name)`.
///
/// Conda-forge and Anaconda name a few Python packages after their upstream project or add a
/// `py-` prefix; these are the ones Workbench-era projects list. OpenCV maps to the headless
/// build: scripts on a target have no display, and slim images lack the GUI libraries
/// `opencv-python` loads.
pub const RENAMED: &[(&str, &str)] = &[
    ("pytorch", "torch"),
    ("pytorch-cpu", "torch"),
    ("pytorch-gpu", "torch"),
    ("py-xgboost", "xgboost"),
    ("py-xgboost-cpu", "xgboost"),
    ("py-xgboost-gpu", "xgboost"),
    ("tensorflow-gpu", "tensorflow"),
    ("keras-gpu", "keras"),
    ("py-opencv", "opencv-python-headless"),
    ("opencv", "opencv-python-headless"),
    ("pytables", "tables"),
    ("msgpack-python", "msgpack"),
    ("python-graphviz", "graphviz"),
    ("matplotlib-base", "matplotlib"),
];

/// Why a rename needs more words than "named X on PyPI".
const RENAME_NOTES: &[(&str, &str)] = &[(
    "tensorflow-gpu",
    "PyPI's tensorflow-gpu is retired: tensorflow has the GPU support since 2.1",
)];

/// Conda packages that are libraries, not Python packages: conda supplies them to the
/// packages it installs, pip wheels bring their own. Skipped, with a note.
pub const NOT_PYTHON_PACKAGES: &[&str] = &[
    "blas",
    "ca-certificates",
    "cudatoolkit",
    "cudnn",
    "libgcc",
    "libgcc-ng",
    "libopenblas",
    "libstdcxx-ng",
    "nccl",
    "nomkl",
    "openblas",
    "openssl",
    "vc",
    "vs2015_runtime",
];

/// A conda entry that cannot become a pip requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CondaSpecError {
    /// The entry as the conda file writes it.
    pub spec: String,
    /// What is wrong, and what to write instead.
    pub problem: String,
}

impl fmt::Display for CondaSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conda package `{}` {}", self.spec, self.problem)
    }
}

impl std::error::Error for CondaSpecError {}

/// A conda entry, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CondaSpec {
    /// The entry as the conda file writes it (trimmed).
    pub entry: String,
    /// `conda-forge` of `conda-forge::numpy`.
    pub channel: Option<String>,
    pub name: String,
    /// The version constraint as conda writes it: `=1.2` (fuzzy), `==1.2`, `>=1.2,<2`, or a
    /// bare `1.2` (after a space: exact).
    pub version: Option<String>,
    /// The build string (`py36_0`).
    pub build: Option<String>,
}

/// What pip is given for a conda entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CondaPackage {
    /// Installed with pip as `requirement`; `notes` say what was changed on the way.
    Pip { requirement: String, notes: Vec<String> },
    /// Not installed, for the reason given.
    Skipped { reason: String },
}

const OPERATOR_CHARS: &[char] = &['=', '<', '>', '!', '~'];

fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Lower case, `_` and `.` as `-`: how PyPI compares names (and how conda names are written).
pub fn normalise_name(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

impl CondaSpec {
    /// Reads a conda entry (`numpy`, `numpy=1.11`, `numpy >=1.11,<2`, `conda-forge::numpy=1.11=py36_0`).
    pub fn parse(entry: &str) -> Result<CondaSpec, CondaSpecError> {
        let fail = |problem: &str| CondaSpecError {
            spec: entry.to_owned(),
            problem: problem.to_owned(),
        };
        let text = entry.trim();
        if text.is_empty() {
            return Err(fail("is empty; expected a package name such as `scikit-learn`"));
        }
        if text.contains('[') {
            return Err(fail(
                "uses conda's bracket syntax, which xp does not convert for pip; write it as `name>=1.2` or move it to the `pip:` list",
            ));
        }
        let (channel, rest) = match text.rsplit_once("::") {
            Some((channel, rest)) => (Some(channel.trim().to_owned()), rest.trim()),
            None => (None, text),
        };
        let (name, version, build) = if rest.contains(char::is_whitespace) {
            // `name version [build]`; an operator may stand apart: `name >= 1.2`.
            let mut parts: Vec<String> = rest.split_whitespace().map(str::to_owned).collect();
            if parts.len() >= 3 && parts[1].chars().all(|c| OPERATOR_CHARS.contains(&c)) {
                let operator = parts.remove(1);
                parts[1] = format!("{operator}{}", parts[1]);
            }
            if parts.len() > 3 {
                return Err(fail("has more parts than `name version build`"));
            }
            let mut parts = parts.into_iter();
            (parts.next().unwrap_or_default(), parts.next(), parts.next())
        } else {
            match rest.find(OPERATOR_CHARS) {
                None => (rest.to_owned(), None, None),
                Some(at) => {
                    let (name, constraint) = rest.split_at(at);
                    let single_equals = constraint.starts_with('=') && !constraint.starts_with("==");
                    if single_equals {
                        // `=version` or `=version=build`.
                        let mut parts = constraint[1..].splitn(2, '=');
                        let version = parts.next().unwrap_or_default();
                        let build = parts.next().map(str::to_owned);
                        (name.to_owned(), Some(format!("={version}")), build)
                    } else {
                        (name.to_owned(), Some(constraint.to_owned()), None)
                    }
                }
            }
        };
        if !is_name(&name) {
            return Err(fail(
                "does not start with a package name (letters, digits, `-`, `_`, `.`)",
            ));
        }
        if let Some(build) = &build {
            if build.is_empty() || build.contains(OPERATOR_CHARS) {
                return Err(fail("has a build string pip cannot read"));
            }
        }
        Ok(CondaSpec {
            entry: text.to_owned(),
            channel: channel.filter(|c| !c.is_empty()),
            name,
            version: version.filter(|v| !v.is_empty()),
            build,
        })
    }

    /// The version constraint as pip writes it (`==1.2.*`, `>=1.2,<2`), or `None` for any version.
    pub fn pip_specifier(&self) -> Result<Option<String>, CondaSpecError> {
        let Some(version) = self.version.as_deref() else {
            return Ok(None);
        };
        let fail = |problem: String| CondaSpecError {
            spec: self.to_string(),
            problem,
        };
        if version.contains('|') {
            return Err(fail(format!(
                "asks for one version or another (`|`), which pip cannot express; move it to the `pip:` list as a pip requirement, e.g. `{}>=1.1,<1.3`",
                self.name
            )));
        }
        if let Some(fuzzy) = version.strip_prefix('=').filter(|v| !v.starts_with('=')) {
            // conda's `=1.2` is 1.2 or any 1.2.x.
            if fuzzy.contains(OPERATOR_CHARS) || fuzzy.contains(',') {
                return Err(fail(format!("has a version pip cannot read: `{fuzzy}`")));
            }
            return Ok(prefix_match(fuzzy));
        }
        let mut parts = Vec::new();
        for part in version.split(',').map(str::trim) {
            let spec = if part.starts_with(OPERATOR_CHARS) {
                part.to_owned()
            } else if part.ends_with('*') {
                match prefix_match(part) {
                    Some(spec) => spec,
                    None => continue,
                }
            } else {
                format!("=={part}")
            };
            if spec.starts_with('=') && !spec.starts_with("==") {
                return Err(fail(format!("has a version pip cannot read: `{part}`")));
            }
            parts.push(spec);
        }
        Ok((!parts.is_empty()).then(|| parts.join(",")))
    }

    /// The pip requirement for this entry, or why it is not installed.
    pub fn to_pip(&self) -> Result<CondaPackage, CondaSpecError> {
        let key = normalise_name(&self.name);
        if key == "python" || key == "pip" {
            return Ok(CondaPackage::Skipped {
                reason: if key == "python" {
                    "the target's interpreter runs the script".to_owned()
                } else {
                    "the target's own pip installs the packages".to_owned()
                },
            });
        }
        if NOT_PYTHON_PACKAGES.iter().any(|skip| normalise_name(skip) == key) {
            return Ok(CondaPackage::Skipped {
                reason: "a library conda supplies, not a Python package: pip wheels bring their own".to_owned(),
            });
        }
        let mut notes = Vec::new();
        let name = match RENAMED.iter().find(|(conda, _)| *conda == key) {
            Some((conda, pypi)) => {
                let why = RENAME_NOTES
                    .iter()
                    .find(|(name, _)| name == conda)
                    .map(|(_, why)| format!(" ({why})"))
                    .unwrap_or_default();
                notes.push(format!("conda's {conda} is {pypi} on PyPI{why}"));
                (*pypi).to_owned()
            }
            None => self.name.clone(),
        };
        if let Some(channel) = &self.channel {
            notes.push(format!("pip ignores the conda channel {channel} of `{self}`"));
        }
        if let Some(build) = &self.build {
            notes.push(format!("pip ignores the conda build string {build} of `{self}`"));
        }
        let requirement = format!("{name}{}", self.pip_specifier()?.unwrap_or_default());
        Ok(CondaPackage::Pip { requirement, notes })
    }
}

impl fmt::Display for CondaSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.entry)
    }
}

/// `1.2` -> `==1.2.*`, `1.2.*` and `1.2*` -> `==1.2.*`; `*` -> any version.
fn prefix_match(version: &str) -> Option<String> {
    let stem = version.trim_end_matches('*').trim_end_matches('.');
    (!stem.is_empty()).then(|| format!("=={stem}.*"))
}

/// Converts one conda entry of a conda file.
pub fn conda_to_pip(entry: &str) -> Result<CondaPackage, CondaSpecError> {
    CondaSpec::parse(entry)?.to_pip()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pip(entry: &str) -> String {
        match conda_to_pip(entry).unwrap() {
            CondaPackage::Pip { requirement, .. } => requirement,
            skipped => panic!("{entry} was skipped: {skipped:?}"),
        }
    }

    fn notes(entry: &str) -> Vec<String> {
        match conda_to_pip(entry).unwrap() {
            CondaPackage::Pip { notes, .. } => notes,
            skipped => panic!("{entry} was skipped: {skipped:?}"),
        }
    }

    #[test]
    fn names_stay_and_pins_become_pip_pins() {
        assert_eq!(pip("scikit-learn"), "scikit-learn");
        assert_eq!(pip("  pandas "), "pandas");
        assert_eq!(
            pip("scikit-learn=0.18.1"),
            "scikit-learn==0.18.1.*",
            "conda's = is a prefix"
        );
        assert_eq!(pip("numpy=1.11"), "numpy==1.11.*");
        assert_eq!(pip("numpy=1.11.*"), "numpy==1.11.*");
        assert_eq!(pip("numpy=1.1*"), "numpy==1.1.*");
        assert_eq!(pip("numpy=*"), "numpy");
        assert_eq!(pip("numpy==1.11.3"), "numpy==1.11.3", "== stays exact");
        assert_eq!(pip("numpy>=1.11"), "numpy>=1.11");
        assert_eq!(pip("numpy>=1.8,<2"), "numpy>=1.8,<2");
        assert_eq!(pip("numpy!=1.9"), "numpy!=1.9");
        assert_eq!(pip("numpy~=1.9"), "numpy~=1.9");
        assert_eq!(
            pip("numpy 1.11"),
            "numpy==1.11",
            "a bare version after a space is exact"
        );
        assert_eq!(pip("numpy 1.11*"), "numpy==1.11.*");
        assert_eq!(pip("numpy >=1.11"), "numpy>=1.11");
        assert_eq!(pip("numpy >= 1.11"), "numpy>=1.11");
        assert_eq!(pip("numpy 1.11.3 py36_0"), "numpy==1.11.3");
        assert_eq!(pip("ruamel.yaml"), "ruamel.yaml");
    }

    #[test]
    fn channels_and_build_strings_are_dropped_with_a_note() {
        assert_eq!(pip("conda-forge::numpy=1.11=py36_0"), "numpy==1.11.*");
        let said = notes("conda-forge::numpy=1.11=py36_0");
        assert!(said.iter().any(|n| n.contains("channel conda-forge")), "{said:?}");
        assert!(said.iter().any(|n| n.contains("build string py36_0")), "{said:?}");
        assert!(notes("numpy=1.11").is_empty());
    }

    #[test]
    fn the_renaming_table() {
        assert_eq!(pip("pytorch"), "torch");
        assert_eq!(pip("pytorch=0.4.1"), "torch==0.4.1.*");
        assert_eq!(pip("pytorch-cpu"), "torch");
        assert_eq!(pip("py-xgboost=0.90"), "xgboost==0.90.*");
        assert_eq!(pip("py-xgboost-gpu"), "xgboost");
        assert_eq!(pip("tensorflow-gpu=1.4"), "tensorflow==1.4.*");
        assert!(notes("tensorflow-gpu")[0].contains("GPU support since 2.1"));
        assert_eq!(pip("keras-gpu"), "keras");
        assert_eq!(pip("py-opencv"), "opencv-python-headless");
        assert_eq!(pip("opencv>=3.4"), "opencv-python-headless>=3.4");
        assert_eq!(pip("pytables"), "tables");
        assert_eq!(pip("msgpack-python"), "msgpack");
        assert_eq!(pip("python-graphviz"), "graphviz");
        assert_eq!(pip("matplotlib-base=3.1"), "matplotlib==3.1.*");
        assert_eq!(pip("PyTorch"), "torch", "conda names compare like PyPI's");
        assert!(notes("pytorch")[0].contains("pytorch is torch on PyPI"));
        // Every entry of the table is reachable, and lower case as conda writes names.
        for (conda, pypi) in RENAMED {
            assert_eq!(*conda, normalise_name(conda));
            assert_eq!(pip(conda), *pypi);
        }
    }

    #[test]
    fn the_interpreter_pip_and_libraries_are_skipped() {
        for entry in ["python=3.5.2", "python", "pip", "pip=9.0.1", "cudatoolkit=9.0"] {
            let converted = conda_to_pip(entry).unwrap();
            assert!(
                matches!(converted, CondaPackage::Skipped { .. }),
                "{entry}: {converted:?}"
            );
        }
        // MKL has wheels on PyPI: pip installs it.
        assert_eq!(pip("mkl"), "mkl");
        for library in NOT_PYTHON_PACKAGES {
            assert!(matches!(conda_to_pip(library).unwrap(), CondaPackage::Skipped { .. }));
        }
    }

    #[test]
    fn what_pip_cannot_express_is_an_error_naming_the_entry() {
        let error = conda_to_pip("numpy=1.11.1|1.11.3").unwrap_err();
        assert_eq!(error.spec, "numpy=1.11.1|1.11.3");
        assert!(error.to_string().contains("`numpy=1.11.1|1.11.3`"), "{error}");
        assert!(error.to_string().contains("pip:"), "{error}");
        assert!(conda_to_pip("numpy[version='>=1.11']").is_err());
        assert!(conda_to_pip("").is_err());
        assert!(conda_to_pip("=1.2").is_err());
        assert!(conda_to_pip("numpy 1 2 3").is_err());
        assert!(conda_to_pip("num$py").is_err());
    }

    #[test]
    fn specs_come_apart() {
        let spec = CondaSpec::parse(" conda-forge::numpy=1.11=py36_0 ").unwrap();
        assert_eq!(spec.entry, "conda-forge::numpy=1.11=py36_0");
        assert_eq!(spec.channel.as_deref(), Some("conda-forge"));
        assert_eq!(spec.name, "numpy");
        assert_eq!(spec.version.as_deref(), Some("=1.11"));
        assert_eq!(spec.build.as_deref(), Some("py36_0"));
        let spec = CondaSpec::parse("numpy 1.11.3 py36_0").unwrap();
        assert_eq!(
            (spec.version.as_deref(), spec.build.as_deref()),
            (Some("1.11.3"), Some("py36_0"))
        );
        assert_eq!(spec.to_string(), "numpy 1.11.3 py36_0");
    }
}
