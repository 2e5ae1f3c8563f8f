//! The recipe of chapter 5: chapter 4's, with a cgroup that the parent creates
//! before the child exists, joins the child to while it waits, and destroys after
//! the container ends.

use std::path::Path;

use anyhow::Result;
use ch01_fork_exec::exit::Exit;
use ch01_fork_exec::narrate::Narrator;
use ch01_fork_exec::process::{self, Command};
use ch02_pid_namespace::{namespace, sync};
use ch03_uts_namespace::{id, uts};
use ch04_mount_namespace::{dev, mount};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::getpid;

use crate::cgroup::{self, Cgroup};
use crate::cli::Config;
use crate::limits::{Limits, format_bytes};
use crate::signals;

// ANCHOR: run
/// Runs `config.command` in new namespaces and a new cgroup with
/// `config.limits`; returns how it ended. The cgroup is removed on every path.
pub fn run(config: &Config) -> Result<Exit> {
    let narrator = Narrator::new(config.quiet);
    let command = Command::new(&config.command)?;
    let id = id::new_id()?;

    // The parent's part, first: a cgroup with the limits already written.
    let cgroup = cgroup::create(
        Path::new(cgroup::ROOT),
        &config.cgroup_parent,
        &id,
        &config.limits,
    )?;
    narrator.say(format_args!(
        "parent created cgroup {}/{} ({})",
        config.cgroup_parent.trim_end_matches('/'),
        id::short(&id),
        config.limits.describe()
    ));
    let result = run_in_cgroup(config, &narrator, &command, &id, cgroup.as_ref());
    // Whatever happened: kill what is left in the cgroup, and remove it.
    let destroyed = cgroup.destroy();
    let exit = result?;
    destroyed?;
    Ok(exit)
}
// ANCHOR_END: run

// ANCHOR: run_in_cgroup
/// Chapter 4's recipe, with one step more in the parent: the child joins its
/// cgroup before it is released.
fn run_in_cgroup(
    config: &Config,
    narrator: &Narrator,
    command: &Command,
    id: &str,
    cgroup: &dyn Cgroup,
) -> Result<Exit> {
    let hostname = config
        .hostname
        .clone()
        .unwrap_or_else(|| id::short(id).to_string());
    let rootfs = &config.rootfs;
    let (mut parent, child_end) = sync::channel()?;
    let flags = CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNS;
    narrator.say(format_args!(
        "parent (PID {}) calls clone({})",
        getpid(),
        namespace::flag_names(flags)
    ));
    let child = namespace::clone_child(flags, || {
        let setup = || -> Result<()> {
            child_end.wait_for_release()?; // returns once we are in the cgroup
            uts::set_hostname(&hostname)?;
            mount::make_private()?;
            mount::bind_onto_itself(rootfs)?;
            mount::mount_proc(rootfs)?;
            mount::mount_sys_readonly(rootfs)?;
            dev::mount_dev(rootfs)?;
            mount::pivot_root(rootfs)?;
            Ok(())
        };
        if let Err(error) = setup() {
            child_end.setup_failed(&error);
        }
        narrator.say(format_args!(
            "child (PID {}) calls execvp({:?}, {})",
            getpid(),
            command.program_name(),
            command.argv_for_display()
        ));
        let error = process::exec(command);
        child_end.exec_failed(&error)
    })?;
    drop(child_end);
    // From here, minibox must outlive the container to remove its cgroup.
    signals::forward_to(child)?;

    // The child waits for our go: move it into its cgroup first, so that
    // everything it runs, and every process it forks, counts against the limits.
    if let Err(error) = cgroup.join(child) {
        drop(parent); // the child reads end-of-file and gives up
        process::wait_for(child)?;
        return Err(error);
    }
    narrator.say(format_args!(
        "parent moved the child (host PID {child}) into the cgroup and releases it"
    ));
    parent.release()?;
    if let Err(error) = parent.wait_for_exec(&command.program_name()) {
        process::wait_for(child)?;
        return Err(error);
    }
    let exit = process::wait_for(child)?;
    narrator.say(format_args!(
        "child (host PID {child}) {exit}; minibox exits with {}",
        exit.status()
    ));
    report(&config.limits, config.stats, cgroup, exit)?;
    Ok(exit)
}
// ANCHOR_END: run_in_cgroup

// ANCHOR: report
/// Says what the cgroup saw: an OOM kill (one line, always), and with `stats`
/// the peak memory and CPU time. Read before the cgroup is removed.
pub fn report(limits: &Limits, stats: bool, cgroup: &dyn Cgroup, exit: Exit) -> Result<()> {
    if exit == Exit::Signal(Signal::SIGKILL) && cgroup.oom_kills()? > 0 {
        let limit = limits.memory.map(format_bytes);
        eprintln!(
            "minibox: killed: out of memory (limit {})",
            limit.as_deref().unwrap_or("none")
        );
    }
    if stats {
        let stats = cgroup.stats()?;
        let peak = stats.peak_memory.map(format_bytes);
        eprintln!(
            "minibox: stats: peak memory {}, CPU time {:.2}s",
            peak.as_deref().unwrap_or("unknown"),
            stats.cpu_time.as_secs_f64()
        );
    }
    Ok(())
}
// ANCHOR_END: report
