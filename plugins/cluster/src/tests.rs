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
