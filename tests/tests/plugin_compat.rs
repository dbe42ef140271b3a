//! The compatibility promise of the plugin API, kept with real builds: a plugin built against
//! the frozen baseline plugin-api (tests/abi-baseline, version 1.0.0) loads into today's `xp`
//! and every verb works (attach, prepare, run with live output, metrics and cancel, clean); a
//! plugin built against a newer plugin-api of the same major version loads too. The refusals
//! (another major version, a lying manifest) are in plugin_abi.rs.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use xp_tests::out_of_tree::{
    baseline_dir, build_baseline_plugin, build_baseline_plugin_against, host_api_version, install_plugin,
    package_version,
};
use xp_tests::{process_exists, processes_matching, supervisor_pid, TestProject, XpCommand};

const BASELINE_MANIFEST: &str = "name = \"baseline\"\nversion = \"1.0.0\"\ntarget_types = [\"baseline\"]\nplugin_api = \"^1.0\"\nlibrary = \"libxp_plugin_baseline.so\"\n";

/// The baseline plugin, built once per test binary against the frozen copy.
fn baseline_library() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(build_baseline_plugin)
}

fn xp<I: IntoIterator<Item = &'static str>>(project: &TestProject, plugins: &Path, args: I) -> XpCommand {
    project.xp(args).env("XP_PLUGIN_PATH", plugins)
}

fn wait_for_status(project: &TestProject, plugins: &Path, run: &str, wanted: &[&str]) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let output = xp(project, plugins, ["history", "info", "-o", "json"])
            .arg(run)
            .run()
            .success();
        let record: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
        if wanted.contains(&record["status"].as_str().unwrap()) {
            return record;
        }
        assert!(
            Instant::now() < deadline,
            "run {run} never reached {wanted:?}: {record}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_baseline_copy_is_the_released_1_0_0_and_the_host_is_of_the_same_major_version() {
    let frozen = package_version(&baseline_dir().join("plugin-api/Cargo.toml"));
    assert_eq!(frozen, "1.0.0", "tests/abi-baseline/plugin-api is frozen at 1.0.0");
    let host = semver_major(&host_api_version());
    assert_eq!(
        host, 1,
        "a new major version of plugin-api needs a new baseline folder, and this test updated"
    );
}

fn semver_major(version: &str) -> u64 {
    version.split('.').next().unwrap().parse().unwrap()
}

#[test]
fn a_plugin_built_against_the_frozen_baseline_runs_every_verb_in_todays_xp() {
    let project = TestProject::new();
    let plugins = project.home().join("plugins");
    install_plugin(&plugins, "baseline", BASELINE_MANIFEST, baseline_library());

    // Listed as compatible, with the version it was built against.
    let list = xp(&project, &plugins, ["plugin", "list", "--check", "-o", "json"])
        .run()
        .success();
    let entries: Vec<serde_json::Value> = serde_json::from_str(&list.stdout).unwrap();
    let entry = entries
        .iter()
        .find(|entry| entry["name"] == "baseline")
        .unwrap_or_else(|| panic!("the baseline plugin is listed: {}", list.stdout));
    assert_eq!(entry["compatible"], true, "{entry}");
    assert_eq!(entry["api_version"], "1.0.0", "{entry}");

    // attach: the plugin fills a setting and asks for PrepareEnvironment.
    let attach = xp(
        &project,
        &plugins,
        ["computetarget", "attach", "baseline", "--name", "b"],
    )
    .run()
    .success();
    let said = format!("{}{}", attach.stdout, attach.stderr);
    assert!(
        said.contains("baseline plugin attached 'b' (built against plugin-api 1.0.0)"),
        "{said}"
    );
    assert!(project.read("aml_config/b.compute").contains("pythonLocation"));
    assert!(project
        .read("aml_config/b.runconfig")
        .contains("PrepareEnvironment: true"));

    // prepare: built once, then reused.
    let first = xp(&project, &plugins, ["experiment", "prepare", "-c", "b"])
        .run()
        .success();
    assert!(
        format!("{}{}", first.stdout, first.stderr).contains("baseline environment prepared"),
        "{first:?}"
    );
    let again = xp(&project, &plugins, ["experiment", "prepare", "-c", "b"])
        .run()
        .success();
    assert!(
        format!("{}{}", again.stdout, again.stderr).contains("baseline environment reused"),
        "{again:?}"
    );

    // run: output of both streams, metrics from the script and from the plugin, artifacts.
    project.write(
        "train.py",
        "import sys\nfrom azureml.logging import get_azureml_logger\nlog = get_azureml_logger()\nprint('to stdout', sys.argv[1:])\nprint('to stderr', file=sys.stderr)\nfor v in (0.5, 0.25):\n    log.log('loss', v)\nimport os\nos.makedirs('outputs', exist_ok=True)\nopen('outputs/result.txt', 'w').write('baseline result')\n",
    );
    let run = xp(&project, &plugins, ["submit", "-c", "b", "train.py", "--lr", "0.1"])
        .run()
        .success();
    assert!(run.stdout.contains("to stdout ['--lr', '0.1']"), "{}", run.stdout);
    assert!(run.stderr.contains("to stderr"), "{}", run.stderr);
    let record = project.last_record();
    assert_eq!(record["status"], "Completed", "{record}");
    assert_eq!(record["metrics"]["loss"], 0.25, "{record}");
    assert_eq!(record["metrics"]["baseline_plugin_metric"], 42, "{record}");
    let run_id = record["run_id"].as_str().unwrap();
    let artifact = project.path(&format!(".xp/runs/{run_id}/outputs/result.txt"));
    assert_eq!(std::fs::read_to_string(artifact).unwrap(), "baseline result");
    let log = std::fs::read_to_string(project.path(&format!(".xp/runs/{run_id}/output.log"))).unwrap();
    assert!(log.contains("to stdout") && log.contains("to stderr"), "{log}");

    // clean: the plugin removes what prepare made.
    let clean = xp(&project, &plugins, ["experiment", "clean", "-c", "b"])
        .run()
        .success();
    let said = format!("{}{}", clean.stdout, clean.stderr);
    assert!(said.contains("prepared"), "clean names what it removed: {said}");
}

#[test]
fn the_baseline_plugin_streams_output_live_and_honours_cancel() {
    let project = TestProject::new();
    let plugins = project.home().join("plugins");
    install_plugin(&plugins, "baseline", BASELINE_MANIFEST, baseline_library());
    xp(
        &project,
        &plugins,
        ["computetarget", "attach", "baseline", "--name", "b"],
    )
    .run()
    .success();

    // Live: the first line arrives while the script still waits for the test's go.
    let go = project.path("go");
    project.write(
        "live.py",
        "import os, time\nprint('first line', flush=True)\nwhile not os.path.exists('GO'):\n    time.sleep(0.05)\nprint('second line')\n",
    );
    let live = project
        .read("live.py")
        .replace("'GO'", &format!("{:?}", go.display().to_string()));
    project.write("live.py", &live);
    let mut child = xp(&project, &plugins, ["submit", "-c", "b", "live.py"]).spawn();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "first line");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first line came while the run was still going"
    );
    std::fs::write(&go, "").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(rest.contains("second line"), "{rest}");

    // Cancel: a detached run, cancelled from another xp, ends with its processes.
    project.write(
        "long.py",
        "import time\nprint('started', flush=True)\ntime.sleep(300)  # xp-baseline-cancel-marker\n",
    );
    let submitted = xp(&project, &plugins, ["submit", "-c", "b", "--detach", "long.py"])
        .run()
        .success();
    let run_id = submitted.stdout.trim().to_owned();
    let log = project.path(&format!(".xp/runs/{run_id}/output.log"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("started") {
        assert!(Instant::now() < deadline, "the detached run never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let scripts = processes_matching("long.py");
    assert!(!scripts.is_empty(), "the script runs");
    xp(&project, &plugins, ["experiment", "cancel"])
        .arg(&run_id)
        .run()
        .success();
    let record = wait_for_status(&project, &plugins, &run_id, &["Canceled", "Failed", "Completed"]);
    assert_eq!(record["status"], "Canceled", "{record}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while scripts.iter().any(|&pid| process_exists(pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in scripts {
        assert!(!process_exists(pid), "the script (pid {pid}) survived the cancel");
    }
}

#[test]
fn a_plugin_built_against_a_newer_plugin_api_of_the_same_major_version_runs_in_todays_xp() {
    // The baseline plugin's sources, built against today's plugin-api made newer: version
    // 1.99.0 with a verb this host has never heard of.
    let library = build_baseline_plugin_against("api-1.99", "1.99.0", &["a_verb_from_the_future"]);
    let project = TestProject::new();
    let plugins = project.home().join("plugins");
    install_plugin(&plugins, "baseline", BASELINE_MANIFEST, &library);
    xp(
        &project,
        &plugins,
        ["computetarget", "attach", "baseline", "--name", "b"],
    )
    .run()
    .success();
    project.write("hello.py", "print('hello from a newer plugin')\n");
    let run = xp(&project, &plugins, ["submit", "-c", "b", "hello.py"])
        .run()
        .success();
    assert!(run.stdout.contains("hello from a newer plugin"), "{}", run.stdout);
    assert_eq!(project.last_record()["status"], "Completed");
    let list = xp(&project, &plugins, ["plugin", "list", "--check", "-o", "json"])
        .run()
        .success();
    assert!(list.stdout.contains("1.99.0"), "{}", list.stdout);
}

/// Kills the supervisor of detached run `run_id` as a crash or `kill -9` would.
fn kill_supervisor(run_id: &str) {
    let supervisor = supervisor_pid(run_id);
    // SAFETY: kill(2) on the pid of a process this test started (through xp).
    unsafe { libc::kill(supervisor as i32, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_exists(supervisor) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_plugin_built_before_a_verb_is_told_it_predates_it_and_nothing_else_changes() {
    let project = TestProject::new();
    let plugins = project.home().join("plugins");
    install_plugin(&plugins, "baseline", BASELINE_MANIFEST, baseline_library());
    xp(
        &project,
        &plugins,
        ["computetarget", "attach", "baseline", "--name", "b"],
    )
    .run()
    .success();
    project.write(
        "long.py",
        "import time\nprint('started', flush=True)\ntime.sleep(300)  # xp-baseline-reap-marker\n",
    );
    let submitted = xp(&project, &plugins, ["submit", "-c", "b", "--detach", "long.py"])
        .run()
        .success();
    let run_id = submitted.stdout.trim().to_owned();
    let log = project.path(&format!(".xp/runs/{run_id}/output.log"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("started") {
        assert!(Instant::now() < deadline, "the detached run never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    kill_supervisor(&run_id);

    // The next look at the history closes the run, and asks its plugin to end what the run
    // left on the target: `reap` came in plugin-api 1.1, after this plugin was built.
    let record = wait_for_status(&project, &plugins, &run_id, &["Failed"]);
    let error = record["error"].as_str().unwrap();
    for needle in [
        "ended without recording an outcome",
        "plugin 'baseline' predates reap",
        "built against plugin-api 1.0.0",
        "was not ended",
    ] {
        assert!(error.contains(needle), "the record says {needle:?}: {error}");
    }
    // Every verb it knows still works.
    project.write("ok.py", "print('still here')\n");
    let run = xp(&project, &plugins, ["submit", "-c", "b", "ok.py"]).run().success();
    assert!(run.stdout.contains("still here"), "{}", run.stdout);
}
