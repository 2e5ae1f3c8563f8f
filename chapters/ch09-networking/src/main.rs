//! The `minibox` command of chapter 9: parse, then run a container on a
//! network, prune the network, or hand the other commands (`pull`, `images`,
//! `login`, `logout`, `diff`) to chapter 7.

use std::process::ExitCode;

use ch01_fork_exec::cli;
use ch09_networking::{cli::Command, run};

fn main() -> ExitCode {
    cli::main(|command: Command| run::act(&command.into_action()?))
}
