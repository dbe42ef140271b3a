use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::std_types::{RResult, RStr, RString};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::abi::{PluginError, SinkRef};
use crate::protocol::verbs;
use crate::protocol::*;
use crate::reporting::Events;

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

impl From<String> for PluginFailure {
    fn from(message: String) -> Self {
        PluginFailure(message)
    }
}

impl From<&str> for PluginFailure {
    fn from(message: &str) -> Self {
        PluginFailure(message.to_owned())
    }
}

/// The kinds of [`PluginError`], by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The plugin reported a failure ([`PluginFailure`]).
    Failed,
    /// The plugin panicked; the message is the panic's.
    Panic,
    /// The plugin could not read the host's request.
    Request,
    /// The plugin does not know the verb: it was built against an older plugin-api.
    UnknownVerb,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Failed => "failed",
            ErrorKind::Panic => "panic",
            ErrorKind::Request => "request",
            ErrorKind::UnknownVerb => "unknown_verb",
        }
    }

    /// A kind by name; a kind this plugin-api does not know reads as `Failed`.
    pub fn parse(name: &str) -> ErrorKind {
        match name {
            "panic" => ErrorKind::Panic,
            "request" => ErrorKind::Request,
            "unknown_verb" => ErrorKind::UnknownVerb,
            _ => ErrorKind::Failed,
        }
    }
}

/// What an executor plugin implements. Export it with [`crate::export_plugin!`].
///
/// Every method runs on the host's thread; a plugin that needs async I/O owns its runtime
/// and blocks on it inside the method. Nothing async crosses the boundary. Every method but
/// `describe` and `run` has a default, and a method added by a later plugin-api always comes
/// with one, so a plugin keeps compiling against newer plugin-api versions.
pub trait Executor: Send + Sync + 'static {
    /// Name, version and the target types this plugin serves.
    fn describe(&self) -> PluginDescription;

    /// Checks and completes the settings of a new target. The default accepts them as given.
    fn attach(&self, request: AttachRequest, _events: &Events<'_>) -> Result<AttachReply, PluginFailure> {
        Ok(AttachReply::new(request.context.target.settings))
    }

    /// Builds or checks the environment of a target. The default has nothing to prepare.
    fn prepare(&self, _request: PrepareRequest, _events: &Events<'_>) -> Result<PrepareReply, PluginFailure> {
        Ok(PrepareReply::cached())
    }

    /// Runs the snapshot, streaming output through `events`, and returns once the script has
    /// ended and its `outputs/` are in `request.artifacts_dir`.
    fn run(&self, request: RunRequest, events: &Events<'_>) -> Result<RunOutcome, PluginFailure>;

    /// Removes what the plugin built for the project (images, environments). The default has
    /// nothing to remove.
    fn clean(&self, _request: CleanRequest, _events: &Events<'_>) -> Result<CleanReply, PluginFailure> {
        Ok(CleanReply::new().message("this target type keeps nothing to clean"))
    }

    /// Ends what a run whose driver vanished left on the target. The default: the target
    /// keeps nothing running after its driver (the host ends local processes itself). Since
    /// 1.1.
    fn reap(&self, _request: ReapRequest, _events: &Events<'_>) -> Result<ReapReply, PluginFailure> {
        Ok(ReapReply::new())
    }
}

fn error(kind: ErrorKind, message: String) -> PluginError {
    PluginError {
        kind: RString::from(kind.as_str()),
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

/// Runs `body`, turning a panic into a `panic` error so it never unwinds into the host.
fn guarded(body: impl FnOnce() -> Result<String, PluginError>) -> RResult<RString, PluginError> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(json)) => RResult::ROk(RString::from(json)),
        Ok(Err(error)) => RResult::RErr(error),
        Err(payload) => RResult::RErr(error(ErrorKind::Panic, panic_message(&*payload))),
    }
}

/// Parses the request, calls the executor, serialises the reply.
fn answer<Req, Reply>(
    request: &str,
    call: impl FnOnce(Req) -> Result<Reply, PluginFailure>,
) -> Result<String, PluginError>
where
    Req: DeserializeOwned,
    Reply: Serialize,
{
    let request: Req = serde_json::from_str(request).map_err(|e| {
        error(
            ErrorKind::Request,
            format!("the plugin could not read the host's request: {e}"),
        )
    })?;
    let reply = call(request).map_err(|failure| error(ErrorKind::Failed, failure.0))?;
    serde_json::to_string(&reply)
        .map_err(|e| error(ErrorKind::Failed, format!("the plugin could not encode its reply: {e}")))
}

#[doc(hidden)]
pub fn describe_entry(executor: fn() -> &'static dyn Executor) -> RResult<RString, PluginError> {
    guarded(|| {
        serde_json::to_string(&executor().describe()).map_err(|e| {
            error(
                ErrorKind::Failed,
                format!("the plugin could not encode its description: {e}"),
            )
        })
    })
}

#[doc(hidden)]
pub fn call_entry(
    executor: fn() -> &'static dyn Executor,
    verb: RStr<'_>,
    request: RStr<'_>,
    sink: SinkRef<'_>,
) -> RResult<RString, PluginError> {
    guarded(|| {
        let events = Events::new(sink);
        let request = request.as_str();
        match verb.as_str() {
            verbs::ATTACH => answer(request, |r| executor().attach(r, &events)),
            verbs::PREPARE => answer(request, |r| executor().prepare(r, &events)),
            verbs::RUN => answer(request, |r| executor().run(r, &events)),
            verbs::CLEAN => answer(request, |r| executor().clean(r, &events)),
            verbs::REAP => answer(request, |r| executor().reap(r, &events)),
            other => Err(error(
                ErrorKind::UnknownVerb,
                format!(
                    "this plugin does not know the verb '{other}': it was built against plugin-api {}",
                    crate::API_VERSION
                ),
            )),
        }
    })
}
