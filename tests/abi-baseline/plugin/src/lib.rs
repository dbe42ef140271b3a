//! `baseline`: an executor written against the frozen plugin-api 1.0.0 and nothing else.
//!
//! Every verb of the baseline API does something a test can see: attach fills a setting and
//! asks for `PrepareEnvironment`, prepare keeps a marker in the plugin's state folder, run
//! starts `python3` with the run's arguments and streams its output live (with a metric, a
//! status and a progress event of its own, and an event kind no host knows), honours
//! cancellation and collects `outputs/`, and clean removes the marker.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use xp_plugin_api::{
    AttachReply, AttachRequest, CleanReply, CleanRequest, Events, Executor, LogStream, PluginDescription,
    PluginFailure, PrepareReply, PrepareRequest, RunOutcome, RunRequest, RunStatus,
};

struct Baseline;

const MARKER: &str = "prepared";

fn read_lines(stream: impl Read, kind: LogStream, sender: mpsc::Sender<(LogStream, String)>) {
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        if sender.send((kind, line)).is_err() {
            break;
        }
    }
}

/// Moves every file of `from` into `to`, folders included.
fn collect(from: &Path, to: &Path) -> std::io::Result<()> {
    if !from.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            collect(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

impl Executor for Baseline {
    fn describe(&self) -> PluginDescription {
        PluginDescription::new("baseline", env!("CARGO_PKG_VERSION"), &["baseline"])
    }

    fn attach(&self, request: AttachRequest, events: &Events<'_>) -> Result<AttachReply, PluginFailure> {
        events.info("baseline: checking the settings");
        let mut settings = request.context.target.settings.clone();
        settings.entry("pythonLocation").or_insert_with(|| "python3".into());
        Ok(AttachReply::new(settings)
            .runconfig("PrepareEnvironment", true)
            .message(format!(
                "baseline plugin attached '{}' (built against plugin-api {})",
                request.context.target.name,
                xp_plugin_api::API_VERSION
            )))
    }

    fn prepare(&self, request: PrepareRequest, events: &Events<'_>) -> Result<PrepareReply, PluginFailure> {
        let marker = request.context.state_dir.join(MARKER);
        if marker.is_file() {
            return Ok(PrepareReply::cached().message("baseline environment reused"));
        }
        events.status(RunStatus::Preparing);
        events.progress("baseline: preparing", 1, Some(1));
        std::fs::create_dir_all(&request.context.state_dir)?;
        std::fs::write(&marker, request.context.project_name.as_bytes())?;
        Ok(PrepareReply::built().message(format!("baseline environment prepared in {}", marker.display())))
    }

    fn run(&self, request: RunRequest, events: &Events<'_>) -> Result<RunOutcome, PluginFailure> {
        let python = request.context.target.setting_str("pythonLocation").unwrap_or("python3");
        let mut child = Command::new(python)
            .args(&request.arguments)
            .current_dir(&request.snapshot_dir)
            .envs(&request.environment)
            .env("PYTHONPATH", &request.support_dir)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| PluginFailure::new(format!("baseline: could not start {python}: {e}")))?;
        events.status(RunStatus::Running);
        events.metric("baseline_plugin_metric", &xp_plugin_api::serde_json::json!(42));
        // A kind no host knows: a host must ignore it.
        events.event("baseline-unknown-kind", &xp_plugin_api::serde_json::json!({"ignored": true}));

        let (sender, receiver) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let out = sender.clone();
        let readers = [
            std::thread::spawn(move || read_lines(stdout, LogStream::Stdout, out)),
            std::thread::spawn(move || read_lines(stderr, LogStream::Stderr, sender)),
        ];
        let mut cancelled = false;
        let status = loop {
            while let Ok((stream, line)) = receiver.recv_timeout(Duration::from_millis(50)) {
                events.log(stream, &line);
            }
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if !cancelled && events.is_cancelled() {
                cancelled = true;
                events.info("baseline: cancelling");
                // The whole process group, with the system's kill program (std only).
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .status();
            }
        };
        for reader in readers {
            let _ = reader.join();
        }
        for (stream, line) in receiver.try_iter() {
            events.log(stream, &line);
        }
        collect(&request.snapshot_dir.join("outputs"), &request.artifacts_dir)?;
        let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        Ok(if cancelled {
            RunOutcome::canceled(code)
        } else {
            RunOutcome::exited(code)
        })
    }

    fn clean(&self, request: CleanRequest, _events: &Events<'_>) -> Result<CleanReply, PluginFailure> {
        let marker = request.context.state_dir.join(MARKER);
        if std::fs::remove_file(&marker).is_ok() {
            Ok(CleanReply::new().removed(marker.display().to_string()))
        } else {
            Ok(CleanReply::new().message("baseline: nothing to clean"))
        }
    }
}

xp_plugin_api::export_plugin!(Baseline);
