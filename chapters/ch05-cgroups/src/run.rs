//! The recipe of chapter 5: chapter 4's, with a cgroup that the parent creates
//! before the child exists, joins the child to while it waits, and destroys after
//! the container ends.

use std::path::Path;

use anyhow::Result;
use ch01_fork_exec::exit::Exit;
use ch01_fork_exec::narrate::Narrator;
use ch01_fork_exec::process::Command;
use ch02_pid_namespace::{namespace, sync};
use ch03_uts_namespace::{id, uts};
use ch04_mount_namespace::mount::{self, Isolation};

use crate::cgroup;
use crate::cli::Config;

// ANCHOR: run
/// Runs `config.command` in new namespaces and a new cgroup with
/// `config.resources`; returns how it ended. The cgroup is removed on every path.
pub fn run(config: &Config) -> Result<Exit> {
    let narrator = Narrator::new(config.quiet);
    let command = Command::new(&config.command)?;
    let id = id::new_id()?;
    let hostname = uts::hostname_for(config.hostname.as_deref(), &id);
    let (rootfs, resources) = (&config.rootfs, &config.resources);

    // The parent's part, first: a cgroup with the limits already written,
    // destroyed when the container is gone (whatever happened to it).
    cgroup::with_cgroup(Path::new(cgroup::ROOT), resources, &id, |cgroup| {
        narrator.say(format_args!(
            "parent created cgroup {}/{} ({})",
            resources.parent.trim_end_matches('/'),
            id::short(&id),
            resources.limits.describe()
        ));
        let (parent, child_end) = sync::channel()?;
        namespace::say_clone(&narrator, mount::NAMESPACES);
        let child = namespace::clone_child(mount::NAMESPACES, || {
            let setup = || {
                uts::set_hostname(&hostname)?; // (released once we are in the cgroup)
                mount::make_private()?;
                mount::bind_onto_itself(rootfs)?;
                mount::enter_root(rootfs, Isolation::PivotRoot)
            };
            child_end.start(setup, |()| narrator.exec(&command))
        })?;
        drop(child_end);

        // The child waits for our go: it joins its cgroup first, so that
        // everything it runs, and every process it forks, counts against the
        // limits.
        let program = command.program_name();
        let exit = cgroup::start(cgroup, child, parent, &program, &narrator, || {
            narrator.say(format_args!(
                "parent moved the child (host PID {child}) into the cgroup and releases it"
            ));
            Ok(())
        })?;
        cgroup::report(cgroup, resources, exit)?;
        Ok(exit)
    })
}
// ANCHOR_END: run
