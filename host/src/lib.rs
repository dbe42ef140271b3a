//! xp: run machine-learning experiments on any compute target and remember every run.
//!
//! The binary is a thin shell over [`cli::main`]. The parts, in the order data flows:
//! [`project`] (aml_config/), [`history`] (the run history), [`run`] (snapshot, plugin call,
//! outcome), [`plugins`] (search path, manifests, abi_stable loading), [`secrets`] (the user's
//! secret store and the `secret:` references of targets), [`ui`] (the web view, `xp ui`).

pub mod cli;
pub mod history;
pub mod paths;
pub mod plugins;
pub mod project;
pub mod run;
pub mod secrets;
pub mod snapshot;
pub mod timing;
pub mod ui;
