//! The host's Docker engine through its CLI over SSH, for the environment recipe the docker
//! target uses (dockerkit). The CLI rather than the Engine API over a forwarded socket: runs
//! must survive a dropped connection, and a `docker run` inside a detached remote run does.

use std::path::Path;

use xp_dockerkit::environment::Images;
use xp_dockerkit::{Probe, Recipe};
use xp_plugin_api::{Events, PluginFailure};
use xp_sshkit::quote::quote;
use xp_sshkit::Connection;

pub struct RemoteImages<'a> {
    pub connection: &'a Connection,
}

impl RemoteImages<'_> {
    /// Checks that the user may use Docker on the host; returns the engine's version.
    pub fn check(&self) -> Result<String, PluginFailure> {
        let finished = self
            .connection
            .exec("docker version --format '{{.Server.Version}}'", None)?;
        if finished.status != 0 {
            return Err(PluginFailure::new(format!(
                "Docker is not available on {} for {}: {}; install Docker there and add the user to the docker group",
                self.connection.address,
                self.connection.username,
                finished.stderr.trim()
            )));
        }
        Ok(String::from_utf8_lossy(&finished.stdout).trim().to_owned())
    }
}

impl Images for RemoteImages<'_> {
    fn description(&self) -> String {
        format!("the Docker engine on {}", self.connection.address)
    }

    fn image_id(&self, image: &str) -> Result<Option<String>, PluginFailure> {
        let finished = self.connection.exec(
            &format!("docker image inspect --format '{{{{.Id}}}}' {}", quote(image)),
            None,
        )?;
        if finished.status == 0 {
            return Ok(Some(String::from_utf8_lossy(&finished.stdout).trim().to_owned()));
        }
        if finished.stderr.contains("No such image") || finished.stderr.contains("No such object") {
            return Ok(None);
        }
        Err(PluginFailure::new(format!(
            "inspecting image {image} on {}: {}",
            self.connection.address,
            finished.stderr.trim()
        )))
    }

    fn probe(&self, image_id: &str) -> Result<Probe, PluginFailure> {
        let output = self.connection.run(
            "probing the image",
            &format!(
                "docker run --rm --entrypoint sh {} -c {}",
                quote(image_id),
                quote(Probe::SCRIPT)
            ),
            None,
        )?;
        Ok(Probe::parse(&String::from_utf8_lossy(&output)))
    }

    fn build(&self, recipe: &Recipe, tag: &str, project_dir: &Path, events: &Events<'_>) -> Result<(), PluginFailure> {
        let context = recipe.build_context()?;
        let command = format!(
            "docker build --label {} -t {} -",
            quote(&format!(
                "{}={}",
                xp_dockerkit::engine::PROJECT_LABEL,
                project_dir.display()
            )),
            quote(tag)
        );
        let (status, last) = self.connection.exec_lines(
            &command,
            Some(&context),
            &mut |line| {
                if !line.trim().is_empty() {
                    events.info(line);
                }
            },
            &|| events.is_cancelled(),
        )?;
        if status != 0 {
            return Err(PluginFailure::new(format!(
                "building the environment image {tag} on {} failed:\n{}",
                self.connection.address,
                last.join("\n")
            )));
        }
        Ok(())
    }
}
