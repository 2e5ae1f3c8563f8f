//! The `minibox` command of chapter 7: parse, then run a container from an
//! image, pull one, list them, log in or out, or show a kept container's
//! changes.

use std::process::ExitCode;

use ch01_fork_exec::{cli::parse_or_exit, exit};
use ch07_image_pull::{cli, run};

fn main() -> ExitCode {
    let result = parse_or_exit::<cli::Cli>()
        .into_action()
        .and_then(|action| run::act(&action));
    exit::finish(result)
}
