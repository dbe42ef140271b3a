//! The environment recipe: which image a target's runs use, and how to build it.
//!
//! The image is the base image plus the project's dependencies, as the SDK's
//! [`PackagePlan`] decides them: conda installs the conda packages where the base image has
//! conda; without it pip installs them under their PyPI names, with the `pip:` list, in one
//! call. Its tag is a hash of everything that defines it — the base image's id, the Dockerfile
//! xp writes (which lists the packages), the bytes of every local wheel, the names and sizes
//! of the wheelhouse's files, and [`RECIPE_VERSION`] — so an unchanged project finds its image
//! and a changed file makes a new one. The engine tags an image only when its build succeeded,
//! so an interrupted build never leaves a tag a later run could take.

use std::path::Path;

use sha2::{Digest, Sha256};
use xp_plugin_api::{Dependencies, PluginFailure};
use xp_plugin_sdk::packages::{PackagePlan, Wheelhouse};

/// Bump when the Dockerfile xp writes changes meaning: every environment is rebuilt.
pub const RECIPE_VERSION: u32 = 2;

/// Where the wheelhouse's files and the pip list's local wheels go in the image.
const WHEELHOUSE_DIR: &str = "/tmp/xp-wheelhouse";
const WHEELS_DIR: &str = "/tmp/xp-wheels";

/// What a base image offers, found by running it once (cached by image id).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Probe {
    pub conda: Option<String>,
    pub python: Option<String>,
    /// The interpreter's version (`3.11.2`).
    pub python_version: Option<String>,
    pub pip: bool,
    pub spark_submit: Option<String>,
}

impl Probe {
    /// Bump when [`Probe::SCRIPT`] learns something new: cached probes are made again.
    pub const VERSION: u32 = 2;

    /// The shell script whose output [`Probe::parse`] reads.
    pub const SCRIPT: &'static str = "echo conda=$(command -v conda); py=$(command -v python3 || command -v python); echo python=$py; \
         [ -n \"$py\" ] && echo pyversion=$(\"$py\" -c 'import sys; print(\"%d.%d.%d\" % sys.version_info[:3])' 2>/dev/null); \
         echo spark=$(command -v spark-submit); (python3 -m pip --version || python -m pip --version) >/dev/null 2>&1 && echo pip=yes; true";

    pub fn parse(output: &str) -> Probe {
        let value = |key: &str| {
            output
                .lines()
                .find_map(|line| line.trim().strip_prefix(key))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Probe {
            conda: value("conda="),
            python: value("python="),
            python_version: value("pyversion="),
            pip: value("pip=").is_some(),
            spark_submit: value("spark="),
        }
    }

    pub fn to_line(&self) -> String {
        format!(
            "conda={}\npython={}\npyversion={}\nspark={}\n{}",
            self.conda.as_deref().unwrap_or(""),
            self.python.as_deref().unwrap_or(""),
            self.python_version.as_deref().unwrap_or(""),
            self.spark_submit.as_deref().unwrap_or(""),
            if self.pip { "pip=yes\n" } else { "" }
        )
    }
}

/// How to make a target's environment image.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub dockerfile: String,
    /// Files of the build context besides the Dockerfile: the pip list's local wheels.
    pub files: Vec<(String, Vec<u8>)>,
    /// The target's wheelhouse, whose files join the build context when the image is built.
    pub wheelhouse: Option<Wheelhouse>,
    /// What the image installs, and how.
    pub plan: PackagePlan,
    /// Hex digest of everything that defines the image.
    pub hash: String,
    /// True when there is nothing to install: runs use the base image as it is.
    pub nothing_to_install: bool,
}

impl Recipe {
    /// The build context: the Dockerfile, the local wheels and the wheelhouse's files, as a
    /// tar. The wheelhouse is read only now: computing the recipe on every run stays cheap.
    pub fn build_context(&self) -> Result<Vec<u8>, PluginFailure> {
        let mut wheelhouse = Vec::new();
        for file in self.wheelhouse.iter().flat_map(|w| &w.files) {
            let bytes = std::fs::read(&file.path)
                .map_err(|e| PluginFailure::new(format!("reading {} (wheelhouse): {e}", file.path.display())))?;
            wheelhouse.push((format!("wheelhouse/{}", file.name), bytes));
        }
        let files: Vec<(&str, &[u8])> = std::iter::once(("Dockerfile", self.dockerfile.as_bytes()))
            .chain(
                wheelhouse
                    .iter()
                    .chain(&self.files)
                    .map(|(name, bytes)| (name.as_str(), bytes.as_slice())),
            )
            .collect();
        xp_plugin_sdk::archive::tar(&[], &files)
            .map_err(|e| PluginFailure::new(format!("packing the build context: {e}")))
    }

    /// The image tag for a project: `xp-env/<project>-<folder hash>:<hash>`. The folder's hash
    /// keeps two projects of the same name apart, so cleaning one never removes the other's.
    pub fn tag(&self, project_name: &str, project_dir: &std::path::Path) -> String {
        let name: String = project_name
            .to_ascii_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let name = name.trim_matches(|c: char| !c.is_ascii_alphanumeric());
        let name = if name.is_empty() { "project" } else { name };
        format!(
            "xp-env/{name}-{}:{}",
            xp_plugin_sdk::project::folder_tag(project_dir),
            &self.hash[..16]
        )
    }
}

fn quoted(items: &[String]) -> String {
    serde_json::to_string(items).expect("strings serialise")
}

/// Builds the recipe for `base_image_id` with the project's dependencies, installing from
/// `wheelhouse` alone when the target names one.
pub fn recipe(
    base_image_id: &str,
    probe: &Probe,
    dependencies: &Dependencies,
    project_dir: &Path,
    wheelhouse: Option<Wheelhouse>,
) -> Result<Recipe, String> {
    let plan = PackagePlan::new(dependencies, project_dir, probe.conda.is_some())
        .map_err(|e| format!("{e}; the base image has no conda, so its conda packages are installed with pip"))?;
    let python = probe
        .python
        .clone()
        .ok_or("the base image has no python3 or python on PATH")?;
    let mut files = Vec::new();
    let mut pip_arguments = Vec::new();
    for requirement in &plan.pip {
        match &requirement.local_file {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
                let name = path.file_name().expect("a file").to_string_lossy().into_owned();
                pip_arguments.push(format!("{WHEELS_DIR}/{name}"));
                files.push((format!("wheels/{name}"), bytes));
            }
            None => pip_arguments.push(requirement.pip.clone()),
        }
    }
    if !pip_arguments.is_empty() && !probe.pip {
        let names: Vec<&str> = plan.pip.iter().map(|r| r.entry.as_str()).collect();
        return Err(format!(
            "{} has {} package(s) to install with pip ({}) but the base image has no pip; use a base image with pip (python3-pip)",
            plan.file,
            pip_arguments.len(),
            names.join(", ")
        ));
    }
    let nothing_to_install = plan.is_empty();

    let mut dockerfile = format!("FROM {base_image_id}\nLABEL xp.recipe.version=\"{RECIPE_VERSION}\"\n");
    dockerfile.push_str("ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_BREAK_SYSTEM_PACKAGES=1\n");
    if !plan.conda.is_empty() {
        let mut command = vec![
            probe
                .conda
                .clone()
                .expect("the plan has conda packages only with conda"),
            "install".into(),
            "-y".into(),
        ];
        for channel in &plan.channels {
            command.push("-c".into());
            command.push(channel.clone());
        }
        command.extend(plan.conda.iter().cloned());
        dockerfile.push_str(&format!("RUN {}\n", quoted(&command)));
    }
    let wheelhouse = wheelhouse.filter(|_| !pip_arguments.is_empty());
    if wheelhouse.as_ref().is_some_and(|w| !w.files.is_empty()) {
        // Before the project's own wheels: it changes less often, so its layer is reused.
        dockerfile.push_str(&format!("COPY wheelhouse/ {WHEELHOUSE_DIR}/\n"));
    }
    if !files.is_empty() {
        dockerfile.push_str(&format!("COPY wheels/ {WHEELS_DIR}/\n"));
    }
    if !pip_arguments.is_empty() {
        let mut command = vec![
            python,
            "-m".into(),
            "pip".into(),
            "install".into(),
            "--no-input".into(),
            "--progress-bar".into(),
            "off".into(),
        ];
        if wheelhouse.is_some() {
            command.extend(Wheelhouse::pip_options(WHEELHOUSE_DIR));
        }
        command.extend(pip_arguments);
        dockerfile.push_str(&format!("RUN {}\n", quoted(&command)));
    }

    let mut hasher = Sha256::new();
    hasher.update(RECIPE_VERSION.to_le_bytes());
    hasher.update(base_image_id.as_bytes());
    hasher.update(dockerfile.as_bytes());
    for (name, bytes) in &files {
        hasher.update(name.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    if let Some(wheelhouse) = &wheelhouse {
        hasher.update(wheelhouse.identity().as_bytes());
    }
    let hash = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Recipe {
        dockerfile,
        files,
        wheelhouse,
        plan,
        hash,
        nothing_to_install,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use xp_plugin_api::Target;

    fn probe() -> Probe {
        Probe {
            conda: None,
            python: Some("/usr/bin/python3".into()),
            python_version: Some("3.11.2".into()),
            pip: true,
            spark_submit: None,
        }
    }

    fn deps(conda: &[&str], pip: &[&str]) -> Dependencies {
        Dependencies {
            conda_packages: conda.iter().map(|s| s.to_string()).collect(),
            pip_packages: pip.iter().map(|s| s.to_string()).collect(),
            ..Dependencies::default()
        }
    }

    #[test]
    fn the_hash_follows_what_defines_the_image() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("wheels")).unwrap();
        std::fs::write(dir.path().join("wheels/t-0.1-py3-none-any.whl"), "v1").unwrap();
        let d = deps(&["python=3.11"], &["./wheels/t-0.1-py3-none-any.whl", "requests==2.31"]);
        let a = recipe("sha256:base", &probe(), &d, dir.path(), None).unwrap();
        let again = recipe("sha256:base", &probe(), &d, dir.path(), None).unwrap();
        assert_eq!(a.hash, again.hash, "nothing changed, same image");
        assert!(
            a.dockerfile
                .contains("\"/tmp/xp-wheels/t-0.1-py3-none-any.whl\",\"requests==2.31\""),
            "{}",
            a.dockerfile
        );
        assert!(!a.nothing_to_install);

        std::fs::write(dir.path().join("wheels/t-0.1-py3-none-any.whl"), "v2").unwrap();
        let wheel_changed = recipe("sha256:base", &probe(), &d, dir.path(), None).unwrap();
        assert_ne!(a.hash, wheel_changed.hash, "a changed wheel makes a new image");
        let base_changed = recipe("sha256:other", &probe(), &d, dir.path(), None).unwrap();
        assert_ne!(
            wheel_changed.hash, base_changed.hash,
            "a new base image makes a new image"
        );
        let tag = a.tag("My Project!", Path::new("/work/My Project!"));
        assert!(tag.starts_with("xp-env/my-project-"), "{tag}");
        assert_ne!(
            tag,
            a.tag("My Project!", Path::new("/elsewhere/My Project!")),
            "same name, other folder"
        );
    }

    #[test]
    fn without_conda_pip_installs_the_conda_packages_in_the_same_call() {
        let recipe = recipe(
            "b",
            &probe(),
            &deps(
                &["python=3.5.2", "scikit-learn=0.18.1", "pytorch", "pandas"],
                &["joblib"],
            ),
            Path::new("/"),
            None,
        )
        .unwrap();
        assert!(
            recipe.dockerfile.contains(
                "RUN [\"/usr/bin/python3\",\"-m\",\"pip\",\"install\",\"--no-input\",\"--progress-bar\",\"off\",\"scikit-learn==0.18.1.*\",\"torch\",\"pandas\",\"joblib\"]"
            ),
            "{}",
            recipe.dockerfile
        );
        assert!(!recipe.dockerfile.contains("conda"), "{}", recipe.dockerfile);
        let only_python =
            super::recipe("b", &probe(), &deps(&["python=3.5", "pip"], &[]), Path::new("/"), None).unwrap();
        assert!(only_python.nothing_to_install);
        let error = super::recipe("b", &probe(), &deps(&["numpy=1.1|1.2"], &[]), Path::new("/"), None).unwrap_err();
        assert!(
            error.contains("`numpy=1.1|1.2`") && error.contains("no conda"),
            "{error}"
        );
    }

    #[test]
    fn with_conda_conda_installs_the_conda_packages() {
        let with_conda = Probe {
            conda: Some("/opt/conda/bin/conda".into()),
            ..probe()
        };
        let recipe = recipe(
            "b",
            &with_conda,
            &Dependencies {
                channels: vec!["conda-forge".into()],
                ..deps(&["python=3.5.2", "scikit-learn"], &["joblib"])
            },
            Path::new("/"),
            None,
        )
        .unwrap();
        assert!(
            recipe
                .dockerfile
                .contains("RUN [\"/opt/conda/bin/conda\",\"install\",\"-y\",\"-c\",\"conda-forge\",\"scikit-learn\"]"),
            "{}",
            recipe.dockerfile
        );
        assert!(
            recipe.dockerfile.contains("\"off\",\"joblib\"]"),
            "{}",
            recipe.dockerfile
        );
    }

    #[test]
    fn a_wheelhouse_installs_offline_and_its_files_define_the_image() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("house")).unwrap();
        std::fs::write(dir.path().join("house/pandas-2.2.3-cp311-none-any.whl"), "v1").unwrap();
        let target = Target::new(
            "d",
            "docker",
            serde_json::json!({"wheelhouse": "house"}).as_object().unwrap().clone(),
        );
        let house = || Wheelhouse::from_target(&target, dir.path()).unwrap();
        let d = deps(&["pandas"], &[]);
        let a = recipe("b", &probe(), &d, dir.path(), house()).unwrap();
        assert!(
            a.dockerfile.contains("COPY wheelhouse/ /tmp/xp-wheelhouse/\n"),
            "{}",
            a.dockerfile
        );
        assert!(
            a.dockerfile
                .contains("\"--no-index\",\"--find-links\",\"/tmp/xp-wheelhouse\",\"pandas\""),
            "{}",
            a.dockerfile
        );
        let context = a.build_context().unwrap();
        let mut names = Vec::new();
        let mut archive = tar::Archive::new(context.as_slice());
        for entry in archive.entries().unwrap() {
            names.push(entry.unwrap().path().unwrap().display().to_string());
        }
        assert_eq!(names, ["Dockerfile", "wheelhouse/pandas-2.2.3-cp311-none-any.whl"]);

        std::fs::write(dir.path().join("house/joblib-1.4.2-py3-none-any.whl"), "new").unwrap();
        let more = recipe("b", &probe(), &d, dir.path(), house()).unwrap();
        assert_ne!(a.hash, more.hash, "a file added to the wheelhouse makes a new image");
        assert_eq!(more.dockerfile, a.dockerfile);
        let nothing = recipe("b", &probe(), &deps(&[], &[]), dir.path(), house()).unwrap();
        assert!(nothing.nothing_to_install && nothing.wheelhouse.is_none());
    }

    #[test]
    fn probes_read_back() {
        let p = Probe::parse(
            "conda=\npython=/usr/bin/python3\npyversion=3.11.2\nspark=/opt/spark/bin/spark-submit\npip=yes\n",
        );
        assert_eq!(p.python.as_deref(), Some("/usr/bin/python3"));
        assert_eq!(p.python_version.as_deref(), Some("3.11.2"));
        assert_eq!(p.conda, None);
        assert!(p.pip);
        assert_eq!(Probe::parse(&p.to_line()), p);
    }

    #[test]
    fn the_probe_script_runs_in_a_shell() {
        let output = std::process::Command::new("sh")
            .args(["-c", Probe::SCRIPT])
            .output()
            .unwrap();
        let probe = Probe::parse(&String::from_utf8_lossy(&output.stdout));
        let version = probe.python_version.expect("this machine has python3");
        assert!(version.starts_with("3."), "{version}");
    }
}
