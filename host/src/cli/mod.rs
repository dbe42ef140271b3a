//! The command line.

mod args;
mod computetarget;
mod history;
mod init;
mod output;
mod plugin;
mod runconfiguration;
mod submit;
mod ui;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

pub use args::Cli;
use args::{Command, ExperimentCommand};

use crate::paths::UserDirs;
use crate::project::Project;

/// Shared by every command.
pub struct CommandContext {
    pub cwd: PathBuf,
    pub project_dir: Option<PathBuf>,
    pub dirs: UserDirs,
    pub quiet: bool,
}

impl CommandContext {
    pub fn project(&self) -> anyhow::Result<Project> {
        let start = self.project_dir.as_ref().unwrap_or(&self.cwd);
        Ok(Project::discover(start)?)
    }
}

/// Parses the command line, runs the command, prints any error, and returns the exit code.
pub fn main() -> i32 {
    crate::timing::init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", error_text(&error));
            1
        }
    }
}

/// The error and its causes, each cause once: library errors often include their cause's
/// text in their own message already.
fn error_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause);
        }
    }
    text
}

pub fn run(cli: Cli) -> anyhow::Result<i32> {
    let cwd = std::env::current_dir().context("reading the current folder")?;
    let context = CommandContext {
        cwd,
        project_dir: cli.project,
        dirs: UserDirs::from_env(),
        quiet: cli.quiet,
    };
    match cli.command {
        Command::Init(args) => init::run(&context, args),
        Command::Submit(args) => submit::submit(&context, args),
        Command::Experiment { command } => match command {
            ExperimentCommand::Submit(args) => submit::submit(&context, args),
            ExperimentCommand::Prepare(args) => submit::prepare(&context, args),
            ExperimentCommand::Cancel { run } => submit::cancel(&context, &run),
            ExperimentCommand::Clean(args) => submit::clean(&context, args),
        },
        Command::Computetarget { command } => computetarget::run(&context, command),
        Command::Runconfiguration { command } => runconfiguration::run(&context, command),
        Command::History { command } => history::run(&context, command),
        Command::Plugin { command } => plugin::run(&context, command),
        Command::Asset { command } => history::assets(&context, command),
        Command::Ui(args) => ui::run(&context, args),
        Command::Supervise { run_dir } => Ok(crate::run::supervise(&run_dir)?.exit_code),
    }
}
