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
use std::ffi::{CString, OsString};
use std::os::fd::AsFd;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use ch01_fork_exec::exit::{Exit, FailsWith};
use ch01_fork_exec::narrate::Narrator;
use ch01_fork_exec::process::{self, Command};
use ch02_pid_namespace::sync::ChildEnd;
use ch02_pid_namespace::{namespace, sync};
use ch03_uts_namespace::{id, uts};
use ch04_mount_namespace::mount::{self, Isolation};
use ch05_cgroups::cgroup::{self, Cgroup};
use ch06_rootfs_snapshot::snapshot::Snapshot;
use ch07_image_pull::image;
use ch07_image_pull::progress::Output;
use ch07_image_pull::store::Store as ImageStore;
use ch08_command_override::exec::{self, Process};
use ch08_command_override::{command, config};
use ch09_networking::network::{self, Attached, Mode, Prepared};
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use time::OffsetDateTime;

use crate::attach::{self, Attach, Outcome};
use crate::cli::{Action, InitArgs, RunConfig};
use crate::container::{Paths, Published, Spec};
use crate::init;
use crate::lifecycle;
use crate::monitor::{self, ContainerStdio, Ended, Holder};
use crate::names::SplitMix64;
use crate::state::{self, Status, Store};
use crate::terminal;
use crate::volumes::{self, Volumes};

/// Does what the command line asked for.
pub fn act(action: Action) -> Result<Exit> {
    match action {
        Action::Run(config) => run(&config),
        Action::Init(args) => init(&args),
        Action::Command(command) => crate::commands::act(command),
        Action::Earlier(action) => ch09_networking::run::act(&action),
    }
}

// ANCHOR: run
/// `minibox run`: creates the container, has a monitor start it, and either
/// prints its ID (`-d`) or stays attached to it until it ends.
pub fn run(config: &RunConfig) -> Result<Exit> {
    let options = &config.container.run.options;
    let network = &config.container.network;

    // Chapters 7 and 8: the image, its config, the command, the process.
    let (image, defaults) = find_image(options)?;
    let id = id::new_id()?;
    let (process, hostname) = process(config, &defaults, &id)?;

    // Chapter 9: ports bound, bridge ready, before anything of the container exists.
    let prepared = network::prepare(network, &options.root)?;

    // New: its volumes, then the container on disk, with its snapshot, under its name.
    let store = Store::new(&options.root, &state::run_dir());
    let volumes = Volumes::new(&options.root);
    let mounts = volumes.prepare_all(&config.volumes)?;
    let image_id = &image.record.config;
    let spec = spec(
        config, image_id, &defaults, &process, &hostname, &prepared, &mounts,
    )?;
    let snapshotter = options.snapshot.snapshotter;
    let mut rng = SplitMix64::from_urandom()?;
    store
        .create_with(&id, config.name.as_deref(), spec, &mut rng, |dir| {
            Snapshot::prepare_in(dir, &image.layers, snapshotter).map(drop)
        })
        .inspect_err(|_| volumes.forget_anonymous(&mounts))?;
    let snapshot = Snapshot::open(&options.root, &id)?;

    // New: the monitor starts it, and stays as its parent.
    let paths = Paths::of(&store, &id);
    let mut monitor_options = monitor::Options::new(&paths.log);
    monitor_options.monitor_log = Some(paths.monitor_log);
    monitor_options.interactive = config.interactive;
    monitor_options.console = config.tty; // new: the container makes its pty
    monitor_options.attach_socket = attach::socket_path(paths.attach_socket);
    monitor_options.keep_fds = prepared.descriptors();
    let container = Container {
        store: &store,
        id: &id,
        hostname: &hostname,
        snapshot: &snapshot,
        process: &process,
        config,
        mounts: &mounts,
        window: attach::window_size(config.tty),
        running: RefCell::new(None),
    };
    let (started, session) = container.spawn(monitor_options, prepared, config.detach)?;
    let Some(session) = session else {
        ch01_fork_exec::narrate::print(&id)?;
        return Ok(Exit::Code(0));
    };

    attached(session, started, config, &id)
}
// ANCHOR_END: run

// ANCHOR: init
/// `minibox init`, PID 1 of a container started with `--init`, from a sealed
/// copy of minibox: enters the container's root, makes its terminal, becomes
/// the user, then runs the command as its child, passing signals on and
/// reaping every orphan ([`init::run_init`]), and exits with its status.
/// What fails here is the container's own failure, on its stderr, as
/// `docker run --init` reports tini's.
pub fn init(args: &InitArgs) -> Result<Exit> {
    mount::enter_root(&args.rootfs, Isolation::PivotRoot)?;
    if let Some(fd) = args.console_fd {
        // SAFETY: the number is the console socket's, which `exec_init` kept
        // open across the exec for this; nothing else here owns it.
        let console = unsafe { OwnedFd::from_raw_fd(fd) };
        terminal::open_console(console.as_fd(), None)?;
    }
    let process = Process {
        command: Command::new(&args.command)?,
        env: std::env::vars()
            .map(|(key, value)| format!("{key}={value}"))
            .collect(),
        user: args.user.clone(),
        workdir: args.workdir.clone(),
    };
    let entered = process.enter()?;
    init::run_init(|| process.exec(&entered), init::ForwardTo::Child)
}
// ANCHOR_END: init

/// Arguments as C strings, for an exec.
fn c_strings(words: &[OsString]) -> Result<Vec<CString>> {
    words
        .iter()
        .map(|w| CString::new(w.as_encoded_bytes()).context("an argument with a NUL byte"))
        .collect()
}

/// Chapter 7's image, pulled if needed, and chapter 8's reading of its config.
fn find_image(
    options: &ch07_image_pull::cli::Options,
) -> Result<(image::Found, config::RunConfig)> {
    let images = ImageStore::open(&options.root)?;
    let output = Output::narration(options.quiet);
    let quiet = Narrator::new(true); // the monitor narrates, into its log
    let (reference, policy, platform) = (&options.image, options.pull, &options.platform);
    let image = image::find_layers(&images, reference, policy, platform, &quiet, output)?;
    let defaults = config::load(&images, &image.record)?;
    Ok((image, defaults))
}

/// Chapter 8's process, with chapter 9's host name, and with `-t` Docker's
/// `TERM`.
fn process(
    config: &RunConfig,
    defaults: &config::RunConfig,
    id: &str,
) -> Result<(Process, String)> {
    let (run, network) = (&config.container.run, &config.container.network);
    let words = command::effective(defaults, run.entrypoint.as_deref(), &run.arguments)?;
    let command = Command::new(&words)?;
    let hostname = network::hostname(network.mode, run.options.hostname.as_deref(), id)?;
    let (user, workdir) = (run.user.as_deref(), run.workdir.as_deref());
    let mut process = Process::new(command, defaults, &run.env, user, workdir, &hostname);
    if config.tty {
        attach::term_variable(&mut process.env);
    }
    Ok((process, hostname))
}

/// The foreground `run`: the terminal's signals go to the container, its
/// output comes here, and minibox exits with its status.
fn attached(
    session: monitor::Session,
    started: monitor::Started,
    config: &RunConfig,
    id: &str,
) -> Result<Exit> {
    let container = Holder::of(started.container.as_raw())?
        .map(|holder| lifecycle::Process::open(&holder))
        .transpose()?
        .flatten();
    let _proxying = lifecycle::proxy_signals(started.monitor, container)?;
    let how = Attach {
        interactive: config.interactive,
        tty: config.tty,
        keys: &config.detach_keys,
    };
    match attach::attach(session, how)? {
        Outcome::Ended(ended) => Ok(ended.exit),
        Outcome::Detached => Ok(Exit::Code(0)),
        Outcome::MonitorGone => Err(FailsWith {
            status: 125,
            error: anyhow!(
                "the monitor of container {} went away without its exit status",
                id::short(id)
            ),
        }
        .into()),
    }
}

/// The record's part of what `run` was asked: what `ps`, `inspect`, `stop`
/// and `exec` need to know later.
fn spec(
    config: &RunConfig,
    image_id: &str,
    defaults: &config::RunConfig,
    process: &Process,
    hostname: &str,
    prepared: &Prepared,
    mounts: &[volumes::Mount],
) -> Result<Spec> {
    let network = &config.container.network;
    Ok(Spec {
        image: config.image.clone(),
        image_id: image_id.to_string(),
        command: process
            .command
            .argv()
            .iter()
            .map(|word| word.to_string_lossy().into_owned())
            .collect(),
        hostname: hostname.to_string(),
        network: mode_name(network.mode).to_string(),
        exposed: defaults.exposed_ports.keys().cloned().collect(),
        published: published(prepared)?,
        auto_remove: config.auto_remove,
        stop_signal: defaults.stop_signal.clone(),
        snapshotter: config
            .container
            .run
            .options
            .snapshot
            .snapshotter
            .name()
            .to_string(),
        env: process.env.clone(),
        user: process.user.clone(),
        workdir: process.workdir.display().to_string(),
        interactive: config.interactive,
        tty: config.tty,
        init: config.init,
        mounts: mounts.to_vec(),
        tmpfs: config.tmpfs.iter().map(|t| t.target.clone()).collect(),
    })
}

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
    /// What `run` was asked: the resources, the namespaces, `--rm`, `--tmpfs`.
    config: &'a RunConfig,
    /// The `-v` mounts, prepared.
    mounts: &'a [volumes::Mount],
    /// With `-t`: the user's window size, the container's terminal's first.
    window: Option<terminal::WindowSize>,
    /// What `start` made and `clean_up` takes apart.
    running: RefCell<Option<Running>>,
}

/// A started container's cgroup and network.
struct Running {
    cgroup: Box<dyn Cgroup>,
    network: Attached,
}

impl Container<'_> {
    /// Starts the monitor, which starts the container with [`Container::start`]
    /// and ends it with [`Container::record_end`] and [`Container::clean_up`];
    /// with `detach`, no client attached. A container that never ran is
    /// removed again: nothing of it stays, as with a bad flag.
    fn spawn(
        &self,
        options: monitor::Options,
        prepared: Prepared,
        detach: bool,
    ) -> Result<(monitor::Started, Option<monitor::Session>)> {
        let start = |stdio| self.start(stdio, prepared);
        let on_exit = |ended: &Ended| self.record_end(ended);
        let cleanup = || self.clean_up();
        let started = if detach {
            monitor::spawn_detached(options, start, on_exit, cleanup).map(|s| (s, None))
        } else {
            monitor::spawn_attached(options, start, on_exit, cleanup).map(|(s, c)| (s, Some(c)))
        };
        if started.is_err() {
            let _ = self.store.remove(self.id);
        }
        started
    }

    // ANCHOR: start
    /// In the monitor: chapter 9's start, up to the container's exec, with
    /// the monitor's pipes as its stdio. Returns its PID once it runs.
    fn start(&self, stdio: ContainerStdio, prepared: Prepared) -> Result<Pid> {
        let narrator = Narrator::new(false); // into the monitor's log
        let (snapshot, process, hostname) = (self.snapshot, self.process, self.hostname);
        let resources = &self.config.container.run.options.resources;
        let cgroup = cgroup::create(
            Path::new(cgroup::ROOT),
            &resources.parent,
            self.id,
            &resources.limits,
        )?;
        let namespaces = mount::NAMESPACES | self.config.container.network.mode.namespaces();
        let (mut parent, child_end) = sync::channel()?;
        namespace::say_clone(&narrator, namespaces);
        let child = namespace::clone_child(namespaces, || self.child(&stdio, &child_end));
        let child = child.inspect_err(|_| drop(cgroup.destroy()))?;
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

    // ANCHOR: child
    /// In the container's first process: chapter 9's setup with the
    /// monitor's stdio, the volumes and the console, then the command; with
    /// `--init`, the init, which enters the root itself.
    fn child(&self, stdio: &ContainerStdio, child_end: &ChildEnd) -> ! {
        let (snapshot, process) = (self.snapshot, self.process);
        let rootfs = snapshot.rootfs();
        let mounted = || {
            stdio.install()?; // new: the monitor's pipes as 0, 1, 2
            uts::set_hostname(self.hostname)?;
            mount::make_private()?;
            snapshot.mount()?;
            network::mount_etc_files(&snapshot.dir, &rootfs)?;
            self.mount_volumes(&rootfs) // new: -v and --tmpfs
        };
        if self.config.init {
            let exec = |()| child_end.setup_failed(&self.exec_init(&rootfs, stdio));
            child_end.start(mounted, exec)
        }
        let setup = || {
            mounted()?;
            mount::enter_root(&rootfs, Isolation::PivotRoot)?;
            if let Some(console) = &stdio.console {
                // New: the pty from the container's own devpts.
                terminal::open_console(console.as_fd(), self.window.as_ref())?;
            }
            process.enter()
        };
        child_end.start(setup, |entered| process.exec(&entered))
    }
    // ANCHOR_END: child

    // ANCHOR: exec_init
    /// `--init`: executes a sealed copy of minibox in its init mode
    /// ([`init`]), still in the host's root, where its dynamic loader is,
    /// with the container's environment. Returns only why it could not.
    fn exec_init(&self, rootfs: &Path, stdio: &ContainerStdio) -> anyhow::Error {
        let process = self.process;
        let mut args: Vec<OsString> = ["minibox", "init", "--rootfs"].map(OsString::from).into();
        args.push(rootfs.into());
        args.extend([
            "--user".into(),
            process.user.clone().into(),
            "--workdir".into(),
        ]);
        args.push(process.workdir.clone().into());
        if let Some(console) = &stdio.console {
            // The console socket must outlive this exec: the init sends the pty.
            if let Err(errno) = fcntl(console, FcntlArg::F_SETFD(FdFlag::empty())) {
                return anyhow!("keeping the console socket open: {errno}");
            }
            args.extend([
                "--console-fd".into(),
                console.as_raw_fd().to_string().into(),
            ]);
        }
        args.push("--".into());
        args.extend(
            process
                .command
                .argv()
                .iter()
                .map(|a| OsString::from(a.to_string_lossy().into_owned())),
        );
        let (args, env) = match (c_strings(&args), exec::c_env(&process.env)) {
            (Ok(args), Ok(env)) => (args, env),
            (Err(error), _) | (_, Err(error)) => return error,
        };
        match init::exec_sealed_self(&args, &env) {
            Ok(never) => match never {},
            Err(error) => error,
        }
    }
    // ANCHOR_END: exec_init

    /// In the child, before `pivot_root`: the `-v` mounts (an empty volume
    /// seeded from the image first) and the `--tmpfs` ones.
    fn mount_volumes(&self, rootfs: &Path) -> Result<()> {
        for mount in self.mounts {
            volumes::mount_volume(rootfs, mount)?;
        }
        for tmpfs in &self.config.tmpfs {
            volumes::mount_tmpfs(rootfs, tmpfs)?;
        }
        Ok(())
    }

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
        if self.config.auto_remove {
            results.push(self.store.remove(self.id).map(drop));
            // As Docker's `--rm`: its anonymous volumes too.
            Volumes::new(&self.config.container.run.options.root).forget_anonymous(self.mounts);
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
