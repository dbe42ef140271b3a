//! The remotedocker target: the docker recipe on a remote host's Docker engine, reached over
//! the test sshd (the host is this machine, so its engine is the machine's own).

use std::time::{Duration, Instant};

use xp_tests::{make_wheel, run_containers, test_image, TestProject};

fn remote_docker_project() -> TestProject {
    let image = test_image("XP_TEST_PYTHON_IMAGE", "xp-test/python:bookworm");
    let project = TestProject::new();
    project.attach_over_ssh("remotedocker", "rd", &["--base-image", &image]);
    project
}

#[test]
fn a_script_runs_in_a_container_on_the_remote_engine_with_its_environment() {
    let project = remote_docker_project();
    let wheel = make_wheel(&project.path("wheels"), "xpremote", "0.1", "WHERE = 'remote image'\n");
    project.write(
        "aml_config/conda_dependencies.yml",
        &format!("dependencies:\n  - python=3\n  - pip:\n    - ./wheels/{wheel}\n"),
    );
    project.write(
        "job.py",
        "import os, sys, xpremote\nfrom xp_logging import log_metric\nlog_metric('in_container', os.path.exists('/.dockerenv'))\nprint(xpremote.WHERE, os.getcwd(), os.getuid(), sys.argv[1:])\nos.makedirs('outputs', exist_ok=True)\nopen('outputs/r.txt', 'w').write('r')\n",
    );
    let prepare = project.xp(["experiment", "prepare", "-c", "rd"]).run().success();
    assert!(
        prepare.stderr.contains("Building environment image"),
        "{}",
        prepare.stderr
    );
    let again = project.xp(["experiment", "prepare", "-c", "rd"]).run().success();
    assert!(again.stderr.contains("cached"), "{}", again.stderr);

    let run = project
        .xp(["submit", "-c", "rd", "job.py", "'; rm -rf ~ #"])
        .run()
        .success();
    let uid = std::process::Command::new("id")
        .args(["-u", "xptest"])
        .output()
        .unwrap();
    let uid = String::from_utf8_lossy(&uid.stdout).trim().to_owned();
    assert_eq!(
        run.stdout.trim(),
        format!("remote image /azureml-run {uid} [\"'; rm -rf ~ #\"]"),
        "the wheel was installed in the remote image, the run ran as the host user"
    );
    let record = project.last_record();
    assert_eq!(record["status"], "Completed");
    assert_eq!(record["metrics"]["in_container"], true);
    assert_eq!(record["artifacts"], serde_json::json!(["outputs/r.txt"]));
    assert!(run_containers(&project, record["run_id"].as_str().unwrap()).is_empty());

    let clean = project.xp(["experiment", "clean", "-c", "rd"]).run().success();
    assert!(clean.stdout.contains("removed xp-env/proj-"), "{}", clean.stdout);
}

#[test]
fn cancel_stops_the_remote_container() {
    let project = remote_docker_project();
    project.write(
        "sleep.py",
        "import time\nprint('sleeping', flush=True)\ntime.sleep(300)\n",
    );
    let run_id = project
        .xp(["submit", "-a", "-c", "rd", "sleep.py"])
        .run()
        .success()
        .stdout
        .trim()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    while run_containers(&project, &run_id).is_empty() {
        assert!(Instant::now() < deadline, "the container never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    project.xp(["experiment", "cancel", &run_id]).run().success();
    assert_eq!(project.run_record(&run_id)["status"], "Canceled");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !run_containers(&project, &run_id).is_empty() {
        assert!(Instant::now() < deadline, "the container still runs on the host");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Workbench's GPU recipe: a remotedocker target with `nvidiaDocker: true`. Without GPUs on
/// the host's engine, the run fails saying so.
#[test]
fn nvidia_docker_asks_the_remote_engine_for_gpus() {
    let project = remote_docker_project();
    let compute = project.read("aml_config/rd.compute");
    project.write(
        "aml_config/rd.compute",
        &format!("{compute}nvidiaDocker: true\nsharedVolumes: false\n"),
    );
    project.write("gpu.py", "print('never')\n");
    let run = project
        .xp(["submit", "-c", "rd", "gpu.py"])
        .run()
        .error_mentions(&["nvidiaDocker: true asks for GPUs", "no GPU support"]);
    assert!(!run.stdout.contains("never"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("sharedVolumes: false in aml_config/rd.compute changes nothing here"),
        "{}",
        run.stderr
    );
    assert_eq!(project.last_record()["status"], "Failed");
}
