//! A Docker engine reached through bollard, with a runtime of the plugin's own: nothing async
//! crosses the plugin boundary, so every method blocks until done.

use std::collections::HashMap;
use std::path::Path;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, ListContainersOptionsBuilder, ListImagesOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use xp_plugin_api::{Events, PluginFailure};

use crate::recipe::{Probe, Recipe};

/// Label on every image xp builds, naming the project folder it was built for.
pub const PROJECT_LABEL: &str = "xp.project";

pub struct Engine {
    docker: Docker,
    runtime: tokio::runtime::Runtime,
    /// Where the engine is, for messages ("the local Docker engine", "Docker on host:22").
    pub description: String,
}

/// A bollard error as a sentence.
pub fn describe(error: &bollard::errors::Error) -> String {
    match error {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }
    )
}

impl Engine {
    /// The engine of `DOCKER_HOST`, or the local socket.
    pub fn connect_local() -> Result<Engine, PluginFailure> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(|e| PluginFailure::new(format!("cannot reach the Docker engine: {e}")))?;
        let where_ = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
        Engine::with(docker, format!("the Docker engine at {where_}"))
    }

    /// An engine behind a Unix socket (e.g. one forwarded over SSH).
    pub fn connect_socket(path: &Path, description: String) -> Result<Engine, PluginFailure> {
        let docker = Docker::connect_with_unix(&path.to_string_lossy(), 120, bollard::API_DEFAULT_VERSION)
            .map_err(|e| PluginFailure::new(format!("cannot reach {description}: {e}")))?;
        Engine::with(docker, description)
    }

    fn with(docker: Docker, description: String) -> Result<Engine, PluginFailure> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PluginFailure::new(format!("starting the plugin's runtime: {e}")))?;
        let docker = runtime.block_on(async {
            docker.ping().await.map_err(|e| {
                PluginFailure::new(format!(
                    "cannot reach {description}: {}; is the Docker daemon running, and may this user use it?",
                    describe(&e)
                ))
            })?;
            // Speak the engine's API version, whatever bollard's default.
            docker
                .negotiate_version()
                .await
                .map_err(|e| PluginFailure::new(format!("talking to {description}: {}", describe(&e))))
        })?;
        Ok(Engine {
            docker,
            runtime,
            description,
        })
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// The id of an image, or `None` when the engine does not have it.
    pub fn image_id(&self, image: &str) -> Result<Option<String>, PluginFailure> {
        self.block_on(async {
            match self.docker.inspect_image(image).await {
                Ok(inspect) => Ok(inspect.id),
                Err(error) if is_not_found(&error) => Ok(None),
                Err(error) => Err(PluginFailure::new(format!(
                    "inspecting image {image} on {}: {}",
                    self.description,
                    describe(&error)
                ))),
            }
        })
    }

    /// What the image offers (conda, python, pip, spark-submit), by running it once.
    pub fn probe(&self, image_id: &str) -> Result<Probe, PluginFailure> {
        Ok(Probe::parse(
            &self.run_to_string(image_id, &["sh", "-c", Probe::SCRIPT])?,
        ))
    }

    /// Runs a short command in a throwaway container and returns its output.
    fn run_to_string(&self, image: &str, command: &[&str]) -> Result<String, PluginFailure> {
        let fail = |what: &str, e: bollard::errors::Error| {
            PluginFailure::new(format!("{what} a probe container of {image}: {}", describe(&e)))
        };
        self.block_on(async {
            let body = ContainerCreateBody {
                image: Some(image.to_owned()),
                cmd: Some(command.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            };
            let id = self
                .docker
                .create_container(Some(CreateContainerOptionsBuilder::default().build()), body)
                .await
                .map_err(|e| fail("creating", e))?
                .id;
            let result = async {
                self.docker
                    .start_container(&id, None)
                    .await
                    .map_err(|e| fail("starting", e))?;
                let mut wait = self.docker.wait_container(&id, None);
                while let Some(item) = wait.next().await {
                    if let Err(error) = item {
                        if !matches!(error, bollard::errors::Error::DockerContainerWaitError { .. }) {
                            return Err(fail("waiting for", error));
                        }
                    }
                }
                let mut logs = self.docker.logs(
                    &id,
                    Some(LogsOptionsBuilder::default().stdout(true).stderr(true).build()),
                );
                let mut text = String::new();
                while let Some(chunk) = logs.next().await {
                    text.push_str(&chunk.map_err(|e| fail("reading", e))?.to_string());
                }
                Ok(text)
            }
            .await;
            let _ = self
                .docker
                .remove_container(&id, Some(RemoveContainerOptionsBuilder::default().force(true).build()))
                .await;
            result
        })
    }

    /// Builds `recipe` as `tag`, streaming the build's output as info lines. The engine tags
    /// the image only when the build succeeds.
    pub fn build(
        &self,
        recipe: &Recipe,
        tag: &str,
        project_dir: &Path,
        events: &Events<'_>,
    ) -> Result<(), PluginFailure> {
        let context = recipe.build_context()?;
        let mut labels = HashMap::new();
        let project = project_dir.to_string_lossy().into_owned();
        labels.insert(PROJECT_LABEL, project.as_str());
        let options = BuildImageOptionsBuilder::default()
            .t(tag)
            .rm(true)
            .forcerm(true)
            .labels(&labels)
            .build();
        self.block_on(async {
            let mut stream =
                self.docker
                    .build_image(options, None, Some(bollard::body_full(bytes::Bytes::from(context))));
            let mut last_lines: Vec<String> = Vec::new();
            while let Some(item) = stream.next().await {
                if events.is_cancelled() {
                    return Err(PluginFailure::new("the build was cancelled; nothing was tagged"));
                }
                let info = item.map_err(|e| {
                    PluginFailure::new(format!(
                        "building the environment image {tag} failed: {}\n{}",
                        describe(&e),
                        last_lines.join("\n")
                    ))
                })?;
                if let Some(error) = info.error_detail.and_then(|d| d.message) {
                    return Err(PluginFailure::new(format!(
                        "building the environment image {tag} failed: {error}\n{}",
                        last_lines.join("\n")
                    )));
                }
                if let Some(text) = info.stream {
                    for line in text.lines().filter(|l| !l.trim().is_empty()) {
                        events.info(line);
                        last_lines.push(line.to_owned());
                        if last_lines.len() > 15 {
                            last_lines.remove(0);
                        }
                    }
                }
            }
            Ok(())
        })
    }

    /// Removes (killing if running) every container of run `run_id` of `project_dir`. Returns
    /// their names.
    pub fn remove_run_containers(&self, run_id: &str, project_dir: &Path) -> Result<Vec<String>, PluginFailure> {
        let labels: Vec<String> = crate::run_labels(run_id, project_dir)
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        self.block_on(async {
            let mut filters = HashMap::new();
            filters.insert("label".to_owned(), labels.clone());
            let containers = self
                .docker
                .list_containers(Some(
                    ListContainersOptionsBuilder::default()
                        .all(true)
                        .filters(&filters)
                        .build(),
                ))
                .await
                .map_err(|e| {
                    PluginFailure::new(format!("listing containers on {}: {}", self.description, describe(&e)))
                })?;
            let mut removed = Vec::new();
            for container in containers {
                let Some(id) = container.id else { continue };
                let name = container
                    .names
                    .and_then(|names| names.first().cloned())
                    .unwrap_or_else(|| id.clone());
                self.docker
                    .remove_container(&id, Some(RemoveContainerOptionsBuilder::default().force(true).build()))
                    .await
                    .map_err(|e| PluginFailure::new(format!("removing container {name}: {}", describe(&e))))?;
                removed.push(format!("container {}", name.trim_start_matches('/')));
            }
            Ok(removed)
        })
    }

    /// Removes every image built for `project_dir`. Returns their tags.
    pub fn remove_project_images(&self, project_dir: &Path) -> Result<Vec<String>, PluginFailure> {
        let label = format!("{PROJECT_LABEL}={}", project_dir.to_string_lossy());
        self.block_on(async {
            let mut filters = HashMap::new();
            filters.insert("label".to_owned(), vec![label.clone()]);
            let images = self
                .docker
                .list_images(Some(ListImagesOptionsBuilder::default().filters(&filters).build()))
                .await
                .map_err(|e| PluginFailure::new(format!("listing images on {}: {}", self.description, describe(&e))))?;
            let mut removed = Vec::new();
            for image in images {
                let name = image.repo_tags.first().cloned().unwrap_or_else(|| image.id.clone());
                self.docker
                    .remove_image(
                        &image.id,
                        Some(RemoveImageOptionsBuilder::default().force(true).build()),
                        None,
                    )
                    .await
                    .map_err(|e| PluginFailure::new(format!("removing image {name}: {}", describe(&e))))?;
                removed.push(name);
            }
            Ok(removed)
        })
    }
}
