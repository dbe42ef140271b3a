//! The docker target against the machine's real Docker engine, with the images the shared
//! test setup builds (`scripts/services.sh start docker`).

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::time::{Duration, Instant};

use xp_tests::{make_wheel, run_containers, test_image, TestProject};

/// The images xp built for `project` (by their label).
fn project_images(project: &TestProject) -> String {
    let label = format!("label=xp.project={}", project.root().display());
    let listed = Command::new("docker")
        .args(["images", "-q", "--filter", &label])
        .output()
        .unwrap();
    String::from_utf8_lossy(&listed.stdout).trim().to_owned()
}

fn python_image() -> String {
    test_image("XP_TEST_PYTHON_IMAGE", "xp-test/python:bookworm")
}

/// A project with a docker target `d` on the test python image; `extra` settings added.
fn docker_project(extra: &[&str]) -> TestProject {
    let project = TestProject::new();
    let image = python_image();
    let mut args = vec![
        "computetarget",
        "attach",
        "docker",
        "--name",
        "d",
        "--base-image",
        image.as_str(),
    ];
    for setting in extra {
        args.push("--set");
        args.push(setting);
    }
    project.xp(args).run().success();
    project
}

const SCRIPT: &str = r#"import json, os, sys
from azureml.logging import get_azureml_logger
get_azureml_logger().log("answer", 42)
share = os.environ["AZUREML_NATIVE_SHARE_DIRECTORY"]
marker = os.path.join(share, "seen")
print(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(), "env": os.environ.get("EXAMPLE_ENV_VAR"),
                  "share": share, "seen": os.path.exists(marker), "in_container": os.path.exists("/.dockerenv")}))
open(marker, "w").write("x")
print("to stderr", file=sys.stderr)
os.makedirs("outputs", exist_ok=True)
open("outputs/result.txt", "w").write("from the container")
sys.exit(3 if "--fail" in sys.argv else 0)
"#;

fn check_run(project: &TestProject) {
    project.write("job.py", SCRIPT);
    let run = project
        .xp(["submit", "-c", "d", "job.py", "--lr", "it's 0.1"])
        .run()
        .success();
    let shown: serde_json::Value = serde_json::from_str(run.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(shown["argv"], serde_json::json!(["--lr", "it's 0.1"]));
    assert_eq!(shown["cwd"], "/azureml-run");
    assert_eq!(shown["env"], "Example Value");
    assert_eq!(shown["share"], "/azureml-share/");
    assert_eq!(shown["seen"], false);
    assert_eq!(shown["in_container"], true);
    assert!(run.stderr.contains("to stderr"), "{}", run.stderr);

    let record = project.last_record();
    assert_eq!(record["status"], "Completed");
    assert_eq!(record["target"], "d");
    assert_eq!(record["metrics"]["answer"], 42, "metrics come back from the container");
    assert_eq!(record["artifacts"], serde_json::json!(["outputs/result.txt"]));
    let run_id = record["run_id"].as_str().unwrap();
    assert_eq!(
        project.read(&format!(".xp/runs/{run_id}/outputs/result.txt")),
        "from the container"
    );
    assert!(run_containers(project, run_id).is_empty(), "the container is removed");

    let again = project.xp(["submit", "-c", "d", "job.py"]).run().success();
    assert!(
        again.stdout.contains("\"seen\": true"),
        "the shared directory persists: {}",
        again.stdout
    );
    project.xp(["submit", "-c", "d", "job.py", "--fail"]).run().code(3);
    assert_eq!(project.last_record()["status"], "Failed");
}

#[test]
fn a_script_runs_in_a_container_with_the_snapshot_copied_in() {
    let project = docker_project(&["sharedVolumes=false"]);
    assert!(project.read("aml_config/d.compute").contains("sharedVolumes: false"));
    check_run(&project);
}

#[test]
fn a_script_runs_in_a_container_with_the_snapshot_mounted() {
    let project = docker_project(&[]);
    assert!(
        project.read("aml_config/d.compute").contains("sharedVolumes: true"),
        "mounting the private snapshot is the default"
    );
    check_run(&project);
}

#[test]
fn prepare_builds_once_caches_by_content_and_clean_removes_the_images() {
    let project = docker_project(&[]);
    let wheel = make_wheel(&project.path("wheels"), "xptiny", "0.1", "VALUE = 'first'\n");
    project.write(
        "aml_config/conda_dependencies.yml",
        &format!("name: env\ndependencies:\n  - python=3\n  - pip:\n    - ./wheels/{wheel}\n"),
    );
    project.write("use.py", "import xptiny\nprint('value', xptiny.VALUE)\n");

    let first = project.xp(["experiment", "prepare", "-c", "d"]).run().success();
    assert!(
        first.stderr.contains("Building environment image xp-env/proj-"),
        "{}",
        first.stderr
    );
    assert!(
        first.stderr.contains("Successfully"),
        "build progress is shown: {}",
        first.stderr
    );
    let second = project.xp(["experiment", "prepare", "-c", "d"]).run().success();
    assert!(second.stderr.contains("cached"), "{}", second.stderr);
    assert!(!second.stderr.contains("Building"), "{}", second.stderr);

    let run = project.xp(["submit", "-c", "d", "use.py"]).run().success();
    assert_eq!(run.stdout.trim(), "value first");

    // A changed wheel makes a new image; the run configuration prepares it as part of submit.
    make_wheel(&project.path("wheels"), "xptiny", "0.1", "VALUE = 'second'\n");
    let rebuilt = project.xp(["submit", "-c", "d", "use.py"]).run().success();
    assert!(
        rebuilt.stderr.contains("Building environment image"),
        "{}",
        rebuilt.stderr
    );
    assert_eq!(rebuilt.stdout.trim(), "value second");

    let clean = project.xp(["experiment", "clean", "-c", "d"]).run().success();
    let removed: Vec<&str> = clean
        .stdout
        .lines()
        .filter(|l| l.starts_with("removed xp-env/proj-"))
        .collect();
    assert_eq!(
        removed.len(),
        2,
        "both environment images are removed: {}",
        clean.stdout
    );
    assert!(project_images(&project).is_empty(), "no image of the project is left");
    assert!(
        Command::new("docker")
            .args(["image", "inspect", &python_image()])
            .output()
            .unwrap()
            .status
            .success(),
        "the base image stays"
    );
}

#[test]
fn without_prepare_environment_a_missing_image_is_a_clear_error() {
    let project = docker_project(&[]);
    let wheel = make_wheel(&project.path("wheels"), "xpother", "0.2", "X = 1\n");
    project.write(
        "aml_config/conda_dependencies.yml",
        &format!("dependencies:\n  - pip:\n    - ./wheels/{wheel}\n"),
    );
    let config = project
        .read("aml_config/d.runconfig")
        .replace("PrepareEnvironment: true", "PrepareEnvironment: false");
    project.write("aml_config/d.runconfig", &config);
    project.write("ok.py", "print('never')\n");
    project.xp(["submit", "-c", "d", "ok.py"]).run().error_mentions(&[
        "not built",
        "xp experiment prepare -c d",
        "PrepareEnvironment",
    ]);
    assert_eq!(project.last_record()["status"], "Failed");
}

// Conda packages on an image without conda: tests/tests/workbench_docker.rs.
#[test]
fn a_missing_base_image_is_named() {
    let project = docker_project(&[]);
    project.write("ok.py", "print('never')\n");
    project
        .xp([
            "computetarget",
            "attach",
            "docker",
            "--name",
            "ghost",
            "--base-image",
            "xp-test/does-not-exist:1",
        ])
        .run()
        .success();
    project.xp(["submit", "-c", "ghost", "ok.py"]).run().error_mentions(&[
        "xp-test/does-not-exist:1",
        "does not exist",
        "ghost.compute",
    ]);
}

#[test]
fn ctrl_c_stops_and_removes_the_container() {
    let project = docker_project(&[]);
    project.write(
        "sleep.py",
        "import time\nprint('sleeping', flush=True)\ntime.sleep(300)\n",
    );
    let mut xp = project.xp(["submit", "-c", "d", "sleep.py"]).spawn();
    let mut lines = BufReader::new(xp.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "sleeping");
    let run_id = project.last_record()["run_id"].as_str().unwrap().to_owned();
    assert_eq!(run_containers(&project, &run_id).len(), 1);
    unsafe { libc::kill(xp.id() as i32, libc::SIGINT) };
    assert_eq!(xp.wait().unwrap().code(), Some(130));
    assert_eq!(project.last_record()["status"], "Canceled");
    assert!(run_containers(&project, &run_id).is_empty(), "the container is gone");
}

#[test]
fn a_detached_docker_run_is_cancelled_by_xp_experiment_cancel() {
    let project = docker_project(&[]);
    project.write(
        "sleep.py",
        "import time\nprint('sleeping', flush=True)\ntime.sleep(300)\n",
    );
    let run = project.xp(["submit", "-a", "-c", "d", "sleep.py"]).run().success();
    let run_id = run.stdout.trim().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    while run_containers(&project, &run_id).is_empty() {
        assert!(Instant::now() < deadline, "the container never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    project.xp(["experiment", "cancel", &run_id]).run().success();
    let record = project.run_record(&run_id);
    assert_eq!(record["status"], "Canceled", "{record}");
    assert!(run_containers(&project, &run_id).is_empty());
}

#[test]
fn the_container_of_a_run_whose_driver_vanished_is_removed_by_the_next_look() {
    let project = docker_project(&[]);
    project.write(
        "sleep.py",
        "import time\nprint('sleeping', flush=True)\ntime.sleep(300)\n",
    );
    let run = project.xp(["submit", "-a", "-c", "d", "sleep.py"]).run().success();
    let run_id = run.stdout.trim().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    while run_containers(&project, &run_id).is_empty() {
        assert!(Instant::now() < deadline, "the container never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The supervisor dies as in a crash: the container would go on without it.
    let supervisor = xp_tests::supervisor_pid(&run_id);
    // SAFETY: kill(2) on a process this test started (through xp).
    unsafe { libc::kill(supervisor as i32, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while xp_tests::process_exists(supervisor) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let record = project.run_record(&run_id);
    assert_eq!(record["status"], "Failed", "{record}");
    let error = record["error"].as_str().unwrap();
    assert!(
        error.contains("ended without recording an outcome") && error.contains("ended on target 'd': container "),
        "{error}"
    );
    assert!(
        run_containers(&project, &run_id).is_empty(),
        "the plugin's reap removed the run's container"
    );
}

#[test]
fn gpus_memory_and_an_unreachable_engine_fail_with_the_reason() {
    let project = docker_project(&[]);
    project.write("ok.py", "print('ok')\n");
    project.write(
        "hog.py",
        "blocks = []\nwhile True:\n    blocks.append(bytearray(16 * 1024 * 1024))\n",
    );

    project
        .xp([
            "computetarget",
            "attach",
            "docker",
            "--name",
            "gpu",
            "--base-image",
            &python_image(),
            "--nvidia-docker",
        ])
        .run()
        .success();
    assert!(project.read("aml_config/gpu.compute").contains("nvidiaDocker: true"));
    project
        .xp(["submit", "-c", "gpu", "ok.py"])
        .run()
        .error_mentions(&["nvidiaDocker", "GPU"]);
    assert_eq!(project.last_record()["status"], "Failed");

    project
        .xp([
            "computetarget",
            "attach",
            "docker",
            "--name",
            "small",
            "--base-image",
            &python_image(),
            "--set",
            "memory=64m",
        ])
        .run()
        .success();
    project
        .xp(["submit", "-c", "small", "hog.py"])
        .run()
        .error_mentions(&["memory", "OOMKilled"]);
    let record = project.last_record();
    assert_eq!(record["status"], "Failed");
    assert!(record["error"].as_str().unwrap().contains("OOMKilled"), "{record}");

    project
        .xp(["submit", "-c", "d", "ok.py"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .run()
        .error_mentions(&["cannot reach", "/nonexistent/docker.sock"]);
    assert_eq!(project.last_record()["status"], "Failed");
}

#[test]
fn pyspark_runs_with_spark_inside_the_container() {
    let spark_image = test_image("XP_TEST_PYSPARK_IMAGE", "xp-test/pyspark:bookworm");
    let project = TestProject::new();
    project
        .xp([
            "computetarget",
            "attach",
            "docker",
            "--name",
            "spark",
            "--base-image",
            &spark_image,
        ])
        .run()
        .success();
    project
        .xp([
            "runconfiguration",
            "create",
            "spark",
            "--target",
            "spark",
            "--framework",
            "PySpark",
            "--force",
        ])
        .run()
        .success();
    project.write(
        "aml_config/spark_dependencies.yml",
        "configuration:\n  spark.app.name: xp-docker-test\n  spark.sql.shuffle.partitions: 3\n",
    );
    project.write(
        "count.py",
        "from pyspark.sql import SparkSession\nspark = SparkSession.builder.getOrCreate()\nconf = spark.sparkContext.getConf()\nwords = spark.sparkContext.parallelize('a b a c b a'.split())\ncounts = dict(words.map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b).collect())\nprint('counts', sorted(counts.items()))\nprint('app', conf.get('spark.app.name'), spark.conf.get('spark.sql.shuffle.partitions'))\n",
    );
    let run = project.xp(["submit", "-c", "spark", "count.py"]).run().success();
    assert!(
        run.stdout.contains("counts [('a', 3), ('b', 2), ('c', 1)]"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("app xp-docker-test 3"),
        "the Spark configuration applies: {}",
        run.stdout
    );

    // Without Spark in the image, PySpark is a clear error.
    project
        .xp([
            "computetarget",
            "attach",
            "docker",
            "--name",
            "nospark",
            "--base-image",
            &python_image(),
        ])
        .run()
        .success();
    project
        .xp(["submit", "-c", "spark", "-t", "nospark", "count.py"])
        .run()
        .error_mentions(&["spark-submit", "PySpark"]);
}

#[test]
fn a_failing_build_fails_the_run_with_pips_words_and_tags_nothing() {
    let project = docker_project(&[]);
    project.write(
        "aml_config/conda_dependencies.yml",
        "dependencies:\n  - pip:\n    - ./wheels/not-there-0.1-py3-none-any.whl\n",
    );
    project.write("ok.py", "print('never')\n");
    let run = project
        .xp(["submit", "-c", "d", "ok.py"])
        .run()
        .error_mentions(&["building the environment image", "not-there-0.1-py3-none-any.whl"]);
    assert!(!run.stdout.contains("never"));
    let record = project.last_record();
    assert_eq!(record["status"], "Failed");
    assert!(
        project_images(&project).is_empty(),
        "a failed build leaves no image a later run could take"
    );
    let again = project.xp(["experiment", "prepare", "-c", "d"]).run();
    assert_eq!(again.code, Some(1), "the next prepare builds again, and fails again");
    assert!(again.stderr.contains("Building environment image"), "{}", again.stderr);
}
