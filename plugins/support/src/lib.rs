//! Code the in-tree executor plugins share, linked statically into each: running a process
//! with live output and cancellation, collecting `outputs/`, and the environment every script
//! gets (xp's Python helpers, the shared directory).

pub mod archive;
pub mod artifacts;
pub mod environment;
pub mod lines;
pub mod outputs;
pub mod process;
pub mod resolve;
pub mod timing;
