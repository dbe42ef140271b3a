//! The remote executor, called in process through the SDK's harness, against the private sshd
//! of the shared test setup (`scripts/services.sh start ssh`).

use serde_json::json;
use xp_plugin_sdk::testing::{Harness, Scratch};

use super::RemoteExecutor;

/// A target on the test sshd, logging in with the test user's key (as a stored secret would).
fn ssh_target(scratch: &Scratch) -> (xp_plugin_api::Target, String) {
    let env = xp_tests::service_env("ssh");
    let target = scratch.target(
        "remote",
        json!({
            "address": format!("{}:{}", env["XP_TEST_SSH_HOST"], env["XP_TEST_SSH_PORT"]),
            "username": env["XP_TEST_SSH_USER"],
            "remoteDirectory": format!(".xp-remote-plugin-tests-{}", std::process::id()),
        }),
    );
    let key = std::fs::read_to_string(&env["XP_TEST_SSH_KEY"]).expect("the test user's key");
    (target, key)
}

#[test]
fn attach_names_what_is_missing_or_unreachable() {
    let scratch = Scratch::new();
    let harness = Harness::new(RemoteExecutor);
    let (message, _) = harness
        .attach(scratch.attach_request(scratch.target("remote", json!({"username": "u"}))))
        .err();
    assert!(message.contains("aml_config/test.compute has no address"), "{message}");

    let (message, _) = harness
        .attach(scratch.attach_request(scratch.target("remote", json!({"address": "h:notaport", "username": "u"}))))
        .err();
    assert!(message.contains("aml_config/test.compute"), "{message}");

    let mut request =
        scratch.attach_request(scratch.target("remote", json!({"address": "127.0.0.1:1", "username": "u"})));
    request.context.secrets.insert("password".into(), "pw".into());
    let (message, _) = harness.attach(request).err();
    assert!(message.contains("cannot connect to 127.0.0.1:1"), "{message}");
}

#[test]
fn runs_on_the_host_with_live_output_and_brings_outputs_back() {
    let scratch = Scratch::new();
    scratch.write(
        "train.py",
        "import os, sys\nfrom xp_logging import log_metric\nprint('remote', sys.argv[1:])\nprint('warn', file=sys.stderr)\nlog_metric('loss', 0.125)\nos.makedirs('outputs', exist_ok=True)\nopen('outputs/r.txt', 'w').write('back home')\n",
    );
    let (target, key) = ssh_target(&scratch);
    let mut request = scratch.run_request(target, "train.py", &["it's; $(quoted)"]);
    request.context.secrets.insert("privateKey".into(), key);
    let artifacts = request.artifacts_dir.clone();
    let (outcome, recorded) = Harness::new(RemoteExecutor).run(request).ok();
    assert_eq!(outcome.exit_code, 0, "{recorded:#?}");
    assert!(
        recorded.stdout().contains(&"remote [\"it's; $(quoted)\"]"),
        "arguments arrive verbatim: {:?}",
        recorded.stdout()
    );
    assert!(recorded.stderr().contains(&"warn"), "{:?}", recorded.stderr());
    assert_eq!(recorded.metric("loss"), [&json!(0.125)]);
    assert_eq!(std::fs::read_to_string(artifacts.join("r.txt")).unwrap(), "back home");
    assert!(
        scratch.root().join("config/known_hosts").is_file(),
        "first contact recorded the host key in the user's known_hosts"
    );
}
