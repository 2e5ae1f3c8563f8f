//! The `minibox` command of chapter 1: parse the command line, run the recipe, exit
//! with the child's status. All the work happens in the library.

use std::process::ExitCode;

use ch01_fork_exec::cli::{self, Command};
use ch01_fork_exec::run;

fn main() -> ExitCode {
    cli::main(|command: Command| run::run(&command.into_config()))
}
