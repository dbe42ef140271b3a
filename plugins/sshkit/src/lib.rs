//! SSH transport shared by xp's `remote`, `remotedocker` and `cluster` plugins, linked into
//! each: connections with verified host keys and the target's credentials, the incremental
//! snapshot transfer (files cached on the host by content), and remote runs that survive a
//! dropped connection.

pub mod address;
pub mod connection;
pub mod keys;
pub mod lifecycle;
pub mod quote;
pub mod remote_run;
pub mod sync;
pub mod target;

pub use address::Address;
pub use connection::{Connection, Credentials};
