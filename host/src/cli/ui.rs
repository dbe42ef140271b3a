//! `xp ui`: the web view of the project's history. The server and its runtime live in
//! [`crate::ui`] and start only here, so no other command pays for them.

use super::args::UiArgs;
use super::CommandContext;

pub fn run(context: &CommandContext, args: UiArgs) -> anyhow::Result<i32> {
    let project = context.project()?;
    crate::ui::serve(
        &project,
        &context.dirs,
        &crate::ui::Options {
            host: args.host,
            port: args.port,
        },
    )?;
    Ok(0)
}
