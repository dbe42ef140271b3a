//! `xp plugin`: list what is on the search path; make, install and remove plugin crates.

mod install;
mod list;
mod scaffold;

use super::args::PluginCommand;
use super::CommandContext;

pub fn run(context: &CommandContext, command: PluginCommand) -> anyhow::Result<i32> {
    match command {
        PluginCommand::List(args) => list::run(context, args),
        PluginCommand::New(args) => scaffold::run(context, args),
        PluginCommand::Install(args) => install::install(context, args),
        PluginCommand::Remove(args) => install::remove(context, args),
    }
}
