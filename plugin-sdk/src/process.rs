//! Running a local process with live output, cancellation and a clean end: the process gets
//! its own process group, and everything in it (and every descendant that left it) is ended
//! when the run is cancelled or the main process exits.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use xp_plugin_api::abi::LogStream;
use xp_plugin_api::{Events, PluginFailure, RunOutcome};

/// How long a cancelled process gets between SIGTERM and SIGKILL.
pub const CANCEL_GRACE: Duration = Duration::from_secs(3);
/// How long output may keep coming after the main process exited (from descendants that
/// still hold its pipes) before xp stops listening.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(50);

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

/// Every live descendant of `root`, found through `/proc`.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
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
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut found = Vec::new();
    let mut pending = vec![root];
    while let Some(pid) = pending.pop() {
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            found.push(child);
            pending.push(child);
        }
    }
    found
}

/// Sends `signal` to the process group `group` and to every descendant of `root`.
pub fn signal_tree(root: u32, group: u32, signal: libc::c_int) {
    let descendants = descendants(root);
    // SAFETY: kill(2) with a pid or a negative process-group id; no memory is involved.
    unsafe {
        libc::kill(-(group as libc::pid_t), signal);
        libc::kill(root as libc::pid_t, signal);
        for pid in descendants {
            libc::kill(pid as libc::pid_t, signal);
        }
    }
}

/// Runs `command` to its end, streaming its output through `events` line by line.
///
/// When the host cancels, the process tree gets SIGTERM, then SIGKILL after
/// [`CANCEL_GRACE`]. When the main process exits, whatever it left in its group is killed.
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
    let driver = std::process::id();
    // SAFETY: prctl and getppid are async-signal-safe. If the driving xp dies (kill -9), the
    // kernel kills the script instead of leaving it orphaned; its descendants are found by
    // their XP_RUN_ID when the run is next looked at.
    unsafe {
        command.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() as u32 != driver {
                libc::_exit(137);
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
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
    loop {
        match receiver.recv_timeout(POLL) {
            Ok(Message::Line(stream, line)) => on_line(stream, &line),
            Ok(Message::Closed) => open_streams -= 1,
            Ok(Message::Exited(status)) => {
                let status = status.map_err(|error| PluginFailure::new(format!("waiting for {what}: {error}")))?;
                // Whatever the script left behind in its group goes with it. (Only the group:
                // the pid itself is reaped and may belong to someone else by now.)
                // SAFETY: kill(2) on a process group; no memory is involved.
                unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGKILL) };
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
                signal_tree(pid, pid, libc::SIGTERM);
                cancel_sent = Some(Instant::now());
            }
            Some(at) if !killed && at.elapsed() > CANCEL_GRACE => {
                signal_tree(pid, pid, libc::SIGKILL);
                killed = true;
            }
            _ => {}
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
