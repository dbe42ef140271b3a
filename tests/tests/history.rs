//! The run history: listing, filtering, details, concurrency, and runs whose driver vanished.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use xp_tests::TestProject;

fn list(project: &TestProject, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["history", "list", "-o", "json"];
    all.extend_from_slice(args);
    let run = project.xp(all).run().success();
    serde_json::from_str::<serde_json::Value>(&run.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn list_filters_pages_and_shows_newest_first() {
    let project = TestProject::new();
    project
        .write("ok.py", "print('ok')\n")
        .write("bad.py", "raise SystemExit(2)\n");
    project
        .xp(["computetarget", "attach", "local", "--name", "other"])
        .run()
        .success();
    project.xp(["submit", "ok.py"]).run().success();
    project.xp(["submit", "bad.py"]).run().code(2);
    project.xp(["submit", "-c", "other", "ok.py"]).run().success();

    let all = list(&project, &[]);
    let numbers: Vec<u64> = all.iter().map(|r| r["run_number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, vec![3, 2, 1], "newest first");
    let failed = list(&project, &["--status", "failed"]);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["script"], "bad.py");
    let other = list(&project, &["--target", "other"]);
    assert_eq!(other.len(), 1);
    assert_eq!(other[0]["run_number"], 3);
    assert_eq!(list(&project, &["-n", "2"]).len(), 2);

    let table = project.xp(["history", "list"]).run().success();
    for needle in ["RUN ID", "Completed", "Failed", "bad.py", "other"] {
        assert!(
            table.stdout.contains(needle),
            "the table shows {needle}:\n{}",
            table.stdout
        );
    }
}

#[test]
fn info_by_id_or_number_and_last() {
    let project = TestProject::new();
    project.write("ok.py", "from xp_logging import log_metric\nlog_metric('auc', 0.8)\n");
    project.xp(["submit", "ok.py", "--epochs", "2"]).run().success();
    let by_number = project.run_record("1");
    let by_id = project.run_record(by_number["run_id"].as_str().unwrap());
    assert_eq!(by_number["run_id"], by_id["run_id"]);
    for key in ["created_ms", "started_ms", "ended_ms", "duration_ms"] {
        assert!(by_number[key].is_number(), "{key} is recorded: {by_number}");
    }
    assert!(by_number["started_ms"].as_i64() >= by_number["created_ms"].as_i64());
    assert!(by_number["ended_ms"].as_i64() >= by_number["started_ms"].as_i64());
    assert_eq!(by_number["exit_code"], 0);
    assert_eq!(by_number["metrics"]["auc"], 0.8);
    assert_eq!(by_number["arguments"], serde_json::json!(["--epochs", "2"]));

    let table = project.xp(["history", "last"]).run().success();
    for needle in ["Run id", "Completed", "Metric auc", "0.8", "--epochs 2"] {
        assert!(
            table.stdout.contains(needle),
            "history last shows {needle}:\n{}",
            table.stdout
        );
    }
}

#[test]
fn concurrent_runs_of_one_project_each_get_their_own_record() {
    let project = TestProject::new();
    project.write(
        "job.py",
        "import os, sys\nfrom xp_logging import log_metric\nn = int(sys.argv[1])\nlog_metric('n', n)\nos.makedirs('outputs', exist_ok=True)\nopen('outputs/n.txt', 'w').write(str(n))\nprint('job', n)\n",
    );
    let count = 8;
    let children: Vec<_> = (0..count)
        .map(|n| project.xp(["submit", "-q", "job.py", &n.to_string()]).spawn())
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let runs = list(&project, &["-n", "100"]);
    assert_eq!(runs.len(), count);
    let mut numbers: Vec<u64> = runs.iter().map(|r| r["run_number"].as_u64().unwrap()).collect();
    numbers.sort();
    assert_eq!(numbers, (1..=count as u64).collect::<Vec<_>>());
    let mut seen = std::collections::BTreeSet::new();
    for run in &runs {
        let record = project.run_record(run["run_id"].as_str().unwrap());
        assert_eq!(record["status"], "Completed");
        let n = record["metrics"]["n"].as_u64().unwrap();
        assert_eq!(
            record["arguments"],
            serde_json::json!([n.to_string()]),
            "metrics belong to their own run"
        );
        let artifact = project.read(&format!(
            ".xp/runs/{}/outputs/n.txt",
            record["run_id"].as_str().unwrap()
        ));
        assert_eq!(artifact, n.to_string(), "artifacts belong to their own run");
        seen.insert(n);
    }
    assert_eq!(seen.len(), count);
}

#[test]
fn a_run_whose_xp_was_killed_is_marked_failed_and_its_processes_end() {
    let project = TestProject::new();
    project.write(
        "long.py",
        "import os, subprocess, sys, time\nchild = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\nprint(os.getpid(), child.pid, flush=True)\ntime.sleep(300)\n",
    );
    let mut xp = project.xp(["submit", "long.py"]).spawn();
    let mut lines = BufReader::new(xp.stdout.take().unwrap()).lines();
    let pids: Vec<u32> = lines
        .next()
        .unwrap()
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(project.last_record()["status"], "Running");
    xp.kill().unwrap();
    xp.wait().unwrap();
    let record = project.last_record();
    assert_eq!(record["status"], "Failed", "{record}");
    let error = record["error"].as_str().unwrap();
    assert!(error.contains("ended without recording"), "{record}");
    assert!(
        !error.contains("the plugin called exit") && !error.contains("the plugin ended the process"),
        "a kill -9 from outside is not blamed on the plugin: {error}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&pid| xp_tests::process_exists(pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for pid in pids {
        assert!(
            !xp_tests::process_exists(pid),
            "process {pid} of the abandoned run is still running"
        );
    }
}
