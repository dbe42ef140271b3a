//! Running a child process with live output and cancellation, using only `std`.
//!
//! The child gets its own process group, so that cancelling ends everything it started (pip's
//! build backends, the script's worker processes). Signals go through the system's `kill`
//! program (`kill -TERM -- -PGID`), which spares this plugin a libc dependency; when that
//! program is missing, the main process is still ended with `Child::kill`.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use xp_plugin_api::abi::LogStream;
use xp_plugin_api::{Events, PluginFailure};

/// How long a cancelled process gets between SIGTERM and SIGKILL.
const CANCEL_GRACE: Duration = Duration::from_secs(3);
/// How long output may keep coming after the main process exited (from processes it left
/// behind that still hold its pipes) before we stop listening.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(50);

/// How a process ended.
pub struct Ended {
    /// The exit code, or 128 + the signal that ended the process.
    pub exit_code: i32,
    /// True when it was stopped because the host cancelled.
    pub canceled: bool,
}

enum Message {
    Line(LogStream, String),
    Closed,
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
                let text = String::from_utf8_lossy(line).into_owned();
                if sender.send(Message::Line(kind, text)).is_err() {
                    break;
                }
            }
        }
    }
    let _ = sender.send(Message::Closed);
}

/// The exit code a shell would report.
fn exit_code(status: ExitStatus) -> i32 {
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Sends `signal` (`TERM`, `KILL`) to every process of the group `group`.
fn signal_group(group: u32, signal: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{group}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|status| status.success())
        .unwrap_or(false)
}

fn stop(child: &mut Child, signal: &str) {
    if !signal_group(child.id(), signal) {
        let _ = child.kill();
    }
}

/// Runs `command` to its end in a process group of its own, handing each line of its output
/// to `on_line` (on this thread) as it comes. Polls `events.is_cancelled()`: on cancel the group
/// gets SIGTERM, then SIGKILL after a grace period. `what` names the program in errors.
pub fn run_streaming(
    mut command: Command,
    what: &str,
    events: &Events<'_>,
    mut on_line: impl FnMut(LogStream, &str),
) -> Result<Ended, PluginFailure> {
    if events.is_cancelled() {
        return Ok(Ended {
            exit_code: 130,
            canceled: true,
        });
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command
        .spawn()
        .map_err(|error| PluginFailure::new(format!("could not start {what}: {error}")))?;
    let (sender, receiver) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let out_sender = sender.clone();
    std::thread::spawn(move || read_lines(stdout, LogStream::Stdout, out_sender));
    std::thread::spawn(move || read_lines(stderr, LogStream::Stderr, sender));

    let mut open_streams = 2;
    let mut exited: Option<(ExitStatus, Instant)> = None;
    let mut cancel_sent: Option<Instant> = None;
    let mut killed = false;
    loop {
        if open_streams == 0 {
            // The process closed its output but may still run: just wait for it.
            std::thread::sleep(POLL);
        } else {
            match receiver.recv_timeout(POLL) {
                Ok(Message::Line(stream, line)) => on_line(stream, &line),
                Ok(Message::Closed) => open_streams -= 1,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => open_streams = 0,
            }
        }
        if exited.is_none() {
            if let Some(status) = child
                .try_wait()
                .map_err(|error| PluginFailure::new(format!("waiting for {what}: {error}")))?
            {
                // Whatever the process left behind in its group goes with it.
                signal_group(child.id(), "KILL");
                exited = Some((status, Instant::now()));
            }
        }
        if let Some((status, at)) = exited {
            if open_streams == 0 || at.elapsed() > DRAIN_AFTER_EXIT {
                return Ok(Ended {
                    exit_code: exit_code(status),
                    canceled: cancel_sent.is_some(),
                });
            }
            continue;
        }
        match cancel_sent {
            None if events.is_cancelled() => {
                events.info(&format!("Cancelling: stopping {what}"));
                stop(&mut child, "TERM");
                cancel_sent = Some(Instant::now());
            }
            Some(at) if !killed && at.elapsed() > CANCEL_GRACE => {
                stop(&mut child, "KILL");
                killed = true;
            }
            _ => {}
        }
    }
}
