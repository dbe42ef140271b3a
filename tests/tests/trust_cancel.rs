//! Issue 9, item 6: cancel ends every process a run started, also those that left its session
//! (`setsid`) or were double-forked, on this machine and on a remote host; a run that ends
//! leaves none behind either.

use std::time::{Duration, Instant};

use xp_tests::{processes_matching, TestProject};

/// A script that starts two processes that leave its session: `setsid sh -c 'sleep ... &'`
/// (the duration through a variable, so that only the sleep's command line shows it),
/// and (with `--clear-env`) a double fork that also drops its whole environment. It prints
/// `escaped` once both run, then sleeps unless given `--exit`.
fn escape_script(tag: &str) -> String {
    format!(
        r#"import os, subprocess, sys, time
subprocess.run(["setsid", "sh", "-c", "d=1003.{tag}1; sleep $d &"])
if "--clear-env" in sys.argv:
    child = os.fork()
    if child == 0:
        os.setsid()
        if os.fork() == 0:
            os.execve("/bin/sleep", ["sleep", "1003.{tag}2"], {{}})
        os._exit(0)
    os.waitpid(child, 0)
print("escaped", flush=True)
if "--exit" not in sys.argv:
    time.sleep(300)
"#
    )
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn escapees(tag: &str) -> Vec<u32> {
    processes_matching(&format!("sleep 1003.{tag}"))
}

/// Submits the script detached with `args`, waits until its escapees run, cancels, and checks
/// that none is left and the run is Canceled.
fn cancel_and_check(project: &TestProject, config: &str, tag: &str, expected: usize, args: &[&str]) {
    project.write("escape.py", &escape_script(tag));
    let mut submit = vec!["submit", "-a", "-c", config, "escape.py"];
    submit.extend_from_slice(args);
    let run_id = project.xp(submit).run().success().stdout.trim().to_owned();
    wait_for("the escapees", || escapees(tag).len() == expected);
    let cancel = project.xp(["experiment", "cancel", &run_id]).run().success();
    assert!(cancel.stderr.contains("Canceled"), "{}", cancel.stderr);
    assert_eq!(project.run_record(&run_id)["status"], "Canceled");
    // Cancel returns once the run is recorded as ended; the processes are gone by then.
    let left = escapees(tag);
    assert!(left.is_empty(), "processes left after cancel: {left:?}");
}

#[test]
fn local_cancel_ends_processes_that_left_the_session() {
    let project = TestProject::new();
    let tag = format!("{}0", std::process::id());
    cancel_and_check(&project, "local", &tag, 2, &["--clear-env"]);
}

#[test]
fn a_local_run_that_ends_leaves_no_process_behind() {
    let project = TestProject::new();
    let tag = format!("{}7", std::process::id());
    project.write("escape.py", &escape_script(&tag));
    let run = project
        .xp(["submit", "escape.py", "--clear-env", "--exit"])
        .run()
        .success();
    assert!(run.stdout.contains("escaped"), "{}", run.stdout);
    let left = escapees(&tag);
    assert!(left.is_empty(), "processes left after the run: {left:?}");
    // Nothing left as a zombie of xp either: xp is gone, and so are they.
    assert_eq!(project.last_record()["status"], "Completed");
}

fn remote_project() -> TestProject {
    let project = TestProject::new();
    project.attach_over_ssh("remote", "r", &["--set", "remoteDirectory=.xp-remote-trust-cancel"]);
    project
}

#[test]
fn remote_cancel_ends_processes_that_left_the_session() {
    let project = remote_project();
    let tag = format!("{}3", std::process::id());
    cancel_and_check(&project, "r", &tag, 1, &[]);
}

#[test]
fn a_remote_run_that_ends_leaves_no_process_behind() {
    let project = remote_project();
    let tag = format!("{}5", std::process::id());
    project.write("escape.py", &escape_script(&tag));
    project.xp(["submit", "-c", "r", "escape.py", "--exit"]).run().success();
    let left = escapees(&tag);
    assert!(left.is_empty(), "processes left on the host after the run: {left:?}");
}
