//! The `minibox` command of chapter 6: parse, then run a container or show a
//! kept container's changes.

use std::process::ExitCode;

use ch01_fork_exec::cli;
use ch06_rootfs_snapshot::{cli::Command, run};

fn main() -> ExitCode {
    cli::main(|command: Command| run::act(&command.into_action()?))
}
