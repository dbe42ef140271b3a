//! Snapshots: a run's files are its own (whatever it writes, deletes or chmods, as root or
//! not), the code of every run can be diffed and restored byte for byte, and deleting runs
//! frees exactly the stored files no other run needs.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use xp_tests::TestProject;

/// Waits for `path` to exist, for at most `limit`.
fn wait_for(path: &Path, limit: Duration) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < limit, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A run that rewrites an input in place (same inode), truncates another, chmods and deletes
/// inputs, while a concurrent run of the same code reads them: the project, the concurrent
/// run and a later run all see the original bytes.
fn isolation(method: &str) {
    let project = TestProject::new();
    let signals = tempfile::tempdir().unwrap();
    let original_big: String = (0..20_000).map(|i| format!("{i}\n")).collect();
    project
        .write("data/input.txt", "original input\n")
        .write("data/big.txt", &original_big)
        .write("data/keep.txt", "keep me\n")
        .write(
            "mutate.py",
            "import os\n\
             with open('data/input.txt', 'r+') as f:\n    f.write('MUTATED')\n\
             with open('data/big.txt', 'r+') as f:\n    f.truncate(3)\n\
             os.chmod('data/keep.txt', 0o000)\n\
             os.chmod('data', 0o500)\n\
             os.chmod('data', 0o755)\n\
             os.remove('data/keep.txt')\n\
             os.symlink('/etc/hostname', 'data/sneaky')\n\
             print('mutated:', open('data/input.txt').read().strip())\n",
        )
        .write(
            "reader.py",
            "import os, sys, time\n\
             go = os.environ['GO_FILE']\n\
             open(os.environ['READY_FILE'], 'w').close()\n\
             deadline = time.time() + 60\n\
             while not os.path.exists(go) and time.time() < deadline:\n    time.sleep(0.02)\n\
             os.makedirs('outputs', exist_ok=True)\n\
             seen = open('data/input.txt').read() + str(len(open('data/big.txt').read())) + '\\n'\n\
             seen += open('data/keep.txt').read() + str(os.path.exists('data/sneaky')) + '\\n'\n\
             open('outputs/seen.txt', 'w').write(seen)\n",
        );
    let ready = signals.path().join("ready");
    let go = signals.path().join("go");
    let mode_before = mode(&project.path("data/keep.txt"));
    let detached = project
        .xp(["experiment", "submit", "--detach", "reader.py"])
        .env("XP_SNAPSHOT", method)
        .env("READY_FILE", ready.as_os_str())
        .env("GO_FILE", go.as_os_str())
        .run()
        .success();
    let reader_id = detached.stdout.trim().lines().last().unwrap().to_owned();
    wait_for(&ready, Duration::from_secs(60));

    let mutated = project
        .xp(["experiment", "submit", "mutate.py"])
        .env("XP_SNAPSHOT", method)
        .run()
        .success();
    assert!(mutated.stdout.contains("mutated: MUTATEDl input"), "{}", mutated.stdout);
    std::fs::write(&go, "").unwrap();
    project.xp(["history", "logs", &reader_id, "-f"]).run().success();

    // The project is as it was.
    assert_eq!(project.read("data/input.txt"), "original input\n");
    assert_eq!(project.read("data/big.txt"), original_big);
    assert_eq!(project.read("data/keep.txt"), "keep me\n");
    assert_eq!(mode(&project.path("data/keep.txt")), mode_before);
    assert!(!project.path("data/sneaky").exists());
    // The concurrent run saw the original files.
    let seen = std::fs::read_to_string(
        project
            .root()
            .join(".xp/runs")
            .join(&reader_id)
            .join("outputs/seen.txt"),
    )
    .unwrap();
    assert_eq!(
        seen,
        format!("original input\n{}\nkeep me\nFalse\n", original_big.len()),
        "{method}: the concurrent run's view"
    );
    // And so does the next run, from the same stored files.
    project.write(
        "show.py",
        "print(open('data/input.txt').read().strip(), len(open('data/big.txt').read()))\n",
    );
    let next = project
        .xp(["experiment", "submit", "show.py"])
        .env("XP_SNAPSHOT", method)
        .run()
        .success();
    assert!(
        next.stdout.contains(&format!("original input {}", original_big.len())),
        "{method}: {}",
        next.stdout
    );
    // Nothing stays mounted or left behind in the runs' folders.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(project.root().to_str().unwrap()),
        "a snapshot is still mounted:\n{mounts}"
    );
    for run in std::fs::read_dir(project.root().join(".xp/runs")).unwrap() {
        let run = run.unwrap().path();
        assert!(!run.join("snapshot").exists(), "{} kept its snapshot", run.display());
    }
}

#[test]
fn runs_writing_into_their_inputs_change_nothing_else_with_overlay_snapshots() {
    // The tests run as root (CI does), where xp mounts snapshots; XP_SNAPSHOT=overlay makes
    // a failed mount an error rather than a silent fallback.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test needs root, as CI runs it");
    isolation("overlay");
}

#[test]
fn runs_writing_into_their_inputs_change_nothing_else_with_copied_snapshots() {
    isolation("copy");
}

#[test]
fn the_snapshot_of_a_run_whose_xp_was_killed_is_unmounted_when_the_run_is_marked() {
    let project = TestProject::new();
    project.write(
        "long.py",
        "import time\nprint('started', flush=True)\ntime.sleep(300)\n",
    );
    let mut xp = project.xp(["submit", "long.py"]).env("XP_SNAPSHOT", "overlay").spawn();
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(xp.stdout.take().unwrap()), &mut first).unwrap();
    assert_eq!(first.trim(), "started");
    let snapshot = project
        .root()
        .join(".xp/runs")
        .join(project.last_record()["run_id"].as_str().unwrap())
        .join("snapshot");
    let mounted = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(snapshot.to_str().unwrap())
    };
    assert!(mounted(), "a running run's snapshot is mounted");
    xp.kill().unwrap();
    xp.wait().unwrap();
    assert_eq!(project.last_record()["status"], "Failed");
    assert!(!mounted(), "the vanished run's snapshot is released");
    assert!(!snapshot.exists());
}

/// Runs `script` and returns its run number.
fn submit(project: &TestProject, script: &str) -> String {
    project.xp(["experiment", "submit", "-q", script]).run().success();
    project.last_record()["run_number"].to_string()
}

#[test]
fn diff_shows_what_changed_and_restore_writes_the_exact_files() {
    let project = TestProject::new();
    let binary: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    project
        .write("train.py", "import sys\nlr = 0.1\nepochs = 10\nprint(lr, epochs)\n")
        .write("notes.md", "first\n")
        .write("tool.sh", "#!/bin/sh\necho tool\n");
    std::fs::write(project.path("weights.bin"), &binary).unwrap();
    std::fs::set_permissions(project.path("tool.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("notes.md", project.path("alias.md")).unwrap();
    std::fs::create_dir(project.path("empty")).unwrap();
    let first = submit(&project, "train.py");
    let kept = tempfile::tempdir().unwrap();
    for name in [
        "train.py",
        "notes.md",
        "tool.sh",
        "weights.bin",
        "aml_config/local.runconfig",
    ] {
        let to = kept.path().join(name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(project.path(name), &to).unwrap();
    }

    project
        .write("train.py", "import sys\nlr = 0.05\nepochs = 10\nprint(lr, epochs)\n")
        .write("new.txt", "hello\n");
    std::fs::remove_file(project.path("notes.md")).unwrap();
    std::fs::remove_file(project.path("alias.md")).unwrap();
    std::fs::write(project.path("weights.bin"), &binary[..2000]).unwrap();
    std::fs::set_permissions(project.path("tool.sh"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let second = submit(&project, "train.py");

    let diff = project.xp(["history", "diff", &first, &second]).run().success();
    let expected = format!(
        "Code of run {first} -> run {second}: 1 added, 2 removed, 3 changed\n\
         D  alias.md\n\
         A  new.txt\n\
         D  notes.md\n\
         m  tool.sh  (755 -> 644)\n\
         M  train.py\n\
         M  weights.bin  (binary: 3000 bytes -> 2000 bytes)\n\
         \n\
         --- a/alias.md\n+++ /dev/null\n@@ -1 +0,0 @@\n-first\n\
         \n\
         --- /dev/null\n+++ b/new.txt\n@@ -0,0 +1 @@\n+hello\n\
         \n\
         --- a/notes.md\n+++ /dev/null\n@@ -1 +0,0 @@\n-first\n\
         \n\
         --- a/train.py\n+++ b/train.py\n@@ -1,4 +1,4 @@\n import sys\n-lr = 0.1\n+lr = 0.05\n epochs = 10\n print(lr, epochs)\n"
    );
    assert_eq!(diff.stdout, expected);
    let json: serde_json::Value = serde_json::from_str(
        &project
            .xp(["history", "diff", &first, &second, "-o", "json"])
            .run()
            .success()
            .stdout,
    )
    .unwrap();
    assert_eq!(json["added"], 1);
    assert_eq!(json["removed"], 2);
    assert_eq!(json["changed"], 3);

    let restored = tempfile::tempdir().unwrap();
    let into = restored.path().join("run1");
    project
        .xp(["history", "restore", &first, "-d", into.to_str().unwrap()])
        .run()
        .success();
    for name in [
        "train.py",
        "notes.md",
        "tool.sh",
        "weights.bin",
        "aml_config/local.runconfig",
    ] {
        assert_eq!(
            std::fs::read(into.join(name)).unwrap(),
            std::fs::read(kept.path().join(name)).unwrap(),
            "{name}"
        );
    }
    assert_eq!(mode(&into.join("tool.sh")), 0o755);
    assert_eq!(std::fs::read_to_string(into.join("alias.md")).unwrap(), "first\n");
    assert!(into.join("empty").is_dir());
    for never in [".xp", "outputs", "new.txt"] {
        assert!(!into.join(never).exists(), "{never} is not part of run 1's code");
    }
    let refused = project
        .xp(["history", "restore", &first, "-d", into.to_str().unwrap()])
        .run()
        .code(1);
    assert!(refused.stderr.contains("is not empty"), "{}", refused.stderr);
    let mut files = 0;
    let mut pending = vec![into.clone()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else {
                files += 1;
            }
        }
    }
    let info = project.run_record(&first);
    assert_eq!(info["snapshot"]["files"].as_u64(), Some(files), "{info}");
}

/// The names of the store's objects (their SHA-256).
fn objects(project: &TestProject) -> std::collections::BTreeSet<String> {
    let mut found = std::collections::BTreeSet::new();
    let root = project.root().join(".xp/store/objects");
    for fan in std::fs::read_dir(&root).unwrap() {
        let fan = fan.unwrap();
        for object in std::fs::read_dir(fan.path()).unwrap() {
            found.insert(format!(
                "{}{}",
                fan.file_name().to_string_lossy(),
                object.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    found
}

fn sha256(path: &Path) -> String {
    let output = std::process::Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(output.stdout).unwrap()[..64].to_owned()
}

#[test]
fn delete_frees_exactly_the_stored_files_no_run_references() {
    let project = TestProject::new();
    project
        .write("run.py", "print('ok')\n")
        .write("data.txt", "version one\n");
    let common: Vec<String> = ["run.py", "aml_config/local.runconfig", "aml_config/local.compute"]
        .iter()
        .map(|name| sha256(&project.path(name)))
        .collect();
    let one = sha256(&project.path("data.txt"));
    let first = submit(&project, "run.py");
    project.write("data.txt", "version two\n");
    let two = sha256(&project.path("data.txt"));
    let second = submit(&project, "run.py");
    project.write("data.txt", "version three\n");
    let three = sha256(&project.path("data.txt"));
    let third = submit(&project, "run.py");
    let all = objects(&project);
    for hash in common.iter().chain([&one, &two, &three]) {
        assert!(all.contains(hash), "{hash} is stored");
    }

    project.xp(["history", "delete", &second]).run().success();
    let after = objects(&project);
    assert!(!after.contains(&two), "run 2's own file is freed");
    assert_eq!(all.difference(&after).collect::<Vec<_>>(), vec![&two], "only that one");

    // A file no run references (an edit never submitted) goes with --prune.
    project.write("stray.py", "print('stray')\n");
    project.xp(["experiment", "submit", "-q", "run.py"]).run().success();
    let newest = project.last_record()["run_number"].to_string();
    project.xp(["history", "delete", &newest]).run().success();
    let pruned = project.xp(["history", "delete", "--prune"]).run().success();
    assert!(pruned.stderr.contains("Freed 0"), "{}", pruned.stderr);
    assert!(!objects(&project).contains(&sha256(&project.path("stray.py"))));
    assert_eq!(objects(&project), after, "the other runs' files stay");

    // The remaining runs' code is whole.
    let restored = tempfile::tempdir().unwrap();
    for (run, hash) in [(&first, &one), (&third, &three)] {
        let into = restored.path().join(run);
        project
            .xp(["history", "restore", run, "-d", into.to_str().unwrap()])
            .run()
            .success();
        assert_eq!(&sha256(&into.join("data.txt")), hash);
    }
    project
        .xp(["history", "restore", &second, "-d", "/tmp/never"])
        .run()
        .code(1);
}
