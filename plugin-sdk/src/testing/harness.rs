use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::de::DeserializeOwned;
use serde::Serialize;
use xp_plugin_api::abi::EventSink_TO;
use xp_plugin_api::abi_stable::sabi_trait::TD_Opaque;
use xp_plugin_api::{
    serde, AttachReply, AttachRequest, CleanReply, CleanRequest, Events, Executor, PluginFailure, PrepareReply,
    PrepareRequest, ReapReply, ReapRequest, RunOutcome, RunRequest,
};

use super::{Recorded, RecordingSink};

/// The result of one call, and what the plugin reported during it.
#[derive(Debug)]
pub struct Call<T> {
    pub result: Result<T, PluginFailure>,
    pub recorded: Recorded,
}

impl<T: std::fmt::Debug> Call<T> {
    /// The reply and the record; fails the test, with the plugin's message and output, when
    /// the call failed.
    #[track_caller]
    pub fn ok(self) -> (T, Recorded) {
        match self.result {
            Ok(reply) => (reply, self.recorded),
            Err(failure) => panic!("the call failed: {failure}\nwhat it reported: {:#?}", self.recorded),
        }
    }

    /// The failure's message and the record; fails the test when the call succeeded.
    #[track_caller]
    pub fn err(self) -> (String, Recorded) {
        match self.result {
            Ok(reply) => panic!(
                "the call succeeded, with {reply:?}\nwhat it reported: {:#?}",
                self.recorded
            ),
            Err(failure) => (failure.0, self.recorded),
        }
    }
}

/// Calls an executor in process, as the host would: requests and replies make a JSON round
/// trip, panics are caught, and everything the plugin reports is recorded.
pub struct Harness<E: Executor> {
    executor: E,
}

fn round_trip<T: Serialize + DeserializeOwned>(value: &T, what: &str) -> T {
    let json = serde_json::to_string(value).unwrap_or_else(|e| panic!("{what} does not serialise: {e}"));
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{what} does not read back: {e}\n{json}"))
}

impl<E: Executor> Harness<E> {
    pub fn new(executor: E) -> Self {
        Harness { executor }
    }

    /// The executor, for calls the harness has no helper for (`describe`).
    pub fn executor(&self) -> &E {
        &self.executor
    }

    fn call<Req, Reply>(
        &self,
        sink: RecordingSink,
        request: Req,
        verb: impl FnOnce(&E, Req, &Events<'_>) -> Result<Reply, PluginFailure>,
    ) -> Call<Reply>
    where
        Req: Serialize + DeserializeOwned,
        Reply: Serialize + DeserializeOwned,
    {
        let request = round_trip(&request, "the request");
        let events = Events::new(EventSink_TO::from_ptr(&sink, TD_Opaque));
        let result = match catch_unwind(AssertUnwindSafe(|| verb(&self.executor, request, &events))) {
            Ok(Ok(reply)) => Ok(round_trip(&reply, "the reply")),
            Ok(Err(failure)) => Err(failure),
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|text| (*text).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic with a non-text payload".to_owned());
                Err(PluginFailure::new(format!("the plugin panicked: {message}")))
            }
        };
        Call {
            result,
            recorded: sink.recorded(),
        }
    }

    pub fn attach(&self, request: AttachRequest) -> Call<AttachReply> {
        self.call(RecordingSink::new(), request, |e, r, events| e.attach(r, events))
    }

    pub fn prepare(&self, request: PrepareRequest) -> Call<PrepareReply> {
        self.call(RecordingSink::new(), request, |e, r, events| e.prepare(r, events))
    }

    pub fn run(&self, request: RunRequest) -> Call<RunOutcome> {
        self.call(RecordingSink::new(), request, |e, r, events| e.run(r, events))
    }

    /// A run that is cancelled (as by Ctrl-C) as soon as `when` holds for what it reported.
    pub fn run_cancelled_when(
        &self,
        request: RunRequest,
        when: impl Fn(&Recorded) -> bool + Send + Sync + 'static,
    ) -> Call<RunOutcome> {
        self.call(RecordingSink::cancelling_when(when), request, |e, r, events| {
            e.run(r, events)
        })
    }

    pub fn clean(&self, request: CleanRequest) -> Call<CleanReply> {
        self.call(RecordingSink::new(), request, |e, r, events| e.clean(r, events))
    }

    pub fn reap(&self, request: ReapRequest) -> Call<ReapReply> {
        self.call(RecordingSink::new(), request, |e, r, events| e.reap(r, events))
    }
}
