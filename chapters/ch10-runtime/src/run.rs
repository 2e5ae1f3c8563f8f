//! The recipe of chapter 10: chapter 9's container, created on disk first,
//! then started by a monitor that outlives `minibox run`. The other
//! commands are in [`crate::commands`].
//!
//! What moves where, compared with chapter 9:
//!
//! | step | chapter 9 | chapter 10 |
//! |---|---|---|
//! | image, command, ports bound, bridge | `minibox run` | `minibox run` |
//! | record and snapshot | a directory `run` removes | the store: `containers/ID`, kept |
//! | cgroup, clone, network, release | `minibox run` | the monitor, in `start` |
//! | waiting for the end | `minibox run` | the monitor |
//! | cleanup | `minibox run` | the monitor: `on_exit`, `cleanup` |
//! | output | inherited: the terminal | pipes to the monitor: the log, and `run`'s terminal when attached |

use std::cell::RefCell;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use ch01_fork_exec::exit::{Exit, FailsWith};
use ch01_fork_exec::narrate::Narrator;
use ch01_fork_exec::process::{self, Command};
use ch02_pid_namespace::{namespace, sync};
use ch03_uts_namespace::{id, uts};
use ch04_mount_namespace::mount::{self, Isolation};
use ch05_cgroups::cgroup::{self, Cgroup};
use ch06_rootfs_snapshot::snapshot::Snapshot;
use ch07_image_pull::image;
use ch07_image_pull::progress::Output;
use ch07_image_pull::store::Store as ImageStore;
use ch08_command_override::exec::Process;
use ch08_command_override::{command, config};
use ch09_networking::network::{self, Attached, Mode, Prepared};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use time::OffsetDateTime;

use crate::cli::{Action, RunConfig};
use crate::container::{Paths, Published, Spec};
use crate::lifecycle;
use crate::monitor::{self, ContainerStdio, Ended, Holder};
use crate::names::SplitMix64;
use crate::state::{self, Status, Store};

/// Does what the command line asked for.
pub fn act(action: Action) -> Result<Exit> {
    match action {
        Action::Run(config) => run(&config),
        Action::Command(command) => crate::commands::act(command),
        Action::Earlier(action) => ch09_networking::run::act(&action),
    }
}

// ANCHOR: run
/// `minibox run`: creates the container, has a monitor start it, and either
/// prints its ID (`-d`) or stays attached to it until it ends.
pub fn run(config: &RunConfig) -> Result<Exit> {
    let (run, network) = (&config.container.run, &config.container.network);
    let options = &run.options;
    // The steps are narrated by the monitor, into its log.
    let quiet = Narrator::new(true);

    // Chapters 7 and 8: the image, its config, the command, the process.
    let images = ImageStore::open(&options.root)?;
    let output = Output::narration(options.quiet);
    let reference = &options.image;
    let image = image::find_layers(
        &images,
        reference,
        options.pull,
        &options.platform,
        &quiet,
        output,
    )?;
    let defaults = config::load(&images, &image.record)?;
    let words = command::effective(&defaults, run.entrypoint.as_deref(), &run.arguments)?;
    let command = Command::new(&words)?;
    let id = id::new_id()?;
    let hostname = network::hostname(network.mode, options.hostname.as_deref(), &id)?;
    let (user, workdir) = (run.user.as_deref(), run.workdir.as_deref());
    let process = Process::new(command, &defaults, &run.env, user, workdir, &hostname);

    // Chapter 9: ports bound, bridge ready, before anything of the container exists.
    let prepared = network::prepare(network, &options.root)?;

    // New: the container on disk, with its snapshot, under its name.
    let store = Store::new(&options.root, &state::run_dir());
    let spec = Spec {
        image: config.image.clone(),
        image_id: image.record.config.clone(),
        command: words
            .iter()
            .map(|w| w.to_string_lossy().into_owned())
            .collect(),
        hostname: hostname.clone(),
        network: mode_name(network.mode).to_string(),
        exposed: defaults.exposed_ports.keys().cloned().collect(),
        published: published(&prepared)?,
        auto_remove: config.auto_remove,
        stop_signal: defaults.stop_signal.clone(),
        snapshotter: options.snapshot.snapshotter.name().to_string(),
        env: process.env.clone(),
        user: process.user.clone(),
        workdir: process.workdir.display().to_string(),
        cgroup_parent: options.resources.parent.clone(),
    };
    let snapshotter = options.snapshot.snapshotter;
    let mut rng = SplitMix64::from_urandom()?;
    store.create_with(&id, config.name.as_deref(), spec, &mut rng, |dir| {
        Snapshot::prepare_in(dir, &image.layers, snapshotter).map(drop)
    })?;
    let snapshot = Snapshot::open(&options.root, &id)?;

    // New: the monitor starts it, and stays as its parent.
    let paths = Paths::of(&store, &id);
    let mut monitor_options = monitor::Options::new(&paths.log);
    monitor_options.monitor_log = Some(paths.monitor_log.clone());
    monitor_options.interactive = config.interactive;
    monitor_options.keep_fds = prepared.descriptors();
    let container = Container {
        store: &store,
        id: &id,
        hostname: &hostname,
        snapshot: &snapshot,
        process: &process,
        resources: &options.resources,
        namespaces: mount::NAMESPACES | network.mode.namespaces(),
        auto_remove: config.auto_remove,
        running: RefCell::new(None),
    };
    let start = |stdio| container.start(stdio, prepared);
    let on_exit = |ended: &Ended| container.record_end(ended);
    let cleanup = || container.clean_up();
    let started = if config.detach {
        monitor::spawn_detached(monitor_options, start, on_exit, cleanup).map(|s| (s, None))
    } else {
        monitor::spawn_attached(monitor_options, start, on_exit, cleanup).map(|(s, c)| (s, Some(c)))
    };
    let (started, session) = match started {
        Ok(started) => started,
        Err(error) => {
            // It never ran: nothing of it stays, as with a bad flag.
            let _ = store.remove(&id);
            return Err(error);
        }
    };
    let Some(session) = session else {
        ch01_fork_exec::narrate::print(&id)?;
        return Ok(Exit::Code(0));
    };

    // Attached: the terminal's signals go to the container, its output here.
    let container_process = Holder::of(started.container.as_raw())?
        .map(|holder| lifecycle::Process::open(&holder))
        .transpose()?
        .flatten();
    let _proxying = lifecycle::proxy_signals(started.monitor, container_process)?;
    let stdin = io::stdin();
    let stdin = config.interactive.then(|| stdin.as_fd());
    let (mut stdout, mut stderr) = (io::stdout(), io::stderr());
    match session.pump(stdin, &mut stdout, &mut stderr)? {
        Some(ended) => Ok(ended.exit),
        None => Err(FailsWith {
            status: 125,
            error: anyhow!(
                "the monitor of container {} went away without its exit status",
                id::short(&id)
            ),
        }
        .into()),
    }
}
// ANCHOR_END: run

/// The published ports as they were bound (the kernel chose the port when
/// `-p` gave none).
fn published(prepared: &Prepared) -> Result<Vec<Published>> {
    Ok(prepared
        .published()?
        .into_iter()
        .map(|(mapping, bound)| Published {
            container_port: mapping.container_port,
            udp: mapping.protocol.to_string() == "udp",
            host_ip: bound.ip(),
            host_port: bound.port(),
        })
        .collect())
}

/// One container, as the monitor's three closures share it.
struct Container<'a> {
    store: &'a Store,
    id: &'a str,
    hostname: &'a str,
    snapshot: &'a Snapshot,
    process: &'a Process,
    resources: &'a cgroup::Resources,
    namespaces: nix::sched::CloneFlags,
    auto_remove: bool,
    /// What `start` made and `clean_up` takes apart.
    running: RefCell<Option<Running>>,
}

/// A started container's cgroup and network.
struct Running {
    cgroup: Box<dyn Cgroup>,
    network: Attached,
}

impl Container<'_> {
    // ANCHOR: start
    /// In the monitor: chapter 9's start, up to the container's exec, with
    /// the monitor's pipes as its stdio. Returns its PID once it runs.
    fn start(&self, stdio: ContainerStdio, prepared: Prepared) -> Result<Pid> {
        let narrator = Narrator::new(false); // into the monitor's log
        let (snapshot, process, hostname) = (self.snapshot, self.process, self.hostname);
        let rootfs = snapshot.rootfs();
        let resources = self.resources;
        let cgroup = cgroup::create(
            Path::new(cgroup::ROOT),
            &resources.parent,
            self.id,
            &resources.limits,
        )?;
        let namespaces = self.namespaces;
        let (mut parent, child_end) = sync::channel()?;
        namespace::say_clone(&narrator, namespaces);
        let child = namespace::clone_child(namespaces, || {
            let setup = || {
                stdio.install()?; // new: the monitor's pipes as 0, 1, 2
                uts::set_hostname(hostname)?;
                mount::make_private()?;
                snapshot.mount()?;
                network::mount_etc_files(&snapshot.dir, &rootfs)?;
                mount::enter_root(&rootfs, Isolation::PivotRoot)?;
                process.enter()
            };
            child_end.start(setup, |entered| process.exec(&entered))
        });
        let child = match child {
            Ok(child) => child,
            Err(error) => {
                let _ = cgroup.destroy();
                return Err(error);
            }
        };
        drop(child_end);
        // While the child waits: its cgroup, its network, its state.
        let joined = cgroup
            .join(child)
            .and_then(|()| prepared.attach(child, self.id, hostname, &snapshot.dir))
            .and_then(|network| {
                self.record_start(child, &*cgroup, &network)?;
                Ok(network)
            });
        let network = match joined {
            Ok(network) => network,
            Err(error) => {
                drop(parent); // the child reads end-of-file and gives up
                let _ = process::wait_for(child);
                let _ = cgroup.destroy();
                return Err(error);
            }
        };
        let program = process.command.program_name();
        let exec = parent
            .release()
            .and_then(|()| parent.wait_for_exec(&program));
        if let Err(error) = exec {
            let _ = process::wait_for(child);
            let _ = network.detach();
            let _ = cgroup.destroy();
            return Err(error);
        }
        narrator.say(format_args!(
            "container {} runs as host PID {child}",
            id::short(self.id)
        ));
        self.running.replace(Some(Running { cgroup, network }));
        Ok(child)
    }
    // ANCHOR_END: start

    /// Records the container as running: its process with its start time
    /// (read now, while it waits: a container that exits at once would be
    /// a zombie by the time anyone else looked), its monitor, its cgroup.
    fn record_start(&self, child: Pid, cgroup: &dyn Cgroup, network: &Attached) -> Result<()> {
        let process = Holder::of(child.as_raw())?
            .context("the container's process ended before it started")?;
        let monitor = Holder::current()?;
        self.store.update(self.id, |state| {
            state.status = Status::Running;
            state.process = Some(process);
            state.monitor = Some(monitor);
            state.started_at = Some(OffsetDateTime::now_utc());
            state.cgroups = cgroup.paths();
            state.ip_address = network.address();
            state.error.clear();
            Ok(())
        })
    }

    // ANCHOR: end
    /// In the monitor, once the container's process has ended and its last
    /// output is in the log: its exit code and time, and whether the OOM
    /// killer ended it.
    fn record_end(&self, ended: &Ended) -> Result<()> {
        let oom_killed = ended.exit == Exit::Signal(Signal::SIGKILL)
            && self
                .running
                .borrow()
                .as_ref()
                .is_some_and(|running| running.cgroup.oom_kills().unwrap_or(0) > 0);
        self.store.update(self.id, |state| {
            state.status = Status::Exited;
            state.exit_code = i32::from(ended.status());
            state.finished_at = Some(ended.finished_at);
            state.oom_killed = oom_killed;
            state.process = None;
            state.monitor = None;
            state.cgroups.clear();
            state.ip_address = None;
            Ok(())
        })
    }

    /// Then: the network and the cgroup taken apart (any process the
    /// container left is killed with it), and with `--rm` the container
    /// itself removed. Every step runs; the first failure is reported.
    fn clean_up(&self) -> Result<()> {
        let mut results = Vec::new();
        if let Some(Running { cgroup, network }) = self.running.take() {
            results.push(network.detach());
            results.push(cgroup.destroy());
        }
        if self.auto_remove {
            results.push(self.store.remove(self.id).map(drop));
        }
        results.into_iter().collect()
    }
    // ANCHOR_END: end
}

/// Docker's name for a network mode.
fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Bridge => "bridge",
        Mode::None => "none",
        Mode::Host => "host",
    }
}
