//! What chapter 13's `minibox` does with its command line: chapter 12's
//! commands, in the user's namespace when it runs without root, and, as
//! root, with `--userns auto` in one of the container's own.

use anyhow::{Result, anyhow, bail};
use ch01_fork_exec::exit::Exit;
use ch01_fork_exec::exit::FailsWith;
use ch10_runtime::cli::{Action, Command as Ch10};
use ch11_build::cli::Command as Ch11;
use ch12_security::cli::Command as Ch12;
use ch12_security::confine;

use ch01_fork_exec::narrate;
use nix::unistd::Uid;

use crate::cli::{Command, UsernsArgs};
use crate::remap::{self, Mode};
use crate::{checks, rootless};

/// Does what the command line asked for.
pub fn act(command: Command) -> Result<Exit> {
    match command {
        Command::Earlier {
            command,
            network_given,
            userns,
        } => earlier(command, network_given, &userns),
    }
}

// ANCHOR: earlier
/// Chapter 12's `command`, in the user's namespace when minibox runs
/// without root; as root, in the container's own with `--userns auto`.
fn earlier(earlier: Ch12, network_given: bool, userns: &UsernsArgs) -> Result<Exit> {
    let mode = Mode::parse(userns.userns.as_deref())?;
    if rootless::is_rootless() {
        if mode == Mode::Auto {
            return Err(FailsWith {
                status: 125,
                error: anyhow!(
                    "--userns auto needs root: a rootless container is in your own user namespace already, its root is you on the host; leave --userns out"
                ),
            }
            .into());
        }
        if network_given && asks_for_a_bridge(&earlier) {
            return Err(FailsWith {
                status: 125,
                error: anyhow!(
                    "a bridge needs root (a veth in the host's network namespace): rootless containers get a user-mode network (pasta or slirp4netns) by default; leave --network out, or use --network none or host"
                ),
            }
            .into());
        }
        rootless::enter(!only_reads(&earlier))?;
    } else {
        remap::install(); // chapter 12's confinement, and --userns auto's
    }
    let info = matches!(earlier.earlier, Ch11::Runtime(Ch10::Info));
    let exit = match mode {
        Mode::Host => ch12_security::run::act(earlier)?,
        Mode::Auto => remapped(earlier)?,
    };
    if info {
        info_rootless()?;
    }
    Ok(exit)
}

/// `run` or `create` with `--userns auto`: chapter 12's, with a range of
/// host IDs taken for the container ([`remap::allocate`]), which its record
/// keeps among chapter 12's flags, so every start and `exec` finds it.
fn remapped(command: Ch12) -> Result<Exit> {
    let Ch12 { earlier, security } = command;
    let Ch11::Runtime(runtime) = earlier else {
        bail!("--userns is a flag of run and create");
    };
    let mut action = runtime.into_action()?;
    let mut reservation = None;
    if let Action::Run(config) | Action::Create(config) = &mut action {
        let mut words = confine::checked(&security)?.to_words();
        let taken = remap::allocate(&config.container.run.options.root)?;
        words.push(taken.remap.word());
        config.flags.extra = words;
        reservation = Some(taken);
    }
    let exit = ch10_runtime::run::act(action);
    drop(reservation); // the record names the range from now on
    exit
}
// ANCHOR_END: earlier

/// The commands that need no namespace: they read minibox's files, or
/// the host's.
fn only_reads(command: &Ch12) -> bool {
    matches!(command.earlier, Ch11::Runtime(Ch10::Info | Ch10::Version))
}

/// Whether `run` or `create` names the bridge.
fn asks_for_a_bridge(command: &Ch12) -> bool {
    match &command.earlier {
        Ch11::Runtime(Ch10::Run(args) | Ch10::Create(args)) => {
            matches!(args.network.network.as_str(), "bridge" | "default")
        }
        _ => false,
    }
}

// ANCHOR: info
/// `minibox info`'s last part: whether rootless containers work here, for
/// this user (or, under sudo, the user who ran it), and what is missing,
/// each with its fix.
fn info_rootless() -> Result<()> {
    let uid = match std::env::var("SUDO_UID").ok().and_then(|u| u.parse().ok()) {
        Some(uid) if !rootless::is_rootless() => Uid::from_raw(uid),
        _ => Uid::current(),
    };
    if uid.is_root() {
        return Ok(narrate::print(
            "Rootless: false (run `minibox info` as an ordinary user to check what rootless needs here)",
        )?);
    }
    let checks = checks::rootless(uid);
    // The user namespace is the one thing rootless cannot do without; the
    // rest, missing, takes something away (IDs, a network, limits).
    let works = checks.iter().any(|c| c.name == "user namespaces" && c.ok);
    narrate::print(format!(
        "Rootless: {} (for UID {uid})",
        rootless::is_rootless()
    ))?;
    narrate::print(format!(
        " Rootless containers work here: {}",
        if works { "yes" } else { "no" }
    ))?;
    for check in &checks {
        let mark = if check.ok { "ok" } else { "missing" };
        narrate::print(format!("  {}: {mark}: {}", check.name, check.detail))?;
        for line in check.fix.iter().flat_map(|fix| fix.lines()) {
            narrate::print(format!("    {line}"))?;
        }
    }
    Ok(())
}
// ANCHOR_END: info
