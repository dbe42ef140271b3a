//! Helpers for the end-to-end tests: a scratch project driven through the real `xp` binary
//! that `cargo build` made, with the in-tree plugins found beside it.

pub mod out_of_tree;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub mod browser;

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

    /// Attaches target `name` of `target_type` (remote, remotedocker, cluster) on the test
    /// sshd (`scripts/services.sh start ssh`), logging in with its key; `extra` are further
    /// attach arguments. Panics unless the attach succeeds.
    pub fn attach_over_ssh(&self, target_type: &str, name: &str, extra: &[&str]) -> Finished {
        let ssh = service_env("ssh");
        let address = format!("{}:{}", ssh["XP_TEST_SSH_HOST"], ssh["XP_TEST_SSH_PORT"]);
        let mut args = vec![
            "computetarget",
            "attach",
            target_type,
            "--name",
            name,
            "--address",
            &address,
            "--username",
            &ssh["XP_TEST_SSH_USER"],
            "--private-key-file",
            &ssh["XP_TEST_SSH_KEY"],
        ];
        args.extend_from_slice(extra);
        self.xp(args).run().success()
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
    /// One more argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.command.arg(arg.into());
        self
    }

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

    /// Runs xp with `input` on its standard input (a pipe, not a terminal), e.g. a password.
    pub fn run_with_stdin(mut self, input: &str) -> Finished {
        use std::io::Write;
        let mut child = self
            .command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("xp starts");
        let mut stdin = child.stdin.take().expect("stdin is piped");
        // xp may exit before reading everything (an error): a broken pipe is not the test's concern.
        let _ = stdin.write_all(input.as_bytes());
        drop(stdin);
        let output = child.wait_with_output().expect("xp runs");
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

/// A folder holding a manifest for the fixture plugin (type `crashy`, tests/fixture-plugin),
/// for XP_PLUGIN_PATH.
pub fn fixture_plugin_dir(project: &TestProject) -> PathBuf {
    let dir = project.home().join("fixture-plugins");
    std::fs::create_dir_all(&dir).unwrap();
    let library = profile_dir().join("libxp_fixture_plugin.so");
    assert!(
        library.is_file(),
        "build the workspace first: {} is missing",
        library.display()
    );
    let manifest = dir.join("fixture.plugin.toml");
    let text = format!(
        "name = \"fixture\"\nversion = \"0.0.0\"\ntarget_types = [\"crashy\"]\nplugin_api = \"^1.0\"\nlibrary = \"{}\"\n",
        library.display()
    );
    // Written once, atomically: a detached run's supervisor may be reading it.
    if std::fs::read_to_string(&manifest).ok().as_deref() != Some(text.as_str()) {
        let staging = dir.join(format!(".fixture.plugin.toml.{}", std::process::id()));
        std::fs::write(&staging, text).unwrap();
        std::fs::rename(&staging, &manifest).unwrap();
    }
    dir
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

/// An image the shared test setup (`scripts/services.sh start docker`) builds, by its
/// variable or default tag. A missing image fails the test: in CI a missing service is an
/// error, not a skip.
pub fn test_image(variable: &str, default: &str) -> String {
    let image = std::env::var(variable).unwrap_or_else(|_| default.to_owned());
    let status = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", &image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the docker client runs");
    assert!(
        status.success(),
        "test image {image} is missing: run `scripts/services.sh start docker` (scripts/test.sh does)"
    );
    image
}

/// The containers (running or not) of run `run_id` of `project`.
pub fn run_containers(project: &TestProject, run_id: &str) -> Vec<String> {
    let output = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label=xp.run={run_id}")])
        .args(["--filter", &format!("label=xp.project={}", project.root().display())])
        .output()
        .expect("the docker client runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Writes a pure-Python wheel `<name>-<version>-py3-none-any.whl` with one module `<name>`
/// into `dir`, and returns its file name. No network, no build tools: a wheel is a zip.
pub fn make_wheel(dir: &Path, name: &str, version: &str, module_source: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let file = format!("{name}-{version}-py3-none-any.whl");
    let script = r#"
import base64, hashlib, sys, zipfile
path, name, version, source = sys.argv[1:5]
dist = "%s-%s.dist-info" % (name, version)
files = {
    "%s/__init__.py" % name: source,
    dist + "/METADATA": "Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (name, version),
    dist + "/WHEEL": "Wheel-Version: 1.0\nGenerator: xp-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = []
with zipfile.ZipFile(path, "w") as z:
    for arcname, text in files.items():
        data = text.encode()
        z.writestr(arcname, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d" % (arcname, digest, len(data)))
    record.append(dist + "/RECORD,,")
    z.writestr(dist + "/RECORD", "\n".join(record) + "\n")
"#;
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(dir.join(&file))
        .args([name, version, module_source])
        .status()
        .expect("python3 runs");
    assert!(status.success(), "writing the wheel {file}");
    file
}

/// The variables `scripts/services.sh env COMPONENT` exports (`XP_TEST_SSH_PORT`, ...). The
/// service must be up (`scripts/services.sh start COMPONENT`; scripts/test.sh does): a missing
/// service fails the test.
pub fn service_env(component: &str) -> std::collections::HashMap<String, String> {
    let script = workspace_root().join("scripts/services.sh");
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "eval \"$('{}' env {component})\" && '{}' status {component} >&2 && env -0",
            script.display(),
            script.display()
        ))
        .output()
        .expect("bash runs");
    assert!(
        output.status.success(),
        "the {component} service is not up: run `scripts/services.sh start {component}`\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
        .stdout
        .split(|b| *b == 0)
        .filter_map(|entry| {
            let entry = String::from_utf8_lossy(entry);
            let (key, value) = entry.split_once('=')?;
            key.starts_with("XP_TEST_").then(|| (key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// Pids of processes whose command line contains `needle` (for checking what a run left).
pub fn processes_matching(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) && process_exists(pid) && pid != std::process::id() {
            found.push(pid);
        }
    }
    found
}

/// The pid of the `xp supervise` process of a run, from the process table.
pub fn supervisor_pid(run_id: &str) -> u32 {
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == "supervise") && args.iter().any(|a| a.ends_with(run_id)) {
            return pid;
        }
    }
    panic!("no supervisor process for {run_id}");
}

/// Socket inodes a process holds.
fn socket_inodes(pid: u32) -> Vec<u64> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|fd| {
            let link = std::fs::read_link(fd.path()).ok()?;
            let link = link.to_string_lossy();
            link.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// The pids of the processes on the other end of `client`'s TCP connections on this machine
/// (for an SSH client: the sshd processes serving it), so a test can cut exactly one
/// connection.
pub fn tcp_peers_of(client: u32) -> Vec<u32> {
    // /proc/net/tcp rows: local address:port, remote address:port, ..., inode (field 9).
    let rows: Vec<(u16, u16, u64)> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .flat_map(|file| {
            std::fs::read_to_string(file)
                .unwrap_or_default()
                .lines()
                .skip(1)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = |field: &str| u16::from_str_radix(field.rsplit(':').next()?, 16).ok();
            Some((
                port(fields.get(1)?)?,
                port(fields.get(2)?)?,
                fields.get(9)?.parse().ok()?,
            ))
        })
        .collect();
    let mine = socket_inodes(client);
    let peer_inodes: Vec<u64> = rows
        .iter()
        .filter(|(_, _, inode)| mine.contains(inode))
        .flat_map(|(local, remote, _)| {
            rows.iter()
                .filter(move |(l, r, _)| l == remote && r == local)
                .map(|(_, _, inode)| *inode)
        })
        .collect();
    let mut peers = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid != client && socket_inodes(pid).iter().any(|inode| peer_inodes.contains(inode)) {
            peers.push(pid);
        }
    }
    peers
}
