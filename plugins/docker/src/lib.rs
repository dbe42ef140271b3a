//! The `docker` executor (Workbench also wrote `localdocker`): runs the snapshot in a fresh
//! container on the local Docker engine, in an environment image built from the project's
//! dependency files and cached by the hash of everything that defines it.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;

use xp_dockerkit::environment::{container_user_environment, ensure_environment, EnvironmentRequest};
use xp_dockerkit::{archive, ContainerRun, Engine};
use xp_plugin_api::{
    AttachReply, AttachRequest, CleanReply, CleanRequest, Events, Executor, PluginDescription, PluginFailure,
    PrepareReply, PrepareRequest, ReapReply, ReapRequest, RunOutcome, RunRequest, RunStatus, SettingKind, SettingSpec,
    Target, TargetTemplate,
};
use xp_plugin_sdk::environment::{local_shared_directory, script_environment, DEFAULT_SHARED_DIRECTORY};
use xp_plugin_sdk::{outputs, settings};

/// Where things live inside the container.
const RUN_DIR: &str = "/azureml-run";
const SUPPORT_DIR: &str = "/xp-support";
const SHARE_DIR: &str = "/azureml-share";

#[derive(Default)]
struct DockerExecutor;

/// The docker target `xp init` writes.
const DOCKER_COMPUTE: &str = r#"# A docker compute target: runs the script in a fresh container on the local Docker
# engine, in an environment image built from conda_dependencies.yml (cached by content).
type: "docker"
# The image to build on: one your Docker engine has (`docker images`), with python3.
baseDockerImage: "python:3.11-slim"
# Mount the run's private snapshot into the container (false: copy it in and out).
sharedVolumes: true
# Give the container every GPU (needs the NVIDIA container runtime).
nvidiaDocker: false
# Shared by every run of this project; mounted at /azureml-share in the container.
nativeSharedDirectory: "~/.azureml/share/"
"#;

fn base_image(target: &Target) -> Result<&str, PluginFailure> {
    target.setting_str("baseDockerImage").filter(|i| !i.trim().is_empty()).ok_or_else(|| {
        PluginFailure::new(format!(
            "aml_config/{}.compute has no baseDockerImage; set it to a local image, e.g. `baseDockerImage: python:3.11-slim`",
            target.name
        ))
    })
}

/// The `memory` setting (`512m`, `2g`, `1073741824`) in bytes.
fn memory_limit(target: &Target) -> Result<Option<i64>, PluginFailure> {
    let Some(value) = target.settings.get("memory") else {
        return Ok(None);
    };
    let text = match value {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.trim().to_ascii_lowercase(),
        _ => String::new(),
    };
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let factor: i64 = match unit {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        _ => 0,
    };
    match digits.parse::<i64>() {
        Ok(number) if factor > 0 && number > 0 => Ok(Some(number * factor)),
        _ => Err(PluginFailure::new(format!(
            "aml_config/{}.compute: memory: {value} is not a size; expected e.g. 512m or 2g",
            target.name
        ))),
    }
}

impl Executor for DockerExecutor {
    fn describe(&self) -> PluginDescription {
        PluginDescription::new("docker", env!("CARGO_PKG_VERSION"), &["docker", "localdocker"])
            .setting(xp_dockerkit::base_image_setting())
            .setting(
                SettingSpec::new(
                    "sharedVolumes",
                    SettingKind::Boolean,
                    "mount the run's private snapshot into the container (false: copy it in and outputs/ out through the Engine API)",
                )
                .default_value(true)
                .flags(&["--shared-volumes"]),
            )
            .setting(xp_dockerkit::nvidia_docker_setting())
            .setting(SettingSpec::new(
                "memory",
                SettingKind::String,
                "a memory limit for the container, e.g. 512m or 2g; a container killed for memory fails with OOMKilled",
            ))
            .setting(settings::native_shared_directory())
            .setting(settings::user_managed_environment())
            .setting(settings::wheelhouse())
            .template(
                TargetTemplate::new("docker", "docker", DOCKER_COMPUTE)
                    .runconfig("PrepareEnvironment", true)
                    .by_default(),
            )
    }

    fn attach(&self, request: AttachRequest, _events: &Events<'_>) -> Result<AttachReply, PluginFailure> {
        let image = base_image(&request.context.target)?.to_owned();
        let mut settings = request.context.target.settings.clone();
        // The snapshot is a private copy already: mounting it costs nothing and keeps a warm
        // run as fast as a bare `docker run`; `sharedVolumes: false` copies it in instead
        // (for engines that cannot see this machine's folders).
        settings.entry("sharedVolumes").or_insert(true.into());
        settings.entry("nvidiaDocker").or_insert(false.into());
        settings
            .entry("nativeSharedDirectory")
            .or_insert(DEFAULT_SHARED_DIRECTORY.into());
        let mut messages = Vec::new();
        let engine = Engine::connect_local()?;
        match engine.image_id(&image)? {
            Some(_) => messages.push(format!("Base image {image} is on {}.", engine.description)),
            None => messages.push(format!(
                "warning: base image {image} is not on {} yet; build or load it before the first run",
                engine.description
            )),
        }
        let mut runconfig = xp_plugin_api::Settings::new();
        runconfig.insert("PrepareEnvironment".into(), true.into());
        let mut reply = AttachReply::new(settings).messages(messages);
        reply.runconfig = runconfig;
        Ok(reply)
    }

    fn prepare(&self, request: PrepareRequest, events: &Events<'_>) -> Result<PrepareReply, PluginFailure> {
        let engine = Engine::connect_local()?;
        let environment = ensure_environment(&engine, &EnvironmentRequest::for_prepare(&request), events)?;
        Ok(PrepareReply::new(environment.cached).message(environment.summary()))
    }

    fn run(&self, request: RunRequest, events: &Events<'_>) -> Result<RunOutcome, PluginFailure> {
        events.status(RunStatus::Preparing);
        let engine = Engine::connect_local()?;
        let environment = ensure_environment(&engine, &EnvironmentRequest::for_run(&request), events)?;
        if environment.cached {
            events.info(&environment.summary());
        }
        let shared = local_shared_directory(&request);
        std::fs::create_dir_all(&shared).map_err(|e| {
            PluginFailure::new(format!(
                "creating the shared directory {} (nativeSharedDirectory): {e}",
                shared.display()
            ))
        })?;
        // Mounting is the default, as attach writes it (see attach).
        let mounted = request.context.target.setting_bool("sharedVolumes").unwrap_or(true);
        let mut binds = vec![format!("{}:{SHARE_DIR}", shared.display())];
        let mut run = ContainerRun {
            name: xp_dockerkit::container_name(&request.run_id, &request.context.project_dir),
            image: environment.image.clone(),
            command: environment.command(&request)?,
            environment: script_environment(&request, SUPPORT_DIR, None, Some(&format!("{SHARE_DIR}/")))
                .into_iter()
                .collect(),
            working_dir: RUN_DIR.into(),
            gpus: request.context.target.setting_bool("nvidiaDocker").unwrap_or(false),
            memory: memory_limit(&request.context.target)?,
            labels: HashMap::from(xp_dockerkit::run_labels(&request.run_id, &request.context.project_dir)),
            ..ContainerRun::default()
        };
        if mounted {
            // The snapshot is already a private copy: mount it rather than copy it again, and
            // run as its owner so outputs stay the user's.
            binds.push(format!("{}:{RUN_DIR}", request.snapshot_dir.display()));
            binds.push(format!("{}:{SUPPORT_DIR}:ro", request.support_dir.display()));
            if let Ok(meta) = std::fs::metadata(&request.snapshot_dir) {
                if meta.uid() != 0 {
                    run.user = Some(format!("{}:{}", meta.uid(), meta.gid()));
                    let name = std::env::var("USER").unwrap_or_else(|_| meta.uid().to_string());
                    run.environment.extend(container_user_environment(&request, &name));
                }
            }
        } else {
            let tar = archive::tar(
                &[
                    (&request.snapshot_dir, "azureml-run"),
                    (&request.support_dir, "xp-support"),
                ],
                &[],
            )
            .map_err(|e| PluginFailure::new(format!("packing the snapshot: {e}")))?;
            run.upload = Some(tar);
            run.download = Some((format!("{RUN_DIR}/outputs"), request.artifacts_dir.clone()));
        }
        run.binds = binds;
        events.status(RunStatus::Running);
        let outcome = engine.run_container(&run, events)?;
        if mounted {
            outputs::collect(&request.snapshot_dir.join("outputs"), &request.artifacts_dir, events);
        }
        Ok(outcome)
    }

    fn clean(&self, request: CleanRequest, _events: &Events<'_>) -> Result<CleanReply, PluginFailure> {
        let engine = Engine::connect_local()?;
        let removed = engine.remove_project_images(&request.context.project_dir)?;
        let messages = if removed.is_empty() {
            vec![format!(
                "no images built by xp for {} on {}",
                request.context.project_dir.display(),
                engine.description
            )]
        } else {
            Vec::new()
        };
        Ok(CleanReply::new().removed_all(removed).messages(messages))
    }

    /// The run's driver vanished: its container (labelled with the run and project) may still
    /// be running or lie stopped; either way it goes.
    fn reap(&self, request: ReapRequest, _events: &Events<'_>) -> Result<ReapReply, PluginFailure> {
        let engine = Engine::connect_local()?;
        let removed = engine.remove_run_containers(&request.run_id, &request.context.project_dir)?;
        Ok(removed.into_iter().fold(ReapReply::new(), ReapReply::ended))
    }
}

xp_plugin_api::export_plugin!(DockerExecutor);

#[cfg(test)]
mod tests;
