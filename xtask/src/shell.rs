//! Running programs from xtask: each command is echoed before it runs, and a
//! failure names the command.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Runs `cargo args...` in `root`, with the same cargo that runs xtask.
pub fn cargo(root: &Path, args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(args).current_dir(root);
    run(&mut command)
}

/// Runs a command to completion; fails unless it exits 0.
pub fn run(command: &mut Command) -> Result<()> {
    let shown = show(command);
    eprintln!("$ {shown}");
    let status = command
        .status()
        .with_context(|| format!("cannot start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// The command as a person would type it.
pub fn show(command: &Command) -> String {
    let words = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|w| harness::transcript::shell_quote(&w.to_string_lossy()))
        .collect::<Vec<_>>();
    words.join(" ")
}

/// The command as a person would type it, with the variables it sets
/// in front (`NAME=value command ...`).
pub fn show_with_env(command: &Command) -> String {
    let mut words: Vec<String> = command
        .get_envs()
        .filter_map(|(name, value)| Some((name, value?)))
        .map(|(name, value)| {
            let value = harness::transcript::shell_quote(&value.to_string_lossy());
            format!("{}={value}", name.to_string_lossy())
        })
        .collect();
    words.push(show(command));
    words.join(" ")
}
