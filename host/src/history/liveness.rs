//! Whether the process that drives a run is still there. A pid alone can be reused, so the
//! process's start time (from `/proc/<pid>/stat`) is recorded with it and compared.

/// The start time of a process in clock ticks since boot, if it exists and has not ended (a
/// zombie, dead but not yet reaped, counts as ended).
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: skip past its last ')'.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    // Fields after the name start at field 3 (state); starttime is field 22.
    if matches!(fields.next()?, "Z" | "X" | "x") {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

pub fn current_process_start() -> Option<u64> {
    process_start(std::process::id())
}

/// True when `pid` runs and started at `start` (when `start` is known).
pub fn process_is_alive(pid: u32, start: Option<u64>) -> bool {
    match (process_start(pid), start) {
        (Some(actual), Some(expected)) => actual == expected,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Ends (SIGKILL) every process on this machine whose environment says it belongs to run
/// `run_id` (xp sets `XP_RUN_ID` for every script), except this process and its ancestors.
/// Returns how many there were. Used when a run's driver vanished and left them orphaned.
pub fn end_processes_of_run(run_id: &str) -> usize {
    let needle = format!("XP_RUN_ID={run_id}");
    let mut spared = vec![std::process::id()];
    let mut pid = std::process::id();
    while let Some(parent) = parent_of(pid).filter(|p| *p > 1) {
        spared.push(parent);
        pid = parent;
    }
    let mut ended = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        if spared.contains(&pid) {
            continue;
        }
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if environ.split(|b| *b == 0).any(|entry| entry == needle.as_bytes()) {
            // SAFETY: kill(2) on a pid whose environment names the vanished run.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            ended += 1;
        }
    }
    ended
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_wrong_start_time_is_not() {
        let start = current_process_start().expect("/proc is readable");
        assert!(process_is_alive(std::process::id(), Some(start)));
        assert!(!process_is_alive(std::process::id(), Some(start + 1)));
    }

    #[test]
    fn a_zombie_is_not_alive() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        let start = process_start(pid);
        assert!(start.is_some() && process_is_alive(pid, start));
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        // Not reaped yet: the process is a zombie until wait().
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while process_start(pid).is_some() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!process_is_alive(pid, start));
        child.wait().unwrap();
    }

    #[test]
    fn a_finished_process_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_is_alive(pid, None));
    }
}
