//! Issue 9, items 3 and 4: a stored secret serves only the project and target that stored it,
//! its id cannot be guessed, and every value xp records is masked before it is stored —
//! against the remote target over the test sshd with a password login.

use std::path::{Path, PathBuf};

use xp_tests::{service_env, TestProject};

struct PasswordLogin {
    address: String,
    user: String,
    password: String,
}

fn login() -> PasswordLogin {
    let env = service_env("ssh");
    PasswordLogin {
        address: format!("{}:{}", env["XP_TEST_SSH_HOST"], env["XP_TEST_SSH_PORT"]),
        user: env["XP_TEST_SSH_PASSWORD_USER"].clone(),
        password: env["XP_TEST_SSH_PASSWORD"].clone(),
    }
}

/// Attaches a remote target `r` logging in with the password; returns the secret id the
/// `.compute` file refers to.
fn attach(project: &TestProject, login: &PasswordLogin) -> String {
    project
        .xp([
            "computetarget",
            "attach",
            "remote",
            "--name",
            "r",
            "--address",
            &login.address,
            "--username",
            &login.user,
            "--password",
            "--set",
            "remoteDirectory=.xp-remote-trust-secrets",
            "--force",
        ])
        .run_with_stdin(&format!("{}\n", login.password))
        .success();
    let compute = project.read("aml_config/r.compute");
    let line = compute
        .lines()
        .find(|line| line.starts_with("password: \"secret:"))
        .unwrap_or_else(|| panic!("{compute}"));
    line["password: \"secret:".len()..].trim_end_matches('"').to_owned()
}

/// Two projects of the same user, sharing HOME (and so the secret store).
fn sibling(of: &TestProject) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("attacker");
    std::fs::create_dir_all(root.join("aml_config")).unwrap();
    let _ = of;
    (dir, root)
}

/// `xp` in `root` with `project`'s HOME.
fn xp_in(project: &TestProject, root: &Path, args: &[&str]) -> xp_tests::Finished {
    let mut command = project.xp(args.iter().copied());
    command.command().current_dir(root);
    command.run()
}

fn files_containing(root: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                let bytes = std::fs::read(entry.path()).unwrap_or_default();
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found.push(entry.path());
                }
            }
        }
    }
    found
}

#[test]
fn another_project_cannot_use_or_remove_a_stored_secret() {
    let login = login();
    let victim = TestProject::new();
    victim.write("who.py", "import getpass\nprint('hello from', getpass.getuser())\n");
    let id = attach(&victim, &login);
    // Random: 32 hex digits after `<target>-<setting>-`, nothing derived from the project.
    let suffix = id.strip_prefix("r-password-").unwrap_or_else(|| panic!("{id}"));
    assert_eq!(suffix.len(), 32, "{id}");
    assert!(suffix.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
    assert_ne!(attach(&victim, &login), id, "a new id on every attach");
    let id = attach(&victim, &login);

    // The attacker's project names the victim's secret and an address of its choice.
    let (_keep, attacker) = sibling(&victim);
    std::fs::write(
        attacker.join("aml_config/r.compute"),
        format!(
            "type: remote\naddress: \"{}\"\nusername: \"{}\"\npassword: \"secret:{id}\"\nremoteDirectory: .xp-remote-attacker\n",
            login.address, login.user
        ),
    )
    .unwrap();
    std::fs::write(attacker.join("aml_config/r.runconfig"), "Target: r\n").unwrap();
    std::fs::write(attacker.join("who.py"), "print('the attacker logged in')\n").unwrap();
    let refused = xp_in(&victim, &attacker, &["submit", "-c", "r", "who.py"]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused.stderr.contains("r.compute") && refused.stderr.contains("another project or target"),
        "{}",
        refused.stderr
    );
    assert!(
        !refused.stderr.contains(&id),
        "the error names the secret: {}",
        refused.stderr
    );
    assert!(!refused.stderr.contains(&login.password), "{}", refused.stderr);
    assert!(!refused.stdout.contains("logged in"), "{}", refused.stdout);
    // Nothing ran, nothing was recorded.
    let history = xp_in(&victim, &attacker, &["history", "list", "-o", "json"]);
    assert_eq!(history.stdout.trim(), "[]", "{history:?}");
    // Nor can it remove the secret by detaching its target.
    let detach = xp_in(&victim, &attacker, &["computetarget", "detach", "r"]);
    assert_eq!(detach.code, Some(0), "{detach:?}");
    // Another target of the victim's own project is another scope too.
    let mut other = victim.read("aml_config/r.compute");
    other = other.replace(
        "remoteDirectory: .xp-remote-trust-secrets",
        "remoteDirectory: .xp-remote-other",
    );
    victim.write("aml_config/other.compute", &other);
    victim.write("aml_config/other.runconfig", "Target: other\n");
    victim
        .xp(["submit", "-c", "other", "who.py"])
        .run()
        .error_mentions(&["other.compute", "another project or target"]);

    // The victim still logs in.
    let run = victim.xp(["submit", "-c", "r", "who.py"]).run().success();
    assert_eq!(run.stdout.trim(), format!("hello from {}", login.user));
}

#[test]
fn a_secret_stored_by_xp_0_1_serves_the_project_it_was_made_for() {
    let login = login();
    let project = TestProject::new();
    project.write("who.py", "import getpass\nprint('hello from', getpass.getuser())\n");
    let id = attach(&project, &login);
    // Rewrite the store as xp 0.1 left it: the value alone, under `<target>-<setting>-<hash>`.
    let store = project.home().join(".xp-home/config/secrets");
    std::fs::remove_file(store.join(&id)).unwrap();
    let root = std::fs::canonicalize(project.root()).unwrap();
    let digest = {
        let output = std::process::Command::new("python3")
            .args([
                "-c",
                "import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest()[:8])",
            ])
            .arg(&root)
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    let legacy = format!("r-password-{digest}");
    std::fs::write(store.join(&legacy), &login.password).unwrap();
    let compute = project.read("aml_config/r.compute").replace(&id, &legacy);
    project.write("aml_config/r.compute", &compute);
    let run = project.xp(["submit", "-c", "r", "who.py"]).run().success();
    assert_eq!(run.stdout.trim(), format!("hello from {}", login.user));

    // Copied into another project, the old reference is refused like a new one.
    let (_keep, attacker) = sibling(&project);
    std::fs::write(attacker.join("aml_config/r.compute"), &compute).unwrap();
    std::fs::write(attacker.join("aml_config/r.runconfig"), "Target: r\n").unwrap();
    std::fs::write(attacker.join("who.py"), "print('in')\n").unwrap();
    let refused = xp_in(&project, &attacker, &["submit", "-c", "r", "who.py"]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused.stderr.contains("another project or target"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains(&legacy), "{}", refused.stderr);
}

const ENVS: &str = r#"import os, sys
print("argv:", sys.argv[1:])
from xp_logging import log_metric
log_metric("seen " + sys.argv[1], 1)
raise SystemExit("failing with " + sys.argv[1])
"#;

#[test]
fn an_argument_equal_to_the_password_is_masked_in_everything_recorded() {
    let login = login();
    let project = TestProject::new();
    attach(&project, &login);
    project.write("envs.py", ENVS);
    let run = project
        .xp(["submit", "-c", "r", "envs.py", &login.password, "--other"])
        .run();
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stdout.contains("argv: ['****', '--other']"), "{}", run.stdout);
    let record = project.last_record();
    let run_id = record["run_id"].as_str().unwrap().to_owned();
    assert_eq!(record["arguments"], serde_json::json!(["****", "--other"]));
    assert!(
        record["error"].as_str().unwrap().contains("failing with ****"),
        "{record}"
    );
    assert!(record["metrics"].get("seen ****").is_some(), "{record}");

    // A detached run: the supervisor gets its arguments without a file in the project.
    let detached = project
        .xp(["submit", "-a", "-c", "r", "envs.py", &login.password])
        .run()
        .success();
    let detached_id = detached.stdout.trim().to_owned();
    let logs = project.xp(["history", "logs", &detached_id, "-f"]).run().success();
    assert!(logs.stdout.contains("argv: ['****']"), "{}", logs.stdout);

    // What a user would look at: info, list, compare, the database, every file of the project.
    for args in [
        vec!["history", "info", run_id.as_str(), "-o", "json"],
        vec!["history", "info", run_id.as_str()],
        vec!["history", "list", "-o", "json"],
        vec!["history", "compare", run_id.as_str(), detached_id.as_str()],
        vec!["history", "logs", run_id.as_str()],
    ] {
        let shown = project.xp(args.clone()).run().success();
        assert!(
            !shown.stdout.contains(&login.password) && !shown.stderr.contains(&login.password),
            "{args:?} shows the password:\n{}",
            shown.stdout
        );
    }
    let leaked = files_containing(&project.root(), &login.password);
    assert!(leaked.is_empty(), "the password is in {leaked:?}");
}
