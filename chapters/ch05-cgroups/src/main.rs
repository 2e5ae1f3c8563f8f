//! The `minibox` command of chapter 5: parse, run the recipe, exit with the
//! container's status.

use std::process::ExitCode;

use ch01_fork_exec::cli;
use ch05_cgroups::{cli::Command, run};

fn main() -> ExitCode {
    cli::main(|command: Command| run::run(&command.into_config()?))
}
