//! The `minibox` command of chapter 8: parse, then run a container whose
//! command comes from the image's config and the overrides, or hand the other
//! commands (`pull`, `images`, `login`, `logout`, `diff`) to chapter 7.

use std::process::ExitCode;

use ch01_fork_exec::{cli::parse_or_exit, exit};
use ch08_command_override::{cli, run};

fn main() -> ExitCode {
    let result = parse_or_exit::<cli::Cli>()
        .into_action()
        .and_then(|action| run::act(&action));
    exit::finish(result)
}
