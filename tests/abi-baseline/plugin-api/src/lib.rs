//! The stable ABI between the `xp` host and its executor plugins.
//!
//! This is the one crate a plugin author must depend on. It has two halves, kept apart on
//! purpose:
//!
//! * [`abi`]: the few `abi_stable` types that cross the boundary, frozen for the whole major
//!   version: a root module of two entry points (`describe`, and `call`, which dispatches on a
//!   verb's name) and the [`abi::EventSink`] through which a plugin streams log lines and events
//!   back to the host while it works.
//! * [`protocol`]: the requests, replies and event payloads, which travel as JSON. Growing the
//!   API means adding verbs, event kinds and fields here, never changing a checked layout.
//!
//! A plugin implements [`Executor`] and exports it with [`export_plugin!`]; the macro catches
//! every panic at the boundary and turns it into an error the host records. The guide,
//! `PLUGINS.md`, is this crate's [`guide`] module; its examples are compiled as doc tests.
//!
//! Everything a plugin needs is reachable from this crate's root, including the crates its
//! types come from ([`abi_stable`], [`serde`], [`serde_json`]).

pub mod abi;
mod executor;
pub mod protocol;
mod reporting;

pub use abi::LogStream;
pub use abi_stable;
pub use executor::{ErrorKind, Executor, PluginFailure};
pub use protocol::*;
pub use reporting::Events;
pub use serde;
pub use serde_json;

/// The version of this crate, which is the version of the plugin API. Plugins state the range
/// they need in `plugin.toml`; the host checks it with semver before loading any code.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

#[doc = include_str!("../PLUGINS.md")]
pub mod guide {}

#[doc(hidden)]
pub mod __private {
    pub use crate::executor::{call_entry, describe_entry};
}

/// Exports an [`Executor`] as this library's xp plugin.
///
/// ```
/// use xp_plugin_api::{Events, Executor, PluginDescription, PluginFailure, RunOutcome, RunRequest};
///
/// struct MyExecutor;
///
/// impl Executor for MyExecutor {
///     fn describe(&self) -> PluginDescription {
///         PluginDescription::new("mine", "0.1.0", &["mine"])
///     }
///     fn run(&self, _request: RunRequest, events: &Events<'_>) -> Result<RunOutcome, PluginFailure> {
///         events.info("nothing to run");
///         Ok(RunOutcome::exited(0))
///     }
/// }
///
/// xp_plugin_api::export_plugin!(MyExecutor);
/// # fn main() {}
/// ```
///
/// The expression is evaluated once, on the first call into the plugin (inside the panic
/// guard).
#[macro_export]
macro_rules! export_plugin {
    ($make:expr) => {
        #[doc(hidden)]
        pub mod __xp_plugin_export {
            use super::*;
            use $crate::abi_stable as __as;

            fn executor() -> &'static dyn $crate::Executor {
                static CELL: ::std::sync::OnceLock<::std::boxed::Box<dyn $crate::Executor>> =
                    ::std::sync::OnceLock::new();
                &**CELL.get_or_init(|| ::std::boxed::Box::new($make))
            }

            extern "C" fn describe() -> __as::std_types::RResult<__as::std_types::RString, $crate::abi::PluginError> {
                $crate::__private::describe_entry(executor)
            }

            extern "C" fn call(
                verb: __as::std_types::RStr<'_>,
                request: __as::std_types::RStr<'_>,
                sink: $crate::abi::SinkRef<'_>,
            ) -> __as::std_types::RResult<__as::std_types::RString, $crate::abi::PluginError> {
                $crate::__private::call_entry(executor, verb, request, sink)
            }

            fn root_module() -> $crate::abi::PluginModRef {
                use __as::prefix_type::PrefixTypeTrait;
                $crate::abi::PluginMod { describe, call }.leak_into_prefix()
            }

            extern "C" fn erased_root_module() -> __as::library::RootModuleResult {
                __as::library::__call_root_module_loader(root_module)
            }

            // What `#[abi_stable::export_root_module]` expands to, spelled with paths through
            // this crate so that plugins need no direct dependency on abi_stable. The symbol
            // name is checked against abi_stable's own constant in this crate's tests.
            #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
            pub static LIB_HEADER: __as::library::LibHeader = unsafe {
                __as::library::LibHeader::from_constructor::<$crate::abi::PluginModRef>(
                    erased_root_module,
                    __as::library::CheckTypeLayout::Yes,
                )
            };
        }
    };
}
