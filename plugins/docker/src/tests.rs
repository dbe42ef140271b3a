//! The docker executor, called in process through the SDK's harness, against the machine's
//! real Docker engine and the test image the shared test setup builds.

use serde_json::json;
use xp_plugin_sdk::testing::{Harness, Scratch};

use super::{memory_limit, DockerExecutor};

fn python_image() -> String {
    xp_tests::test_image("XP_TEST_PYTHON_IMAGE", "xp-test/python:bookworm")
}

#[test]
fn attach_needs_a_base_image_and_fills_the_defaults() {
    let scratch = Scratch::new();
    let (message, _) = Harness::new(DockerExecutor)
        .attach(scratch.attach_request(scratch.target("docker", json!({}))))
        .err();
    assert!(message.contains("has no baseDockerImage"), "{message}");

    let image = python_image();
    let (reply, _) = Harness::new(DockerExecutor)
        .attach(scratch.attach_request(scratch.target("docker", json!({"baseDockerImage": image}))))
        .ok();
    assert_eq!(reply.settings["sharedVolumes"], true);
    assert_eq!(reply.runconfig["PrepareEnvironment"], true);
    assert!(
        reply.messages[0].contains(&format!("Base image {image} is on")),
        "{:?}",
        reply.messages
    );

    let (reply, _) = Harness::new(DockerExecutor)
        .attach(scratch.attach_request(scratch.target("docker", json!({"baseDockerImage": "xp-test/none:missing"}))))
        .ok();
    assert!(reply.messages[0].contains("is not on"), "{:?}", reply.messages);
}

#[test]
fn memory_sizes_read_as_docker_writes_them() {
    let scratch = Scratch::new();
    let limit = |value: serde_json::Value| memory_limit(&scratch.target("docker", json!({ "memory": value })));
    assert_eq!(limit(json!("512m")).unwrap(), Some(512 << 20));
    assert_eq!(limit(json!("2G")).unwrap(), Some(2 << 30));
    assert_eq!(limit(json!(1024)).unwrap(), Some(1024));
    let error = limit(json!("lots")).unwrap_err().0;
    assert!(
        error.contains("memory: \"lots\" is not a size; expected e.g. 512m or 2g"),
        "{error}"
    );
}

#[test]
fn runs_the_script_in_a_container_with_output_metrics_and_outputs() {
    let scratch = Scratch::new();
    scratch.write(
        "train.py",
        "import os, sys\nfrom azureml.logging import get_azureml_logger\nprint('in', os.getcwd(), sys.argv[1:])\nget_azureml_logger().log('acc', 0.75)\nos.makedirs('outputs', exist_ok=True)\nopen('outputs/m.txt', 'w').write('from the container')\nsys.exit(4)\n",
    );
    let target = scratch.target(
        "docker",
        json!({"baseDockerImage": python_image(), "nativeSharedDirectory": scratch.root().join("share").to_str().unwrap()}),
    );
    let request = scratch.run_request(target, "train.py", &["a b"]);
    let artifacts = request.artifacts_dir.clone();
    let (outcome, recorded) = Harness::new(DockerExecutor).run(request).ok();
    assert_eq!(outcome.exit_code, 4, "{recorded:#?}");
    assert_eq!(recorded.stdout(), ["in /azureml-run ['a b']"]);
    assert_eq!(recorded.metric("acc"), [&json!(0.75)]);
    assert_eq!(
        std::fs::read_to_string(artifacts.join("m.txt")).unwrap(),
        "from the container"
    );
}

#[test]
fn pyspark_in_an_image_without_spark_is_a_clear_error() {
    let scratch = Scratch::new();
    scratch.write("job.py", "print('never')\n");
    let target = scratch.target("docker", json!({"baseDockerImage": python_image()}));
    let mut request = scratch.run_request(target, "job.py", &[]);
    request.framework = "PySpark".into();
    let (message, _) = Harness::new(DockerExecutor).run(request).err();
    assert!(message.contains("has none on PATH"), "{message}");
}

#[test]
fn reap_removes_the_containers_a_vanished_run_left() {
    let scratch = Scratch::new();
    let run_id = format!("project_reap{}", std::process::id());
    let labels: Vec<String> = xp_dockerkit::run_labels(&run_id, &scratch.project_dir())
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    let mut docker = std::process::Command::new("docker");
    docker.args(["run", "-d"]);
    for label in &labels {
        docker.args(["--label", label]);
    }
    let started = docker
        .args([python_image().as_str(), "sleep", "300"])
        .output()
        .expect("docker runs");
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    let left = || {
        let mut ps = std::process::Command::new("docker");
        ps.args(["ps", "-aq"]);
        for label in &labels {
            ps.args(["--filter", &format!("label={label}")]);
        }
        String::from_utf8_lossy(&ps.output().unwrap().stdout).trim().to_owned()
    };
    assert!(!left().is_empty(), "the container runs");

    let target = scratch.target("docker", json!({"baseDockerImage": python_image()}));
    let (reply, _) = Harness::new(DockerExecutor)
        .reap(scratch.reap_request(target.clone(), &run_id))
        .ok();
    assert_eq!(reply.ended.len(), 1, "{reply:?}");
    assert!(left().is_empty(), "the run's container is gone");

    let (reply, _) = Harness::new(DockerExecutor)
        .reap(scratch.reap_request(target, &run_id))
        .ok();
    assert!(reply.ended.is_empty(), "nothing left the second time: {reply:?}");
}
