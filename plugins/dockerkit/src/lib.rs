//! Docker environments for xp's `docker` and `remotedocker` plugins, linked into each:
//! the environment recipe (an image made from the base image and the project's dependency
//! files, tagged by the hash of everything that defines it), building it through the Engine
//! API, and running a snapshot in a fresh container with live output and cancellation.

pub use xp_plugin_sdk::archive;
pub mod engine;
pub mod environment;
pub mod recipe;
mod runner;

pub use engine::Engine;
pub use recipe::{Probe, Recipe};
pub use runner::ContainerRun;

/// The container of a run: `xp-<run id>-<project hash>`. Run ids are `<project folder>_<ms>`,
/// so two projects with the same folder name could otherwise collide.
pub fn container_name(run_id: &str, project_dir: &std::path::Path) -> String {
    let name: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("xp-{name}-{}", xp_plugin_sdk::project::folder_tag(project_dir))
}

/// Labels on every run's container: the run id and the project folder.
/// `baseDockerImage`: the image environments are built on (`--base-image`), required.
pub fn base_image_setting() -> xp_plugin_api::SettingSpec {
    xp_plugin_api::SettingSpec::new(
        "baseDockerImage",
        xp_plugin_api::SettingKind::String,
        "the image to build the environment on: one the Docker engine has, with python3",
    )
    .required()
    .flags(&["--base-image"])
}

/// `nvidiaDocker`: give the container every GPU (`--nvidia-docker`).
pub fn nvidia_docker_setting() -> xp_plugin_api::SettingSpec {
    xp_plugin_api::SettingSpec::new(
        "nvidiaDocker",
        xp_plugin_api::SettingKind::Boolean,
        "give the container every GPU (needs the NVIDIA container runtime on the engine)",
    )
    .default_value(false)
    .flags(&["--nvidia-docker"])
}

pub fn run_labels(run_id: &str, project_dir: &std::path::Path) -> [(String, String); 2] {
    [
        ("xp.run".to_owned(), run_id.to_owned()),
        (
            engine::PROJECT_LABEL.to_owned(),
            project_dir.to_string_lossy().into_owned(),
        ),
    ]
}
