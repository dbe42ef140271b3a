//! What xp executor plugins share, linked statically into each: running a process with live
//! output and cancellation, collecting `outputs/`, archives, splitting output into lines, the
//! environment every script gets (xp's Python helpers, the shared directory), what an
//! environment installs from the conda file (conda packages with pip where there is no conda),
//! step timings, the one spark-submit command line (`Framework: PySpark`), and a test harness
//! that calls a plugin in process, without the host.
//!
//! The in-tree plugins use it, and so may any third-party plugin: it depends on nothing of xp
//! but [`xp_plugin_api`].

pub mod archive;
pub mod artifacts;
pub mod environment;
pub mod lines;
pub mod outputs;
pub mod packages;
pub mod process;
pub mod project;
pub mod python;
pub mod resolve;
pub mod settings;
pub mod spark;
pub mod testing;
pub mod timing;
