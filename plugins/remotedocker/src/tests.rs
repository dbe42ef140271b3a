//! The remotedocker executor, called in process through the SDK's harness, against the private
//! sshd of the shared test setup, whose test user may use the machine's Docker engine.

use serde_json::json;
use xp_plugin_sdk::testing::{Harness, Scratch};

use super::RemoteDockerExecutor;

#[test]
fn attach_needs_a_base_image() {
    let scratch = Scratch::new();
    let target = scratch.target("remotedocker", json!({"address": "127.0.0.1:1", "username": "u"}));
    let (message, _) = Harness::new(RemoteDockerExecutor)
        .attach(scratch.attach_request(target))
        .err();
    assert!(
        message.contains("needs a base image: pass --base-image IMAGE"),
        "{message}"
    );
}

#[test]
fn prepare_on_the_host_reuses_the_base_image_when_nothing_is_to_install() {
    let env = xp_tests::service_env("ssh");
    let image = xp_tests::test_image("XP_TEST_PYTHON_IMAGE", "xp-test/python:bookworm");
    let scratch = Scratch::new();
    let target = scratch.target(
        "remotedocker",
        json!({
            "address": format!("{}:{}", env["XP_TEST_SSH_HOST"], env["XP_TEST_SSH_PORT"]),
            "username": env["XP_TEST_SSH_USER"],
            "baseDockerImage": image,
        }),
    );
    let mut request = scratch.prepare_request(target);
    request.context.secrets.insert(
        "privateKey".into(),
        std::fs::read_to_string(&env["XP_TEST_SSH_KEY"]).unwrap(),
    );
    let (reply, _) = Harness::new(RemoteDockerExecutor).prepare(request).ok();
    assert!(reply.cached, "{reply:?}");
    assert!(
        reply.messages.iter().any(|m| m.contains(&image)),
        "{:?}",
        reply.messages
    );
}
