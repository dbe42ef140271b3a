use super::args::{PrepareArgs, SubmitArgs};
use super::CommandContext;
use crate::run::{self, Submission};

pub fn submit(context: &CommandContext, args: SubmitArgs) -> anyhow::Result<i32> {
    let project = context.project()?;
    let submission = Submission {
        runconfig: args.runconfig,
        target: args.target,
        script: args.script,
        arguments: args.arguments,
        quiet: context.quiet,
        detach: args.detach,
    };
    let finished = run::submit(&project, &context.dirs, &context.cwd, &submission)?;
    if args.detach {
        let run_id = finished.run_id.unwrap_or_default();
        // The id alone on stdout, for scripts: `run=$(xp submit -a train.py)`.
        println!("{run_id}");
        if !context.quiet {
            eprintln!("Follow it with: xp history logs {run_id} -f    Cancel it with: xp experiment cancel {run_id}");
        }
    }
    Ok(finished.exit_code)
}

pub fn prepare(context: &CommandContext, args: PrepareArgs) -> anyhow::Result<i32> {
    let project = context.project()?;
    let reply = run::prepare(&project, &context.dirs, &args.runconfig, context.quiet)?;
    for message in &reply.messages {
        eprintln!("{message}");
    }
    if !context.quiet {
        if reply.cached {
            eprintln!("Environment ready (cached): nothing to build.");
        } else {
            eprintln!("Environment prepared.");
        }
    }
    Ok(0)
}

pub fn cancel(context: &CommandContext, run: &str) -> anyhow::Result<i32> {
    let project = context.project()?;
    let store = crate::history::HistoryStore::open(&project.xp_dir())?;
    // Runs whose driver vanished end here, on their targets too.
    run::reap_vanished(&project, &context.dirs, &store)?;
    match run::cancel(&store, run)? {
        run::Cancelled::AlreadyEnded(record) => {
            eprintln!("Run {} already ended ({}); nothing to cancel.", record.run_id, record.status);
            Ok(0)
        }
        run::Cancelled::Ended(record) => {
            eprintln!("Run {}: {}", record.run_id, record.status);
            Ok(0)
        }
        run::Cancelled::StillRunning(record) => anyhow::bail!(
            "run {} was asked to cancel but is still {}; its driver (pid {}) may be stuck: `xp history info {}` shows it, and killing that pid marks the run Failed",
            record.run_id,
            record.status,
            record.driver_pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
            record.run_id
        ),
    }
}

pub fn clean(context: &CommandContext, args: PrepareArgs) -> anyhow::Result<i32> {
    let project = context.project()?;
    let reply = run::clean(&project, &context.dirs, &args.runconfig)?;
    for message in &reply.messages {
        eprintln!("{message}");
    }
    for removed in &reply.removed {
        println!("removed {removed}");
    }
    if !context.quiet {
        eprintln!("Removed {} item(s).", reply.removed.len());
    }
    Ok(0)
}
