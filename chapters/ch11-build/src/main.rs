//! `minibox`, the runtime of chapter 11: chapter 10's, which also builds
//! images, pushes them, saves and loads them.

use std::process::ExitCode;

use ch01_fork_exec::cli;
use ch11_build::{cli::Command, run};

fn main() -> ExitCode {
    cli::main(|command: Command| run::act(command))
}
