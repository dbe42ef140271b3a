#![allow(non_local_definitions)] // emitted by #[sabi_trait]

//! The `abi_stable` types that cross the host/plugin boundary.
//!
//! Keep this module small: every type here is layout-checked when a plugin loads, so a change
//! to any of them is a breaking change unless it follows the rules in `PLUGINS.md` (new module
//! fields after the last prefix field, new sink methods after the last prefix method).

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RResult, RStr, RString},
    StableAbi,
};

/// Which stream a log line came from.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// The script's standard output.
    Stdout = 0,
    /// The script's standard error.
    Stderr = 1,
    /// A message of the plugin's own (environment build steps, notices), shown to the user
    /// but not part of the script's output.
    Info = 2,
}

/// Where a plugin reports what happens while it works. Every method may be called from any
/// thread, as often as needed; none of them blocks for long.
#[sabi_trait]
pub trait EventSink: Send + Sync {
    /// One line of output, without its line terminator.
    fn log(&self, stream: LogStream, line: RStr<'_>);

    /// A change of run status, by name (`Preparing`, `Running`, ...).
    fn status(&self, status: RStr<'_>);

    /// Progress of a long step; `total` is 0 when unknown.
    fn progress(&self, label: RStr<'_>, done: u64, total: u64);

    /// A metric value (JSON: a number, a string, or a list) logged by the script.
    fn metric(&self, name: RStr<'_>, value_json: RStr<'_>);

    /// Whether the host asked for the work to stop. Plugins poll this and end what they
    /// started when it turns true.
    #[sabi(last_prefix_field)]
    fn is_cancelled(&self) -> bool;
}

/// A borrowed sink, valid for the duration of one call.
pub type SinkRef<'a> = EventSink_TO<'a, abi_stable::sabi_types::RRef<'a, ()>>;

/// An error returned across the boundary.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct PluginError {
    /// `panic` when the plugin panicked, `request` when the host's request could not be read,
    /// `failed` otherwise.
    pub kind: RString,
    /// A message a user can act on. Never contains a secret.
    pub message: RString,
}

/// The root module every plugin library exports.
///
/// All entry points take a JSON request (see [`crate::protocol`]) and answer with a JSON reply.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(option))]
pub struct PluginMod {
    /// Describes the plugin: [`crate::protocol::PluginDescription`].
    pub describe: extern "C" fn() -> RResult<RString, PluginError>,
    /// Validates a target's settings, fills defaults, sets up access:
    /// [`crate::protocol::AttachRequest`] -> [`crate::protocol::AttachReply`].
    pub attach: extern "C" fn(RStr<'_>, SinkRef<'_>) -> RResult<RString, PluginError>,
    /// Prepares the environment of a target ahead of a run:
    /// [`crate::protocol::PrepareRequest`] -> [`crate::protocol::PrepareReply`].
    pub prepare: extern "C" fn(RStr<'_>, SinkRef<'_>) -> RResult<RString, PluginError>,
    /// Runs a snapshot: [`crate::protocol::RunRequest`] -> [`crate::protocol::RunOutcome`].
    ///
    /// New entry points go after this one; hosts read them as `Option`s, since plugins built
    /// against an older plugin-api do not have them.
    #[sabi(last_prefix_field)]
    pub run: extern "C" fn(RStr<'_>, SinkRef<'_>) -> RResult<RString, PluginError>,
    /// Removes what the plugin built for a project (images, environments):
    /// [`crate::protocol::CleanRequest`] -> [`crate::protocol::CleanReply`]. Since 0.1.1.
    pub clean: extern "C" fn(RStr<'_>, SinkRef<'_>) -> RResult<RString, PluginError>,
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "xp_plugin";
    const NAME: &'static str = "xp plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

#[cfg(test)]
mod tests {
    #[test]
    fn export_macro_uses_the_symbol_name_abi_stable_looks_up() {
        let macro_source = include_str!("lib.rs");
        let expected = format!("#[export_name = \"{}\"]", abi_stable::library::ROOT_MODULE_LOADER_NAME);
        assert!(
            macro_source.contains(&expected),
            "export_plugin! must export {}",
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
