//! What chapter 12's `minibox` does with its command line: chapter 11's
//! commands, with `run` and `create` checking this chapter's flags first
//! and keeping them in the container's record, where every start and
//! `exec` finds them ([`crate::confine`]).

use anyhow::Result;
use ch01_fork_exec::exit::Exit;
use ch10_runtime::cli::Action;
use ch11_build::cli::Command as Ch11;

use crate::cli::Command;
use crate::confine;

/// Does what the command line asked for.
pub fn act(command: Command) -> Result<Exit> {
    let Command { earlier, security } = command;
    let Ch11::Runtime(runtime) = earlier else {
        return ch11_build::run::act(earlier);
    };
    let mut action = runtime.into_action()?;
    if let Action::Run(config) | Action::Create(config) = &mut action {
        // Checked before anything is created, as Docker's client does, and
        // kept as the words every start reads again.
        config.flags.extra = confine::checked(&security)?.to_words();
    }
    ch10_runtime::run::act(action)
}
