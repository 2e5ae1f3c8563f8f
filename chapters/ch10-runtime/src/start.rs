//! Starting a container that exists on disk: its record read back
//! ([`Launch`]), its ports bound, and a monitor spawned that starts it and
//! stays as its parent ([`crate::monitor`]). `run` creates a container and
//! starts it; `start` and `restart` start one again, with the same writable
//! layer, as Docker does.
//!
//! Inside the monitor, the start is chapter 9's, up to the container's
//! exec: the cgroup, the clone, the child's setup (now with the monitor's
//! pipes or a pty as its stdio, and the volumes), the network, the release.
//! Two things are new: the child joins its cgroup itself, and it mounts its
//! root while the monitor attaches the network, instead of after. Then the
//! monitor waits, records the end, and cleans up.

use std::cell::RefCell;
use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use ch01_fork_exec::exit::{Exit, FailsWith, StartError};
use ch01_fork_exec::narrate::Narrator;
use ch01_fork_exec::process::{self, Command};
use ch02_pid_namespace::sync::{ChildEnd, ParentEnd};
use ch02_pid_namespace::{namespace, sync};
use ch03_uts_namespace::{id, uts};
use ch04_mount_namespace::mount::{self, Isolation};
use ch05_cgroups::cgroup::{Cgroup, Resources};
use ch06_rootfs_snapshot::snapshot::Snapshot;
use ch08_command_override::exec::{self, Process};
use ch09_networking::network::{self, NetworkConfig};
use ch09_networking::publish::Protocol;
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use time::OffsetDateTime;

use crate::attach::{self, Attach, Outcome};
use crate::cli::InitArgs;
use crate::container::{Paths, Published, Spec};
use crate::hardening::{self, Confinement, UserNamespace};
use crate::init;
use crate::lifecycle;
use crate::monitor::{self, ContainerStdio, Ended, Holder};
use crate::privileges::{self, AttachedNetwork, PreparedNetwork};
use crate::restart;
use crate::state::{Record, Status, Store};
use crate::terminal;
use crate::volumes::{self, Tmpfs, Volumes};

/// What a start needs besides the record's plain fields: the flags it keeps
/// as typed, read again by the same parsers as on the command line.
pub struct Launch {
    /// The container's process: its command, environment, user, directory.
    pub process: Process,
    /// Its network (chapter 9).
    pub network: NetworkConfig,
    /// Its cgroup's limits and parent (chapter 5).
    pub resources: Resources,
    /// Its `--tmpfs` mounts.
    pub tmpfs: Vec<Tmpfs>,
    /// What a later chapter takes away from it ([`crate::hardening`]).
    pub confinement: Box<dyn Confinement>,
}

impl Launch {
    /// Reads `spec`'s flags again.
    pub fn of(spec: &Spec) -> Result<Launch> {
        let words: Vec<OsString> = spec.command.iter().map(OsString::from).collect();
        Ok(Launch {
            process: Process {
                command: Command::new(&words)?,
                env: spec.env.clone(),
                user: spec.user.clone(),
                workdir: spec.workdir.clone().into(),
            },
            network: spec.flags.network()?,
            resources: spec.flags.resources()?,
            tmpfs: spec.flags.tmpfs()?,
            confinement: hardening::confinement(&spec.flags.extra)?,
        })
    }
}

/// How the caller of [`launch`] follows the container.
pub enum Follow<'a> {
    /// Not at all: `run -d`, `start`.
    Detached,
    /// Attached to its output (and input, with `-i`) until it ends or the
    /// user detaches: `run`, `start -a`.
    Attached(Attach<'a>),
}

// ANCHOR: launch
/// Starts container `record` (with its snapshot under `root`): binds its
/// ports, then spawns its monitor, which starts it. Returns once it runs
/// (detached: `None`), or once it has ended or the user has detached
/// (attached: its exit status, 0 for a detach).
pub fn launch(
    store: &Store,
    root: &Path,
    record: &Record<Spec>,
    follow: Follow,
) -> Result<Option<Exit>> {
    let spec = &record.config;
    let launch = Launch::of(spec)?;
    // Chapter 9's, or a later chapter's (`privileges`): ports bound first.
    let prepared = privileges::privileges().network(&launch.network, root)?;
    let snapshot = Snapshot::open(root, &record.id)?;
    let paths = Paths::of(store, &record.id);
    let mut options = monitor::Options::new(&paths.log);
    options.monitor_log = Some(paths.monitor_log);
    options.interactive = spec.interactive;
    options.console = spec.tty; // the container makes its pty
    options.attach_socket = attach::socket_path(paths.attach_socket);
    options.keep_fds = prepared.descriptors();
    let container = Container {
        store,
        root,
        id: &record.id,
        spec,
        launch: &launch,
        snapshot: &snapshot,
        window: attach::window_size(spec.tty && matches!(follow, Follow::Attached(_))),
        running: RefCell::new(None),
    };
    let detach = matches!(follow, Follow::Detached);
    let (started, session) = container.spawn(options, prepared, detach)?;
    match (follow, session) {
        (Follow::Attached(how), Some(session)) => {
            attached(session, started, how, &record.id).map(Some)
        }
        _ => Ok(None),
    }
}
// ANCHOR_END: launch

/// An attached start: the terminal's signals go to the container, its
/// output comes here, and minibox exits with its status.
fn attached(
    session: monitor::Session,
    started: monitor::Started,
    how: Attach,
    id: &str,
) -> Result<Exit> {
    let container = Holder::of(started.container.as_raw())?
        .map(|holder| lifecycle::Process::open(&holder))
        .transpose()?
        .flatten();
    let _proxying = lifecycle::proxy_signals(started.monitor, container)?;
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
    let confinement = hardening::confinement(&args.confine)?;
    confinement.in_root()?;
    let entered = process.enter_with(confinement.as_ref())?;
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

/// The published ports as they were bound (the kernel chose the port when
/// `-p` gave none).
fn published(prepared: &dyn PreparedNetwork) -> Result<Vec<Published>> {
    Ok(prepared
        .published()?
        .into_iter()
        .map(|(mapping, bound)| Published {
            container_port: mapping.container_port,
            udp: mapping.protocol == Protocol::Udp,
            host_ip: bound.ip(),
            host_port: bound.port(),
        })
        .collect())
}

/// One container, as the monitor's three closures share it.
struct Container<'a> {
    store: &'a Store,
    /// `MINIBOX_ROOT`, where its volumes are.
    root: &'a Path,
    id: &'a str,
    /// What it was created with.
    spec: &'a Spec,
    /// What its start needs, read again from `spec`.
    launch: &'a Launch,
    snapshot: &'a Snapshot,
    /// With `-t`: the user's window size, the container's terminal's first.
    window: Option<terminal::WindowSize>,
    /// What `start` made and `clean_up` takes apart.
    running: RefCell<Option<Running>>,
}

/// A start in a user namespace of the container's own (chapter 13's
/// `--userns auto`), what it has besides, in the child: its root
/// filesystem, mounted for it, and a second pipe, on which it waits until
/// the monitor has written its maps.
struct OwnUserNamespace<'a> {
    userns: &'a dyn UserNamespace,
    root: OwnedFd,
    mapped: ChildEnd,
}

/// A started container's cgroup and network.
struct Running {
    cgroup: Box<dyn Cgroup>,
    network: Box<dyn AttachedNetwork>,
}

impl Container<'_> {
    /// Starts the monitor, which starts the container with [`Container::start`]
    /// and ends it with [`Container::record_end`] and [`Container::clean_up`];
    /// with `detach`, no client attached.
    fn spawn(
        &self,
        options: monitor::Options,
        prepared: Box<dyn PreparedNetwork>,
        detach: bool,
    ) -> Result<(monitor::Started, Option<monitor::Session>)> {
        let start = |stdio| self.start(stdio, prepared);
        let on_exit = |ended: &Ended| self.record_end(ended);
        let cleanup = || self.clean_up();
        if detach {
            monitor::spawn_detached(options, start, on_exit, cleanup).map(|s| (s, None))
        } else {
            monitor::spawn_attached(options, start, on_exit, cleanup).map(|(s, c)| (s, Some(c)))
        }
    }

    // ANCHOR: start
    /// In the monitor: chapter 9's start, up to the container's exec, with
    /// the monitor's pipes as its stdio. Returns its PID once it runs.
    fn start(&self, stdio: ContainerStdio, prepared: Box<dyn PreparedNetwork>) -> Result<Pid> {
        let narrator = Narrator::new(false); // into the monitor's log
        let published = published(&*prepared)?;
        let (snapshot, process) = (self.snapshot, &self.launch.process);
        let (hostname, resources) = (&self.spec.hostname, &self.launch.resources);
        // Chapter 5's, or a later chapter's (`privileges`).
        let cgroup = privileges::privileges().cgroup(resources, self.id)?;
        // New in chapter 12: its device rules (none before).
        let confine = self.launch.confinement.on_cgroup(&*cgroup);
        confine.inspect_err(|_| drop(cgroup.destroy()))?;
        // New in chapter 13: maybe a user namespace of its own.
        let own = self.own_user_namespace();
        let (own, mapped) = own.inspect_err(|_| drop(cgroup.destroy()))?;
        let mut namespaces = mount::NAMESPACES | self.launch.network.mode.namespaces();
        if own.is_some() {
            namespaces |= CloneFlags::CLONE_NEWUSER;
        }
        let (mut parent, child_end) = sync::channel()?;
        namespace::say_clone(&narrator, namespaces);
        let clone = || self.child(&stdio, &child_end, &*cgroup, own.as_ref());
        let child = namespace::clone_child(namespaces, clone);
        let child = child.inspect_err(|_| drop(cgroup.destroy()))?;
        drop((child_end, own)); // the child's, and its copy of the root
        // While the child joins its cgroup and mounts its root (new, see
        // `child`), then waits: its maps (chapter 13), its network, its state.
        let joined = self
            .map(child, &*cgroup, mapped)
            .and_then(|()| prepared.attach(child, self.id, hostname, &snapshot.dir))
            .and_then(|network| {
                self.record_start(child, &*cgroup, &*network, published)?;
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
            let _ = self.record_failed_start(&error);
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

    // ANCHOR: own_user_namespace
    /// Chapter 13's `--userns auto`, if the container has it: in the
    /// monitor, before the clone, its root filesystem mounted for its user
    /// namespace, and the pipe its child waits on until it is mapped.
    fn own_user_namespace(&self) -> Result<(Option<OwnUserNamespace<'_>>, Option<ParentEnd>)> {
        let Some(userns) = self.launch.confinement.user_namespace() else {
            return Ok((None, None));
        };
        let root = userns.prepare(self.snapshot, &self.spec.mounts)?;
        let (parent, mapped) = sync::channel()?;
        Ok((
            Some(OwnUserNamespace {
                userns,
                root,
                mapped,
            }),
            Some(parent),
        ))
    }

    /// Then, once `child` exists and waits: its maps, and its cgroup, which
    /// the monitor joins it to (its own writes to the host's cgroup files
    /// would be refused), then it goes on. Without a user namespace of its
    /// own, nothing: the child joins its cgroup itself.
    fn map(&self, child: Pid, cgroup: &dyn Cgroup, mapped: Option<ParentEnd>) -> Result<()> {
        let (Some(userns), Some(mut mapped)) = (self.launch.confinement.user_namespace(), mapped)
        else {
            return Ok(());
        };
        userns.write_maps(child)?;
        cgroup.join(child)?;
        mapped.release()
    }
    // ANCHOR_END: own_user_namespace

    // ANCHOR: child
    /// In the container's first process: chapter 9's setup with the
    /// monitor's stdio, the volumes and the console, then the command; with
    /// `--init`, the init, which enters the root itself. New: what needs
    /// nothing from the monitor comes before the release, so that it overlaps
    /// the monitor's part (the network, the state), and the cgroup is joined
    /// from inside.
    fn child(
        &self,
        stdio: &ContainerStdio,
        child_end: &ChildEnd,
        cgroup: &dyn Cgroup,
        own: Option<&OwnUserNamespace>,
    ) -> ! {
        let (snapshot, process) = (self.snapshot, &self.launch.process);
        let rootfs = snapshot.rootfs();
        let early = || {
            match own {
                // Chapter 13: mapped, and moved into its cgroup, by the monitor.
                Some(own) => own
                    .mapped
                    .wait_for_release()
                    .and_then(|()| own.userns.become_root())?,
                // A process with one thread moves itself, which spares the
                // kernel a global lock that costs 5 to 20 ms (`join_self`).
                None => cgroup.join_self()?,
            }
            stdio.install()?; // new: the monitor's pipes as 0, 1, 2
            uts::set_hostname(&self.spec.hostname)?;
            mount::make_private()?;
            match own {
                Some(own) => own.userns.mount_root(&own.root, &rootfs)?, // chapter 13
                None => snapshot.mount()?,
            }
            self.mount_volumes(&rootfs) // new: -v and --tmpfs
        };
        // After the release, the files the monitor wrote while attaching
        // the network; after the volumes, as Docker: a volume at /etc must
        // not hide the container's hostname, hosts and resolv.conf, nor be
        // seeded with this container's copies of them.
        let etc_files = || network::mount_etc_files(&snapshot.dir, &rootfs);
        if self.spec.init {
            let exec = |()| child_end.setup_failed(&self.exec_init(&rootfs, stdio));
            child_end.start_early(early, etc_files, exec)
        }
        let setup = || {
            etc_files()?;
            mount::enter_root(&rootfs, Isolation::PivotRoot)?;
            if let Some(console) = &stdio.console {
                // New: the pty from the container's own devpts.
                terminal::open_console(console.as_fd(), self.window.as_ref())?;
            }
            let confinement = &self.launch.confinement; // chapter 12's
            confinement.in_root()?;
            process.enter_with(confinement.as_ref())
        };
        child_end.start_early(early, setup, |entered| process.exec(&entered))
    }
    // ANCHOR_END: child

    // ANCHOR: exec_init
    /// `--init`: executes a sealed copy of minibox in its init mode
    /// ([`init`]), still in the host's root, where its dynamic loader is,
    /// with the container's environment. Returns only why it could not.
    fn exec_init(&self, rootfs: &Path, stdio: &ContainerStdio) -> anyhow::Error {
        let process = &self.launch.process;
        let mut args: Vec<OsString> = ["minibox", "init", "--rootfs"].map(OsString::from).into();
        args.push(rootfs.into());
        args.extend([
            "--user".into(),
            process.user.clone().into(),
            "--workdir".into(),
        ]);
        args.push(process.workdir.clone().into());
        for flag in &self.spec.flags.extra {
            args.push(format!("--confine={flag}").into()); // chapter 12's
        }
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
        for mount in &self.spec.mounts {
            volumes::mount_volume(rootfs, mount)?;
        }
        for tmpfs in &self.launch.tmpfs {
            volumes::mount_tmpfs(rootfs, tmpfs)?;
        }
        Ok(())
    }

    // ANCHOR: record_start
    /// Records the container as running: its process with its start time
    /// (read now, while it waits: a container that exits at once would be
    /// a zombie by the time anyone else looked), its monitor, its cgroup.
    fn record_start(
        &self,
        child: Pid,
        cgroup: &dyn Cgroup,
        network: &dyn AttachedNetwork,
        published: Vec<Published>,
    ) -> Result<()> {
        let process = Holder::of(child.as_raw())?
            .context("the container's process ended before it started")?;
        let monitor = Holder::current()?;
        self.store.update(self.id, |state| {
            state.status = Status::Running;
            state.process = Some(process);
            state.monitor = Some(monitor);
            state.started_at = Some(OffsetDateTime::now_utc());
            state.cgroups = cgroup.paths();
            state.cgroups_created = cgroup.created();
            state.ip_address = network.address();
            state.published = published;
            state.error.clear();
            Ok(())
        })
    }
    // ANCHOR_END: record_start

    // ANCHOR: record_failed_start
    /// A start that failed after [`Container::record_start`]: the container
    /// is back where it was (created, or exited), with Docker's `Error` and
    /// the status a `run` would have exited with.
    fn record_failed_start(&self, error: &anyhow::Error) -> Result<()> {
        let status = error
            .downcast_ref::<StartError>()
            .map_or(125, StartError::status);
        self.store.update(self.id, |state| {
            state.status = if state.finished_at.is_some() {
                Status::Exited
            } else {
                Status::Created
            };
            state.exit_code = i32::from(status);
            state.error = format!("{error:#}");
            state.process = None;
            state.monitor = None;
            state.cgroups.clear();
            state.cgroups_created.clear();
            state.ip_address = None;
            state.published.clear();
            Ok(())
        })
    }
    // ANCHOR_END: record_failed_start

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
        let policy = self.spec.restart;
        self.store.update(self.id, |state| {
            state.exit_code = i32::from(ended.status());
            // New: its --restart policy may want it back.
            let again =
                policy.restarts(state.exit_code, state.restart_count, state.manually_stopped);
            state.status = if again {
                Status::Restarting
            } else {
                Status::Exited
            };
            state.finished_at = Some(ended.finished_at);
            state.oom_killed = oom_killed;
            state.process = None;
            // The monitor stays named: it cleans up next, and a `start` or
            // `wait` meanwhile waits for it (`commands::stop::open`).
            state.cgroups.clear();
            state.cgroups_created.clear();
            state.ip_address = None;
            state.published.clear();
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
        if self
            .store
            .state(self.id)
            .is_ok_and(|s| s.status == Status::Restarting)
        {
            let count = self.store.update(self.id, |state| {
                state.restart_count += 1;
                Ok(state.restart_count)
            });
            results.push(count.and_then(|count| restart::schedule(self.id, restart::delay(count))));
        }
        if self.spec.auto_remove {
            results.push(self.store.remove(self.id).map(drop));
            // As Docker's `--rm`: its anonymous volumes too.
            Volumes::new(self.root).forget_anonymous(&self.spec.mounts);
        }
        results.into_iter().collect()
    }
    // ANCHOR_END: end
}
