//! `minibox`, the runtime of chapter 12: chapter 11's, with every container
//! hardened as Docker hardens it.

use std::process::ExitCode;

use ch01_fork_exec::cli;
use ch12_security::{cli::Command, confine, run};

fn main() -> ExitCode {
    // Before anything runs: every start and `exec` asks for the container's
    // confinement (chapter 10's `hardening`).
    confine::install();
    cli::main(|command: Command| run::act(command))
}
