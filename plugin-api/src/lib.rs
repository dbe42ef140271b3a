//! The stable ABI between the `xp` host and its executor plugins.
//!
//! This is the one crate a plugin author depends on. It has two halves, kept apart on purpose:
//!
//! * [`protocol`]: the requests and replies that cross the boundary. They travel as JSON text,
//!   so adding a field never changes a type layout: old plugins ignore keys they do not know,
//!   and new fields carry `#[serde(default)]` so old hosts' requests still parse.
//! * [`abi`]: the few `abi_stable` types that carry those documents: the root module (a prefix
//!   type of entry points) and the [`abi::EventSink`] trait object through which a plugin streams
//!   log lines, status changes, progress and metrics back to the host while it works.
//!
//! A plugin implements [`Executor`] and exports it with [`export_plugin!`]; the macro catches
//! every panic at the boundary and turns it into an error the host records.
//!
//! See `plugin-api/PLUGINS.md` for the guide and the rules for evolving this ABI.

pub mod abi;
mod events;
mod executor;
pub mod protocol;

pub use abi_stable;
pub use events::Events;
pub use executor::{Executor, PluginFailure};
pub use protocol::*;

/// The version of this crate, which is the version of the plugin ABI. Plugins state the range
/// they need in `plugin.toml`; the host checks it with semver before loading any code.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

#[doc(hidden)]
pub mod __private {
    pub use crate::executor::{attach_entry, clean_entry, describe_entry, prepare_entry, run_entry};
}

/// Exports an [`Executor`] as this library's xp plugin.
///
/// ```ignore
/// #[derive(Default)]
/// struct MyExecutor;
/// impl xp_plugin_api::Executor for MyExecutor { /* ... */ }
/// xp_plugin_api::export_plugin!(MyExecutor::default());
/// ```
///
/// The expression is evaluated once, on the first call into the plugin.
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
            extern "C" fn attach(
                request: __as::std_types::RStr<'_>,
                sink: $crate::abi::SinkRef<'_>,
            ) -> __as::std_types::RResult<__as::std_types::RString, $crate::abi::PluginError> {
                $crate::__private::attach_entry(executor, request, sink)
            }
            extern "C" fn prepare(
                request: __as::std_types::RStr<'_>,
                sink: $crate::abi::SinkRef<'_>,
            ) -> __as::std_types::RResult<__as::std_types::RString, $crate::abi::PluginError> {
                $crate::__private::prepare_entry(executor, request, sink)
            }
            extern "C" fn run(
                request: __as::std_types::RStr<'_>,
                sink: $crate::abi::SinkRef<'_>,
            ) -> __as::std_types::RResult<__as::std_types::RString, $crate::abi::PluginError> {
                $crate::__private::run_entry(executor, request, sink)
            }

            extern "C" fn clean(
                request: __as::std_types::RStr<'_>,
                sink: $crate::abi::SinkRef<'_>,
            ) -> __as::std_types::RResult<__as::std_types::RString, $crate::abi::PluginError> {
                $crate::__private::clean_entry(executor, request, sink)
            }

            fn root_module() -> $crate::abi::PluginModRef {
                use __as::prefix_type::PrefixTypeTrait;
                $crate::abi::PluginMod {
                    describe,
                    attach,
                    prepare,
                    run,
                    clean,
                }
                .leak_into_prefix()
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
