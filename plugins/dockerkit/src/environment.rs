//! Finding or building a target's environment image.

use std::path::Path;

use xp_plugin_api::{Dependencies, Events, PluginFailure, PrepareRequest, RunRequest, RunStatus, Target};
use xp_plugin_sdk::packages::{user_managed, PackagePlan, Wheelhouse, USER_MANAGED_SETTING};
use xp_plugin_sdk::spark;

use crate::engine::Engine;
use crate::recipe::{recipe, Probe, Recipe};

/// What finding or building an environment needs from a Docker engine: the local one through
/// the Engine API, or one on a remote host through its CLI over SSH.
pub trait Images {
    /// Where the engine is, for messages.
    fn description(&self) -> String;
    /// The id of an image, or `None` when the engine does not have it.
    fn image_id(&self, image: &str) -> Result<Option<String>, PluginFailure>;
    /// What an image offers, found by running it ([`probe`] caches it by image id).
    fn probe(&self, image_id: &str) -> Result<Probe, PluginFailure>;
    /// Builds `recipe` as `tag`, labelled with the project, showing progress.
    fn build(&self, recipe: &Recipe, tag: &str, project_dir: &Path, events: &Events<'_>) -> Result<(), PluginFailure>;
}

impl Images for Engine {
    fn description(&self) -> String {
        self.description.clone()
    }
    fn image_id(&self, image: &str) -> Result<Option<String>, PluginFailure> {
        Engine::image_id(self, image)
    }
    fn probe(&self, image_id: &str) -> Result<Probe, PluginFailure> {
        Engine::probe(self, image_id)
    }
    fn build(&self, recipe: &Recipe, tag: &str, project_dir: &Path, events: &Events<'_>) -> Result<(), PluginFailure> {
        Engine::build(self, recipe, tag, project_dir, events)
    }
}

/// What [`ensure_environment`] needs to know.
pub struct EnvironmentRequest<'a> {
    pub target: &'a Target,
    pub dependencies: &'a Dependencies,
    pub project_dir: &'a Path,
    pub project_name: &'a str,
    /// The plugin's state folder (probe cache).
    pub state_dir: &'a Path,
    /// Build the image when it is missing (`PrepareEnvironment: true`, `xp experiment prepare`).
    pub build_if_missing: bool,
}

impl<'a> EnvironmentRequest<'a> {
    /// For `xp experiment prepare`: builds when missing.
    pub fn for_prepare(request: &'a PrepareRequest) -> Self {
        EnvironmentRequest {
            target: &request.context.target,
            dependencies: &request.dependencies,
            project_dir: &request.context.project_dir,
            project_name: &request.context.project_name,
            state_dir: &request.context.state_dir,
            build_if_missing: true,
        }
    }

    /// For a run: builds when missing if the run configuration says `PrepareEnvironment`.
    pub fn for_run(request: &'a RunRequest) -> Self {
        EnvironmentRequest {
            target: &request.context.target,
            dependencies: &request.dependencies,
            project_dir: &request.context.project_dir,
            project_name: &request.context.project_name,
            state_dir: &request.context.state_dir,
            build_if_missing: request.prepare_environment,
        }
    }
}

/// Ivy's cache for spark-submit's packages in a run's container (gone with the container).
const CONTAINER_IVY_DIR: &str = "/tmp/.ivy2";

/// Variables a PySpark run needs in a container that runs as a user the image may not know
/// (`--user UID:GID`): Hadoop's login fails on a user without a name unless
/// `HADOOP_USER_NAME` gives one, and Spark names the application's user from `SPARK_USER`.
/// The run configuration's own values win; other frameworks get nothing.
pub fn container_user_environment(request: &RunRequest, user_name: &str) -> Vec<(String, String)> {
    if !spark::is_pyspark(&request.framework) {
        return Vec::new();
    }
    ["HADOOP_USER_NAME", "SPARK_USER"]
        .into_iter()
        .filter(|key| !request.environment.contains_key(*key))
        .map(|key| (key.to_owned(), user_name.to_owned()))
        .collect()
}

/// The image runs use, and what it offers.
#[derive(Debug, Clone)]
pub struct Environment {
    /// Tag (or id, when the base image is used as it is) to run.
    pub image: String,
    pub probe: Probe,
    /// True when nothing was built.
    pub cached: bool,
    pub base: String,
}

impl Environment {
    pub fn summary(&self) -> String {
        if self.image == self.base || self.image.starts_with("sha256:") {
            format!(
                "Environment: base image {} as it is (no packages to install)",
                self.base
            )
        } else if self.cached {
            format!(
                "Environment image {} is up to date (cached): nothing to build",
                self.image
            )
        } else {
            format!("Built environment image {}", self.image)
        }
    }

    /// The command a run's container runs: the image's interpreter and the arguments, or for
    /// `Framework: PySpark` the image's spark-submit with `spark_dependencies.yml` applied.
    pub fn command(&self, request: &RunRequest) -> Result<Vec<String>, PluginFailure> {
        if !spark::is_pyspark(&request.framework) {
            let python =
                self.probe.python.clone().ok_or_else(|| {
                    PluginFailure::new(format!("image {} has no python3 or python on PATH", self.image))
                })?;
            return Ok(spark::run_argv(python, request));
        }
        let spark_submit = self.probe.spark_submit.clone().ok_or_else(|| {
            PluginFailure::new(format!(
                "Framework PySpark runs spark-submit in the container, but image {} has none on PATH; use a base image with Spark (e.g. one with pyspark installed)",
                self.image
            ))
        })?;
        // The container may run as a user the image does not know, whose home Java reports as
        // `?`: Ivy's default cache (`~/.ivy2`, used even without packages) fails there.
        Ok(spark::run_submit(spark_submit, request)
            .default_conf("spark.jars.ivy", CONTAINER_IVY_DIR)
            .argv(&request.arguments))
    }
}

/// What an image offers: probed once per image id, then read from `<state_dir>/probes/`.
fn probe(engine: &dyn Images, image_id: &str, state_dir: &Path) -> Result<Probe, PluginFailure> {
    let cache = state_dir
        .join("probes")
        .join(format!("v{}", Probe::VERSION))
        .join(image_id.replace(':', "_"));
    if let Ok(text) = std::fs::read_to_string(&cache) {
        return Ok(Probe::parse(&text));
    }
    let probe = engine.probe(image_id)?;
    if let Some(parent) = cache.parent() {
        let _ = std::fs::create_dir_all(parent);
        let _ = std::fs::write(&cache, probe.to_line());
    }
    Ok(probe)
}

/// Finds the environment image of a target for these dependencies, building it when allowed.
pub fn ensure_environment(
    engine: &dyn Images,
    request: &EnvironmentRequest<'_>,
    events: &Events<'_>,
) -> Result<Environment, PluginFailure> {
    let target = request.target;
    let base = target
        .setting_str("baseDockerImage")
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| {
            PluginFailure::new(format!(
                "aml_config/{}.compute has no baseDockerImage; set it to an image the engine has",
                target.name
            ))
        })?
        .to_owned();
    let base_id = engine.image_id(&base)?.ok_or_else(|| {
        PluginFailure::new(format!(
            "base image {base} (baseDockerImage in aml_config/{}.compute) does not exist on {}; build or load it there first (`docker images` lists what it has)",
            target.name,
            engine.description()
        ))
    })?;
    let base_probe = probe(engine, &base_id, request.state_dir)?;
    if user_managed(target) {
        events.info(&format!(
            "{USER_MANAGED_SETTING} is true in aml_config/{}.compute: nothing of the conda file is installed; runs use base image {base} as it is",
            target.name
        ));
        return Ok(Environment {
            image: base_id,
            probe: base_probe,
            cached: true,
            base,
        });
    }
    let wheelhouse = Wheelhouse::from_target(target, request.project_dir)?;
    let recipe = recipe(
        &base_id,
        &base_probe,
        request.dependencies,
        request.project_dir,
        wheelhouse,
    )
    .map_err(PluginFailure::new)?;
    tell_plan(&recipe, &base_probe, events);
    if recipe.nothing_to_install {
        return Ok(Environment {
            image: base_id,
            probe: base_probe,
            cached: true,
            base,
        });
    }
    let tag = recipe.tag(request.project_name, request.project_dir);
    let (image_id, cached) = match engine.image_id(&tag)? {
        Some(id) => (id, true),
        None if !request.build_if_missing => {
            return Err(PluginFailure::new(format!(
                "the environment image for target '{}' is not built for the current dependencies; run `xp experiment prepare -c {}` or set `PrepareEnvironment: true` in the run configuration",
                target.name, target.name
            )))
        }
        None => {
            events.status(RunStatus::Preparing);
            events.info(&format!("Building environment image {tag} from {base} (once for these dependencies)"));
            if let Some(wheelhouse) = &recipe.wheelhouse {
                events.info(&format!(
                    "pip installs from the wheelhouse {} alone ({} files, {} MB)",
                    wheelhouse.dir.display(),
                    wheelhouse.files.len(),
                    wheelhouse.bytes().div_ceil(1 << 20)
                ));
            }
            engine
                .build(&recipe, &tag, request.project_dir, events)
                .map_err(|failure| blame_pip(failure, &recipe.plan))?;
            let id = engine
                .image_id(&tag)?
                .ok_or_else(|| PluginFailure::new(format!("the build of {tag} succeeded but the engine has no such image")))?;
            (id, false)
        }
    };
    let probe = probe(engine, &image_id, request.state_dir)?;
    Ok(Environment {
        image: tag,
        probe,
        cached,
        base,
    })
}

/// Says in the run's log what the environment installs how, and whether the image's Python
/// is the one the conda file asks for.
fn tell_plan(recipe: &Recipe, probe: &Probe, events: &Events<'_>) {
    for line in recipe.plan.describe("the base image has no conda") {
        events.info(&line);
    }
    if let (Some(version), Some(python)) = (&probe.python_version, &probe.python) {
        if let Some(note) = recipe.plan.python_note(version, &format!("the base image's {python}")) {
            events.info(&note);
        }
    }
}

/// A failed build whose output shows pip failing starts by naming what pip could not install.
fn blame_pip(failure: PluginFailure, plan: &PackagePlan) -> PluginFailure {
    let output: Vec<String> = failure.0.lines().map(str::to_owned).collect();
    match plan.pip_failure(&output) {
        Some(named) => PluginFailure::new(format!("{named}\n{}", failure.0)),
        None => failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment(spark_submit: Option<&str>) -> Environment {
        Environment {
            image: "img".into(),
            probe: Probe {
                python: Some("/usr/bin/python3".into()),
                spark_submit: spark_submit.map(str::to_owned),
                ..Probe::default()
            },
            cached: true,
            base: "img".into(),
        }
    }

    fn request(framework: &str) -> RunRequest {
        let mut request = RunRequest {
            run_id: "p_1".into(),
            framework: framework.into(),
            arguments: vec!["job.py".into(), "x".into()],
            ..RunRequest::default()
        };
        request
            .dependencies
            .spark_configuration
            .insert("spark.xp.marker".into(), "m".into());
        request.dependencies.spark_packages = vec!["g:a:1".into()];
        request
    }

    #[test]
    fn a_container_runs_python_or_spark_submit_with_the_spark_file() {
        let python = environment(None).command(&request("Python")).unwrap();
        assert_eq!(python, ["/usr/bin/python3", "job.py", "x"]);

        let spark = environment(Some("/usr/local/bin/spark-submit"))
            .command(&request("PySpark"))
            .unwrap();
        assert_eq!(
            spark,
            [
                "/usr/local/bin/spark-submit",
                "--conf",
                "spark.app.name=xp-p_1",
                "--conf",
                "spark.jars.ivy=/tmp/.ivy2",
                "--conf",
                "spark.xp.marker=m",
                "--packages",
                "g:a:1",
                "job.py",
                "x",
            ]
        );

        let error = environment(None).command(&request("PySpark")).unwrap_err();
        assert!(error.0.contains("has none on PATH"), "{}", error.0);
    }

    #[test]
    fn a_pyspark_container_user_gets_a_name_unless_the_run_gives_one() {
        assert!(container_user_environment(&request("Python"), "me").is_empty());
        let mut pyspark = request("PySpark");
        assert_eq!(
            container_user_environment(&pyspark, "me"),
            [
                ("HADOOP_USER_NAME".to_owned(), "me".to_owned()),
                ("SPARK_USER".to_owned(), "me".to_owned())
            ]
        );
        pyspark.environment.insert("SPARK_USER".into(), "them".into());
        assert_eq!(
            container_user_environment(&pyspark, "me"),
            [("HADOOP_USER_NAME".to_owned(), "me".to_owned())]
        );
    }
}
