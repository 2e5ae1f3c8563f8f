//! `minibox`, the runtime of chapter 10: parse, then run a container or act
//! on the containers on disk.

use std::process::ExitCode;

use ch01_fork_exec::cli;
use ch10_runtime::{cli::Command, run};

fn main() -> ExitCode {
    cli::main(|command: Command| run::act(command.into_action()?))
}
