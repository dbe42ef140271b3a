//! Ctrl-C during a submit cancels the run: the whole process tree ends and the run is
//! recorded as Canceled.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use xp_tests::{process_exists, TestProject};

#[test]
fn ctrl_c_cancels_the_run_and_ends_its_process_tree() {
    let project = TestProject::new();
    project.write(
        "tree.py",
        r#"import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
# A grandchild that tries to escape into its own session.
escaped = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
print(os.getpid(), child.pid, escaped.pid, flush=True)
time.sleep(300)
"#,
    );
    let mut xp = project.xp(["submit", "tree.py"]).spawn();
    let mut lines = BufReader::new(xp.stdout.take().unwrap()).lines();
    let pids: Vec<u32> = lines
        .next()
        .expect("the script prints its pids")
        .unwrap()
        .split_whitespace()
        .map(|pid| pid.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 3);
    assert!(pids.iter().all(|&pid| process_exists(pid)));

    // What a terminal's Ctrl-C does to the foreground job: SIGINT to xp.
    unsafe { libc::kill(xp.id() as libc::pid_t, libc::SIGINT) };
    let status = xp.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(130),
        "a cancelled submit exits like an interrupted command"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|&pid| process_exists(pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in pids {
        assert!(!process_exists(pid), "process {pid} of the run is still running");
    }
    let record = project.last_record();
    assert_eq!(record["status"], "Canceled");
    assert!(record["ended_ms"].is_number());
}

#[test]
fn a_script_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let project = TestProject::new();
    project.write(
        "stubborn.py",
        "import os, signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint(os.getpid(), flush=True)\ntime.sleep(300)\n",
    );
    let mut xp = project.xp(["submit", "stubborn.py"]).spawn();
    let mut lines = BufReader::new(xp.stdout.take().unwrap()).lines();
    let pid: u32 = lines.next().unwrap().unwrap().trim().parse().unwrap();
    unsafe { libc::kill(xp.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(xp.wait().unwrap().code(), Some(130));
    assert!(!process_exists(pid), "the stubborn script was killed");
    assert_eq!(project.last_record()["status"], "Canceled");
}
