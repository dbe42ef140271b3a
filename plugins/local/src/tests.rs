//! The local executor, called in process through the SDK's harness.

use serde_json::json;
use xp_plugin_sdk::testing::{Harness, Scratch};

use super::LocalExecutor;

#[test]
fn runs_the_script_in_its_snapshot_streaming_both_streams_and_metrics() {
    let scratch = Scratch::new();
    scratch.write(
        "train.py",
        "import os, sys\nfrom azureml.logging import get_azureml_logger\nprint('args', sys.argv[1:])\nprint('oops', file=sys.stderr)\nget_azureml_logger().log('loss', 0.5)\nos.makedirs('outputs', exist_ok=True)\nopen('outputs/model.txt', 'w').write(os.environ['XP_RUN_ID'])\nprint('share', os.environ['AZUREML_NATIVE_SHARE_DIRECTORY'])\n",
    );
    let share = scratch.root().join("share");
    let target = scratch.target(
        "local",
        json!({"pythonLocation": "python3", "nativeSharedDirectory": share.to_str().unwrap()}),
    );
    let request = scratch.run_request(target, "train.py", &["--lr", "0.1"]);
    let artifacts = request.artifacts_dir.clone();
    let run_id = request.run_id.clone();
    let (outcome, recorded) = Harness::new(LocalExecutor).run(request).ok();
    assert_eq!(outcome.exit_code, 0);
    assert!(!outcome.canceled);
    assert_eq!(recorded.stdout()[0], "args ['--lr', '0.1']");
    assert_eq!(recorded.stderr(), ["oops"]);
    assert_eq!(recorded.metric("loss"), [&json!(0.5)]);
    assert_eq!(recorded.statuses, ["Preparing", "Running"]);
    assert_eq!(
        recorded.stdout()[1],
        format!("share {}/project/", share.display()),
        "the shared directory is <nativeSharedDirectory>/<project>/"
    );
    assert_eq!(
        std::fs::read_to_string(artifacts.join("model.txt")).unwrap(),
        run_id,
        "outputs/ came back as artifacts"
    );
}

#[test]
fn a_failing_script_reports_its_exit_code() {
    let scratch = Scratch::new();
    scratch.write("fail.py", "import sys\nsys.exit(3)\n");
    let target = scratch.target("local", json!({}));
    let (outcome, _) = Harness::new(LocalExecutor)
        .run(scratch.run_request(target, "fail.py", &[]))
        .ok();
    assert_eq!(outcome.exit_code, 3);
}

#[test]
fn cancel_stops_the_script_and_its_children() {
    let scratch = Scratch::new();
    scratch.write(
        "long.py",
        "import subprocess, sys, time\nchild = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\nprint('child', child.pid, flush=True)\ntime.sleep(300)\n",
    );
    let target = scratch.target("local", json!({}));
    let started = std::time::Instant::now();
    let (outcome, recorded) = Harness::new(LocalExecutor)
        .run_cancelled_when(scratch.run_request(target, "long.py", &[]), |recorded| {
            !recorded.stdout().is_empty()
        })
        .ok();
    assert!(outcome.canceled, "{outcome:?}");
    assert!(started.elapsed().as_secs() < 60, "the cancel ended the run");
    let child: u32 = recorded.stdout()[0].strip_prefix("child ").unwrap().parse().unwrap();
    let alive = || {
        std::fs::read_to_string(format!("/proc/{child}/stat"))
            .map(|stat| !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
            .unwrap_or(false)
    };
    // Signals take a moment to land: give the child a few seconds to go.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while alive() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!alive(), "the script's child {child} survived the cancel");
}

#[test]
fn a_missing_interpreter_is_named_with_the_setting_to_change() {
    let scratch = Scratch::new();
    scratch.write("train.py", "print('never')\n");
    let target = scratch.target("local", json!({"pythonLocation": "/no/such/python"}));
    let (message, recorded) = Harness::new(LocalExecutor)
        .run(scratch.run_request(target, "train.py", &[]))
        .err();
    assert!(
        message.contains("pythonLocation '/no/such/python' was not found"),
        "{message}"
    );
    assert!(message.contains("aml_config/test.compute"), "{message}");
    assert!(recorded.stdout().is_empty());
}

#[test]
fn attach_fills_the_defaults_and_names_the_interpreter() {
    let scratch = Scratch::new();
    let (reply, _) = Harness::new(LocalExecutor)
        .attach(scratch.attach_request(scratch.target("local", json!({}))))
        .ok();
    assert_eq!(reply.settings["pythonLocation"], "python3");
    assert_eq!(reply.settings["nativeSharedDirectory"], "~/.azureml/share/");
    assert!(
        reply.messages[0].starts_with("Scripts will run with /"),
        "{:?}",
        reply.messages
    );
}

#[test]
fn pyspark_without_spark_submit_says_how_to_get_it() {
    let scratch = Scratch::new();
    let target = scratch.target("local", json!({"sparkSubmitLocation": "/no/spark-submit"}));
    let mut request = scratch.prepare_request(target);
    request.framework = "PySpark".into();
    let (message, _) = Harness::new(LocalExecutor).prepare(request).err();
    assert!(message.contains("sparkSubmitLocation"), "{message}");
}
