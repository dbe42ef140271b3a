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
    };
    let finished = run::submit(&project, &context.dirs, &context.cwd, &submission)?;
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
