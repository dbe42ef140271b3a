//! `xp history logs RUN [-f]`: a run's output from its first line, followed live while the run
//! goes, ending with the run's final status.
//!
//! Following waits on inotify (through `notify`) for the run's folder, so a line the driver
//! appends is read as soon as it is written; where no watch can be set (no inotify, or its
//! watch limit reached) the log is polled instead.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

use crate::history::HistoryStore;

/// How often a followed log is checked for new output when it cannot be watched.
const POLL: Duration = Duration::from_millis(20);
/// How often the run's status is checked while following.
const STATUS_EVERY: Duration = Duration::from_millis(200);

/// A watch on the run's folder, or None when the system cannot give one.
fn watch(run_dir: &Path) -> Option<(notify::RecommendedWatcher, Receiver<()>)> {
    let (changed, wake) = channel();
    let mut watcher = notify::recommended_watcher(move |_event: notify::Result<notify::Event>| {
        let _ = changed.send(());
    })
    .ok()?;
    watcher.watch(run_dir, RecursiveMode::NonRecursive).ok()?;
    Some((watcher, wake))
}

/// `reap` closes runs whose driver vanished (the history's step and the plugins' `reap`).
pub fn print(
    store: &HistoryStore,
    run: &str,
    follow: bool,
    reap: &dyn Fn(&HistoryStore) -> Result<(), crate::history::HistoryError>,
) -> anyhow::Result<i32> {
    let mut record = store.get(run)?;
    // Nothing can be written to a read-only history: there is nothing to wait for.
    let follow = follow && store.read_only().is_none();
    let path = store.run_dir(&record.run_id).join("output.log");
    let mut out = std::io::stdout().lock();
    let mut position = 0u64;
    let mut buffer = Vec::with_capacity(64 * 1024);
    let mut last_status_check = Instant::now();
    let watching = if follow && !record.status.is_final() {
        watch(&store.run_dir(&record.run_id))
    } else {
        None
    };
    loop {
        // Read whatever was appended since the last look.
        if let Ok(mut file) = std::fs::File::open(&path) {
            file.seek(SeekFrom::Start(position))?;
            buffer.clear();
            file.read_to_end(&mut buffer)?;
            if !buffer.is_empty() {
                position += buffer.len() as u64;
                if out.write_all(&buffer).and_then(|_| out.flush()).is_err() {
                    // The reader went away (`| head`): stop quietly.
                    return Ok(0);
                }
            }
        }
        if !follow || record.status.is_final() {
            break;
        }
        if last_status_check.elapsed() >= STATUS_EVERY {
            // Read once more after the run ended so no last line is lost. A driver that
            // vanished meanwhile ends the run here (where the history can be written).
            if store.read_only().is_none() {
                reap(store)?;
            }
            record = store.get(&record.run_id)?;
            last_status_check = Instant::now();
            if record.status.is_final() {
                continue;
            }
        }
        match &watching {
            Some((_, wake)) => {
                let until_status = STATUS_EVERY.saturating_sub(last_status_check.elapsed());
                match wake.recv_timeout(until_status) {
                    // Several events may have queued: one read serves them all.
                    Ok(()) => while wake.try_recv().is_ok() {},
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => std::thread::sleep(POLL),
                }
            }
            None => std::thread::sleep(POLL),
        }
    }
    drop(out);
    let exit = record
        .exit_code
        .map(|code| format!(", exit code {code}"))
        .unwrap_or_default();
    let error = record.error.as_ref().map(|e| format!(": {e}")).unwrap_or_default();
    let lost = if record.lost.is_empty() {
        String::new()
    } else {
        format!("; incomplete: {}", record.lost.join("; "))
    };
    eprintln!("Run {}: {}{exit}{error}{lost}", record.run_id, record.status);
    Ok(0)
}
