//! Managing runs after submit: detached runs, following logs, cancelling, comparing,
//! downloading, promoting, querying and deleting.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use xp_tests::{process_exists, supervisor_pid, TestProject};

/// Waits until the run's record is final and returns it.
fn wait_for_end(project: &TestProject, run: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let record = project.run_record(run);
        let status = record["status"].as_str().unwrap().to_owned();
        if ["Completed", "Failed", "Canceled"].contains(&status.as_str()) {
            return record;
        }
        assert!(Instant::now() < deadline, "run {run} did not end: {record}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn submit_detached(project: &TestProject, args: &[&str]) -> String {
    let mut all = vec!["submit", "--detach"];
    all.extend_from_slice(args);
    let run = project.xp(all).run().success();
    let run_id = run.stdout.trim().to_owned();
    assert!(
        run_id.starts_with("proj_"),
        "a detached submit prints the run id: {run:?}"
    );
    run_id
}

#[test]
fn a_detached_run_returns_at_once_and_goes_on() {
    let project = TestProject::new();
    project.write(
        "wait.py",
        "import os, time\nprint('started', flush=True)\nwhile not os.path.exists(os.environ['GO_FILE']):\n    time.sleep(0.02)\nprint('finished')\nos.makedirs('outputs', exist_ok=True)\nopen('outputs/r.txt', 'w').write('r')\n",
    );
    let go = project.home().join("go");
    let started = Instant::now();
    let run = project
        .xp(["submit", "-a", "wait.py"])
        .env("GO_FILE", &go)
        .run()
        .success();
    assert!(started.elapsed() < Duration::from_secs(10));
    let run_id = run.stdout.trim();
    let record = project.run_record(run_id);
    assert!(
        ["Queued", "Preparing", "Running"].contains(&record["status"].as_str().unwrap()),
        "{record}"
    );
    std::fs::write(&go, "").unwrap();
    let record = wait_for_end(&project, run_id);
    assert_eq!(record["status"], "Completed");
    assert_eq!(record["artifacts"], serde_json::json!(["outputs/r.txt"]));
    let logs = project.xp(["history", "logs", run_id]).run().success();
    assert_eq!(logs.stdout, "started\nfinished\n");
    assert!(logs.stderr.contains("Completed"), "{}", logs.stderr);
}

#[test]
fn logs_follow_from_the_first_line_and_end_with_the_status() {
    let project = TestProject::new();
    project.write(
        "ticks.py",
        "import os, sys, time\nfor i in range(3):\n    print('tick', i, flush=True)\nwhile not os.path.exists(os.environ['GO_FILE']):\n    time.sleep(0.02)\nprint('last line')\nsys.exit(4)\n",
    );
    let go = project.home().join("go");
    let run_id = {
        let run = project
            .xp(["submit", "-a", "ticks.py"])
            .env("GO_FILE", &go)
            .run()
            .success();
        run.stdout.trim().to_owned()
    };
    // Start following mid-run: the lines printed so far come first.
    let mut follower = project.xp(["history", "logs", &run_id, "-f"]).spawn();
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    for i in 0..3 {
        assert_eq!(lines.next().unwrap().unwrap(), format!("tick {i}"));
    }
    std::fs::write(&go, "").unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "last line");
    assert!(lines.next().is_none(), "the follower ends with the run");
    let output = follower.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Failed") && stderr.contains("exit code 4"), "{stderr}");
}

#[test]
fn cancel_ends_a_detached_run_and_its_processes() {
    let project = TestProject::new();
    project.write(
        "tree.py",
        "import os, subprocess, sys, time\nchild = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\nprint(os.getpid(), child.pid, flush=True)\ntime.sleep(300)\n",
    );
    let run_id = submit_detached(&project, &["tree.py"]);
    let log = project.path(&format!(".xp/runs/{run_id}/output.log"));
    let deadline = Instant::now() + Duration::from_secs(20);
    let pids: Vec<u32> = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = text.lines().next() {
            break line.split_whitespace().map(|p| p.parse().unwrap()).collect();
        }
        assert!(Instant::now() < deadline, "the script never printed its pids");
        std::thread::sleep(Duration::from_millis(20));
    };
    let cancel = project.xp(["experiment", "cancel", &run_id]).run().success();
    assert!(cancel.stderr.contains("Canceled"), "{}", cancel.stderr);
    assert_eq!(project.run_record(&run_id)["status"], "Canceled");
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|&p| process_exists(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for pid in pids {
        assert!(!process_exists(pid), "process {pid} survived the cancel");
    }
    let again = project.xp(["experiment", "cancel", &run_id]).run().success();
    assert!(again.stderr.contains("already ended"), "{}", again.stderr);
    assert_eq!(
        project.run_record(&run_id)["status"],
        "Canceled",
        "cancelling a finished run changes nothing"
    );
}

#[test]
fn killing_the_supervisor_marks_the_run_and_ends_its_script() {
    let project = TestProject::new();
    project.write(
        "long.py",
        "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(300)\n",
    );
    let run_id = submit_detached(&project, &["long.py"]);
    let log = project.path(&format!(".xp/runs/{run_id}/output.log"));
    let deadline = Instant::now() + Duration::from_secs(20);
    let script_pid: u32 = loop {
        if let Some(line) = std::fs::read_to_string(&log).unwrap_or_default().lines().next() {
            break line.trim().parse().unwrap();
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    };
    let supervisor = supervisor_pid(&run_id);
    unsafe { libc::kill(supervisor as i32, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_exists(supervisor) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let record = project.run_record(&run_id);
    assert_eq!(record["status"], "Failed");
    assert!(
        record["error"].as_str().unwrap().contains("ended without recording"),
        "{record}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_exists(script_pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !process_exists(script_pid),
        "the script of a dead supervisor is not left running"
    );
    let logs = project.xp(["history", "logs", &run_id]).run().success();
    assert_eq!(logs.stdout.trim(), script_pid.to_string(), "the last output is kept");
}

#[test]
fn fifty_detached_runs_at_once_are_all_recorded_apart() {
    let project = TestProject::new();
    project.write(
        "job.py",
        "import os, sys\nfrom xp_logging import log_metric\nn = int(sys.argv[1])\nprint('job', n)\nlog_metric('n', n)\nos.makedirs('outputs', exist_ok=True)\nopen('outputs/n.txt', 'w').write(str(n))\nsys.exit(1 if n % 10 == 9 else 0)\n",
    );
    let count = 50;
    let submits: Vec<_> = (0..count)
        .map(|n| project.xp(["submit", "-q", "-a", "job.py", &n.to_string()]).spawn())
        .collect();
    let mut ids = Vec::new();
    for child in submits {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        ids.push(String::from_utf8(output.stdout).unwrap().trim().to_owned());
    }
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), count, "every run has its own id");
    for id in &ids {
        let record = wait_for_end(&project, id);
        let n: i64 = record["arguments"][0].as_str().unwrap().parse().unwrap();
        let expected = if n % 10 == 9 { "Failed" } else { "Completed" };
        assert_eq!(record["status"], expected, "{record}");
        assert_eq!(record["metrics"]["n"], n, "metrics belong to their own run");
        assert_eq!(project.read(&format!(".xp/runs/{id}/outputs/n.txt")), n.to_string());
        let logs = project.xp(["history", "logs", id]).run().success();
        assert_eq!(logs.stdout, format!("job {n}\n"), "logs belong to their own run");
    }
    let listed = project
        .xp(["history", "list", "-n", "1000", "-o", "json"])
        .run()
        .success();
    let listed: Vec<serde_json::Value> = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(listed.len(), count);
}

#[test]
fn compare_metrics_query_download_promote_and_delete() {
    let project = TestProject::new();
    project.write(
        "train.py",
        "import os, sys\nfrom azureml.logging import get_azureml_logger\nlog = get_azureml_logger()\nlr = float(sys.argv[1])\nfor step in range(3):\n    log.log('loss', lr * (3 - step))\nlog.log('Accuracy', 1 - lr)\nos.makedirs('outputs/plots', exist_ok=True)\nopen('outputs/model.pkl', 'w').write('model %s' % lr)\nopen('outputs/plots/a.png', 'w').write('png')\n",
    );
    project.xp(["submit", "-q", "train.py", "0.1"]).run().success();
    project.xp(["submit", "-q", "train.py", "0.3"]).run().success();

    let compared = project
        .xp(["history", "compare", "1", "2", "-o", "json"])
        .run()
        .success();
    let compared: Vec<serde_json::Value> = serde_json::from_str(&compared.stdout).unwrap();
    assert_eq!(compared[0]["arguments"], serde_json::json!(["0.1"]));
    assert_eq!(compared[0]["metrics"]["loss"]["last"].as_f64().unwrap(), 0.1);
    assert!(
        (compared[1]["metrics"]["loss"]["best"].as_f64().unwrap() - 0.3).abs() < 1e-9,
        "best loss is the minimum"
    );
    assert_eq!(compared[1]["metrics"]["Accuracy"]["best"].as_f64().unwrap(), 0.7);
    let table = project.xp(["history", "compare", "1", "2"]).run().success();
    assert!(
        table.stdout.contains("loss (best, min)") && table.stdout.contains("Accuracy (last)"),
        "{}",
        table.stdout
    );
    project.xp(["history", "compare", "1"]).run().code(2);

    let series = project
        .xp(["history", "metrics", "2", "loss", "-o", "json"])
        .run()
        .success();
    let series: Vec<serde_json::Value> = serde_json::from_str(&series.stdout).unwrap();
    let steps: Vec<u64> = series.iter().map(|p| p["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, vec![0, 1, 2]);
    assert!(series.iter().all(|p| p["time_ms"].is_number()));
    project
        .xp(["history", "metrics", "2", "f1"])
        .run()
        .error_mentions(&["f1", "Accuracy", "loss"]);

    let best = project
        .xp([
            "history",
            "list",
            "--query",
            "max_by(@, &metrics.Accuracy).arguments[0]",
        ])
        .run()
        .success();
    assert_eq!(best.stdout.trim(), "\"0.1\"");
    project
        .xp(["history", "list", "--query", "max_by(("])
        .run()
        .error_mentions(&["--query", "JMESPath"]);

    let into = project.home().join("download");
    project
        .xp(["history", "download", "1", "-d", into.to_str().unwrap()])
        .run()
        .success();
    assert_eq!(
        std::fs::read_to_string(into.join("outputs/model.pkl")).unwrap(),
        "model 0.1"
    );
    assert!(into.join("outputs/plots/a.png").is_file());
    std::fs::write(into.join("outputs/model.pkl"), "mine").unwrap();
    project
        .xp([
            "history",
            "download",
            "2",
            "--artifact",
            "outputs/model.pkl",
            "-d",
            into.to_str().unwrap(),
        ])
        .run()
        .error_mentions(&["model.pkl", "--overwrite"]);
    assert_eq!(
        std::fs::read_to_string(into.join("outputs/model.pkl")).unwrap(),
        "mine",
        "a refused download changes nothing"
    );
    project
        .xp([
            "history",
            "download",
            "2",
            "--artifact",
            "outputs/model.pkl",
            "-d",
            into.to_str().unwrap(),
            "--overwrite",
        ])
        .run()
        .success();
    assert_eq!(
        std::fs::read_to_string(into.join("outputs/model.pkl")).unwrap(),
        "model 0.3"
    );
    project
        .xp([
            "history",
            "download",
            "2",
            "--artifact",
            "outputs/nothing",
            "-d",
            into.to_str().unwrap(),
        ])
        .run()
        .error_mentions(&["outputs/nothing", "outputs/model.pkl"]);

    project
        .xp([
            "history",
            "promote",
            "2",
            "--artifact-path",
            "outputs/model.pkl",
            "--name",
            "best-model",
        ])
        .run()
        .success();
    let link: serde_json::Value = serde_json::from_str(&project.read("assets/best-model.link")).unwrap();
    assert_eq!(link["artifact_path"], "outputs/model.pkl");
    assert_eq!(
        project.read(link["location"].as_str().unwrap()),
        "model 0.3",
        "the link points at the artifact"
    );
    let assets = project.xp(["asset", "list", "-o", "json"]).run().success();
    let assets: Vec<serde_json::Value> = serde_json::from_str(&assets.stdout).unwrap();
    assert_eq!(assets.len(), 1);
    assert_eq!(assets[0]["exists"], true);

    let run_one = project.run_record("1")["run_id"].as_str().unwrap().to_owned();
    project.xp(["history", "delete", "1"]).run().success();
    assert!(
        !project.path(&format!(".xp/runs/{run_one}")).exists(),
        "the run's files go with it"
    );
    project
        .xp(["history", "info", "1"])
        .run()
        .error_mentions(&["no run '1'"]);
    project.xp(["history", "delete", "--older-than", "0s"]).run().success();
    let left = project.xp(["history", "list", "-o", "json"]).run().success();
    assert_eq!(left.stdout.trim(), "[]");
    let assets = project.xp(["asset", "list", "-o", "json"]).run().success();
    assert!(
        assets.stdout.contains("\"exists\": false"),
        "a link to a deleted run says so: {}",
        assets.stdout
    );
    project.xp(["submit", "-q", "train.py", "0.2"]).run().success();
    assert_eq!(project.last_record()["run_number"], 3, "run numbers are never reused");
}
