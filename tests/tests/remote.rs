//! The remote target over a real OpenSSH server (the shared test setup's sshd on a loopback
//! port, `scripts/services.sh start ssh`), with key and password logins.

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::time::{Duration, Instant};

use xp_tests::{process_exists, processes_matching, service_env, TestProject};

struct Ssh {
    address: String,
    user: String,
    key: String,
    password_user: String,
    password: String,
}

fn ssh() -> Ssh {
    let env = service_env("ssh");
    Ssh {
        address: format!("{}:{}", env["XP_TEST_SSH_HOST"], env["XP_TEST_SSH_PORT"]),
        user: env["XP_TEST_SSH_USER"].clone(),
        key: env["XP_TEST_SSH_KEY"].clone(),
        password_user: env["XP_TEST_SSH_PASSWORD_USER"].clone(),
        password: env["XP_TEST_SSH_PASSWORD"].clone(),
    }
}

/// A project with a remote target `r` logging in with the test key.
fn remote_project(ssh: &Ssh, extra: &[&str]) -> TestProject {
    let project = TestProject::new();
    let mut args = vec![
        "computetarget",
        "attach",
        "remote",
        "--name",
        "r",
        "--address",
        &ssh.address,
        "--username",
        &ssh.user,
        "--private-key-file",
        &ssh.key,
    ];
    args.extend_from_slice(extra);
    let attach = project.xp(args).run().success();
    assert!(
        attach.stderr.contains("recorded its host key SHA256:"),
        "first contact prints the fingerprint: {}",
        attach.stderr
    );
    project
}

const SHOW: &str = r#"import getpass, json, os, sys
from azureml.logging import get_azureml_logger
get_azureml_logger().log("where", "remote")
share = os.environ["AZUREML_NATIVE_SHARE_DIRECTORY"]
print(json.dumps({"argv": sys.argv[1:], "user": getpass.getuser(), "cwd": os.getcwd(),
                  "greeting": os.environ.get("GREETING"), "share": share}))
print("on stderr", file=sys.stderr)
sys.stderr.flush()
sys.stderr.buffer.write(b"\xff not UTF-8\n")
os.makedirs("outputs", exist_ok=True)
open("outputs/host.txt", "w").write(os.uname().nodename)
sys.exit(3 if "--fail" in sys.argv else 0)
"#;

#[test]
fn a_script_runs_on_the_host_with_every_value_verbatim() {
    let ssh = ssh();
    let project = remote_project(&ssh, &[]);
    let config = project.read("aml_config/r.runconfig").replace(
        "\"EXAMPLE_ENV_VAR\": \"Example Value\"",
        "GREETING: \"it's $(id) `id` \\\"quoted\\\"\"",
    );
    project.write("aml_config/r.runconfig", &config);
    project.write("show.py", SHOW);
    let hostile = "'; rm -rf ~ #";
    let run = project
        .xp(["submit", "-c", "r", "show.py", hostile, "$HOME", "a b"])
        .run()
        .success();
    let shown: serde_json::Value = serde_json::from_str(run.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(shown["argv"], serde_json::json!([hostile, "$HOME", "a b"]));
    assert_eq!(shown["greeting"], "it's $(id) `id` \"quoted\"");
    assert_eq!(shown["user"], ssh.user, "the script runs as the target's user");
    assert!(shown["cwd"].as_str().unwrap().contains("/.xp-remote/runs/"), "{shown}");
    assert!(
        shown["share"].as_str().unwrap().ends_with("/.azureml/share/proj/"),
        "{shown}"
    );
    assert!(run.stderr.contains("on stderr"), "{}", run.stderr);
    assert!(
        run.stderr.contains("not UTF-8"),
        "bytes that are not UTF-8 still arrive: {}",
        run.stderr
    );

    let record = project.last_record();
    assert_eq!(record["status"], "Completed");
    assert_eq!(record["metrics"]["where"], "remote");
    assert_eq!(record["artifacts"], serde_json::json!(["outputs/host.txt"]));
    project.xp(["submit", "-c", "r", "show.py", "--fail"]).run().code(3);
    assert_eq!(project.last_record()["status"], "Failed");
    assert!(
        std::path::Path::new(&format!("/home/{}", ssh.user))
            .join(".xp-remote/cache")
            .is_dir(),
        "the host keeps the file cache"
    );
}

#[test]
fn an_unchanged_project_sends_nothing_and_an_edit_sends_one_file() {
    let ssh = ssh();
    let project = remote_project(&ssh, &["--set", "remoteDirectory=.xp-remote-incremental"]);
    let unique = format!("{:?}", std::time::SystemTime::now());
    project.write("data/big.bin", &format!("{unique}{}", "x".repeat(2 << 20)));
    project.write("data/small.txt", &unique);
    project.write("job.py", "print(len(open('data/big.bin').read()))\n");
    let first = project.xp(["submit", "-c", "r", "job.py"]).run().success();
    assert!(first.stderr.contains("Snapshot: sent"), "{}", first.stderr);
    assert!(
        !first.stderr.contains("sent 0 of"),
        "a first submit sends the files: {}",
        first.stderr
    );
    let second = project.xp(["submit", "-c", "r", "job.py"]).run().success();
    assert!(
        second.stderr.contains("Snapshot: sent 0 of"),
        "an unchanged project sends nothing: {}",
        second.stderr
    );
    assert!(second.stderr.contains("(0 of "), "{}", second.stderr);
    assert_eq!(first.stdout, second.stdout);
    project.write("data/small.txt", &format!("{unique} edited"));
    let third = project.xp(["submit", "-c", "r", "job.py"]).run().success();
    assert!(
        third.stderr.contains("Snapshot: sent 1 of"),
        "a one-file edit sends one file: {}",
        third.stderr
    );
}

#[test]
fn a_changed_host_key_is_refused_with_how_to_accept_it() {
    let ssh = ssh();
    let project = remote_project(&ssh, &[]);
    project.write("ok.py", "print('never')\n");
    let known_hosts = project.home().join(".xp-home/config/known_hosts");
    let recorded = std::fs::read_to_string(&known_hosts).unwrap();
    assert!(recorded.contains("[127.0.0.1]:"), "{recorded}");
    // Another host's key under the same name: what a man in the middle would present.
    let other = project.home().join("other_key");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(status.success());
    let other_key = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let mut fields = other_key.split_whitespace();
    let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
    let name = recorded.split_whitespace().next().unwrap();
    std::fs::write(&known_hosts, format!("{name} {kind} {key}\n")).unwrap();
    let run = project.xp(["submit", "-c", "r", "ok.py"]).run().error_mentions(&[
        "CHANGED",
        "SHA256:",
        known_hosts.to_str().unwrap(),
        "delete the line",
    ]);
    assert!(!run.stdout.contains("never"));
    assert_eq!(project.last_record()["status"], "Failed");
}

#[test]
fn ctrl_c_ends_the_remote_process_group() {
    let ssh = ssh();
    let project = remote_project(&ssh, &[]);
    let marker = format!("xp-remote-ctrl-c-{}", std::process::id());
    project.write(
        "tree.py",
        &format!("import subprocess, sys, time\nsubprocess.Popen(['sleep', '300', '{marker}'][:2])\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', '{marker}'])\nprint('started', flush=True)\ntime.sleep(300)\n"),
    );
    let mut xp = project.xp(["submit", "-c", "r", "tree.py", &marker]).spawn();
    let mut lines = BufReader::new(xp.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "started");
    assert!(
        processes_matching(&marker).len() >= 2,
        "the script and its child run on the host"
    );
    unsafe { libc::kill(xp.id() as i32, libc::SIGINT) };
    assert_eq!(xp.wait().unwrap().code(), Some(130));
    assert_eq!(project.last_record()["status"], "Canceled");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_matching(&marker).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        processes_matching(&marker).is_empty(),
        "nothing keeps running on the host"
    );
}

#[test]
fn a_detached_run_survives_a_dropped_connection() {
    let ssh = ssh();
    let project = remote_project(&ssh, &[]);
    // The script (run as the test user) waits for a file this test writes, where it can see it.
    let go = std::path::PathBuf::from(format!("/tmp/xp-remote-go-{}", std::process::id()));
    let _ = std::fs::remove_file(&go);
    project.write(
        "ticks.py",
        &format!("import os, time\nfor i in range(3):\n    print('tick', i, flush=True)\nwhile not os.path.exists('{}'):\n    time.sleep(0.05)\nfor i in range(3, 6):\n    print('tick', i, flush=True)\nos.makedirs('outputs', exist_ok=True)\nopen('outputs/done.txt', 'w').write('done')\n", go.display()),
    );
    let run_id = project
        .xp(["submit", "-a", "-c", "r", "ticks.py"])
        .run()
        .success()
        .stdout
        .trim()
        .to_owned();
    let log = project.path(&format!(".xp/runs/{run_id}/output.log"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("tick 2") {
        assert!(Instant::now() < deadline, "the run never printed");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Cut the connection: end the sshd process serving the supervisor, and only that one
    // (other tests use the same server).
    let supervisor = processes_matching(&format!(
        "supervise {}",
        project.path(&format!(".xp/runs/{run_id}")).display()
    ));
    assert_eq!(supervisor.len(), 1, "one supervisor drives the run");
    let sessions = xp_tests::tcp_peers_of(supervisor[0]);
    assert!(!sessions.is_empty(), "the supervisor holds a connection to sshd");
    for pid in &sessions {
        unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
    }
    std::fs::write(&go, "").unwrap();
    let follow = project.xp(["history", "logs", &run_id, "-f"]).run().success();
    let ticks: Vec<&str> = follow.stdout.lines().filter(|l| l.starts_with("tick")).collect();
    assert_eq!(
        ticks,
        vec!["tick 0", "tick 1", "tick 2", "tick 3", "tick 4", "tick 5"],
        "{}",
        follow.stdout
    );
    assert!(
        follow.stdout.contains("Reconnected"),
        "the supervisor reconnected: {}",
        follow.stdout
    );
    assert!(follow.stderr.contains("Completed"), "{}", follow.stderr);
    assert_eq!(
        project.read(&format!(".xp/runs/{run_id}/outputs/done.txt")),
        "done",
        "outputs still arrive"
    );
    assert!(sessions.iter().all(|pid| !process_exists(*pid)));
    let _ = std::fs::remove_file(&go);
}

#[test]
fn passwords_and_xp_keys_log_in_and_never_reach_the_project() {
    let ssh = ssh();
    let project = TestProject::new();
    project.write("who.py", "import getpass\nprint('hello from', getpass.getuser())\n");
    let attach = project
        .xp([
            "computetarget",
            "attach",
            "remote",
            "--name",
            "pw",
            "--address",
            &ssh.address,
            "--username",
            &ssh.password_user,
            "--password",
        ])
        .run_with_stdin(&format!("{}\n", ssh.password));
    assert_eq!(attach.code, Some(0), "{}", attach.stderr);
    assert!(!attach.stderr.contains(&ssh.password) && !attach.stdout.contains(&ssh.password));
    let compute = project.read("aml_config/pw.compute");
    assert!(
        compute.contains("password: secret:") || compute.contains("password: \"secret:"),
        "{compute}"
    );
    let run = project.xp(["submit", "-c", "pw", "who.py"]).run().success();
    assert_eq!(run.stdout.trim(), format!("hello from {}", ssh.password_user));
    assert_no_file_contains(&project.root(), &ssh.password);

    let wrong = project
        .xp([
            "computetarget",
            "attach",
            "remote",
            "--name",
            "bad",
            "--address",
            &ssh.address,
            "--username",
            &ssh.password_user,
            "--password",
        ])
        .run_with_stdin("not-the-password\n");
    assert_eq!(wrong.code, Some(1));
    assert!(
        wrong.stderr.contains("authentication") && wrong.stderr.contains("password was refused"),
        "{}",
        wrong.stderr
    );
    assert!(!wrong.stderr.contains("not-the-password"), "{}", wrong.stderr);
    assert!(!project.path("aml_config/bad.compute").exists());

    // -k: xp makes a key pair and prints the line to add to authorized_keys.
    let attach = project
        .xp([
            "computetarget",
            "attach",
            "remote",
            "--name",
            "k",
            "--address",
            &ssh.address,
            "--username",
            &ssh.user,
            "-k",
        ])
        .run()
        .success();
    let public = attach
        .stderr
        .lines()
        .find(|l| l.starts_with("ssh-ed25519 "))
        .unwrap_or_else(|| panic!("the public key is printed: {}", attach.stderr))
        .to_owned();
    let authorized = format!("/home/{}/.ssh/authorized_keys", ssh.user);
    let before = std::fs::read_to_string(&authorized).unwrap();
    std::fs::write(&authorized, format!("{before}{public}\n")).unwrap();
    let run = project.xp(["submit", "-c", "k", "who.py"]).run();
    std::fs::write(&authorized, &before).unwrap();
    let run = run.success();
    assert_eq!(run.stdout.trim(), format!("hello from {}", ssh.user));
    assert_no_file_contains(&project.root(), "PRIVATE KEY");
}

fn assert_no_file_contains(dir: &std::path::Path, needle: &str) {
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(needle),
                    "{} holds a secret",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn unreachable_hosts_missing_pythons_and_full_disks_fail_with_the_reason() {
    let ssh = ssh();
    let project = remote_project(&ssh, &[]);
    project.write("ok.py", "print('never')\n");
    let set = |key: &str, value: &str| {
        let compute = project.read("aml_config/r.compute");
        let kept: Vec<&str> = compute.lines().filter(|l| !l.starts_with(&format!("{key}:"))).collect();
        project.write(
            "aml_config/r.compute",
            &format!("{}\n{key}: {value}\n", kept.join("\n")),
        );
    };

    set("pythonLocation", "/opt/no/python9");
    project
        .xp(["submit", "-c", "r", "ok.py"])
        .run()
        .error_mentions(&["/opt/no/python9", "pythonLocation"]);
    assert_eq!(project.last_record()["status"], "Failed");
    set("pythonLocation", "python3");

    set("address", "127.0.0.1:1");
    project
        .xp(["submit", "-c", "r", "ok.py"])
        .run()
        .error_mentions(&["cannot connect", "127.0.0.1:1"]);
    set("address", "no-such-host.invalid");
    project
        .xp(["submit", "-c", "r", "ok.py"])
        .run()
        .error_mentions(&["cannot resolve", "no-such-host.invalid"]);
    set("address", &ssh.address);

    // A host whose disk is full: xp's folder on a tiny file system.
    let full = format!("/tmp/xp-full-{}", std::process::id());
    std::fs::create_dir_all(&full).unwrap();
    let uid = Command::new("id").args(["-u", &ssh.user]).output().unwrap();
    let uid = String::from_utf8_lossy(&uid.stdout).trim().to_owned();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size=64k,uid={uid}"), "tmpfs", &full])
        .status()
        .unwrap();
    assert!(mounted.success(), "mounting a tiny tmpfs for the full-disk case");
    project.write("data/blob.bin", &"y".repeat(300 * 1024));
    set("remoteDirectory", &full);
    let run = project.xp(["submit", "-c", "r", "ok.py"]).run();
    let _ = Command::new("umount").arg(&full).status();
    let _ = std::fs::remove_dir(&full);
    let run = run.error_mentions(&["disk"]);
    assert!(!run.stdout.contains("never"));
    let record = project.last_record();
    assert_eq!(record["status"], "Failed");
    assert!(record["error"].as_str().unwrap().contains("disk"), "{record}");
}

#[test]
fn a_remote_run_whose_driver_vanished_is_ended_on_the_host_by_the_next_look() {
    let ssh = ssh();
    let project = remote_project(&ssh, &[]);
    let marker = format!("xp-remote-reap-{}", std::process::id());
    project.write(
        "sleep.py",
        &format!("import sys, time\nprint('sleeping', flush=True)\ntime.sleep(300)  # {marker}\n"),
    );
    let run = project
        .xp(["submit", "-a", "-c", "r", "sleep.py", &marker])
        .run()
        .success();
    let run_id = run.stdout.trim().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    while processes_matching(&marker).is_empty()
        || !project
            .xp(["history", "logs", &run_id])
            .run()
            .stdout
            .contains("sleeping")
    {
        assert!(Instant::now() < deadline, "the remote script never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        run_folders_on_host(&ssh).contains(&run_id),
        "the running run has its folder on the host"
    );
    // The supervisor dies as in a crash; the script, detached on the host, would go on.
    let supervisor = xp_tests::supervisor_pid(&run_id);
    // SAFETY: kill(2) on a process this test started (through xp).
    unsafe { libc::kill(supervisor as i32, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_exists(supervisor) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !processes_matching(&marker).is_empty(),
        "the script outlived its driver"
    );

    let record = project.run_record(&run_id);
    assert_eq!(record["status"], "Failed", "{record}");
    let error = record["error"].as_str().unwrap();
    assert!(
        error.contains("ended without recording an outcome")
            && error.contains("ended on target 'r': the run's processes and folder"),
        "{error}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_matching(&marker).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        processes_matching(&marker).is_empty(),
        "the plugin's reap ended the script on the host"
    );
    let listed = run_folders_on_host(&ssh);
    assert!(
        !listed.contains(&run_id),
        "the run's folder on the host was removed: {listed}"
    );
}

/// `ls ~/.xp-remote/runs/` on the test host, over OpenSSH with the test key.
fn run_folders_on_host(ssh: &Ssh) -> String {
    let (host, port) = ssh.address.rsplit_once(':').unwrap();
    let listed = Command::new("ssh")
        .args(["-i", &ssh.key, "-p", port])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
        ])
        .arg(format!("{}@{host}", ssh.user))
        .arg("ls ~/.xp-remote/runs/")
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "ssh: {}",
        String::from_utf8_lossy(&listed.stderr)
    );
    String::from_utf8_lossy(&listed.stdout).into_owned()
}
