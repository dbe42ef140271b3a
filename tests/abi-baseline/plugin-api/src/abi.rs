#![allow(non_local_definitions)] // emitted by #[sabi_trait]

//! The `abi_stable` types that cross the host/plugin boundary. **Frozen.**
//!
//! abi_stable checks the layout of everything reachable from the root module when a plugin
//! loads, with the host's types as the expected side. Its check refuses a library whose prefix
//! type has *fewer* fields than the host's (only a library with more fields than an older host
//! passes), so adding a module field or a sink method would refuse every plugin built before.
//! These types therefore never change within a major version. Everything that grows crosses as
//! data instead: verbs are names dispatched by [`PluginMod::call`], events are kinds dispatched
//! by [`EventSink::event`], and every request, reply and event payload is JSON (see
//! [`crate::protocol`]).

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
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
///
/// Frozen: new kinds of report are new event kinds for [`EventSink::event`], never new methods.
#[sabi_trait]
pub trait EventSink: Send + Sync {
    /// One line of output, without its line terminator. The hot path: no JSON.
    fn log(&self, stream: LogStream, line: RStr<'_>);

    /// An event of `kind` with a JSON payload (see [`crate::protocol::events`]): `status`,
    /// `progress`, `metric`, and any kind a later plugin-api adds. A host ignores kinds it
    /// does not know.
    fn event(&self, kind: RStr<'_>, payload_json: RStr<'_>);

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
    /// What kind of error, by name (see [`crate::ErrorKind`]): `failed`, `panic`, `request`,
    /// `unknown_verb`. A host treats kinds it does not know as `failed`.
    pub kind: RString,
    /// A message a user can act on. Never contains a secret.
    pub message: RString,
}

/// The root module every plugin library exports. Frozen: two entry points, forever.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
pub struct PluginMod {
    /// Describes the plugin as JSON: [`crate::protocol::PluginDescription`], whose `verbs`
    /// list what [`PluginMod::call`] answers.
    pub describe: extern "C" fn() -> RResult<RString, PluginError>,
    /// Calls the verb named by the first argument (`attach`, `prepare`, `run`, `clean`, ...)
    /// with a JSON request, and answers with a JSON reply. A verb the plugin does not know
    /// answers an error of kind `unknown_verb`.
    #[sabi(last_prefix_field)]
    pub call: extern "C" fn(RStr<'_>, RStr<'_>, SinkRef<'_>) -> RResult<RString, PluginError>,
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
