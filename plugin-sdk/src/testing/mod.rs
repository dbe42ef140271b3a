//! A test harness for plugins: call an [`Executor`] in process, without the host, with requests
//! built in one line, and look at everything it reported.
//!
//! ```
//! use xp_plugin_api::{Events, Executor, PluginDescription, PluginFailure, RunOutcome, RunRequest};
//! use xp_plugin_sdk::testing::{Harness, Scratch};
//!
//! struct Echo;
//! impl Executor for Echo {
//!     fn describe(&self) -> PluginDescription {
//!         PluginDescription::new("echo", "0.1.0", &["echo"])
//!     }
//!     fn run(&self, request: RunRequest, events: &Events<'_>) -> Result<RunOutcome, PluginFailure> {
//!         events.stdout(&request.arguments.join(" "));
//!         Ok(RunOutcome::exited(0))
//!     }
//! }
//!
//! let scratch = Scratch::new();
//! let request = scratch.run_request(scratch.target("echo", serde_json::json!({})), "train.py", &["--lr", "0.1"]);
//! let (outcome, recorded) = Harness::new(Echo).run(request).ok();
//! assert_eq!(outcome.exit_code, 0);
//! assert_eq!(recorded.stdout(), ["train.py --lr 0.1"]);
//! ```
//!
//! What a plugin streams goes through the same JSON documents and event payloads as with the
//! host: requests and replies make a JSON round trip, metric lines on stdout become metrics,
//! and a panic comes back as a failure instead of unwinding into the test.

mod harness;
mod scratch;
mod sink;

pub use harness::{Call, Harness};
pub use scratch::Scratch;
pub use sink::{Recorded, RecordingSink};
