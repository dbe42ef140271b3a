//! Docker environments for xp's `docker` and `remotedocker` plugins, linked into each:
//! the environment recipe (an image made from the base image and the project's dependency
//! files, tagged by the hash of everything that defines it), building it through the Engine
//! API, and running a snapshot in a fresh container with live output and cancellation.

pub use xp_plugin_support::archive;
pub mod engine;
pub mod environment;
pub mod recipe;
mod runner;

pub use engine::Engine;
pub use recipe::{Probe, Recipe};
pub use runner::ContainerRun;
