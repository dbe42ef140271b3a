//! `xp experiment cancel`: asks a run's driver (an attached `xp` or a supervisor) to cancel,
//! the same way Ctrl-C does, and waits for the run to be recorded as ended.

use std::time::{Duration, Instant};

use xp_plugin_api::RunStatus;

use crate::history::{process_is_alive, HistoryError, HistoryStore, RunRecord};

/// How long cancel waits for the run to end: the plugin's grace period plus clean-up.
const WAIT: Duration = Duration::from_secs(30);

pub enum Cancelled {
    /// The run had already ended; nothing was changed.
    AlreadyEnded(RunRecord),
    /// The run ended after the request (normally Canceled).
    Ended(RunRecord),
    /// The driver was asked but the run has not ended yet.
    StillRunning(RunRecord),
}

pub fn cancel(store: &HistoryStore, run: &str) -> Result<Cancelled, HistoryError> {
    // A run whose driver vanished is closed (and its processes ended) here.
    store.reap_vanished()?;
    let record = store.get(run)?;
    if record.status.is_final() {
        return Ok(Cancelled::AlreadyEnded(record));
    }
    if let Some(pid) = record.driver_pid {
        if process_is_alive(pid, record.driver_start) {
            // SAFETY: kill(2) with a pid checked to be the run's driver (pid and start time).
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
    }
    let deadline = Instant::now() + WAIT;
    loop {
        // A driver that died meanwhile is noticed here.
        store.reap_vanished()?;
        let current = store.get(&record.run_id)?;
        if current.status.is_final() {
            return Ok(Cancelled::Ended(current));
        }
        if Instant::now() > deadline {
            return Ok(Cancelled::StillRunning(current));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Cancelled {
    pub fn status(&self) -> RunStatus {
        match self {
            Cancelled::AlreadyEnded(record) | Cancelled::Ended(record) | Cancelled::StillRunning(record) => {
                record.status
            }
        }
    }
}
