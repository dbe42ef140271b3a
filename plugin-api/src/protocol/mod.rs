//! The documents that cross the boundary, as JSON: requests, replies, event payloads and the
//! plugin's description.
//!
//! Evolution rule: add fields, never remove, rename or retype one. A new field carries
//! `#[serde(default)]` so that a document from an older host or plugin still parses, and
//! readers ignore keys they do not know, so an older plugin reads a newer host's request.
//!
//! Source compatibility: replies, outcomes and the description are `#[non_exhaustive]` (build
//! them with their constructors and builder methods), so adding a field to them is not a
//! breaking change for plugin code. Requests are built by the host (and by tests): build them
//! with `..Default::default()`, since they gain fields in minor versions.

mod dependencies;
mod description;
pub mod events;
mod requests;
mod settings;
mod status;
mod target;
pub mod verbs;

pub use dependencies::Dependencies;
pub use description::PluginDescription;
pub use requests::{
    AttachReply, AttachRequest, CleanReply, CleanRequest, PrepareReply, PrepareRequest, ReapReply, ReapRequest,
    RequestContext, RunOutcome, RunRequest,
};
pub use settings::{SecretSource, SettingKind, SettingSpec, TargetTemplate};
pub use status::RunStatus;
pub use target::{Settings, Target, SECRET_REFERENCE_PREFIX};

/// Lines that xp's Python helpers print on standard output to report a metric start with this
/// prefix (an ASCII record separator, then a tag), followed by a JSON object
/// `{"name": ..., "value": ...}`. The host turns them into metrics and keeps them out of the
/// log, whatever the target, so plugins only need to stream stdout faithfully.
pub const METRIC_LINE_PREFIX: &str = "\u{1e}xp-metric ";
