//! The `minibox` command of chapter 3: parse, run the recipe, exit with the
//! container's status.

use std::process::ExitCode;

use ch01_fork_exec::{cli::parse_or_exit, exit};
use ch03_uts_namespace::{cli, run};

fn main() -> ExitCode {
    let config = parse_or_exit::<cli::Cli>().into_config();
    exit::finish(run::run(&config))
}
