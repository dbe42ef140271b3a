//! The environment recipe: which image a target's runs use, and how to build it.
//!
//! The image is the base image plus the project's dependencies. Its tag is a hash of
//! everything that defines it — the base image's id, the Dockerfile xp writes (which lists the
//! packages), the bytes of every local wheel, and [`RECIPE_VERSION`] — so an unchanged project
//! finds its image and a changed file makes a new one. The engine tags an image only when
//! its build succeeded, so an interrupted build never leaves a tag a later run could take.

use std::path::Path;

use sha2::{Digest, Sha256};
use xp_plugin_api::{Dependencies, PluginFailure};

/// Bump when the Dockerfile xp writes changes meaning: every environment is rebuilt.
pub const RECIPE_VERSION: u32 = 1;

/// What a base image offers, found by running it once (cached by image id).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Probe {
    pub conda: Option<String>,
    pub python: Option<String>,
    pub pip: bool,
    pub spark_submit: Option<String>,
}

impl Probe {
    /// The shell script whose output [`Probe::parse`] reads.
    pub const SCRIPT: &'static str = "echo conda=$(command -v conda); echo python=$(command -v python3 || command -v python); \
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
            pip: value("pip=").is_some(),
            spark_submit: value("spark="),
        }
    }

    pub fn to_line(&self) -> String {
        format!(
            "conda={}\npython={}\nspark={}\n{}",
            self.conda.as_deref().unwrap_or(""),
            self.python.as_deref().unwrap_or(""),
            self.spark_submit.as_deref().unwrap_or(""),
            if self.pip { "pip=yes\n" } else { "" }
        )
    }
}

/// How to make a target's environment image.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub dockerfile: String,
    /// Files of the build context besides the Dockerfile: local wheels.
    pub files: Vec<(String, Vec<u8>)>,
    /// Hex digest of everything that defines the image.
    pub hash: String,
    /// True when there is nothing to install: runs use the base image as it is.
    pub nothing_to_install: bool,
}

impl Recipe {
    /// The build context: the Dockerfile and the local wheels, as a tar.
    pub fn build_context(&self) -> Result<Vec<u8>, PluginFailure> {
        let files: Vec<(&str, &[u8])> = std::iter::once(("Dockerfile", self.dockerfile.as_bytes()))
            .chain(self.files.iter().map(|(name, bytes)| (name.as_str(), bytes.as_slice())))
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
        let folder = Sha256::digest(project_dir.to_string_lossy().as_bytes());
        format!(
            "xp-env/{name}-{:02x}{:02x}{:02x}{:02x}:{}",
            folder[0],
            folder[1],
            folder[2],
            folder[3],
            &self.hash[..16]
        )
    }
}

/// Conda specs that every Workbench file has and an image without conda satisfies anyway.
fn is_interpreter_spec(spec: &str) -> bool {
    let name = spec.split(['=', '<', '>', '!', ' ']).next().unwrap_or("").trim();
    name == "python" || name == "pip"
}

/// A pip entry that names a file of the project (a wheel or an sdist) rather than a package.
fn local_file<'a>(entry: &'a str, project_dir: &Path) -> Option<(&'a str, std::path::PathBuf)> {
    let looks_local = entry.starts_with("./")
        || entry.starts_with("../")
        || entry.starts_with('/')
        || entry.ends_with(".whl")
        || entry.ends_with(".tar.gz")
        || entry.ends_with(".zip");
    if !looks_local {
        return None;
    }
    let path = project_dir.join(entry);
    path.is_file().then_some((entry, path))
}

fn quoted(items: &[String]) -> String {
    serde_json::to_string(items).expect("strings serialise")
}

/// Builds the recipe for `base_image_id` with the project's dependencies.
pub fn recipe(
    base_image_id: &str,
    probe: &Probe,
    dependencies: &Dependencies,
    project_dir: &Path,
) -> Result<Recipe, String> {
    let conda_packages: Vec<String> = dependencies
        .conda_packages
        .iter()
        .filter(|spec| !is_interpreter_spec(spec))
        .cloned()
        .collect();
    if !conda_packages.is_empty() && probe.conda.is_none() {
        return Err(format!(
            "{} lists conda packages ({}) but the base image has no conda; move them to the `pip:` list or use a base image with conda",
            dependencies.conda.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "the conda file".into()),
            conda_packages.join(", ")
        ));
    }
    let python = probe
        .python
        .clone()
        .ok_or("the base image has no python3 or python on PATH")?;
    let mut files = Vec::new();
    let mut pip_arguments = Vec::new();
    for entry in &dependencies.pip_packages {
        match local_file(entry, project_dir) {
            Some((_, path)) => {
                let bytes = std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
                let name = path.file_name().expect("a file").to_string_lossy().into_owned();
                pip_arguments.push(format!("/tmp/xp-wheels/{name}"));
                files.push((format!("wheels/{name}"), bytes));
            }
            None => pip_arguments.push(entry.clone()),
        }
    }
    if !pip_arguments.is_empty() && !probe.pip {
        return Err(format!(
            "the conda file's pip: list has {} package(s) but the base image has no pip; use a base image with pip (python3-pip)",
            pip_arguments.len()
        ));
    }
    let nothing_to_install = conda_packages.is_empty() && pip_arguments.is_empty();

    let mut dockerfile = format!("FROM {base_image_id}\nLABEL xp.recipe.version=\"{RECIPE_VERSION}\"\n");
    dockerfile.push_str("ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_BREAK_SYSTEM_PACKAGES=1\n");
    if !conda_packages.is_empty() {
        let mut command = vec![
            probe.conda.clone().expect("checked above"),
            "install".into(),
            "-y".into(),
        ];
        for channel in &dependencies.channels {
            command.push("-c".into());
            command.push(channel.clone());
        }
        command.extend(conda_packages.iter().cloned());
        dockerfile.push_str(&format!("RUN {}\n", quoted(&command)));
    }
    if !files.is_empty() {
        dockerfile.push_str("COPY wheels/ /tmp/xp-wheels/\n");
    }
    if !pip_arguments.is_empty() {
        let mut command = vec![python, "-m".into(), "pip".into(), "install".into()];
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
    let hash = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Recipe {
        dockerfile,
        files,
        hash,
        nothing_to_install,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe() -> Probe {
        Probe {
            conda: None,
            python: Some("/usr/bin/python3".into()),
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
        let a = recipe("sha256:base", &probe(), &d, dir.path()).unwrap();
        let again = recipe("sha256:base", &probe(), &d, dir.path()).unwrap();
        assert_eq!(a.hash, again.hash, "nothing changed, same image");
        assert!(
            a.dockerfile
                .contains("\"/tmp/xp-wheels/t-0.1-py3-none-any.whl\",\"requests==2.31\""),
            "{}",
            a.dockerfile
        );
        assert!(!a.nothing_to_install);

        std::fs::write(dir.path().join("wheels/t-0.1-py3-none-any.whl"), "v2").unwrap();
        let wheel_changed = recipe("sha256:base", &probe(), &d, dir.path()).unwrap();
        assert_ne!(a.hash, wheel_changed.hash, "a changed wheel makes a new image");
        let base_changed = recipe("sha256:other", &probe(), &d, dir.path()).unwrap();
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
    fn conda_packages_without_conda_are_named() {
        let error = recipe(
            "b",
            &probe(),
            &deps(&["python=3.5", "scikit-learn", "numpy"], &[]),
            Path::new("/"),
        )
        .unwrap_err();
        assert!(
            error.contains("scikit-learn, numpy") && error.contains("no conda"),
            "{error}"
        );
        let only_python = recipe("b", &probe(), &deps(&["python=3.5", "pip"], &[]), Path::new("/")).unwrap();
        assert!(only_python.nothing_to_install);
    }

    #[test]
    fn probes_read_back() {
        let p = Probe::parse("conda=\npython=/usr/bin/python3\nspark=/opt/spark/bin/spark-submit\npip=yes\n");
        assert_eq!(p.python.as_deref(), Some("/usr/bin/python3"));
        assert_eq!(p.conda, None);
        assert!(p.pip);
        assert_eq!(Probe::parse(&p.to_line()), p);
    }
}
