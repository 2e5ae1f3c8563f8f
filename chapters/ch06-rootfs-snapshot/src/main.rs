//! The `minibox` command of chapter 6: parse, then run a container or show a
//! kept container's changes.

use std::process::ExitCode;

use ch01_fork_exec::{cli::parse_or_exit, exit};
use ch06_rootfs_snapshot::{cli, run};

fn main() -> ExitCode {
    let result = parse_or_exit::<cli::Cli>()
        .into_action()
        .and_then(|action| run::act(&action));
    exit::finish(result)
}
