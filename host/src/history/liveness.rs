//! Whether the process that drives a run is still there. A pid alone can be reused, so the
//! process's start time (from `/proc/<pid>/stat`) is recorded with it and compared.

/// The start time of a process in clock ticks since boot, if it exists.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: skip past its last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Fields after the name start at field 3 (state); starttime is field 22.
    after_name.split_whitespace().nth(19)?.parse().ok()
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
    fn a_finished_process_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_is_alive(pid, None));
    }
}
