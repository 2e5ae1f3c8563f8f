//! The `minibox` command of chapter 5: parse, run the recipe, exit with the
//! container's status.

use std::process::ExitCode;

use ch01_fork_exec::{cli::parse_or_exit, exit};
use ch05_cgroups::{cli, run};

fn main() -> ExitCode {
    let result = parse_or_exit::<cli::Cli>()
        .into_config()
        .and_then(|config| run::run(&config));
    exit::finish(result)
}
