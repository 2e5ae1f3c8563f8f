//! Chapter 14's `minibox`, the product: chapter 13's command line, built
//! with `minibox-runc` beside it (`cargo install --path
//! chapters/ch14-oci-runtime` installs both).

use std::process::ExitCode;

use ch01_fork_exec::cli;
use ch13_rootless::cli::Command;

fn main() -> ExitCode {
    cli::main(|command: Command| ch13_rootless::run::act(command))
}
