//! The `minibox` command of chapter 8: parse, then run a container whose
//! command comes from the image's config and the overrides, or hand the other
//! commands (`pull`, `images`, `login`, `logout`, `diff`) to chapter 7.

use std::process::ExitCode;

use ch01_fork_exec::cli;
use ch08_command_override::{cli::Command, run};

fn main() -> ExitCode {
    cli::main(|command: Command| run::act(&command.into_action()?))
}
