//! The cluster executor, called in process through the SDK's harness, against the private sshd
//! (the head node) and the Spark standalone cluster of the shared test setup.

use serde_json::json;
use xp_plugin_sdk::testing::{Harness, Scratch};

use super::ClusterExecutor;

fn head_node(scratch: &Scratch, extra: serde_json::Value) -> xp_plugin_api::AttachRequest {
    let ssh = xp_tests::service_env("ssh");
    let spark = xp_tests::service_env("spark");
    let mut settings = json!({
        "address": format!("{}:{}", ssh["XP_TEST_SSH_HOST"], ssh["XP_TEST_SSH_PORT"]),
        "username": ssh["XP_TEST_SSH_USER"],
        "sparkMaster": spark["XP_TEST_SPARK_MASTER"],
        "sparkSubmitLocation": spark["XP_TEST_SPARK_SUBMIT"],
    });
    for (key, value) in extra.as_object().unwrap() {
        settings[key] = value.clone();
    }
    let mut request = scratch.attach_request(scratch.target("cluster", settings));
    request.context.secrets.insert(
        "privateKey".into(),
        std::fs::read_to_string(&ssh["XP_TEST_SSH_KEY"]).unwrap(),
    );
    request
}

#[test]
fn attach_checks_the_head_node_and_asks_for_pyspark() {
    let scratch = Scratch::new();
    let (reply, _) = Harness::new(ClusterExecutor)
        .attach(head_node(&scratch, json!({})))
        .ok();
    assert_eq!(reply.runconfig["Framework"], "PySpark");
    assert_eq!(reply.settings["yarnDeployMode"], "client");
    assert!(
        reply.messages.iter().any(|m| m.contains("Spark ")),
        "attach says which Spark the head node has: {:?}",
        reply.messages
    );
}

#[test]
fn cluster_deploy_mode_and_an_unreachable_master_are_refused_with_the_setting_to_change() {
    let scratch = Scratch::new();
    let (message, _) = Harness::new(ClusterExecutor)
        .attach(head_node(&scratch, json!({"yarnDeployMode": "cluster"})))
        .err();
    assert!(message.contains("yarnDeployMode cluster is not supported"), "{message}");

    let (message, _) = Harness::new(ClusterExecutor)
        .attach(head_node(&scratch, json!({"sparkMaster": "spark://127.0.0.1:1"})))
        .err();
    assert!(message.contains("is unreachable from the head node"), "{message}");
    assert!(message.contains("sparkMaster"), "{message}");
}

#[test]
fn prepare_installs_the_conda_packages_with_pip_into_the_jobs_environment() {
    let scratch = Scratch::new();
    // conda's `pytorch=0.4` is pip's `torch==0.4.*`, here from a wheelhouse of the project.
    xp_tests::make_wheel(
        &scratch.project_dir().join("house"),
        "torch",
        "0.4.1",
        "VALUE = 'torch on the head node'\n",
    );
    let attach = head_node(&scratch, json!({"wheelhouse": "house"}));
    let mut request = scratch.prepare_request(attach.context.target.clone());
    request.context.secrets = attach.context.secrets;
    request.framework = "PySpark".into();
    request.dependencies = xp_plugin_api::Dependencies {
        conda: Some("aml_config/conda_dependencies.yml".into()),
        conda_packages: vec!["python=3.5.2".into(), "pytorch=0.4".into()],
        ..Default::default()
    };
    let (reply, recorded) = Harness::new(ClusterExecutor).prepare(request.clone()).ok();
    let info = recorded.info().join("\n");
    assert!(
        info.contains("the cluster target builds a virtual environment with pip, so pip installs its conda packages, by their PyPI names: pytorch=0.4 as torch==0.4.*"),
        "{info}"
    );
    assert!(
        info.contains("asks for python=3.5.2, and the head node's python3 is Python 3."),
        "the head node's Python is checked: {info}"
    );
    // Built now or by an earlier test run: either way the environment has the package.
    let summary = reply
        .messages
        .iter()
        .find(|m| m.contains("Python environment"))
        .unwrap_or_else(|| panic!("{:?}", reply.messages));
    let path = summary
        .split_whitespace()
        .find(|word| word.starts_with('/'))
        .expect("the summary names the environment's folder");
    let imported = std::process::Command::new(format!("{path}/bin/python"))
        .args(["-c", "import torch; print(torch.VALUE)"])
        .output()
        .expect("the environment's python runs (the head node is this machine)");
    assert_eq!(
        String::from_utf8_lossy(&imported.stdout).trim(),
        "torch on the head node",
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );

    let (again, recorded) = Harness::new(ClusterExecutor).prepare(request).ok();
    assert!(again.cached, "{:?}", again.messages);
    assert!(
        recorded
            .info()
            .iter()
            .any(|line| line.contains("asks for python=3.5.2")),
        "a cached environment still says which Python it has"
    );
}
