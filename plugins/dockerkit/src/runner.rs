//! One run in a fresh container: created, fed the snapshot (copied in, or mounted), attached
//! before it starts so no output is lost, waited for while cancellation is watched, emptied of
//! its outputs, and removed whatever happened.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, DeviceRequest, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;
use xp_plugin_api::abi::LogStream;
use xp_plugin_api::{Events, PluginFailure, RunOutcome};

use crate::engine::{describe, Engine};
use xp_plugin_sdk::archive;
use xp_plugin_sdk::lines::LineSplitter;

/// Seconds a cancelled container gets between SIGTERM and SIGKILL.
const STOP_GRACE_SECONDS: i32 = 3;

/// What to run, and how.
#[derive(Debug, Clone, Default)]
pub struct ContainerRun {
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    pub environment: Vec<(String, String)>,
    pub working_dir: String,
    /// `host:container[:ro]` bind mounts.
    pub binds: Vec<String>,
    /// A tar unpacked at `/` before the container starts (the snapshot, when not mounted).
    pub upload: Option<Vec<u8>>,
    /// A folder in the container whose files come back into `artifacts_dir` after the run.
    pub download: Option<(String, PathBuf)>,
    /// `uid:gid` to run as.
    pub user: Option<String>,
    pub gpus: bool,
    /// Memory limit in bytes (swap included).
    pub memory: Option<i64>,
    pub labels: HashMap<String, String>,
}

impl Engine {
    /// Runs `run` to its end. The container is removed whatever happens.
    pub fn run_container(&self, run: &ContainerRun, events: &Events<'_>) -> Result<RunOutcome, PluginFailure> {
        self.block_on(async {
            let body = ContainerCreateBody {
                image: Some(run.image.clone()),
                cmd: Some(run.command.clone()),
                env: Some(run.environment.iter().map(|(k, v)| format!("{k}={v}")).collect()),
                working_dir: Some(run.working_dir.clone()),
                user: run.user.clone(),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(false),
                labels: Some(run.labels.clone()),
                host_config: Some(HostConfig {
                    // An init process as PID 1: the script then ends on SIGTERM as it would
                    // outside a container, so a cancel does not wait for the kill timeout.
                    init: Some(true),
                    binds: Some(run.binds.clone()),
                    memory: run.memory,
                    memory_swap: run.memory,
                    device_requests: run.gpus.then(|| {
                        vec![DeviceRequest {
                            count: Some(-1),
                            capabilities: Some(vec![vec!["gpu".to_owned()]]),
                            ..Default::default()
                        }]
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let created = self
                .docker()
                .create_container(
                    Some(CreateContainerOptionsBuilder::default().name(&run.name).build()),
                    body,
                )
                .await
                .map_err(|e| self.create_failure(run, e))?;
            let outcome = self.drive(&created.id, run, events).await;
            let _ = self
                .docker()
                .remove_container(
                    &created.id,
                    Some(RemoveContainerOptionsBuilder::default().force(true).build()),
                )
                .await;
            outcome
        })
    }

    fn create_failure(&self, run: &ContainerRun, error: bollard::errors::Error) -> PluginFailure {
        let message = describe(&error);
        if message.contains("No such image") {
            PluginFailure::new(format!("image {} does not exist on {}", run.image, self.description))
        } else {
            PluginFailure::new(format!(
                "creating the run's container on {}: {message}",
                self.description
            ))
        }
    }

    async fn drive(&self, id: &str, run: &ContainerRun, events: &Events<'_>) -> Result<RunOutcome, PluginFailure> {
        let docker = self.docker();
        if let Some(tar) = &run.upload {
            docker
                .upload_to_container(
                    id,
                    Some(UploadToContainerOptionsBuilder::default().path("/").build()),
                    bollard::body_full(bytes::Bytes::from(tar.clone())),
                )
                .await
                .map_err(|e| {
                    PluginFailure::new(format!("copying the snapshot into the container: {}", describe(&e)))
                })?;
        }
        let attached = docker
            .attach_container(
                id,
                Some(
                    AttachContainerOptionsBuilder::default()
                        .stdout(true)
                        .stderr(true)
                        .stream(true)
                        .logs(true)
                        .build(),
                ),
            )
            .await
            .map_err(|e| PluginFailure::new(format!("attaching to the container: {}", describe(&e))))?;
        if events.is_cancelled() {
            return Ok(RunOutcome::canceled(130));
        }
        docker.start_container(id, None).await.map_err(|e| {
            let message = describe(&e);
            if run.gpus && (message.contains("device driver") || message.contains("gpu")) {
                PluginFailure::new(format!(
                    "nvidiaDocker: true asks for GPUs, but {} has no GPU support (no NVIDIA container runtime): {message}",
                    self.description
                ))
            } else {
                PluginFailure::new(format!("starting the container: {message}"))
            }
        })?;

        let mut output = attached.output;
        let mut splitter = LineSplitter::default();
        let mut wait = docker.wait_container(id, None);
        let mut ticker = tokio::time::interval(Duration::from_millis(50));
        let mut exit_code: Option<i64> = None;
        let mut output_open = true;
        let mut cancelled = false;
        while exit_code.is_none() || output_open {
            tokio::select! {
                chunk = output.next(), if output_open => match chunk {
                    Some(Ok(bollard::container::LogOutput::StdOut { message })) => splitter.push(LogStream::Stdout, &message, events),
                    Some(Ok(bollard::container::LogOutput::StdErr { message })) => splitter.push(LogStream::Stderr, &message, events),
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => output_open = false,
                },
                status = wait.next(), if exit_code.is_none() => {
                    exit_code = Some(match status {
                        Some(Ok(response)) => response.status_code,
                        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
                        Some(Err(error)) => return Err(PluginFailure::new(format!("waiting for the container: {}", describe(&error)))),
                        None => -1,
                    });
                },
                _ = ticker.tick() => {
                    if !cancelled && events.is_cancelled() {
                        cancelled = true;
                        events.info("Cancelling: stopping the container");
                        let _ = docker
                            .stop_container(id, Some(StopContainerOptionsBuilder::default().t(STOP_GRACE_SECONDS).build()))
                            .await;
                    }
                    // Output can stay open a moment after the exit; do not wait on it forever.
                    if exit_code.is_some() {
                        output_open = false;
                    }
                }
            }
        }
        splitter.finish(events);
        let exit_code = exit_code.unwrap_or(-1) as i32;

        let inspect = docker.inspect_container(id, None).await.ok();
        let oom = inspect
            .as_ref()
            .and_then(|i| i.state.as_ref())
            .and_then(|s| s.oom_killed)
            .unwrap_or(false);
        if oom && !cancelled {
            return Err(PluginFailure::new(format!(
                "the container was killed by the kernel for lack of memory (OOMKilled, exit code {exit_code}); give Docker more memory or make the script use less"
            )));
        }
        if let Some((path, destination)) = &run.download {
            self.download_folder(id, path, destination, events).await?;
        }
        Ok(if cancelled {
            RunOutcome::canceled(exit_code)
        } else {
            RunOutcome::exited(exit_code)
        })
    }

    /// Copies a run's outputs folder out of the container into `destination` by the rule of
    /// [`xp_plugin_sdk::artifacts`], telling the run's log what was left out; a missing
    /// folder is no error.
    async fn download_folder(
        &self,
        id: &str,
        path: &str,
        destination: &std::path::Path,
        events: &Events<'_>,
    ) -> Result<(), PluginFailure> {
        let mut stream = self.docker().download_from_container(
            id,
            Some(DownloadFromContainerOptionsBuilder::default().path(path).build()),
        );
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => return Ok(()),
                Err(error) => {
                    return Err(PluginFailure::new(format!(
                        "copying {path} out of the container: {}",
                        describe(&error)
                    )))
                }
            }
        }
        archive::unpack_outputs(bytes.as_slice(), destination).send(events);
        Ok(())
    }
}
