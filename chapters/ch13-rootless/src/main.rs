//! Chapter 13's `minibox`: chapter 12's, for a user without root too.

use std::process::ExitCode;

use ch01_fork_exec::cli;
use ch13_rootless::cli::Command;
use ch13_rootless::run;

fn main() -> ExitCode {
    cli::main(|command: Command| run::act(command))
}
