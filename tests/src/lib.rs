//! Helpers for the end-to-end tests: a scratch project driven through the real `xp` binary
//! that `cargo build` made, with the in-tree plugins found beside it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `target/<profile>/`, where cargo put `xp` and the in-tree plugins.
pub fn profile_dir() -> PathBuf {
    // Test binaries live in target/<profile>/deps/.
    let exe = std::env::current_exe().expect("the test binary has a path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

/// The `xp` binary under test. Build it first: `cargo build --workspace` (the README's test
/// command does).
pub fn xp_binary() -> PathBuf {
    let path = profile_dir().join("xp");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace` before the end-to-end tests",
        path.display()
    );
    path
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_path_buf()
}

/// A project in a temporary folder, with its own HOME and XP_HOME so nothing leaks between
/// tests or into the user's folders.
pub struct TestProject {
    dir: tempfile::TempDir,
}

impl Default for TestProject {
    fn default() -> Self {
        Self::new()
    }
}

impl TestProject {
    /// An empty folder (not yet a project).
    pub fn empty() -> TestProject {
        let dir = tempfile::Builder::new()
            .prefix("xp-test-")
            .tempdir()
            .expect("a temp folder");
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        std::fs::create_dir_all(dir.path().join("proj")).unwrap();
        TestProject { dir }
    }

    /// A project made by `xp init`.
    pub fn new() -> TestProject {
        let project = TestProject::empty();
        project.xp(["init"]).run().success();
        project
    }

    /// The project folder.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("proj")
    }

    /// The HOME of the xp processes this project runs.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }

    /// Writes a file in the project, creating folders.
    pub fn write(&self, relative: &str, text: &str) -> &Self {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        self
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative)).unwrap_or_else(|e| panic!("reading {relative}: {e}"))
    }

    /// An `xp` command in the project folder.
    pub fn xp<I, S>(&self, args: I) -> XpCommand
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut command = Command::new(xp_binary());
        command
            .args(args.into_iter().map(Into::into))
            .current_dir(self.root())
            .env("HOME", self.home())
            .env("XP_HOME", self.home().join(".xp-home"))
            .env_remove("XP_PLUGIN_PATH")
            .stdin(Stdio::null());
        XpCommand { command }
    }

    /// A finished run's record, from `xp history info RUN -o json`.
    pub fn run_record(&self, run: &str) -> serde_json::Value {
        let output = self.xp(["history", "info", run, "-o", "json"]).run().success();
        serde_json::from_str(&output.stdout).unwrap_or_else(|e| panic!("history info is JSON: {e}\n{}", output.stdout))
    }

    /// The newest run's record.
    pub fn last_record(&self) -> serde_json::Value {
        let output = self.xp(["history", "last", "-o", "json"]).run().success();
        serde_json::from_str(&output.stdout).unwrap_or_else(|e| panic!("history last is JSON: {e}\n{}", output.stdout))
    }
}

/// A builder around one `xp` invocation.
pub struct XpCommand {
    command: Command,
}

impl XpCommand {
    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Self {
        self.command.env(key, value.into());
        self
    }

    pub fn command(&mut self) -> &mut Command {
        &mut self.command
    }

    pub fn run(mut self) -> Finished {
        let output: Output = self.command.output().expect("xp starts");
        Finished {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Starts xp with piped output, for tests that interact with a running submit.
    pub fn spawn(mut self) -> std::process::Child {
        self.command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("xp starts")
    }
}

/// How an `xp` invocation ended.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    #[track_caller]
    pub fn success(self) -> Self {
        assert_eq!(
            self.code,
            Some(0),
            "xp failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn code(self, expected: i32) -> Self {
        assert_eq!(
            self.code,
            Some(expected),
            "unexpected exit code:\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts xp failed with exit code 1 and an error mentioning every one of `needles`.
    #[track_caller]
    pub fn error_mentions(self, needles: &[&str]) -> Self {
        assert_eq!(
            self.code,
            Some(1),
            "expected an error:\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "the error should mention {needle:?}:\n{}",
                self.stderr
            );
        }
        assert!(!self.stderr.contains("panicked"), "xp panicked:\n{}", self.stderr);
        self
    }
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn process_exists(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .map(|at| !stat[at + 1..].trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}
