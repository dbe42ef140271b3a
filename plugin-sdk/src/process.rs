//! Running a local process with live output, cancellation and a clean end: the process gets
//! its own process group, the driving process becomes the subreaper of whatever leaves that
//! group (`setsid`, double forks), and all of it is ended when the run is cancelled or the main
//! process exits.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use xp_plugin_api::abi::LogStream;
use xp_plugin_api::{Events, PluginFailure, RunOutcome};

/// How long a cancelled process gets between SIGTERM and SIGKILL.
pub const CANCEL_GRACE: Duration = Duration::from_secs(3);
/// How long output may keep coming after the main process exited (from descendants that
/// still hold its pipes) before xp stops listening.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(50);
/// How often the script's tree is recorded (so an escapee is known as the run's) and its
/// ended escapees reaped.
const TRACK_EVERY: Duration = Duration::from_millis(250);

enum Message {
    Line(LogStream, String),
    Closed,
    Exited(std::io::Result<ExitStatus>),
}

fn read_lines(stream: impl Read, kind: LogStream, sender: mpsc::Sender<Message>) {
    let mut reader = BufReader::new(stream);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = buffer.strip_suffix(b"\n").unwrap_or(&buffer);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if sender
                    .send(Message::Line(kind, String::from_utf8_lossy(line).into_owned()))
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    let _ = sender.send(Message::Closed);
}

/// The exit code a shell would report: the code, or 128 + the signal that ended the process.
pub fn exit_code(status: ExitStatus) -> i32 {
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// The parent of every live process, from `/proc/<pid>/stat`.
fn parents() -> HashMap<u32, u32> {
    let mut parent = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(after_name) = stat.rfind(')').map(|at| &stat[at + 1..]) else {
            continue;
        };
        if let Some(ppid) = after_name.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) {
            parent.insert(pid, ppid);
        }
    }
    parent
}

/// Processes on this machine whose environment says they belong to run `run_id` (every
/// script gets `XP_RUN_ID`), except this process.
pub fn processes_of_run(run_id: &str) -> Vec<u32> {
    let needle = format!("XP_RUN_ID={run_id}");
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if environ.split(|b| *b == 0).any(|entry| entry == needle.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

/// Makes this process (the xp driving a run) the reaper of the run's orphans: a process of the
/// script that leaves its tree (a double fork, `setsid` and a background job) is re-parented
/// here instead of to init, so it stays a descendant of this process and is ended with the run
/// — even one that dropped its environment.
fn become_subreaper() {
    // SAFETY: prctl with integer arguments; it only sets a flag of this process.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// The runs this process is driving now, by their script's pid: several run at once in one
/// process (a test harness, a plugin that runs steps in parallel), and each must end and reap
/// only what is its own, never another run's script or escapees.
static ACTIVE: Mutex<Vec<Tracked>> = Mutex::new(Vec::new());

/// What one run is known to own.
struct Tracked {
    script: u32,
    /// Every process ever seen in the script's tree: an escapee re-parented to this process
    /// (as its subreaper) is still known as this run's.
    seen: HashSet<u32>,
}

/// Registers a run's script while it goes; dropping it forgets the run.
struct Registration {
    script: u32,
}

impl Registration {
    /// Spawns `command` and registers it, under the lock, so no other run ever sees the new
    /// script as an unregistered child to adopt.
    fn spawn(command: &mut Command) -> std::io::Result<(std::process::Child, Registration)> {
        let mut active = active();
        let child = command.spawn()?;
        let script = child.id();
        active.push(Tracked {
            script,
            seen: HashSet::new(),
        });
        Ok((child, Registration { script }))
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        active().retain(|tracked| tracked.script != self.script);
    }
}

fn active() -> std::sync::MutexGuard<'static, Vec<Tracked>> {
    ACTIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether `pid` descends from `ancestor` (however deep) in `parents`.
fn descends_from(parents: &HashMap<u32, u32>, pid: u32, ancestor: u32) -> bool {
    let mut at = pid;
    for _ in 0..4096 {
        match parents.get(&at) {
            Some(&parent) if parent == ancestor => return true,
            Some(&parent) if parent > 1 => at = parent,
            _ => return false,
        }
    }
    false
}

/// Every process of the run whose script is `script` (but its process group, signalled as a
/// group): the script's tree; the processes that left it and were adopted here, when seen in
/// the tree before (or, when this process drives no other run, any adopted process that is no
/// run's script); their descendants; and, when `run_id` is given, every process whose
/// environment names the run. Records the tree in the run's `seen` set.
fn processes_of(script: u32, run_id: Option<&str>) -> Vec<u32> {
    let me = std::process::id();
    let parents = parents();
    let mut active = active();
    let scripts: HashSet<u32> = active.iter().map(|tracked| tracked.script).collect();
    let alone = active.len() <= 1;
    let claimed_elsewhere: HashSet<u32> = active
        .iter()
        .filter(|tracked| tracked.script != script)
        .flat_map(|tracked| tracked.seen.iter().copied())
        .collect();
    let Some(tracked) = active.iter_mut().find(|tracked| tracked.script == script) else {
        return Vec::new();
    };
    let tree: Vec<u32> = parents
        .keys()
        .copied()
        .filter(|&pid| descends_from(&parents, pid, script))
        .collect();
    tracked.seen.extend(tree.iter().copied());
    let adopted: Vec<u32> = parents
        .iter()
        .filter(|&(pid, parent)| {
            *parent == me
                && !scripts.contains(pid)
                && (tracked.seen.contains(pid) || (alone && !claimed_elsewhere.contains(pid)))
        })
        .map(|(pid, _)| *pid)
        .collect();
    let mut found = tree;
    for &root in &adopted {
        found.push(root);
        found.extend(
            parents
                .keys()
                .copied()
                .filter(|&pid| descends_from(&parents, pid, root)),
        );
    }
    drop(active);
    if let Some(run_id) = run_id {
        found.extend(processes_of_run(run_id));
    }
    found.sort_unstable();
    found.dedup();
    found.retain(|&pid| pid != me && (pid == script || !scripts.contains(&pid)));
    found
}

/// Sends `signal` to every process of the run (see [`processes_of`]) and to its group.
fn signal_run(group: u32, run_id: Option<&str>, signal: libc::c_int) -> Vec<u32> {
    let processes = processes_of(group, run_id);
    // SAFETY: kill(2) with a negative process-group id and with pids of the run.
    unsafe {
        libc::kill(-(group as libc::pid_t), signal);
        for &pid in &processes {
            libc::kill(pid as libc::pid_t, signal);
        }
    }
    processes
}

/// Reaps the processes of the run this process adopted as a subreaper once they have ended
/// (never the script itself, which its own waiter reaps). Only pids of this run: a
/// `waitpid(-1)` would take another run's script from its waiter.
fn reap_adopted(script: u32, ended: &[u32]) {
    for &pid in ended.iter().filter(|&&pid| pid != script) {
        // SAFETY: waitpid on one pid with WNOHANG; it only reaps a child that has ended.
        unsafe {
            libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), libc::WNOHANG);
        }
    }
}

/// Whether `pid` has ended and waits to be reaped.
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rfind(')').map(|at| stat[at + 1..].trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// Reaps the run's adopted processes that have ended (and records its tree as it is now).
fn reap_ended_children(script: u32) {
    let me = std::process::id();
    let parents = parents();
    let ended: Vec<u32> = processes_of(script, None)
        .into_iter()
        .filter(|pid| parents.get(pid) == Some(&me) && is_zombie(*pid))
        .collect();
    reap_adopted(script, &ended);
}

/// Kills what the run left when its script ended, and reaps it.
fn end_leftovers(script: u32, run_id: Option<&str>) {
    let killed = signal_run(script, run_id, libc::SIGKILL);
    if killed.iter().any(|&pid| pid != script) {
        // SIGKILL is not instant: give the kernel a moment, then reap what ended.
        let deadline = Instant::now() + Duration::from_millis(500);
        loop {
            reap_adopted(script, &killed);
            // Only the killed pids are looked at, not the whole process table.
            let gone = |pid: &u32| *pid == script || !Path::new(&format!("/proc/{pid}")).exists();
            if killed.iter().all(gone) || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Runs `command` to its end, streaming its output through `events` line by line.
///
/// When the host cancels, every process of the run (its group, every descendant of this
/// process — orphans of the script are adopted here — and those carrying its `XP_RUN_ID`) gets
/// SIGTERM, then SIGKILL after [`CANCEL_GRACE`]. When the main process exits, whatever it left
/// is killed and reaped.
/// `what` names the program in errors ("the interpreter /usr/bin/python3").
pub fn run_streaming(command: Command, what: &str, events: &Events<'_>) -> Result<RunOutcome, PluginFailure> {
    run_streaming_with(command, what, events, |stream, line| events.log(stream, line))
}

/// [`run_streaming`], handing each line of output to `on_line` instead of `events` (to show a
/// build tool's output as the plugin's own `Info` lines, say). `events` still carries the
/// cancellation.
pub fn run_streaming_with(
    mut command: Command,
    what: &str,
    events: &Events<'_>,
    mut on_line: impl FnMut(LogStream, &str),
) -> Result<RunOutcome, PluginFailure> {
    if events.is_cancelled() {
        return Ok(RunOutcome::canceled(130));
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let run_id = command
        .get_envs()
        .find(|(key, _)| *key == "XP_RUN_ID")
        .and_then(|(_, value)| value)
        .map(|value| value.to_string_lossy().into_owned());
    become_subreaper();
    let driver = std::process::id();
    // SAFETY: prctl and getppid are async-signal-safe. If the driving xp dies (kill -9), the
    // kernel kills the script instead of leaving it orphaned; its descendants are found by
    // their XP_RUN_ID when a later command reaps the vanished run.
    unsafe {
        command.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() as u32 != driver {
                libc::_exit(137);
            }
            Ok(())
        });
    }
    let (mut child, _registration) = Registration::spawn(&mut command)
        .map_err(|error| PluginFailure::new(format!("could not start {what}: {error}")))?;
    let pid = child.id();
    let (sender, receiver) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let out_sender = sender.clone();
    std::thread::spawn(move || read_lines(stdout, LogStream::Stdout, out_sender));
    let err_sender = sender.clone();
    std::thread::spawn(move || read_lines(stderr, LogStream::Stderr, err_sender));
    std::thread::spawn(move || {
        let status = child.wait();
        let _ = sender.send(Message::Exited(status));
    });

    let mut open_streams = 2;
    let mut exited: Option<(ExitStatus, Instant)> = None;
    let mut cancel_sent: Option<Instant> = None;
    let mut killed = false;
    let mut last_reap = Instant::now();
    loop {
        match receiver.recv_timeout(POLL) {
            Ok(Message::Line(stream, line)) => on_line(stream, &line),
            Ok(Message::Closed) => open_streams -= 1,
            Ok(Message::Exited(status)) => {
                let status = status.map_err(|error| PluginFailure::new(format!("waiting for {what}: {error}")))?;
                // Whatever the script left behind goes with it: its group, the processes that
                // left the group (adopted here), and after a cancel those found by XP_RUN_ID.
                end_leftovers(pid, if cancel_sent.is_some() { run_id.as_deref() } else { None });
                exited = Some((status, Instant::now()));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if let Some((_, at)) = exited {
            if open_streams == 0 || at.elapsed() > DRAIN_AFTER_EXIT {
                break;
            }
            continue;
        }
        match cancel_sent {
            None if events.is_cancelled() => {
                events.info("Cancelling: stopping the script's processes");
                signal_run(pid, run_id.as_deref(), libc::SIGTERM);
                cancel_sent = Some(Instant::now());
            }
            Some(at) if !killed && at.elapsed() > CANCEL_GRACE => {
                signal_run(pid, run_id.as_deref(), libc::SIGKILL);
                killed = true;
            }
            _ => {}
        }
        // Orphans adopted while the run goes are reaped as they end, not left as zombies; the
        // tree is recorded so that an escapee is known as this run's.
        if last_reap.elapsed() > TRACK_EVERY {
            last_reap = Instant::now();
            reap_ended_children(pid);
        }
    }
    let (status, _) = exited.ok_or_else(|| PluginFailure::new(format!("lost track of {what} (pid {pid})")))?;
    let exit_code = exit_code(status);
    Ok(if cancel_sent.is_some() {
        RunOutcome::canceled(exit_code)
    } else {
        RunOutcome::exited(exit_code)
    })
}
