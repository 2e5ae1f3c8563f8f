//! The recipe of chapter 8: chapter 7's, with the command taken from the
//! image's config and the overrides, and the process's environment, user and
//! working directory set in the child, inside the container, just before
//! `execve`. The other commands are chapter 7's.

use std::path::{Path, PathBuf};

use anyhow::Result;
use ch01_fork_exec::exit::Exit;
use ch01_fork_exec::narrate::Narrator;
use ch01_fork_exec::process::{self, Command};
use ch02_pid_namespace::{namespace, sync};
use ch03_uts_namespace::{id, uts};
use ch04_mount_namespace::{dev, mount};
use ch05_cgroups::cgroup::{self, Cgroup};
use ch05_cgroups::run::report;
use ch05_cgroups::signals;
use ch06_rootfs_snapshot::snapshot::Snapshot;
use ch07_image_pull::cli as ch07;
use ch07_image_pull::store::Store;
use nix::sched::CloneFlags;
use nix::unistd::getpid;

use crate::cli::{Action, Config};
use crate::{command, config, env, exec, user};

/// Does what the command line asked for: `run` here, the rest in chapter 7.
pub fn act(action: &Action) -> Result<Exit> {
    match action {
        Action::Run(config) => run(config),
        Action::Other(action) => ch07_image_pull::run::act(action),
    }
}

/// What the container's process is, once the image and the command line have
/// been combined: everything the child needs, decided before clone.
#[derive(Debug)]
pub struct Process {
    /// The effective command.
    pub command: Command,
    /// The environment, in Docker's order (`HOME` is added in the child).
    pub env: Vec<String>,
    /// `USER[:GROUP]`, resolved in the child through the image's files.
    pub user: String,
    /// The working directory (absolute).
    pub workdir: PathBuf,
}

// ANCHOR: run
/// Runs a container from the image `config.base.image` (pulled first if the
/// store lacks it), starting the command Docker's rules give.
pub fn run(config: &Config) -> Result<Exit> {
    let base = &config.base;
    let narrator = Narrator::new(base.quiet);

    // Chapter 7: the image's layers come from the store, pulled if missing.
    let store = Store::open(&base.store)?;
    let image = ch07_image_pull::run::find_or_pull(&store, base)?;
    let layers = image
        .diff_ids
        .iter()
        .map(|diff_id| store.layer_dir(diff_id))
        .collect::<Result<Vec<_>>>()?;
    narrator.say(format_args!(
        "image {} (ID {}) is {} layer(s) in {}",
        base.image,
        ch07_image_pull::digest::short(&image.config),
        layers.len(),
        store.root.display()
    ));

    // New in this chapter: the image's config says what to run, as whom,
    // where, with which variables; the command line overrides it.
    let defaults = config::load(&store, &image)?;
    // SIMPLIFICATION: StopSignal and ExposedPorts are read but not used yet:
    // `stop` is chapter 10's, publishing ports chapter 9's.
    let words = command::effective(&defaults, config.entrypoint.as_deref(), &base.command)?;
    let command = Command::new(&words)?;
    narrator.say(format_args!(
        "image {} says Entrypoint {:?}, Cmd {:?}: the container runs {}",
        base.image,
        defaults.entrypoint,
        defaults.cmd,
        command.argv_for_display()
    ));

    let id = id::new_id()?;
    let hostname = base
        .hostname
        .clone()
        .unwrap_or_else(|| id::short(&id).to_string());
    let process = Process {
        command,
        env: env::merge(&defaults.env, &config.env, &hostname),
        user: config.user.clone().unwrap_or(defaults.user),
        workdir: PathBuf::from(match (&config.workdir, defaults.working_dir.as_str()) {
            (Some(dir), _) => dir.as_str(),
            (None, "") => "/",
            (None, dir) => dir,
        }),
    };

    // From here on, chapter 7's recipe: a snapshot of the layers, a cgroup,
    // the container.
    let snapshot = Snapshot::prepare(&base.store, &id, &layers, base.snapshotter)?;
    let result = cgroup::create(
        Path::new(cgroup::ROOT),
        &base.cgroup_parent,
        &id,
        &base.limits,
    )
    .and_then(|cgroup| {
        let result = run_in(
            base,
            &narrator,
            &process,
            &hostname,
            &snapshot,
            cgroup.as_ref(),
        );
        let destroyed = cgroup.destroy();
        result.and_then(|exit| destroyed.map(|()| exit))
    });
    let result = result.and_then(|exit| {
        if base.diff {
            ch06_rootfs_snapshot::run::print_changes(&snapshot)?;
        }
        Ok(exit)
    });
    if base.keep && result.is_ok() {
        eprintln!(
            "minibox: kept container {}: {}",
            id::short(&id),
            snapshot.dir.display()
        );
        return result;
    }
    let removed = snapshot.remove();
    let exit = result?;
    removed?;
    Ok(exit)
}
// ANCHOR_END: run

// ANCHOR: run_in
/// Chapter 7's container, with the process set up the image's way: after
/// `pivot_root`, the child resolves the user through the image's files,
/// enters the working directory, drops to the user, and execs the program
/// found on the container's `PATH` with the container's environment.
fn run_in(
    config: &ch07::Config,
    narrator: &Narrator,
    process: &Process,
    hostname: &str,
    snapshot: &Snapshot,
    cgroup: &dyn Cgroup,
) -> Result<Exit> {
    let rootfs = snapshot.rootfs();
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
        let setup = || -> Result<(user::User, Vec<std::ffi::CString>)> {
            child_end.wait_for_release()?;
            uts::set_hostname(hostname)?;
            mount::make_private()?;
            snapshot.mount()?;
            mount::mount_proc(&rootfs)?;
            mount::mount_sys_readonly(&rootfs)?;
            dev::mount_dev(&rootfs)?;
            mount::pivot_root(&rootfs)?;
            // New in this chapter. The names are the image's: read its
            // /etc/passwd and /etc/group, now at / (never the host's).
            let user = user::resolve_in(Path::new("/"), &process.user)?;
            // As root still: the directory may have to be created.
            exec::enter_workdir(&process.workdir)?;
            let env = exec::c_env(&env::with_home(process.env.clone(), &user.home))?;
            // Last: after setuid we could no longer change groups.
            user::switch_to(&user)?;
            Ok((user, env))
        };
        let (user, env) = match setup() {
            Ok(done) => done,
            Err(error) => child_end.setup_failed(&error),
        };
        let program = process.command.program_name();
        let found = if program.contains('/') {
            "a path, used as it is"
        } else {
            "a name, looked up on the container's PATH"
        };
        narrator.say(format_args!(
            "child (PID {}) is uid {} gid {} in {}, calls execve for {program:?} ({found}) with argv {} and {} variables",
            getpid(),
            user.uid,
            user.gid,
            process.workdir.display(),
            process.command.argv_for_display(),
            env.len()
        ));
        let error = exec::exec(&process.command, &env);
        child_end.exec_failed(&error)
    })?;
    drop(child_end);
    signals::forward_to(child)?;

    if let Err(error) = cgroup.join(child) {
        drop(parent);
        process::wait_for(child)?;
        return Err(error);
    }
    parent.release()?;
    if let Err(error) = parent.wait_for_exec(&process.command.program_name()) {
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
// ANCHOR_END: run_in
