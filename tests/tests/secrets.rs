//! Secrets of compute targets: kept in the user's store (owner-only), referred to from the
//! `.compute` file, given to every plugin call, and never written into the project folder or
//! printed — even when a plugin tries.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use xp_tests::{fixture_plugin_dir, TestProject, XpCommand};

const PASSWORD: &str = "Tr0ub4dor&3-correct-horse";

/// An xp command that finds the fixture plugin.
fn xp(project: &TestProject, args: &[&str]) -> XpCommand {
    project
        .xp(args.iter().copied())
        .env("XP_PLUGIN_PATH", fixture_plugin_dir(project))
        .env("XP_FIXTURE_EXPECTED_PASSWORD", PASSWORD)
}

/// The user's secret store of this test project.
fn store_dir(project: &TestProject) -> PathBuf {
    project.home().join(".xp-home").join("config").join("secrets")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every file under `root` (hidden ones and `.xp/` included) whose bytes contain `needle`.
fn files_containing(root: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                let bytes = std::fs::read(&path).unwrap_or_default();
                if bytes.windows(needle.len()).any(|window| window == needle.as_bytes()) {
                    found.push(path);
                }
            }
        }
    }
    found
}

#[track_caller]
fn assert_nowhere_in_project(project: &TestProject, secret: &str) {
    let found = files_containing(&project.root(), secret);
    assert!(found.is_empty(), "the secret is written in {found:?}");
}

/// The secret id a `.compute` file refers to under `key`, from its `key: "secret:<id>"` line.
fn reference(project: &TestProject, target: &str, key: &str) -> String {
    let text = project.read(&format!("aml_config/{target}.compute"));
    let prefix = format!("{key}: \"secret:");
    let line = text
        .lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{text}"));
    line[prefix.len()..].trim_end_matches('"').to_owned()
}

fn attach_with_password(project: &TestProject, name: &str, behaviour: &str) -> xp_tests::Finished {
    xp(
        project,
        &[
            "computetarget",
            "attach",
            "crashy",
            "--name",
            name,
            "--set",
            &format!("behaviour={behaviour}"),
            "--password",
        ],
    )
    .run_with_stdin(&format!("{PASSWORD}\n"))
}

#[test]
fn a_piped_password_is_stored_outside_the_project_and_reaches_every_call() {
    let project = TestProject::new();
    project.write("ok.py", "print('ok')\n");
    let attach = attach_with_password(&project, "gpu", "secret-check").success();
    assert!(
        attach.stderr.contains("attach received secrets: password(25)"),
        "{}",
        attach.stderr
    );
    assert!(!attach.stderr.contains(PASSWORD), "{}", attach.stderr);

    let id = reference(&project, "gpu", "password");
    assert!(id.starts_with("gpu-password-"), "{id}");
    let store = store_dir(&project);
    let secret_file = store.join(&id);
    assert_eq!(mode(&store), 0o700);
    assert_eq!(mode(&secret_file), 0o600);
    // The value, with the project and target it serves.
    let stored = std::fs::read_to_string(&secret_file).unwrap();
    assert!(stored.contains(PASSWORD), "{stored}");
    assert!(stored.contains("\"target\":\"gpu\""), "{stored}");
    assert_nowhere_in_project(&project, PASSWORD);

    // Attached run: the plugin gets the password; nothing shows it.
    let run = xp(&project, &["submit", "-c", "gpu", "ok.py"]).run().success();
    assert!(run.stdout.contains("password ok"), "{}", run.stdout);
    assert!(
        run.stdout.contains("run received secrets: password(25)"),
        "{}",
        run.stdout
    );
    assert!(!run.stderr.contains(PASSWORD) && !run.stdout.contains(PASSWORD));

    // Detached run: launch.json carries no secret, the supervisor resolves it again.
    let detached = xp(&project, &["submit", "-a", "-c", "gpu", "ok.py"]).run().success();
    let run_id = detached.stdout.trim().to_owned();
    let logs = xp(&project, &["history", "logs", &run_id, "-f"]).run().success();
    assert!(logs.stdout.contains("password ok"), "{logs:?}");
    assert_eq!(project.run_record(&run_id)["status"], "Completed");

    // prepare and clean too.
    let prepare = xp(&project, &["experiment", "prepare", "-c", "gpu"]).run().success();
    assert!(
        prepare.stderr.contains("prepare received secrets: password(25)"),
        "{}",
        prepare.stderr
    );
    let clean = xp(&project, &["experiment", "clean", "-c", "gpu"]).run().success();
    assert!(
        clean.stderr.contains("clean received secrets: password(25)"),
        "{}",
        clean.stderr
    );

    let show = xp(&project, &["computetarget", "show", "gpu"]).run().success();
    assert!(show.stdout.contains(&format!("secret:{id}")), "{}", show.stdout);
    assert_nowhere_in_project(&project, PASSWORD);

    xp(&project, &["computetarget", "detach", "gpu"]).run().success();
    assert!(!secret_file.exists(), "detach removes the secret");
}

#[test]
fn a_missing_secret_is_a_clear_error() {
    let project = TestProject::new();
    project.write("ok.py", "print('ok')\n");
    attach_with_password(&project, "gpu", "secret-check").success();
    let id = reference(&project, "gpu", "password");
    std::fs::remove_file(store_dir(&project).join(&id)).unwrap();
    xp(&project, &["submit", "-c", "gpu", "ok.py"]).run().error_mentions(&[
        "gpu.compute",
        "`password`",
        &id,
        "not in your secret store",
        "xp computetarget attach crashy --name gpu --force --password",
    ]);
    // Nothing was recorded: the error comes before the run exists.
    let list = xp(&project, &["history", "list", "-o", "json"]).run().success();
    assert_eq!(list.stdout.trim(), "[]");
}

#[test]
fn a_literal_password_in_the_compute_file_is_refused_without_printing_it() {
    let project = TestProject::new();
    project.write("ok.py", "print('ok')\n");
    project.write(
        "aml_config/hand.compute",
        &format!("type: crashy\nbehaviour: secret-check\npassword: \"{PASSWORD}\"\n"),
    );
    for args in [
        &["submit", "-c", "local", "-t", "hand", "ok.py"][..],
        &["submit", "-a", "-c", "local", "-t", "hand", "ok.py"][..],
    ] {
        let finished =
            xp(&project, args)
                .run()
                .error_mentions(&["hand.compute", "`password`", "re-attach", "--password"]);
        assert!(!finished.stderr.contains(PASSWORD), "{}", finished.stderr);
        assert!(!finished.stdout.contains(PASSWORD), "{}", finished.stdout);
    }
    let show = xp(&project, &["computetarget", "show", "hand"]).run().success();
    assert!(!show.stdout.contains(PASSWORD), "{}", show.stdout);
    assert!(show.stdout.contains("****"), "{}", show.stdout);
}

#[test]
fn the_host_scrubs_a_plugin_that_leaks_the_password() {
    let project = TestProject::new();
    project.write("ok.py", "print('ok')\n");
    let attach = attach_with_password(&project, "leaky", "leak").success();
    assert!(!attach.stderr.contains(PASSWORD), "{}", attach.stderr);
    assert!(
        attach.stderr.contains("attach message: the password is ****"),
        "{}",
        attach.stderr
    );
    assert!(
        attach.stderr.contains("attach log: the password is ****"),
        "{}",
        attach.stderr
    );

    let run = xp(&project, &["submit", "-c", "leaky", "ok.py"]).run();
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(!run.stdout.contains(PASSWORD), "{}", run.stdout);
    assert!(!run.stderr.contains(PASSWORD), "{}", run.stderr);
    assert!(run.stdout.contains("stdout: the password is ****"), "{}", run.stdout);
    assert!(run.stderr.contains("login failed with password ****"), "{}", run.stderr);

    let record = project.last_record();
    assert_eq!(record["status"], "Failed");
    let error = record["error"].as_str().unwrap();
    assert!(error.contains("login failed with password ****"), "{error}");
    let run_id = record["run_id"].as_str().unwrap().to_owned();
    let logs = xp(&project, &["history", "logs", &run_id]).run().success();
    assert!(
        !logs.stdout.contains(PASSWORD) && !logs.stderr.contains(PASSWORD),
        "{logs:?}"
    );
    assert!(logs.stdout.contains("info: the password is ****"), "{}", logs.stdout);

    // A detached run's log, record and supervisor log too.
    let detached = xp(&project, &["submit", "-a", "-c", "leaky", "ok.py"]).run().success();
    let run_id = detached.stdout.trim().to_owned();
    xp(&project, &["history", "logs", &run_id, "-f"]).run();
    assert_eq!(project.run_record(&run_id)["status"], "Failed");
    assert_nowhere_in_project(&project, PASSWORD);
}

#[test]
fn a_plugin_that_returns_a_secret_as_a_setting_is_refused() {
    let project = TestProject::new();
    let attach = attach_with_password(&project, "bad", "leak-on-attach");
    let attach = attach.error_mentions(&["loginSecret", "refusing to write it", "bad.compute"]);
    assert!(!attach.stderr.contains(PASSWORD), "{}", attach.stderr);
    assert!(!project.path("aml_config/bad.compute").exists());
    let stored = std::fs::read_dir(store_dir(&project))
        .map(|dir| dir.count())
        .unwrap_or(0);
    assert_eq!(stored, 0, "nothing is stored when the attach is refused");
}

#[test]
fn a_generated_key_is_stored_and_reaches_the_run() {
    let project = TestProject::new();
    project.write("ok.py", "print('ok')\n");
    let attach = xp(
        &project,
        &[
            "computetarget",
            "attach",
            "crashy",
            "--name",
            "keyed",
            "--set",
            "behaviour=secret-check",
            "-k",
        ],
    )
    .run()
    .success();
    assert!(attach.stderr.contains("public key: ssh-fixture"), "{}", attach.stderr);
    assert!(attach.stderr.contains("authorized_keys"), "{}", attach.stderr);
    assert!(!attach.stderr.contains("FIXTUREKEY"), "{}", attach.stderr);
    let compute = project.read("aml_config/keyed.compute");
    assert!(!compute.contains("useXpSshKey"), "{compute}");
    let id = reference(&project, "keyed", "privateKey");
    let key_file = store_dir(&project).join(&id);
    assert_eq!(mode(&key_file), 0o600);
    // The store's format: a first line, then JSON with the value and whom it serves.
    let stored = std::fs::read_to_string(&key_file).unwrap();
    let (format, body) = stored.split_once('\n').unwrap();
    assert_eq!(format, "xp-secret 2");
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["target"], "keyed");
    let key = body["value"].as_str().unwrap();
    assert!(key.starts_with("-----BEGIN FIXTURE PRIVATE KEY-----"), "{key}");

    let run = xp(&project, &["submit", "-c", "keyed", "ok.py"]).run().success();
    assert!(run.stdout.contains("privateKey ok"), "{}", run.stdout);
    assert_nowhere_in_project(&project, "FIXTUREKEY");

    // Re-attaching with a password instead drops the key the file no longer refers to.
    xp(
        &project,
        &[
            "computetarget",
            "attach",
            "crashy",
            "--name",
            "keyed",
            "--set",
            "behaviour=secret-check",
            "--password",
            "--force",
        ],
    )
    .run_with_stdin(&format!("{PASSWORD}\n"))
    .success();
    assert!(!key_file.exists(), "the replaced target's key is removed");
    assert!(store_dir(&project)
        .join(reference(&project, "keyed", "password"))
        .is_file());
}

#[test]
fn a_private_key_file_and_its_passphrase() {
    let project = TestProject::new();
    project.write("keys/id_test", "not really a key\n");
    let attach = xp(
        &project,
        &[
            "computetarget",
            "attach",
            "crashy",
            "--name",
            "filekey",
            "--set",
            "behaviour=secret-check",
            "--private-key-file",
            "keys/id_test",
            "--private-key-passphrase",
        ],
    )
    .run_with_stdin("open sesame phrase\n")
    .success();
    assert!(
        attach
            .stderr
            .contains("attach received secrets: privateKeyPassphrase(18)"),
        "{}",
        attach.stderr
    );
    let compute = project.read("aml_config/filekey.compute");
    let absolute = project.path("keys/id_test");
    assert!(
        compute.contains(&format!("privateKeyFile: {}", absolute.display())),
        "{compute}"
    );
    reference(&project, "filekey", "privateKeyPassphrase");
    assert_nowhere_in_project(&project, "open sesame phrase");
}

#[test]
fn secrets_never_come_from_the_command_line_or_an_empty_input() {
    let project = TestProject::new();
    let literal = xp(
        &project,
        &[
            "computetarget",
            "attach",
            "crashy",
            "--name",
            "x",
            "--set",
            &format!("password={PASSWORD}"),
        ],
    )
    .run()
    .error_mentions(&["--password", "never goes on the command line"]);
    assert!(!literal.stderr.contains(PASSWORD), "{}", literal.stderr);

    xp(
        &project,
        &["computetarget", "attach", "crashy", "--name", "x", "--password"],
    )
    .run()
    .error_mentions(&["--password", "no password was given"]);
    // A plugin that makes no key pair for -k: said so, nothing written.
    xp(&project, &["computetarget", "attach", "crashy", "--name", "x", "-k"])
        .run()
        .error_mentions(&["--use-xp-ssh-key", "made no privateKey", "nothing was written"]);
    assert!(!project.path("aml_config/x.compute").exists());
}
