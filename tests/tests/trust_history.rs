//! Issue 9, items 5, 8 and 9: a full disk never loses data silently, the history reads on
//! read-only media, and reading it has no side effects. The tests mount what they need (they
//! run as root) and unmount it when they end.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use xp_tests::{process_exists, processes_matching, TestProject};

/// A mount that is undone when dropped.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount(args: &[&str], at: &Path) -> Mounted {
    let status = Command::new("mount").args(args).arg(at).status().expect("mount runs");
    assert!(
        status.success(),
        "mount {args:?} {} (the tests run as root)",
        at.display()
    );
    Mounted(at.to_path_buf())
}

/// A small tmpfs over the (empty) project folder, made a project again.
fn project_on_small_disk(size: &str) -> (TestProject, Mounted) {
    let project = TestProject::empty();
    let mounted = mount(
        &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"],
        &project.root(),
    );
    project.xp(["init"]).run().success();
    (project, mounted)
}

/// The size of the file system holding `dir`, in bytes.
fn file_system_size(dir: &Path) -> u64 {
    let text = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(
        unsafe { libc::statvfs(text.as_ptr(), &mut stat) },
        0,
        "statvfs {}",
        dir.display()
    );
    stat.f_blocks as u64 * stat.f_frsize as u64
}

/// Fills the file system of `dir` to the last byte — only ever the small one a test mounted:
/// anything larger is refused, so a test can never fill the machine's disk.
fn fill(dir: &Path) -> PathBuf {
    assert!(
        file_system_size(dir) <= 16 << 20,
        "{} is not on the small test file system; refusing to fill it",
        dir.display()
    );
    let filler = dir.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .stderr(std::process::Stdio::null())
        .status();
    // dd stops at the last whole block: top up byte by byte.
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(&filler).unwrap();
    while file.write_all(&[0u8; 512]).is_ok() {}
    while file.write_all(&[0u8]).is_ok() {}
    filler
}

const FLOOD: &str = r#"import sys, time
from xp_logging import log_metric
line = "x" * 1000
for i in range(4000):
    print(i, line)
for step in range(50):
    log_metric("loss", 1.0 / (step + 1))
if "--fail" in sys.argv:
    # Let standard output be read to its end first: the traceback is then the last output.
    sys.stdout.flush()
    time.sleep(1)
    raise RuntimeError("the traceback's last words")
"#;

#[test]
fn a_full_disk_is_recorded_as_lost_data_and_said_once() {
    let (project, _mounted) = project_on_small_disk("2m");
    project.write("flood.py", FLOOD);
    let run = project.xp(["submit", "flood.py"]).run();
    assert_eq!(run.code, Some(0), "the script's exit code: {run:?}");
    let warnings = run.stderr.matches("incomplete").count();
    assert_eq!(warnings, 1, "said once:\n{}", run.stderr);
    assert!(run.stderr.contains("no space left on device on"), "{}", run.stderr);

    let record = project.last_record();
    assert_eq!(record["status"], "Completed");
    let lost: Vec<&str> = record["lost"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let log_loss = lost
        .iter()
        .find(|l| l.starts_with("log: "))
        .unwrap_or_else(|| panic!("{lost:?}"));
    assert!(
        log_loss.contains("were not written: no space left on device on") && log_loss.contains("output.log"),
        "{log_loss}"
    );
    // Every metric value is either in the history or counted as lost.
    let metrics = project
        .xp(["history", "metrics", record["run_id"].as_str().unwrap(), "-o", "json"])
        .run()
        .success();
    let recorded = serde_json::from_str::<serde_json::Value>(&metrics.stdout)
        .unwrap()
        .as_array()
        .map(|points| points.iter().filter(|p| p["name"] == "loss").count())
        .unwrap_or(0);
    if recorded < 50 {
        let metric_loss = lost
            .iter()
            .find(|l| l.starts_with("metrics: "))
            .unwrap_or_else(|| panic!("{recorded} of 50 metric values, and no word of it: {lost:?}"));
        assert!(
            metric_loss.contains(&format!("{} value(s) of loss", 50 - recorded)),
            "{metric_loss}"
        );
    }
    let table = project.xp(["history", "list"]).run().success();
    assert!(table.stdout.contains("Completed (incomplete)"), "{}", table.stdout);

    // A failing script's traceback survives in the record even when the log could not hold it.
    let failed = project.xp(["submit", "flood.py", "--fail"]).run();
    assert_eq!(failed.code, Some(1), "{failed:?}");
    let record = project.last_record();
    assert_eq!(record["status"], "Failed");
    assert!(
        record["error"]
            .as_str()
            .unwrap()
            .contains("RuntimeError: the traceback's last words"),
        "{record}"
    );
    assert!(!record["lost"].as_array().unwrap().is_empty(), "{record}");
}

#[test]
fn at_a_full_disk_reading_works_and_writing_says_the_disk_is_full() {
    let (project, _mounted) = project_on_small_disk("2m");
    project.write("ok.py", "print('ok')\n");
    project.xp(["submit", "ok.py"]).run().success();
    let filler = fill(&project.root());

    for args in [
        vec!["history", "list"],
        vec!["history", "last", "-o", "json"],
        vec!["history", "logs", "1"],
    ] {
        let read = project.xp(args.clone()).run();
        assert_eq!(read.code, Some(0), "{args:?}: {read:?}");
        assert!(!read.stderr.contains("xShmMap"), "{}", read.stderr);
    }
    let logs = project.xp(["history", "logs", "1"]).run().success();
    assert_eq!(logs.stdout.trim(), "ok");

    let submit = project.xp(["submit", "ok.py"]).run();
    assert_eq!(submit.code, Some(1), "{submit:?}");
    assert!(
        submit.stderr.contains("no space left on device on"),
        "{}",
        submit.stderr
    );
    assert!(
        !submit.stderr.contains("xShmMap") && !submit.stderr.contains("disk I/O error"),
        "{}",
        submit.stderr
    );

    // Space again: the history takes runs as before.
    std::fs::remove_file(filler).unwrap();
    project.xp(["submit", "ok.py"]).run().success();
    assert_eq!(project.last_record()["run_number"], 2);
}

/// The project bind-mounted read-only elsewhere.
fn read_only_copy(project: &TestProject) -> (PathBuf, Mounted) {
    let view = project.home().join("readonly-view");
    std::fs::create_dir_all(&view).unwrap();
    let root = project.root();
    let bound = mount(&["--bind", root.to_str().unwrap()], &view);
    let status = Command::new("mount")
        .args(["-o", "remount,bind,ro"])
        .arg(&view)
        .status()
        .unwrap();
    assert!(status.success());
    (view, bound)
}

#[test]
fn the_history_reads_on_a_read_only_file_system() {
    let project = TestProject::new();
    project.write(
        "ok.py",
        "from xp_logging import log_metric\nlog_metric('acc', 0.9)\nprint('hello')\n",
    );
    project.xp(["submit", "ok.py"]).run().success();
    let (view, _mounted) = read_only_copy(&project);
    let at = |args: &[&str]| {
        let mut command = project.xp(args.iter().copied());
        command.command().current_dir(&view);
        command.run()
    };
    let list = at(&["history", "list", "-o", "json"]).success();
    let runs: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(runs[0]["status"], "Completed");
    assert!(list.stderr.contains("read-only"), "{}", list.stderr);
    let info = at(&["history", "info", "1", "-o", "json"]).success();
    let info: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
    assert_eq!(info["metrics"]["acc"], 0.9);
    assert_eq!(at(&["history", "logs", "1"]).success().stdout.trim(), "hello");
    at(&["history", "download", "1", "-d", "/tmp/never"]).success();
    let submit = at(&["submit", "ok.py"]);
    assert_eq!(submit.code, Some(1), "{submit:?}");
    assert!(submit.stderr.contains("read-only file system"), "{}", submit.stderr);
    assert!(
        !submit.stderr.contains("unable to open database file"),
        "{}",
        submit.stderr
    );
}

#[test]
fn reading_never_reaps_and_the_next_writable_command_does() {
    let project = TestProject::new();
    let seconds = format!("1001.{}", std::process::id());
    let marker = format!("sleep {seconds}");
    // The duration goes through a variable, so that only the sleep's command line holds it.
    project.write(
        "leave.py",
        &format!(
            "import subprocess, time\nsubprocess.run(['setsid', 'sh', '-c', 'd={seconds}; sleep $d &'])\nprint('left', flush=True)\ntime.sleep(300)\n"
        ),
    );
    let detached = project.xp(["submit", "-a", "leave.py"]).run().success();
    let run_id = detached.stdout.trim().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    while processes_matching(&marker).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = processes_matching(&marker);
    assert_eq!(left.len(), 1, "the script started its escapee");
    // The driver dies without a word (kill -9): the run's record says Running.
    let supervisor = processes_matching(&format!("supervise {}", project.root().display()));
    assert_eq!(supervisor.len(), 1, "{supervisor:?}");
    unsafe { libc::kill(supervisor[0] as libc::pid_t, libc::SIGKILL) };
    while process_exists(supervisor[0]) {
        std::thread::sleep(Duration::from_millis(20));
    }

    // Reading the history where it cannot be written changes nothing and ends nothing.
    let (view, mounted) = read_only_copy(&project);
    let info = project
        .xp([
            "--project",
            view.to_str().unwrap(),
            "history",
            "info",
            &run_id,
            "-o",
            "json",
        ])
        .run()
        .success();
    let info: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
    assert_eq!(info["status"], "Running");
    assert!(process_exists(left[0]), "a read ended a process");
    drop(mounted);

    // The next command on the writable history closes the run and ends what it left.
    let list = project.xp(["history", "list", "-o", "json"]).run().success();
    let runs: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(runs[0]["status"], "Failed");
    assert!(
        runs[0]["error"]
            .as_str()
            .unwrap()
            .contains("process(es) the run left behind were ended"),
        "{}",
        runs[0]
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_exists(left[0]) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!process_exists(left[0]), "the escaped process was ended");
}
