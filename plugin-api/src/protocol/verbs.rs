//! The verbs a plugin answers through [`crate::abi::PluginMod::call`], by name.
//!
//! A verb added by a later plugin-api is simply a new name: a plugin built before it answers
//! `unknown_verb` (and does not list it in its description's `verbs`), and the host tells the
//! user that the plugin predates the verb.

/// `xp computetarget attach`: [`crate::AttachRequest`] -> [`crate::AttachReply`]. Since 1.0.
pub const ATTACH: &str = "attach";
/// `xp experiment prepare`: [`crate::PrepareRequest`] -> [`crate::PrepareReply`]. Since 1.0.
pub const PREPARE: &str = "prepare";
/// `xp experiment submit`: [`crate::RunRequest`] -> [`crate::RunOutcome`]. Since 1.0.
pub const RUN: &str = "run";
/// `xp experiment clean`: [`crate::CleanRequest`] -> [`crate::CleanReply`]. Since 1.0.
pub const CLEAN: &str = "clean";

/// End what is left of a run whose driver vanished (a container, a remote process group):
/// [`crate::ReapRequest`] -> [`crate::ReapReply`]. Since 1.1.
pub const REAP: &str = "reap";

/// Every verb of this plugin-api, in the order they were added. A plugin built against this
/// version answers all of them (the [`crate::Executor`] trait has a default for each).
pub const ALL: &[&str] = &[ATTACH, PREPARE, RUN, CLEAN, REAP];
