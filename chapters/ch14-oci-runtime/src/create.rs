//! `create`: the container made, its init waiting at the last step before
//! the user's program, and `create` gone.
//!
//! Chapter 10's start ran the user's program as soon as the container was
//! set up. An engine wants a pause there: it must learn the init's PID,
//! put it in a network, run hooks, attach the terminal, and only then let
//! the program run. So the runtime's lifecycle has two steps: `create` makes
//! everything and leaves the init blocked, `start` releases it. Between two
//! *processes*, the release goes through the filesystem: the init opens the
//! **exec FIFO** (`ROOT/ID/exec.fifo`) for writing, which blocks until
//! someone opens it for reading; `start` does, and removes it (chapter 2's
//! FIFO channel). While the FIFO exists, the container is `created`.
//!
//! ```text
//! create ──clone──▶ init
//!   maps, cgroup ─go1─▶ joins namespaces, hostname, mounts, /dev, sysctl
//!   ◀─────── ready1 ─── (report pipe closed)
//!   prestart, createRuntime hooks
//!               ─go2─▶ createContainer hooks, pivot_root, masked paths, console
//!   ◀─────── ready2 ───
//!   state.json, --pid-file; exits          init opens exec.fifo: blocks
//! start: opens exec.fifo ────────────────▶ startContainer hooks, user, caps, seccomp, execve
//! ```
//!
//! `create` exits once the init waits, and the init, an orphan, goes to the
//! nearest *subreaper* up the tree: conmon, or containerd's shim, which set
//! `PR_SET_CHILD_SUBREAPER` precisely to collect its exit status later.

use std::cell::Cell;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use ch02_pid_namespace::namespace;
use ch02_pid_namespace::sync::{self, ChildEnd};
use ch03_uts_namespace::uts;
use ch04_mount_namespace::{dev, mount};
use ch05_cgroups::cgroup::{self, Cgroup};
use ch09_networking::ipam::Holder;
use ch10_runtime::terminal::{self, WindowSize};
use ch12_security::{devices, paths};
use nix::fcntl::OFlag;
use nix::mount::MsFlags;
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

use crate::bundle;
use crate::cli::CreateArgs;
use crate::container::Blueprint;
use crate::hooks;
use crate::state::{EXEC_FIFO, Record, Status, Store};

// ANCHOR: create
/// `create`: makes container `args.id` from its bundle. On any failure,
/// everything made so far is taken apart, and the error is the first cause.
pub fn create(store: &Store, args: &CreateArgs) -> Result<Record> {
    let (bundle, spec) = bundle::load(&args.bundle)?;
    let blueprint = Blueprint::of(&args.id, &bundle, &spec)?;
    if blueprint.process.terminal && args.console_socket.is_none() {
        bail!("cannot allocate tty if runc will detach without setting console socket");
    }
    let dir = store.make(&args.id)?;
    let made = Made::new(dir.clone());
    let result = create_in(store, args, &spec, &blueprint, &dir, &made);
    if result.is_err() {
        made.undo();
    }
    result
}
// ANCHOR_END: create

/// What a failing `create` must take apart: the state directory, the
/// cgroup, the init.
struct Made {
    dir: PathBuf,
    cgroup: Cell<Option<Box<dyn Cgroup>>>,
    init: Cell<Option<Pid>>,
}

impl Made {
    fn new(dir: PathBuf) -> Made {
        Made {
            dir,
            cgroup: Cell::new(None),
            init: Cell::new(None),
        }
    }

    /// Moves the init into the cgroup (the parent does it: from a new user
    /// namespace, the init could not).
    fn join_cgroup(&self, child: Pid) -> Result<()> {
        let cgroup = self.cgroup.take().context("the cgroup")?;
        let joined = cgroup.join(child);
        self.cgroup.set(Some(cgroup));
        joined
    }

    /// Created: nothing to undo.
    fn keep(&self) {
        self.init.take();
        self.cgroup.take();
    }

    fn undo(&self) {
        if let Some(pid) = self.init.take() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        if let Some(cgroup) = self.cgroup.take() {
            let _ = cgroup.destroy();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn create_in(
    store: &Store,
    args: &CreateArgs,
    spec: &Spec,
    blueprint: &Blueprint,
    dir: &Path,
    made: &Made,
) -> Result<Record> {
    std::fs::write(dir.join("config.json"), serde_json::to_vec(spec)?)
        .context("keeping the config")?;
    let (paths, created) = make_cgroup(blueprint, made)?;
    let (fifo, console) = (make_fifo(dir)?, console_of(args, blueprint)?);
    if let Some(pid_namespace) = &blueprint.pid_namespace {
        // setns into a PID namespace moves our next child, not us.
        nix::sched::setns(pid_namespace.as_fd(), nix::sched::CloneFlags::CLONE_NEWPID)
            .context("joining linux.namespaces' pid namespace")?;
    }
    // ANCHOR: clone
    let (mut parent1, child1) = sync::channel()?;
    let (mut parent2, child2) = sync::channel()?;
    let ends = Cell::new(Some((child1, child2)));
    let init = Init {
        blueprint,
        dir,
        fifo: &fifo,
        console: console
            .as_ref()
            .map(|c| c.as_fd().try_clone_to_owned())
            .transpose()?,
        cgroups: &paths,
        preserve_fds: args.preserve_fds,
        no_pivot: args.no_pivot,
        new_keyring: !args.no_new_keyring,
    };
    let child = namespace::clone_child(blueprint.new_namespaces, || match ends.take() {
        Some((first, second)) => init.run(first, second),
        None => 1,
    })?;
    made.init.set(Some(child));
    drop((ends, init)); // our copies of the child's ends: only the child's remain
    if !blueprint.uid_maps.is_empty() {
        write_maps(child, blueprint)?;
    }
    made.join_cgroup(child)?;
    parent1.release()?;
    parent1.wait_for_exec("the container's init")?;
    // ANCHOR_END: clone
    // The namespaces exist, the mounts are made: the runtime's hooks.
    let record = record_of(args, spec, blueprint, child, (paths, created))?;
    let state = serde_json::to_vec(&record.oci_state(Status::Creating))?;
    let hooks = &blueprint.hooks;
    hooks::run("prestart", hooks.prestart(), &state)?;
    hooks::run("createRuntime", hooks.create_runtime(), &state)?;
    store.save(dir, &record)?; // the createContainer hooks read it
    parent2.release()?;
    parent2.wait_for_exec("the container's init")?;
    if let Some(pid_file) = &args.pid_file {
        let pid_file = std::path::absolute(pid_file)?;
        ch07_image_pull::store::write_atomically(&pid_file, child.as_raw().to_string().as_bytes())?;
    }
    made.keep();
    Ok(record)
}

/// What `create` records: the init, its bundle, its cgroup.
fn record_of(
    args: &CreateArgs,
    spec: &Spec,
    blueprint: &Blueprint,
    child: Pid,
    (cgroups, cgroups_created): (Vec<PathBuf>, Vec<PathBuf>),
) -> Result<Record> {
    let init = Holder::of(child.as_raw())?.context("the container's init ended during create")?;
    let annotations = spec.annotations().clone().unwrap_or_default();
    Ok(Record {
        id: args.id.clone(),
        init,
        bundle: blueprint.bundle.clone(),
        rootfs: blueprint.rootfs.clone(),
        created: now_rfc3339(),
        annotations: annotations.into_iter().collect(),
        cgroups,
        cgroups_created,
        owner: nix::unistd::geteuid().as_raw(),
    })
}

/// The exec FIFO (chapter 2's): the init blocks opening it for writing
/// until `start` opens it for reading.
fn make_fifo(dir: &Path) -> Result<PathBuf> {
    let fifo = dir.join(EXEC_FIFO);
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o622)).context("mkfifo exec.fifo")?;
    Ok(fifo)
}

/// `--console-socket`, connected, when the process has a terminal.
fn console_of(args: &CreateArgs, blueprint: &Blueprint) -> Result<Option<UnixStream>> {
    let (Some(path), true) = (&args.console_socket, blueprint.process.terminal) else {
        return Ok(None);
    };
    let socket = UnixStream::connect(path)
        .with_context(|| format!("connecting to the console socket {}", path.display()))?;
    Ok(Some(socket))
}

/// Chapter 5's cgroup, where config.json puts it, with chapter 12's device
/// rules: its directories, and those its creation made.
fn make_cgroup(blueprint: &Blueprint, made: &Made) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (parent, name) = &blueprint.cgroup;
    let cgroup = cgroup::create(Path::new(cgroup::ROOT), parent, name, &blueprint.limits)?;
    let paths = (cgroup.paths(), cgroup.created());
    let rules = devices::apply(&*cgroup, &blueprint.device_rules);
    made.cgroup.set(Some(cgroup));
    rules?;
    Ok(paths)
}

/// uid_map and gid_map of the init's new user namespace, written as the
/// host's root (chapter 13's writer).
fn write_maps(child: Pid, blueprint: &Blueprint) -> Result<()> {
    use ch13_rootless::userns::{self, IdMaps, Range, Writer};
    let ranges = |maps: &[oci_spec::runtime::LinuxIdMapping]| -> Vec<Range> {
        maps.iter()
            .map(|m| Range {
                inside: m.container_id(),
                outside: m.host_id(),
                count: m.size(),
            })
            .collect()
    };
    let maps = IdMaps {
        uids: ranges(&blueprint.uid_maps),
        gids: ranges(&blueprint.gid_maps),
        writer: Writer::Root,
    };
    userns::write_maps(child, &maps)
}

/// Now, as runc's `created` and its log's `time` show it (chapter 10's
/// RFC 3339 with nanoseconds).
pub fn now_rfc3339() -> String {
    ch10_runtime::log::rfc3339_nano(time::OffsetDateTime::now_utc())
}

/// What the container's init needs, borrowed from `create`.
struct Init<'a> {
    blueprint: &'a Blueprint,
    dir: &'a Path,
    fifo: &'a Path,
    console: Option<OwnedFd>,
    cgroups: &'a [PathBuf],
    preserve_fds: u32,
    no_pivot: bool,
    new_keyring: bool,
}

impl Init<'_> {
    // ANCHOR: init
    /// In the container's init: the two phases of its setup, each ended by
    /// closing its report pipe, then the wait on the exec FIFO, then the
    /// process. Never returns.
    fn run(&self, first: ChildEnd, second: ChildEnd) -> isize {
        let phase1 = first.wait_for_release().and_then(|()| self.before_pivot());
        if let Err(error) = phase1 {
            first.setup_failed(&error);
        }
        first.report_ready();
        let phase2 = second.wait_for_release().and_then(|()| self.enter_root());
        let (fifo, state) = match phase2 {
            Ok(ready) => ready,
            Err(error) => second.setup_failed(&error),
        };
        second.report_ready();
        // `create` has returned. From here, errors go to the container's
        // stderr, as runc's do.
        let error = self.wait_then_exec(fifo, &state);
        eprintln!("minibox-runc: {error:#}");
        let status = error
            .downcast_ref::<ch01_fork_exec::exit::StartError>()
            .map_or(1, |e| e.status());
        ch01_fork_exec::process::exit_now(status)
    }
    // ANCHOR_END: init

    // ANCHOR: before_pivot
    /// Phase one, in the new namespaces: joins the ones config.json names
    /// by path, sets the names, makes the mounts, `/dev` and the sysctls.
    fn before_pivot(&self) -> Result<()> {
        let blueprint = self.blueprint;
        if self.new_keyring {
            join_new_session_keyring()?;
        }
        for (flag, file) in &blueprint.joined {
            nix::sched::setns(file.as_fd(), *flag)
                .with_context(|| format!("joining {}", namespace::flag_names(*flag)))?;
        }
        if let Some(name) = &blueprint.hostname {
            uts::set_hostname(name)?;
        }
        if let Some(name) = &blueprint.domainname {
            set_domainname(name)?;
        }
        mount::make_private()?;
        mount::bind_onto_itself(&blueprint.rootfs)?;
        let rootfs = &blueprint.rootfs;
        for planned in &blueprint.mounts {
            crate::mounts::mount(rootfs, planned, self.cgroups)?;
        }
        dev::default_devices(rootfs)?;
        for device in &blueprint.devices {
            make_device(rootfs, device)?;
        }
        for (key, value) in &blueprint.sysctl {
            let path = rootfs.join("proc/sys").join(key.replace('.', "/"));
            std::fs::write(&path, value)
                .with_context(|| format!("linux.sysctl: writing {key} = {value}"))?;
        }
        Ok(())
    }
    // ANCHOR_END: before_pivot

    // ANCHOR: enter_root
    /// Phase two: the createContainer hooks, the root, the hidden and
    /// read-only paths, the terminal. Returns the exec FIFO, opened before
    /// `pivot_root` takes its path away (`O_PATH`: not opened for writing
    /// yet, which would block).
    fn enter_root(&self) -> Result<(OwnedFd, Vec<u8>)> {
        let blueprint = self.blueprint;
        let hooks = &blueprint.hooks;
        let record: Record = serde_json::from_slice(&std::fs::read(self.dir.join("state.json"))?)?;
        let state = serde_json::to_vec(&record.oci_state(Status::Creating))?;
        hooks::run("createContainer", hooks.create_container(), &state)?;
        let state = serde_json::to_vec(&record.oci_state(Status::Created))?;
        let fifo = nix::fcntl::open(self.fifo, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .context("opening exec.fifo")?;
        if self.no_pivot {
            move_root(&blueprint.rootfs)?;
        } else {
            mount::pivot_root(&blueprint.rootfs)?;
        }
        if let Some(flags) = blueprint.propagation {
            mount::mount(None, Path::new("/"), None, flags, None)?;
        }
        for path in &blueprint.masked {
            paths::mask(path).with_context(|| format!("linux.maskedPaths: {path}"))?;
        }
        for path in &blueprint.readonly_paths {
            paths::make_read_only(path).with_context(|| format!("linux.readonlyPaths: {path}"))?;
        }
        if blueprint.readonly_root {
            paths::remount(Path::new("/"), true).context("root.readonly")?;
        }
        blueprint.process.check_program()?;
        if let Some(console) = &self.console {
            let size = blueprint
                .process
                .console_size
                .map(|(rows, cols)| WindowSize {
                    ws_row: rows,
                    ws_col: cols,
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                });
            terminal::open_console(console.as_fd(), size.as_ref())?;
        }
        Ok((fifo, state))
    }
    // ANCHOR_END: enter_root

    // ANCHOR: wait_then_exec
    /// Blocks on the exec FIFO until `start`, then the startContainer hooks
    /// and the process. Returns only why it could not run.
    fn wait_then_exec(&self, fifo: OwnedFd, state: &[u8]) -> anyhow::Error {
        let reopen = format!("/proc/self/fd/{}", fifo.as_raw_fd());
        let opened = nix::fcntl::open(
            reopen.as_str(),
            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        );
        let written = opened
            .map_err(|errno| anyhow!("waiting on exec.fifo: {errno}"))
            .and_then(|fd| {
                nix::unistd::write(&fd, b"0").map_err(|e| anyhow!("exec.fifo: {e}"))?;
                Ok(fd)
            });
        // The write end stays open until execve closes it (O_CLOEXEC): `start`
        // reads to end-of-file, so it returns, and runs the poststart hooks,
        // only once the startContainer hooks have run and the program is
        // executing (runc's order).
        let _open_until_exec = match written {
            Ok(fd) => fd,
            Err(error) => return error,
        };
        drop(fifo);
        let hooks = &self.blueprint.hooks;
        if let Err(error) = hooks::run("startContainer", hooks.start_container(), state) {
            return error;
        }
        if let Err(error) = keep_fds(self.preserve_fds) {
            return error;
        }
        self.blueprint.process.enter_and_exec()
    }
    // ANCHOR_END: wait_then_exec
}

/// A session keyring of the container's own, as runc makes one: otherwise
/// the container would share the keys of the session that created it (the
/// engine's). `keyctl(2)` `KEYCTL_JOIN_SESSION_KEYRING` with no name makes a
/// new, anonymous one and joins it. A kernel without keyrings (`ENOSYS`)
/// has none to share. `--no-new-keyring` keeps the caller's.
fn join_new_session_keyring() -> Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: keyctl(2) with an integer and a null name: nothing is read.
    let done = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    match nix::errno::Errno::result(done) {
        Ok(_) | Err(nix::errno::Errno::ENOSYS) => Ok(()),
        Err(errno) => bail!("keyctl(KEYCTL_JOIN_SESSION_KEYRING): {errno}"),
    }
}

/// `--preserve-fds N`: descriptors 3 to 3+N-1 pass to the program; every
/// other descriptor from 3 on closes at exec (chapter 12's `close_range`
/// with `CLOSE_RANGE_CLOEXEC`, from 3+N on).
fn keep_fds(count: u32) -> Result<()> {
    ch12_security::confine::close_on_exec_from(3 + count)?;
    for fd in 3..3 + count as i32 {
        // SAFETY: fcntl(2) on a number; a closed one fails with EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
    Ok(())
}

/// `--no-pivot`: the root moved onto `/` and chroot()ed, for filesystems
/// where pivot_root is refused (an initramfs).
fn move_root(rootfs: &Path) -> Result<()> {
    nix::unistd::chdir(rootfs).context("chdir into the root")?;
    mount::mount(Some("."), Path::new("/"), None, MsFlags::MS_MOVE, None)?;
    nix::unistd::chroot(".").context("chroot .")?;
    nix::unistd::chdir("/").context("chdir /")?;
    Ok(())
}

/// setdomainname(2): the NIS domain name of the UTS namespace.
fn set_domainname(name: &str) -> Result<()> {
    let c = CString::new(name).context("domainname with a NUL byte")?;
    // SAFETY: setdomainname(2) reads `len` bytes of `c`, alive for the call.
    if unsafe { libc::setdomainname(c.as_ptr(), name.len()) } != 0 {
        bail!("setdomainname: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// One node of `linux.devices`, made in the container's `/dev`.
fn make_device(rootfs: &Path, device: &oci_spec::runtime::LinuxDevice) -> Result<()> {
    use ch04_mount_namespace::in_root::{TargetKind, open_in_root};
    let path = device.path();
    let parent = path
        .parent()
        .context("linux.devices: a path without a parent")?;
    let name = path
        .file_name()
        .context("linux.devices: a path without a name")?;
    let dir = open_in_root(rootfs, parent, TargetKind::Dir)?;
    let kind = match device.typ().as_str() {
        "c" | "u" => SFlag::S_IFCHR,
        "b" => SFlag::S_IFBLK,
        "p" => SFlag::S_IFIFO,
        other => bail!("linux.devices: type {other:?}"),
    };
    let number = nix::sys::stat::makedev(device.major() as u64, device.minor() as u64);
    let mode = Mode::from_bits_truncate(device.file_mode().unwrap_or(0o666));
    match nix::sys::stat::mknodat(&dir, name, kind, mode, number) {
        Err(nix::errno::Errno::EEXIST) => {}
        made => made.with_context(|| format!("mknod {}", path.display()))?,
    }
    nix::sys::stat::fchmodat(
        &dir,
        name,
        mode,
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .with_context(|| format!("chmod {}", path.display()))?;
    let uid = device.uid().map(nix::unistd::Uid::from_raw);
    let gid = device.gid().map(nix::unistd::Gid::from_raw);
    nix::unistd::fchownat(
        &dir,
        name,
        uid,
        gid,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .with_context(|| format!("chown {}", path.display()))?;
    Ok(())
}
