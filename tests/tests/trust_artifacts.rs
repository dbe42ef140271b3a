//! Issue 9, items 1 and 2: what a script leaves in `outputs/` never makes xp read or write
//! outside the run's folders, and one odd entry never drops the others — on every target
//! (local, docker with the snapshot mounted or copied, remote over the test sshd).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde_json::json;
use xp_tests::{test_image, TestProject};

/// What an attacker's script leaves in `outputs/`: links to the host's files (absolute, by
/// `..`, into the user's secret store, to a folder), a name that is not UTF-8, a name with a
/// newline, a named pipe, and two plain files.
const ATTACK: &str = r#"import os, sys
secret = sys.argv[1]
os.makedirs("outputs/sub", exist_ok=True)
os.symlink("/etc/passwd", "outputs/p")
os.symlink("../" * 12 + "etc/passwd", "outputs/rel")
os.symlink(secret, "outputs/key")
os.symlink("/etc", "outputs/etcdir")
open("outputs/ok.txt", "w").write("plain")
open("outputs/sub/deep.txt", "w").write("deep")
open(b"outputs/caf\xe9.txt", "wb").write(b"bytes \xe9")
open("outputs/two\nlines.txt", "w").write("newline")
os.mkfifo("outputs/fifo")
print("attack ready")
"#;

const SECRET_VALUE: &str = "TOP-SECRET-KEY-MATERIAL";

/// A file in the user's secret store (the store xp keeps private keys in) for the script to
/// point a link at.
fn plant_secret(project: &TestProject) -> PathBuf {
    let store = project.home().join(".xp-home/config/secrets");
    std::fs::create_dir_all(&store).unwrap();
    let path = store.join("victim-privateKey-0000");
    std::fs::write(&path, SECRET_VALUE).unwrap();
    path
}

/// Every file under `dir` (relative, as bytes) with its content; fails on anything that is
/// not a file or a folder.
fn files_under(dir: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                pending.push(entry.path());
            } else {
                assert!(kind.is_file(), "{} is not a file", entry.path().display());
                let relative = entry.path().strip_prefix(dir).unwrap().as_os_str().as_bytes().to_vec();
                found.push((relative, std::fs::read(entry.path()).unwrap()));
            }
        }
    }
    found.sort();
    found
}

/// Submits the attack with `-c config` and checks what a user would: the record, the
/// download folder's bytes, promote, and the log.
fn attack_and_check(project: &TestProject, config: &str) {
    let secret = plant_secret(project);
    project.write("attack.py", ATTACK);
    let run = project
        .xp(["submit", "-c", config, "attack.py", secret.to_str().unwrap()])
        .run()
        .success();
    assert!(run.stdout.contains("attack ready"), "{}", run.stdout);
    assert!(
        run.stderr.contains("4 link(s) in outputs/ recorded, not followed"),
        "{}",
        run.stderr
    );

    let record = project.last_record();
    let run_id = record["run_id"].as_str().unwrap().to_owned();
    assert_eq!(record["status"], "Completed", "{record}");
    assert_eq!(record["exit_code"], 0);
    assert_eq!(record["lost"], json!([]), "nothing was lost: {record}");
    assert_eq!(
        record["artifacts"],
        json!([
            "outputs/caf\\xe9.txt",
            "outputs/ok.txt",
            "outputs/sub/deep.txt",
            "outputs/two\\nlines.txt"
        ])
    );
    assert_eq!(
        record["artifact_links"],
        json!([
            {"path": "outputs/etcdir", "target": "/etc"},
            {"path": "outputs/key", "target": secret.to_str().unwrap()},
            {"path": "outputs/p", "target": "/etc/passwd"},
            {"path": "outputs/rel", "target": "../".repeat(12) + "etc/passwd"},
        ])
    );

    // The download folder holds the script's own bytes, names byte-exact, and nothing else.
    let download = project.path("dl");
    let fetched = project.xp(["history", "download", &run_id, "-d", "dl"]).run().success();
    assert!(fetched.stderr.contains("Skipped 4 link(s)"), "{}", fetched.stderr);
    assert_eq!(
        files_under(&download),
        vec![
            (b"outputs/caf\xe9.txt".to_vec(), b"bytes \xe9".to_vec()),
            (b"outputs/ok.txt".to_vec(), b"plain".to_vec()),
            (b"outputs/sub/deep.txt".to_vec(), b"deep".to_vec()),
            (b"outputs/two\nlines.txt".to_vec(), b"newline".to_vec()),
        ]
    );
    // One file by its recorded name, escapes and all.
    project
        .xp([
            "history",
            "download",
            &run_id,
            "--artifact",
            "outputs/caf\\xe9.txt",
            "-d",
            "one",
        ])
        .run()
        .success();
    assert_eq!(
        std::fs::read(project.path("one").join(OsStr::from_bytes(b"outputs/caf\xe9.txt"))).unwrap(),
        b"bytes \xe9"
    );

    // Asked for by name, a link is a clear error and nothing is written.
    for link in ["outputs/p", "outputs/key", "outputs/etcdir"] {
        project
            .xp(["history", "download", &run_id, "--artifact", link, "-d", "bylink"])
            .run()
            .error_mentions(&[link, "is a link", "never follows links"]);
        project
            .xp([
                "history",
                "promote",
                &run_id,
                "--artifact-path",
                link,
                "--name",
                "stolen",
            ])
            .run()
            .error_mentions(&[link, "is a link"]);
    }
    project
        .xp([
            "history",
            "download",
            &run_id,
            "--artifact",
            "outputs/etcdir/passwd",
            "-d",
            "bylink",
        ])
        .run()
        .error_mentions(&["no artifact"]);
    assert!(!project.path("bylink").exists());
    assert!(!project.path("assets/stolen.link").exists());
    project
        .xp([
            "history",
            "promote",
            &run_id,
            "--artifact-path",
            "outputs/caf\\xe9.txt",
            "--name",
            "cafe",
        ])
        .run()
        .success();
    let assets = project.xp(["asset", "list", "-o", "json"]).run().success();
    let assets: serde_json::Value = serde_json::from_str(&assets.stdout).unwrap();
    assert_eq!(assets[0]["artifact_path"], "outputs/caf\\xe9.txt");
    assert_eq!(assets[0]["exists"], true);

    // Tables keep one row per name; the log says what was skipped and why.
    let info = project.xp(["history", "info", &run_id]).run().success();
    assert!(info.stdout.contains("outputs/two\\nlines.txt"), "{}", info.stdout);
    assert!(!info.stdout.contains("two\nlines"), "{}", info.stdout);
    assert!(info.stdout.contains("outputs/p -> /etc/passwd"), "{}", info.stdout);
    let log = project.xp(["history", "logs", &run_id]).run().success();
    assert!(
        log.stdout.contains("outputs: skipped outputs/fifo: a named pipe"),
        "{}",
        log.stdout
    );

    // Nothing anywhere in the project holds the host's files.
    for (name, bytes) in files_under_project(project) {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("root:x:0:0") && !text.contains(SECRET_VALUE),
            "{} holds a host file's content",
            String::from_utf8_lossy(&name)
        );
    }
}

/// Every regular file of the project except xp's database files (which hold the link targets'
/// names, not their contents).
fn files_under_project(project: &TestProject) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut found = Vec::new();
    let mut pending = vec![project.root()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() && !entry.file_name().to_string_lossy().starts_with("history.db") {
                found.push((
                    entry.path().as_os_str().as_bytes().to_vec(),
                    std::fs::read(entry.path()).unwrap(),
                ));
            }
        }
    }
    found
}

#[test]
fn local_links_and_odd_names_are_recorded_never_followed() {
    let project = TestProject::new();
    attack_and_check(&project, "local");
}

fn docker_project(shared_volumes: bool) -> TestProject {
    let project = TestProject::new();
    let image = test_image("XP_TEST_PYTHON_IMAGE", "xp-test/python:bookworm");
    let setting = format!("sharedVolumes={shared_volumes}");
    project
        .xp([
            "computetarget",
            "attach",
            "docker",
            "--name",
            "d",
            "--base-image",
            &image,
            "--set",
            &setting,
        ])
        .run()
        .success();
    project
}

#[test]
fn docker_with_the_snapshot_mounted_records_links_never_followed() {
    attack_and_check(&docker_project(true), "d");
}

#[test]
fn docker_with_the_snapshot_copied_keeps_every_plain_file_and_the_status() {
    attack_and_check(&docker_project(false), "d");
}

#[test]
fn remote_keeps_every_plain_file_and_the_status() {
    let project = TestProject::new();
    project.attach_over_ssh("remote", "r", &["--set", "remoteDirectory=.xp-remote-trust"]);
    attack_and_check(&project, "r");
}

#[test]
fn errors_about_ten_thousand_artifacts_name_a_few() {
    let project = TestProject::new();
    project.write(
        "many.py",
        r#"import os
os.makedirs("outputs", exist_ok=True)
for i in range(10000):
    open("outputs/f%05d" % i, "w").write(str(i))
os.symlink("/etc", "outputs/zlink")
"#,
    );
    project.xp(["submit", "many.py"]).run().success();
    let record = project.last_record();
    let run_id = record["run_id"].as_str().unwrap().to_owned();
    assert_eq!(record["artifacts"].as_array().unwrap().len(), 10_000);

    let missing = project
        .xp(["history", "download", &run_id, "--artifact", "outputs/nope", "-d", "dl"])
        .run()
        .error_mentions(&["no artifact 'outputs/nope'", "outputs/f00000", "and 9990 more"]);
    assert!(missing.stderr.len() < 1000, "{}", missing.stderr.len());

    // A file gone from the run's folder: the download names it, changes nothing, stays short.
    let run_dir = project.path(&format!(".xp/runs/{run_id}/outputs"));
    std::fs::remove_file(run_dir.join("f04242")).unwrap();
    std::fs::remove_file(run_dir.join("f09999")).unwrap();
    let refused = project
        .xp(["history", "download", &run_id, "-d", "dl"])
        .run()
        .error_mentions(&[
            "nothing was downloaded",
            "2 of its 10000 file(s)",
            "outputs/f04242",
            "outputs/f09999",
        ]);
    assert!(refused.stderr.len() < 1000, "{}", refused.stderr.len());
    assert!(!project.path("dl").exists());
}
