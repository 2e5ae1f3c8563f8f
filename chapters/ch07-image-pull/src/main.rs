//! The `minibox` command of chapter 7: parse, then run a container from an
//! image, pull one, list them, log in or out, or show a kept container's
//! changes.

use std::process::ExitCode;

use ch01_fork_exec::cli;
use ch07_image_pull::{cli::Command, run};

fn main() -> ExitCode {
    cli::main(|command: Command| run::act(&command.into_action()?))
}
