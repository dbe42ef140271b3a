//! The out-of-tree `venv` plugin (examples/venv-plugin), built on its own after the host and
//! installed by copying two files: it loads in the `xp` built before it, builds a virtual
//! environment from the project's pip list (a local wheel, no network), runs the script in it,
//! and reuses the environment on the next run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

use xp_tests::out_of_tree::{cargo_build, shared_target_dir};
use xp_tests::{workspace_root, xp_binary, Finished, TestProject, XpCommand};

/// The plugin library, built out of tree once per test binary.
fn plugin_library() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(build_plugin)
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .unwrap_or_else(|e| panic!("reading the modification time of {}: {e}", path.display()))
}

/// `cargo build --manifest-path examples/venv-plugin/Cargo.toml`, into a target folder of its
/// own: the plugin's crate is not part of the workspace, and the `xp` under test is not rebuilt.
fn build_plugin() -> PathBuf {
    let xp = xp_binary();
    let xp_built = modified(&xp);
    let root = workspace_root();
    let manifest = root.join("examples/venv-plugin/Cargo.toml");
    let target_dir = shared_target_dir();
    cargo_build(&manifest, &target_dir);
    let library = target_dir.join("debug/libxp_plugin_venv.so");
    if modified(&library) <= xp_built {
        // A cached build from before the host was last rebuilt: build the plugin again, so that
        // the host under test demonstrably predates the plugin it loads.
        let source = root.join("examples/venv-plugin/src/lib.rs");
        std::fs::File::options()
            .write(true)
            .open(&source)
            .and_then(|file| file.set_modified(SystemTime::now()))
            .unwrap_or_else(|e| panic!("touching {}: {e}", source.display()));
        cargo_build(&manifest, &target_dir);
    }
    assert!(
        modified(&library) > xp_built,
        "{} must be newer than {}: the host is built before the plugin and never rebuilt for it",
        library.display(),
        xp.display()
    );
    assert_eq!(
        modified(&xp),
        xp_built,
        "building the plugin must not rebuild {}",
        xp.display()
    );
    library
}

/// Installs the plugin the way its README says: its manifest and library in a folder of their
/// own, on XP_PLUGIN_PATH.
fn install_plugin(project: &TestProject) -> PathBuf {
    let plugins = project.home().join("plugins");
    let folder = plugins.join("venv");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(
        workspace_root().join("examples/venv-plugin/plugin.toml"),
        folder.join("plugin.toml"),
    )
    .unwrap();
    std::fs::copy(plugin_library(), folder.join("libxp_plugin_venv.so")).unwrap();
    plugins
}

/// A project with a `venv` target named `v`, attached through the installed plugin.
struct VenvProject {
    project: TestProject,
    plugins: PathBuf,
}

impl VenvProject {
    fn new() -> VenvProject {
        let project = TestProject::new();
        let plugins = install_plugin(&project);
        let venv = VenvProject { project, plugins };
        let attached = venv
            .xp(["computetarget", "attach", "venv", "--name", "v"])
            .run()
            .success();
        assert!(
            attached.stderr.contains("virtual environments made with Python 3."),
            "attach tells which interpreter the environments use:\n{}",
            attached.stderr
        );
        let compute = venv.project.read("aml_config/v.compute");
        assert!(compute.contains("type: venv"), "{compute}");
        assert!(compute.contains("pythonLocation: python3"), "{compute}");
        venv
    }

    fn xp<I: IntoIterator<Item = &'static str>>(&self, args: I) -> XpCommand {
        self.project.xp(args).env("XP_PLUGIN_PATH", &self.plugins)
    }

    /// `$XP_HOME/cache/plugins/venv/venvs`.
    fn venvs_dir(&self) -> PathBuf {
        self.project.home().join(".xp-home/cache/plugins/venv/venvs")
    }

    /// The entries of the cache folder other than lock files.
    fn cached_environments(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.venvs_dir())
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| !name.ends_with(".lock"))
            .collect();
        names.sort();
        names
    }

    fn pip_list(&self, entries: &[&str]) {
        let mut text = String::from("name: project_environment\ndependencies:\n  - python=3\n  - pip:\n");
        for entry in entries {
            text.push_str(&format!("    - {entry}\n"));
        }
        self.project.write("aml_config/conda_dependencies.yml", &text);
    }
}

/// Writes a pure-Python wheel (a zip of the package, METADATA, WHEEL and RECORD) into the
/// project with Python's zipfile, so pip installs it with no network.
fn make_wheel(project: &TestProject, relative: &str, name: &str, version: &str) {
    let path = project.path(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let script = r#"
import base64, hashlib, sys, zipfile
out, name, version = sys.argv[1:4]
info = f"{name}-{version}.dist-info"
files = {
    f"{name}/__init__.py": f"def greeting():\n    return 'hello from {name} {version}'\n",
    f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
    f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: xp-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = []
for path, text in files.items():
    data = text.encode()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record.append(f"{path},sha256={digest},{len(data)}")
files[f"{info}/RECORD"] = "\n".join(record + [f"{info}/RECORD,,"]) + "\n"
with zipfile.ZipFile(out, "w") as wheel:
    for path, text in files.items():
        wheel.writestr(path, text)
"#;
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .args([name, version])
        .status()
        .expect("python3 runs");
    assert!(status.success(), "writing the wheel {}", path.display());
}

const TRAIN: &str = r#"import os, sys
import xp_tiny
from azureml.logging import get_azureml_logger

print(xp_tiny.greeting())
print("prefix:", sys.prefix)
get_azureml_logger().log("Accuracy", 0.875)
os.makedirs("outputs", exist_ok=True)
with open("outputs/result.txt", "w") as f:
    f.write("done")
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
"#;

const WHEEL: &str = "./wheels/xp_tiny-0.1-py3-none-any.whl";

fn venv_project_with_wheel() -> VenvProject {
    let venv = VenvProject::new();
    make_wheel(&venv.project, WHEEL, "xp_tiny", "0.1");
    venv.pip_list(&[WHEEL]);
    venv.project.write("train.py", TRAIN);
    venv
}

/// The `prefix:` line the script printed: the environment it ran in.
fn printed_prefix(run: &Finished) -> String {
    run.stdout
        .lines()
        .find_map(|line| line.strip_prefix("prefix: "))
        .unwrap_or_else(|| panic!("the script prints its prefix:\n{}", run.stdout))
        .to_owned()
}

#[test]
fn runs_in_a_venv_built_from_a_local_wheel_and_reuses_it() {
    let venv = venv_project_with_wheel();

    let first = venv.xp(["submit", "-c", "v", "train.py"]).run().success();
    assert!(
        first.stdout.contains("hello from xp_tiny 0.1"),
        "the script imports the wheel's package:\n{}\n{}",
        first.stdout,
        first.stderr
    );
    assert!(
        !first.stdout.contains("xp-metric"),
        "metric lines are not output:\n{}",
        first.stdout
    );
    assert!(
        first.stderr.contains("Building virtual environment"),
        "{}",
        first.stderr
    );
    assert!(
        first.stderr.contains("pip: ") && first.stderr.contains("Successfully installed xp"),
        "pip's output is streamed:\n{}",
        first.stderr
    );
    assert!(!first.stderr.contains("Reusing"), "{}", first.stderr);
    let environments = venv.cached_environments();
    assert_eq!(environments.len(), 1, "one environment is cached: {environments:?}");
    let environment = venv.venvs_dir().join(&environments[0]);
    assert_eq!(
        printed_prefix(&first),
        environment.display().to_string(),
        "the script runs in the cached environment"
    );

    let record = venv.project.last_record();
    assert_eq!(record["status"], "Completed", "{record}");
    assert_eq!(record["exit_code"], 0, "{record}");
    assert_eq!(record["target"], "v", "{record}");
    assert_eq!(record["metrics"]["Accuracy"], 0.875, "{record}");
    assert_eq!(
        record["artifacts"],
        serde_json::json!(["outputs/result.txt"]),
        "{record}"
    );

    // The same pip list again: nothing is built, and the script exits with the code it chose.
    let second = venv.xp(["submit", "-c", "v", "train.py", "3"]).run().code(3);
    assert!(second.stdout.contains("hello from xp_tiny 0.1"), "{}", second.stdout);
    assert!(
        second
            .stderr
            .contains(&format!("Reusing virtual environment {} (cached)", environments[0])),
        "the second run says it reuses the environment:\n{}",
        second.stderr
    );
    assert!(
        !second.stderr.contains("Building virtual environment"),
        "{}",
        second.stderr
    );
    assert!(!second.stderr.contains("pip: "), "{}", second.stderr);
    assert_eq!(venv.cached_environments(), environments, "no second environment");
    assert_eq!(printed_prefix(&second), environment.display().to_string());
    let record = venv.project.last_record();
    assert_eq!(record["run_number"], 2, "{record}");
    assert_eq!(record["status"], "Failed", "{record}");
    assert_eq!(record["exit_code"], 3, "{record}");
    assert_eq!(record["metrics"]["Accuracy"], 0.875, "{record}");

    // `prepare` finds it ready too.
    let prepared = venv.xp(["experiment", "prepare", "-c", "v"]).run().success();
    assert!(
        prepared.stderr.contains("Environment ready (cached)"),
        "{}",
        prepared.stderr
    );

    // `clean` keeps ready environments: they are shared by content, not owned by the project.
    let cleaned = venv.xp(["experiment", "clean", "-c", "v"]).run().success();
    assert!(
        cleaned.stderr.contains("1 virtual environment(s) stay cached"),
        "{}",
        cleaned.stderr
    );
    assert_eq!(venv.cached_environments(), environments);

    // A changed pip list is a new environment; the old one stays for runs that still use it.
    make_wheel(&venv.project, "./wheels/xp_tiny-0.2-py3-none-any.whl", "xp_tiny", "0.2");
    venv.pip_list(&["./wheels/xp_tiny-0.2-py3-none-any.whl"]);
    let third = venv.xp(["submit", "-c", "v", "train.py"]).run().success();
    assert!(third.stdout.contains("hello from xp_tiny 0.2"), "{}", third.stdout);
    assert!(
        third.stderr.contains("Building virtual environment"),
        "{}",
        third.stderr
    );
    assert_eq!(venv.cached_environments().len(), 2, "{:?}", venv.cached_environments());
}

#[test]
fn concurrent_first_runs_build_the_environment_once() {
    let venv = venv_project_with_wheel();
    let runs: Vec<_> = (0..3)
        .map(|_| venv.xp(["submit", "-c", "v", "train.py"]).spawn())
        .collect();
    let mut builds = 0;
    for child in runs {
        let output = child.wait_with_output().expect("xp ends");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
        assert!(stdout.contains("hello from xp_tiny 0.1"), "{stdout}\n{stderr}");
        if stderr.contains("Building virtual environment") {
            builds += 1;
        } else {
            assert!(stderr.contains("Reusing virtual environment"), "{stderr}");
        }
    }
    assert_eq!(builds, 1, "exactly one run builds the environment");
    let environments = venv.cached_environments();
    assert_eq!(environments.len(), 1, "one environment, no leftovers: {environments:?}");
}

#[test]
fn a_pip_failure_fails_the_run_with_pips_error_and_caches_nothing() {
    let venv = VenvProject::new();
    venv.pip_list(&["./wheels/does_not_exist-0.1-py3-none-any.whl"]);
    venv.project.write("train.py", "print('never runs')\n");

    let run = venv
        .xp(["submit", "-c", "v", "train.py"])
        .run()
        .error_mentions(&[
            "target 'v'",
            "pip could not install `./wheels/does_not_exist-0.1-py3-none-any.whl` (line 1 of the pip list of aml_config/conda_dependencies.yml)",
            "No such file or directory",
            "nothing was cached",
        ]);
    assert!(!run.stdout.contains("never runs"), "{}", run.stdout);

    let record = venv.project.last_record();
    assert_eq!(record["status"], "Failed", "{record}");
    let error = record["error"].as_str().expect("the record says why");
    assert!(
        error.contains("does_not_exist-0.1-py3-none-any.whl") && error.contains("pip exited with code"),
        "{error}"
    );
    assert_eq!(
        venv.cached_environments(),
        Vec::<String>::new(),
        "a failed build leaves no environment and no half-built folder"
    );
}

/// The SDK's rule on a third-party target: the conda file's conda packages are installed with
/// pip under their PyPI names (here offline, from a wheelhouse), and a `python` entry the base
/// interpreter does not match is a note.
#[test]
fn conda_packages_are_installed_with_pip_under_their_pypi_names() {
    let venv = VenvProject::new();
    venv.xp([
        "computetarget",
        "attach",
        "venv",
        "--name",
        "w",
        "--set",
        "wheelhouse=house",
    ])
    .run()
    .success();
    make_wheel(&venv.project, "house/torch-0.4.1-py3-none-any.whl", "torch", "0.4.1");
    venv.project.write(
        "aml_config/conda_dependencies.yml",
        "dependencies:\n  - python=3.5.2\n  - pytorch=0.4\n",
    );
    venv.project.write("use.py", "import torch\nprint(torch.greeting())\n");
    let run = venv.xp(["submit", "-c", "w", "use.py"]).run().success();
    assert_eq!(run.stdout.trim(), "hello from torch 0.4.1");
    for said in [
        "a venv target has no conda, so pip installs its conda packages, by their PyPI names: pytorch=0.4 as torch==0.4.*",
        "note: aml_config/conda_dependencies.yml asks for python=3.5.2",
        "pip: Looking in links:",
    ] {
        assert!(run.stderr.contains(said), "{said:?}:\n{}", run.stderr);
    }

    venv.project.write(
        "aml_config/conda_dependencies.yml",
        "dependencies:\n  - pytorch=0.4\n  - xp-no-such-package\n",
    );
    venv.xp(["submit", "-c", "w", "use.py"]).run().error_mentions(&[
        "pip could not install `xp-no-such-package` (a conda package of aml_config/conda_dependencies.yml, installed with pip as `xp-no-such-package`)",
        "nothing was cached",
    ]);
}
