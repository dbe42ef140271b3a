//! A run on the host that outlives the connection: started in its own session with its
//! output in files, followed through `tail` from byte offsets, so a dropped connection is
//! picked up where it broke; cancelled by signalling its process group.
//!
//! On the host a run's folder holds `xp-run.sh`, `pid` (the process group), `stdout.log`,
//! `stderr.log`, `exit_code` once it ended, and `work/`, the snapshot the script runs in.

use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};

use xp_plugin_api::abi::LogStream;
use xp_plugin_api::{Events, PluginFailure, RunOutcome};

use crate::connection::Connection;
use crate::quote::{is_variable_name, quote, shell_path};
use xp_plugin_sdk::lines::LineSplitter;

/// Seconds between SIGTERM and SIGKILL when a run is cancelled.
const CANCEL_GRACE_SECONDS: u32 = 3;
/// How long to keep trying to reconnect to a host that dropped the connection.
const RECONNECT_FOR: Duration = Duration::from_secs(300);

/// What to run on the host.
pub struct RemoteCommand {
    /// The program and its arguments, each quoted on the way.
    pub argv: Vec<String>,
    pub environment: Vec<(String, String)>,
    /// Shell lines run before the program (e.g. exporting a path under `$HOME`). Must be
    /// built with [`quote`].
    pub preamble: Vec<String>,
}

/// A shell function: `xp_end SIGNAL RUN_ID` signals every process of this user whose
/// environment says it belongs to the run (xp gives every script `XP_RUN_ID`), so that
/// processes that left the run's session (`setsid`, a double fork) end with it. One `grep`
/// reads every `/proc/<pid>/environ` (GNU grep's `-z`). No single quote inside: it is also
/// handed to `sh -c` in a variable.
const END_RUN_FUNCTION: &str = r#"xp_end() { for f in $(grep -lxzF "XP_RUN_ID=$2" /proc/[0-9]*/environ 2>/dev/null); do q=${f#/proc/}; q=${q%/environ}; [ "$q" != "$$" ] && kill -$1 "$q" 2>/dev/null; done; }"#;

/// The wrapper script: records its process group and the run's id, runs the program with
/// output to files, ends whatever the program left behind (in its group, or elsewhere with the
/// run's `XP_RUN_ID`), and records the exit code.
pub fn wrapper_script(command: &RemoteCommand) -> Result<String, PluginFailure> {
    let run_id = command
        .environment
        .iter()
        .find(|(name, _)| name == "XP_RUN_ID")
        .map(|(_, value)| value.as_str());
    let mut script = String::from("#!/bin/sh\n# Written by xp: runs one script, detached from the connection.\necho $$ > pid.tmp && mv pid.tmp pid\n");
    if let Some(run_id) = run_id {
        script.push_str(&format!("printf '%s\\n' {} > run_id\n", quote(run_id)));
    }
    script.push_str(END_RUN_FUNCTION);
    script.push_str("\ncd work || exit 97\n");
    for (name, value) in &command.environment {
        if !is_variable_name(name) {
            return Err(PluginFailure::new(format!(
                "environment variable name '{name}' cannot be set in a shell; use letters, digits and _"
            )));
        }
        script.push_str(&format!("export {name}={}\n", quote(value)));
    }
    for line in &command.preamble {
        script.push_str(line);
        script.push('\n');
    }
    let argv: Vec<String> = command.argv.iter().map(|a| quote(a)).collect();
    script.push_str(&format!(
        "{} > ../stdout.log 2> ../stderr.log < /dev/null\n",
        argv.join(" ")
    ));
    script.push_str("code=$?\n");
    if let Some(run_id) = run_id {
        // Unset first, so that the search does not find itself.
        script.push_str(&format!("unset XP_RUN_ID\nxp_end KILL {}\n", quote(run_id)));
    }
    script.push_str("echo $code > ../exit_code.tmp && mv ../exit_code.tmp ../exit_code\n");
    // What is left in the run's group goes too, this shell last.
    script.push_str("kill -KILL -- -$$ 2>/dev/null\n");
    Ok(script)
}

/// Starts the run in `run_dir` (which holds `work/`) and returns once the script is running;
/// or, when the host asked to cancel meanwhile, removes the run's folder and returns the
/// cancelled outcome instead.
pub fn start(
    connection: &Connection,
    run_dir: &str,
    command: &RemoteCommand,
    events: &Events<'_>,
) -> Result<Option<RunOutcome>, PluginFailure> {
    if events.is_cancelled() {
        let _ = remove(connection, run_dir);
        return Ok(Some(RunOutcome::canceled(130)));
    }
    let script = wrapper_script(command)?;
    let start = format!("cd {run} && cat > xp-run.sh && {LAUNCH}", run = shell_path(run_dir));
    connection.run("starting the run", &start, Some(script.as_bytes()))?;
    Ok(None)
}

/// Starts `xp-run.sh` of the current folder in a session of its own and waits until it has
/// recorded its process group.
pub const LAUNCH: &str = "(setsid sh xp-run.sh </dev/null >/dev/null 2>&1 &) && i=0; while [ ! -f pid ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done; [ -f pid ]";

/// Asks the run's processes to stop — its process group, and those that left it but carry the
/// run's `XP_RUN_ID` — SIGTERM now, SIGKILL after the grace period. `also` is a shell command
/// run first (e.g. stopping a container the group started).
pub fn cancel(connection: &Connection, run_dir: &str, also: Option<&str>) -> Result<(), PluginFailure> {
    // The delayed SIGKILL runs in a session of its own: a plain background job would end with
    // this command's SSH session, before its time comes.
    let command = format!(
        "cd {run} && p=$(cat pid) || exit 0\nr=$(cat run_id 2>/dev/null)\nend='{END_RUN_FUNCTION}'\n{END_RUN_FUNCTION}\n{also}\nkill -TERM -- -$p 2>/dev/null\n[ -n \"$r\" ] && xp_end TERM \"$r\"\nsetsid sh -c \"$end; sleep {CANCEL_GRACE_SECONDS}; kill -KILL -- -$p 2>/dev/null; [ -n \\\"$r\\\" ] && xp_end KILL \\\"$r\\\"\" </dev/null >/dev/null 2>&1 &",
        run = shell_path(run_dir),
        also = also.unwrap_or(":"),
    );
    connection.exec(&command, None).map(|_| ())
}

/// Ends the catch-up's error output; the exit code follows it.
const EXIT_MARKER: &str = "\u{1e}xp-exit:";

/// Why following stopped before the run ended.
enum Interrupted {
    Connection(String),
}

/// Follows the run's output from the byte offsets already seen until the run ends, then reads
/// its exit code; reconnects with `connect` when the connection drops and cancels the run
/// (running `on_cancel` first) when the host asks. `watch` sees every line: when it returns a reason, the run is stopped
/// and fails with that reason (e.g. a Spark job that can get no executors).
pub fn follow_watching(
    connection: Connection,
    connect: &dyn Fn() -> Result<Connection, PluginFailure>,
    run_dir: &str,
    on_cancel: Option<&str>,
    watch: &dyn Fn(&str) -> Option<String>,
    events: &Events<'_>,
) -> Result<(RunOutcome, Connection), PluginFailure> {
    let mut connection = connection;
    let mut offsets = [0u64; 2];
    let mut lines = LineSplitter::watching(watch);
    let mut cancelled = false;
    let exit_code = loop {
        match follow_once(
            &connection,
            run_dir,
            &mut offsets,
            &mut lines,
            &mut cancelled,
            on_cancel,
            events,
        ) {
            Ok(code) => break code,
            Err(Interrupted::Connection(reason)) => {
                events.info(&format!(
                    "Lost the connection to {} ({reason}); reconnecting, the run goes on there",
                    connection.address
                ));
                let deadline = Instant::now() + RECONNECT_FOR;
                connection = loop {
                    std::thread::sleep(Duration::from_secs(1));
                    // A user who cancels while the host is unreachable waits less.
                    let deadline = if events.is_cancelled() {
                        deadline.min(Instant::now() + Duration::from_secs(30))
                    } else {
                        deadline
                    };
                    match connect() {
                        Ok(fresh) => break fresh,
                        Err(error) if Instant::now() > deadline => {
                            return Err(PluginFailure::new(format!(
                                "lost the connection to the host and could not reconnect for {} s: {error}; the run may still be going there",
                                RECONNECT_FOR.as_secs()
                            )))
                        }
                        Err(_) => {}
                    }
                };
                events.info(&format!("Reconnected to {}", connection.address));
            }
        }
    };
    lines.finish(events);
    if let Some(reason) = lines.take_abort_reason() {
        return Err(PluginFailure::new(reason));
    }
    let outcome =
        match exit_code {
            Some(code) if cancelled => RunOutcome::canceled(code),
            Some(code) => RunOutcome::exited(code),
            None if cancelled => RunOutcome::canceled(143),
            None => return Err(PluginFailure::new(
                "the script's process on the host ended without an exit code (was it killed, or the host rebooted?)",
            )),
        };
    Ok((outcome, connection))
}

fn follow_once(
    connection: &Connection,
    run_dir: &str,
    offsets: &mut [u64; 2],
    lines: &mut LineSplitter<'_>,
    cancelled: &mut bool,
    on_cancel: Option<&str>,
    events: &Events<'_>,
) -> Result<Option<i32>, Interrupted> {
    let lost = |e: &dyn std::fmt::Display| Interrupted::Connection(e.to_string());
    let session = connection.session();
    session.set_blocking(true);
    // Two tails stream the logs while the run's process lives (an unreaped zombie counts as
    // ended: on hosts whose init does not reap, it stays one); once it ends they are stopped
    // and whatever they had not sent yet is sent from the offsets (the catch-up below), so
    // nothing is lost and the end is seen at once.
    let tail = format!(
        "cd {run} && while [ ! -f pid ]; do sleep 0.05; done; p=$(cat pid); \
         tail -s 0.05 -c +{o1} -F stdout.log 2>/dev/null & t1=$!; \
         tail -s 0.05 -c +{o2} -F stderr.log 1>&2 2>/dev/null & t2=$!; \
         while [ ! -f exit_code ] && kill -0 $p 2>/dev/null && ! grep -qs '^[0-9]* (.*) Z' /proc/$p/stat; do sleep 0.02; done; \
         kill $t1 $t2 2>/dev/null; wait",
        run = shell_path(run_dir),
        o1 = offsets[0] + 1,
        o2 = offsets[1] + 1,
    );
    let mut channel = session.channel_session().map_err(|e| lost(&e))?;
    channel.exec(&tail).map_err(|e| lost(&e))?;
    session.set_blocking(false);
    let mut buffer = vec![0u8; 64 * 1024];
    let mut last_keepalive = Instant::now();
    let result = 'follow: loop {
        let mut progressed = false;
        for (index, stream) in [LogStream::Stdout, LogStream::Stderr].into_iter().enumerate() {
            let read = if index == 0 {
                channel.read(&mut buffer)
            } else {
                channel.stderr().read(&mut buffer)
            };
            match read {
                Ok(0) => {}
                Ok(n) => {
                    offsets[index] += n as u64;
                    lines.push(stream, &buffer[..n], events);
                    progressed = true;
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => {}
                Err(error) => break 'follow Err(lost(&error)),
            }
        }
        if channel.eof() && !progressed {
            break Ok(());
        }
        if !*cancelled && (events.is_cancelled() || lines.abort_reason().is_some()) {
            events.info("Cancelling: stopping the script's process group on the host");
            session.set_blocking(true);
            let sent = cancel(connection, run_dir, on_cancel);
            session.set_blocking(false);
            // Marked only once it reached the host: after a reconnect it is sent again.
            match sent {
                Ok(()) => *cancelled = true,
                Err(error) => break Err(Interrupted::Connection(error.to_string())),
            }
        }
        if last_keepalive.elapsed() > Duration::from_secs(5) {
            last_keepalive = Instant::now();
            if let Err(error) = session.keepalive_send() {
                if error.code() != ssh2::ErrorCode::Session(-37) {
                    break Err(lost(&error));
                }
            }
        }
        if !progressed {
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    session.set_blocking(true);
    result?;
    // The catch-up, in one command: the bytes written after the tails last read (stdout.log on
    // stdout, stderr.log on stderr), then the exit code after a marker on stderr.
    let rest = connection
        .exec(
            &format!(
                "cd {run} && tail -c +{o1} stdout.log 2>/dev/null; tail -c +{o2} stderr.log >&2 2>/dev/null; printf '{EXIT_MARKER}%s' \"$(cat exit_code 2>/dev/null)\" >&2",
                run = shell_path(run_dir),
                o1 = offsets[0] + 1,
                o2 = offsets[1] + 1,
            ),
            None,
        )
        .map_err(|e| Interrupted::Connection(e.to_string()))?;
    if !rest.stdout.is_empty() {
        offsets[0] += rest.stdout.len() as u64;
        lines.push(LogStream::Stdout, &rest.stdout, events);
    }
    let (errors, code) = match rest.stderr.rfind(EXIT_MARKER) {
        Some(at) => (
            &rest.stderr[..at],
            rest.stderr[at + EXIT_MARKER.len()..].trim().parse::<i32>().ok(),
        ),
        None => (rest.stderr.as_str(), None),
    };
    if !errors.is_empty() {
        offsets[1] += errors.len() as u64;
        lines.push(LogStream::Stderr, errors.as_bytes(), events);
    }
    Ok(code)
}

/// Copies the run's `work/outputs/` into `destination` by the rule of
/// [`xp_plugin_sdk::artifacts`], telling the run's log what was left out, and removes the
/// run's folder, in one command (the folder goes even when packing fails, as a failed run's
/// would). `first` is shell run before (removing a container). Only a lost connection fails:
/// an entry the host's `tar` could not read is reported, and the others come back.
pub fn fetch_outputs_and_remove(
    connection: &Connection,
    run_dir: &str,
    destination: &std::path::Path,
    first: Option<&str>,
    events: &Events<'_>,
) -> Result<(), PluginFailure> {
    let pack = "if [ -d outputs ] && [ ! -L outputs ]; then tar -cf - outputs; elif [ -e outputs ] || [ -L outputs ]; then echo 'outputs is not a folder (a link or a file); nothing came back' >&2; fi";
    let command = format!(
        "{first}{{ cd {run}/work && {pack}; }}; s=$?; cd && rm -rf {run}; exit $s",
        first = first.map(|shell| format!("{shell}; ")).unwrap_or_default(),
        run = shell_path(run_dir)
    );
    let packed = connection.exec(&command, None)?;
    let mut report = if packed.stdout.is_empty() {
        xp_plugin_sdk::artifacts::Report::default()
    } else {
        xp_plugin_sdk::archive::unpack_outputs(packed.stdout.as_slice(), destination)
    };
    // GNU tar names each entry it could not read and still packs the others.
    for line in packed.stderr.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let line = line.strip_prefix("tar: ").unwrap_or(line);
        match line.strip_prefix("outputs/").and_then(|rest| rest.split_once(": ")) {
            Some((name, error)) => report.lose(name.as_bytes(), format!("on the host: {error}")),
            None if line.starts_with("Exiting with failure") => {}
            None => report.lose(b"", format!("on the host: {line}")),
        }
    }
    report.send(events);
    Ok(())
}

/// Removes the run's folder on the host (the file cache stays).
pub fn remove(connection: &Connection, run_dir: &str) -> Result<(), PluginFailure> {
    connection
        .run(
            "removing the run's folder",
            &format!("rm -rf {}", shell_path(run_dir)),
            None,
        )
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wrapper_ends_what_the_run_left() {
        let script = wrapper_script(&RemoteCommand {
            argv: vec!["python3".into(), "train.py".into()],
            environment: vec![("XP_RUN_ID".into(), "proj_1".into())],
            preamble: vec![],
        })
        .unwrap();
        assert!(script.contains("printf '%s\\n' 'proj_1' > run_id"), "{script}");
        assert!(script.contains("unset XP_RUN_ID\nxp_end KILL 'proj_1'"), "{script}");
        assert!(script.ends_with("kill -KILL -- -$$ 2>/dev/null\n"), "{script}");
        assert!(!END_RUN_FUNCTION.contains('\''));
    }

    #[test]
    fn the_wrapper_quotes_every_value() {
        let script = wrapper_script(&RemoteCommand {
            argv: vec!["python3".into(), "train.py".into(), "'; rm -rf ~ #".into()],
            environment: vec![("GREETING".into(), "$(id) it's".into())],
            preamble: vec![],
        })
        .unwrap();
        assert!(script.contains("export GREETING='$(id) it'\\''s'"), "{script}");
        assert!(script.contains("'python3' 'train.py' ''\\''; rm -rf ~ #'"), "{script}");
        assert!(!script.contains("xp_end KILL"), "no run id, no search: {script}");
        assert!(wrapper_script(&RemoteCommand {
            argv: vec![],
            environment: vec![("A B".into(), String::new())],
            preamble: vec![],
        })
        .is_err());
    }
}
