use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::std_types::{RResult, RStr, RString};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::abi::{PluginError, SinkRef};
use crate::events::Events;
use crate::protocol::*;

/// A failure a plugin reports: the message is shown to the user and recorded with the run, so
/// say what went wrong and how to fix it, and never include a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginFailure(pub String);

impl PluginFailure {
    pub fn new(message: impl Into<String>) -> Self {
        PluginFailure(message.into())
    }
}

impl fmt::Display for PluginFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PluginFailure {}

impl From<std::io::Error> for PluginFailure {
    fn from(error: std::io::Error) -> Self {
        PluginFailure(error.to_string())
    }
}

/// What an executor plugin implements. Export it with [`crate::export_plugin!`].
///
/// Every method runs on the host's thread; a plugin that needs async I/O owns its runtime
/// and blocks on it inside the method. Nothing async crosses the boundary.
pub trait Executor: Send + Sync + 'static {
    /// Name, version and the target types this plugin serves.
    fn describe(&self) -> PluginDescription;

    /// Checks and completes the settings of a new target. The default accepts them as given.
    fn attach(&self, request: AttachRequest, _events: &Events<'_>) -> Result<AttachReply, PluginFailure> {
        Ok(AttachReply {
            settings: request.target.settings,
            ..AttachReply::default()
        })
    }

    /// Builds or checks the environment of a target. The default has nothing to prepare.
    fn prepare(&self, _request: PrepareRequest, _events: &Events<'_>) -> Result<PrepareReply, PluginFailure> {
        Ok(PrepareReply {
            cached: true,
            messages: Vec::new(),
        })
    }

    /// Runs the snapshot, streaming output through `events`, and returns once the script has
    /// ended and its `outputs/` are in `request.artifacts_dir`.
    fn run(&self, request: RunRequest, events: &Events<'_>) -> Result<RunOutcome, PluginFailure>;

    /// Removes what the plugin built for the project (images, environments). The default has
    /// nothing to remove.
    fn clean(&self, _request: CleanRequest, _events: &Events<'_>) -> Result<CleanReply, PluginFailure> {
        Ok(CleanReply {
            removed: Vec::new(),
            messages: vec!["this target type keeps nothing to clean".to_owned()],
        })
    }
}

fn error(kind: &str, message: String) -> PluginError {
    PluginError {
        kind: RString::from(kind),
        message: RString::from(message),
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a non-text payload".to_owned()
    }
}

/// Runs one entry point: parses the request, calls the executor, serialises the reply, and
/// turns a panic into a `panic` error so it never unwinds into the host.
fn guarded<Req, Reply>(
    request: RStr<'_>,
    call: impl FnOnce(Req) -> Result<Reply, PluginFailure>,
) -> RResult<RString, PluginError>
where
    Req: DeserializeOwned,
    Reply: Serialize,
{
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let request: Req = serde_json::from_str(request.as_str())
            .map_err(|e| error("request", format!("the plugin could not read the host's request: {e}")))?;
        let reply = call(request).map_err(|failure| error("failed", failure.0))?;
        serde_json::to_string(&reply)
            .map_err(|e| error("failed", format!("the plugin could not encode its reply: {e}")))
    }));
    match outcome {
        Ok(Ok(json)) => RResult::ROk(RString::from(json)),
        Ok(Err(error)) => RResult::RErr(error),
        Err(payload) => RResult::RErr(error("panic", panic_message(&*payload))),
    }
}

pub fn describe_entry(executor: fn() -> &'static dyn Executor) -> RResult<RString, PluginError> {
    guarded(RStr::from_str("null"), |()| Ok(executor().describe()))
}

pub fn attach_entry(
    executor: fn() -> &'static dyn Executor,
    request: RStr<'_>,
    sink: SinkRef<'_>,
) -> RResult<RString, PluginError> {
    guarded(request, |request| executor().attach(request, &Events::new(sink)))
}

pub fn prepare_entry(
    executor: fn() -> &'static dyn Executor,
    request: RStr<'_>,
    sink: SinkRef<'_>,
) -> RResult<RString, PluginError> {
    guarded(request, |request| executor().prepare(request, &Events::new(sink)))
}

pub fn clean_entry(
    executor: fn() -> &'static dyn Executor,
    request: RStr<'_>,
    sink: SinkRef<'_>,
) -> RResult<RString, PluginError> {
    guarded(request, |request| executor().clean(request, &Events::new(sink)))
}

pub fn run_entry(
    executor: fn() -> &'static dyn Executor,
    request: RStr<'_>,
    sink: SinkRef<'_>,
) -> RResult<RString, PluginError> {
    guarded(request, |request| executor().run(request, &Events::new(sink)))
}
