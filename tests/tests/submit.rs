//! Submitting scripts on the local target: output, exit codes, arguments, environment,
//! snapshots, artifacts and metrics, as a user sees them.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use xp_tests::TestProject;

#[test]
fn output_streams_and_the_exit_code_passes_through() {
    let project = TestProject::new();
    project.write(
        "fail.py",
        "import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\nsys.exit(3)\n",
    );
    let run = project
        .xp(["experiment", "submit", "-c", "local", "fail.py"])
        .run()
        .code(3);
    assert!(run.stdout.contains("to stdout"), "{}", run.stdout);
    assert!(
        !run.stdout.contains("to stderr"),
        "stderr stays on stderr: {}",
        run.stdout
    );
    assert!(run.stderr.contains("to stderr"), "{}", run.stderr);

    let record = project.last_record();
    assert_eq!(record["status"], "Failed");
    assert_eq!(record["exit_code"], 3);
    let error = record["error"].as_str().unwrap();
    assert!(
        error.contains("exited with code 3") && error.contains("to stderr"),
        "a failed run keeps the script's last output: {error}"
    );
    assert_eq!(record["script"], "fail.py");
    assert_eq!(record["target"], "local");
    let log =
        std::fs::read_to_string(project.path(&format!(".xp/runs/{}/output.log", record["run_id"].as_str().unwrap())))
            .unwrap();
    assert!(
        log.contains("to stdout") && log.contains("to stderr"),
        "the run's log keeps both streams: {log}"
    );
}

#[test]
fn arguments_environment_and_file_placeholder_arrive_verbatim() {
    let project = TestProject::new();
    project.write(
        "aml_config/args.runconfig",
        "ArgumentVector:\n  - \"$file\"\n  - \"--from-config\"\nTarget: local\nEnvironmentVariables:\n  GREETING: \"hello world\"\n  COUNT: 3\n",
    );
    project.write(
        "show.py",
        "import json, os, sys\nprint(json.dumps({'argv': sys.argv, 'greeting': os.environ['GREETING'], 'count': os.environ['COUNT'], 'run_id': os.environ['AZUREML_RUN_ID']}))\n",
    );
    let tricky = "it's \"quoted\" $HOME; rm -rf ~ #";
    let run = project
        .xp(["submit", "-c", "args", "show.py", "--lr", "0.1", tricky])
        .run()
        .success();
    let shown: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(
        shown["argv"],
        serde_json::json!(["show.py", "--from-config", "--lr", "0.1", tricky])
    );
    assert_eq!(shown["greeting"], "hello world");
    assert_eq!(shown["count"], "3");
    let record = project.last_record();
    assert_eq!(shown["run_id"], record["run_id"]);
    assert_eq!(
        record["arguments"],
        serde_json::json!(["--from-config", "--lr", "0.1", tricky])
    );
    assert!(
        record["run_id"].as_str().unwrap().starts_with("proj_"),
        "run ids are <project>_<epoch-ms>"
    );
}

#[test]
fn the_run_sees_a_snapshot_and_its_outputs_come_back_as_artifacts() {
    let project = TestProject::new();
    project
        .write("data/input.txt", "data")
        .write("outputs/stale.txt", "from an earlier run")
        .write("big/skip.bin", "ignored")
        .write(".amlignore", "big/\n")
        .write(
            "train.py",
            "import os\nprint(sorted(os.listdir('.')))\nprint(open('data/input.txt').read())\nopen('data/input.txt', 'w').write('changed by the run')\nos.makedirs('outputs/sub', exist_ok=True)\nopen('outputs/model.pkl', 'w').write('model')\nopen('outputs/sub/curve.csv', 'w').write('1,2')\n",
        );
    let run = project.xp(["submit", "train.py"]).run().success();
    assert!(
        !run.stdout.contains("big"),
        "ignored folders are not copied: {}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("'.xp'"),
        "xp's folder is not copied: {}",
        run.stdout
    );
    assert!(run.stdout.contains("'data'"), "{}", run.stdout);
    assert_eq!(
        project.read("data/input.txt"),
        "data",
        "the project itself is untouched"
    );

    let record = project.last_record();
    assert_eq!(record["status"], "Completed");
    assert_eq!(
        record["artifacts"],
        serde_json::json!(["outputs/model.pkl", "outputs/sub/curve.csv"])
    );
    let run_dir = format!(".xp/runs/{}", record["run_id"].as_str().unwrap());
    assert_eq!(project.read(&format!("{run_dir}/outputs/model.pkl")), "model");
    assert!(
        !project.path(&format!("{run_dir}/snapshot")).exists(),
        "the snapshot is removed after the run"
    );
    assert!(
        !project.path(&format!("{run_dir}/outputs/stale.txt")).exists(),
        "outputs/ of the project never travels"
    );
}

#[test]
fn output_is_streamed_while_the_script_runs() {
    let project = TestProject::new();
    project.write(
        "slow.py",
        "import os, time\nprint('first line', flush=True)\nwhile not os.path.exists(os.environ['GO_FILE']):\n    time.sleep(0.02)\nprint('second line')\n",
    );
    let go_file = project.home().join("go");
    let mut child = project.xp(["submit", "slow.py"]).env("GO_FILE", &go_file).spawn();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = Instant::now();
    let first = lines.next().expect("a line").unwrap();
    assert_eq!(first, "first line");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        !go_file.exists(),
        "the first line arrived before the script could finish"
    );
    std::fs::write(&go_file, "").unwrap();
    assert_eq!(lines.next().expect("a second line").unwrap(), "second line");
    assert!(child.wait().unwrap().success());
}

#[test]
fn metrics_reach_the_history_while_the_run_goes() {
    let project = TestProject::new();
    project.write(
        "metrics.py",
        "import os, time\nfrom xp_logging import log_metric\nfrom azureml.logging import get_azureml_logger\nlogger = get_azureml_logger()\nfor step in range(3):\n    logger.log('loss', 1.0 / (step + 1))\nlog_metric('accuracy', 0.75)\nlogger.log('curve', [0.1, 0.2, 0.3])\nprint('metrics logged', flush=True)\nwhile not os.path.exists(os.environ['GO_FILE']):\n    time.sleep(0.02)\nlog_metric('accuracy', 0.9)\n",
    );
    let go_file = project.home().join("go");
    let mut child = project.xp(["submit", "metrics.py"]).env("GO_FILE", &go_file).spawn();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(
        lines.next().unwrap().unwrap(),
        "metrics logged",
        "metric lines stay out of the output"
    );

    let live = project.last_record();
    assert_eq!(live["status"], "Running");
    assert_eq!(live["metrics"]["accuracy"], 0.75);
    assert_eq!(live["metrics"]["curve"], serde_json::json!([0.1, 0.2, 0.3]));

    std::fs::write(&go_file, "").unwrap();
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert!(rest.is_empty(), "nothing but metrics followed: {rest:?}");
    assert!(child.wait().unwrap().success());
    let done = project.last_record();
    assert_eq!(done["status"], "Completed");
    assert_eq!(done["metrics"]["accuracy"], 0.9, "the last value wins");
    assert_eq!(done["metrics"]["loss"].as_f64().unwrap(), 1.0 / 3.0);
}

#[test]
fn untracked_runs_leave_no_record_and_write_outputs_in_the_project() {
    let project = TestProject::new();
    let config = project
        .read("aml_config/local.runconfig")
        .replace("TrackedRun: true", "TrackedRun: false");
    project.write("aml_config/local.runconfig", &config);
    project.write("out.py", "import os\nos.makedirs('outputs', exist_ok=True)\nopen('outputs/result.txt', 'w').write('42')\nprint('done')\n");
    let run = project.xp(["submit", "out.py"]).run().success();
    assert!(run.stdout.contains("done"));
    assert_eq!(project.read("outputs/result.txt"), "42");
    let untracked = project.path(".xp/untracked");
    assert!(
        std::fs::read_dir(&untracked)
            .map(|mut d| d.next().is_none())
            .unwrap_or(true),
        "an untracked run leaves nothing in .xp/"
    );
    let list = project.xp(["history", "list", "-o", "json"]).run().success();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&list.stdout).unwrap(),
        serde_json::json!([])
    );
}

#[test]
fn the_git_commit_of_the_project_is_recorded() {
    let project = TestProject::new();
    project.write("hello.py", "print('hi')\n");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(project.root())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.com",
        "commit",
        "-qm",
        "init",
    ]);
    let head = git(&["rev-parse", "HEAD"]);
    project.xp(["submit", "hello.py"]).run().success();
    assert_eq!(project.last_record()["git_commit"], head.as_str());
    assert_eq!(
        git(&["status", "--porcelain"]),
        "",
        "xp's folder is ignored by git (xp init wrote .gitignore)"
    );
}
