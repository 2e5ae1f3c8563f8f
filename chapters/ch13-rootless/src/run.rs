//! What chapter 13's `minibox` does with its command line: chapter 12's
//! commands, in the user's namespace when it runs without root.

use anyhow::Result;
use ch01_fork_exec::exit::Exit;
use ch10_runtime::cli::Command as Ch10;
use ch11_build::cli::Command as Ch11;
use ch12_security::cli::Command;
use ch12_security::confine;

use crate::rootless;

/// Does what the command line asked for.
pub fn act(command: Command) -> Result<Exit> {
    if rootless::is_rootless() {
        rootless::enter(!only_reads(&command))?;
    } else {
        confine::install();
    }
    ch12_security::run::act(command)
}

/// The commands that need no namespace: they read minibox's files, or
/// the host's.
fn only_reads(command: &Command) -> bool {
    matches!(command.earlier, Ch11::Runtime(Ch10::Info | Ch10::Version))
}
