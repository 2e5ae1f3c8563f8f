//! The `minibox` command of chapter 1: parse the command line, run the recipe, exit
//! with the child's status. All the work happens in the library.

use std::process::ExitCode;

use ch01_fork_exec::{cli, exit, run};

fn main() -> ExitCode {
    let config = cli::parse_or_exit::<cli::Cli>().into_config();
    exit::finish(run::run(&config))
}
