//! Test plumbing for `terminal` and `init` (not part of the lesson): a small
//! program that plays minibox's part in the tests of `tests/terminal.rs` and
//! `tests/init.rs`.
//!
//! It has to be a program of its own for two reasons. The init's sealed copy
//! is a copy of the *running* program, so the program must be one whose `main`
//! can be told to be an init (the test binary cannot). And the terminal tests
//! need a process whose controlling terminal is the test's pty, so that a
//! window change sends it SIGWINCH, as it does to minibox in a user's terminal.
//!
//! Modes, which compose (`pidns sealed chroot DIR init -- sh`):
//!
//! - `attach [--detach-keys KEYS] -- CMD...`: CMD on a new pty, stdin and
//!   stdout (the user's terminal) attached to it; prints `started PID`, then
//!   how the attach ended, then, holding the pty as the monitor would, `exit N`
//!   once CMD has ended, on stderr.
//! - `console DIR`: in a mount namespace of its own, a devpts instance on DIR,
//!   a pty from it, its master sent over the unix socket on fd 3; then one line
//!   read from the slave, printed on stderr.
//! - `init [--group] -- CMD...`: the init, supervising CMD.
//! - `exec -- CMD...`: CMD itself, with no init (for comparison).
//! - `sealed MODE...`: the rest, from a sealed copy of this program.
//! - `sealed-in DIR MODE...`: a sealed copy made here, executed after a chroot
//!   to DIR (where the dynamic loader is missing).
//! - `chroot DIR MODE...`: the rest, with DIR as the root.
//! - `pidns MODE...`: the rest as PID 1 of a new PID namespace; exits with its
//!   status.

use std::ffi::OsString;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use ch01_fork_exec::process::{self, Command, Forked};
use ch10_runtime_draft::init::{self, ForwardTo};
use ch10_runtime_draft::terminal::{self, DetachKeys, Streams};
use nix::sched::CloneFlags;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    match dispatch(&args[1..]) {
        Ok(status) => ExitCode::from(status),
        Err(err) => {
            ch01_fork_exec::narrate::notice(format_args!("{err:#}"));
            ExitCode::from(125)
        }
    }
}

fn dispatch(args: &[OsString]) -> Result<u8> {
    let Some(mode) = args.first().and_then(|a| a.to_str()) else {
        bail!("usage: ttyinit-helper attach|console|init|exec|sealed|chroot|pidns ...");
    };
    let rest = &args[1..];
    match mode {
        "attach" => attach(rest),
        "console" => console(rest),
        "init" => {
            let (group, command) = options(rest, "--group")?;
            let forward = if group.is_some() {
                ForwardTo::Group
            } else {
                ForwardTo::Child
            };
            Ok(init::run_init(&command, forward)?.status())
        }
        "exec" => {
            let (_, command) = options(rest, "")?;
            let error = process::exec(&command);
            ch01_fork_exec::narrate::notice(&error);
            Ok(error.status())
        }
        "sealed" => match init::exec_sealed_self(&argv(rest)?)? {},
        "sealed-in" => {
            let dir = rest.first().context("sealed-in DIR MODE...")?;
            let copy = init::sealed_copy_of_self()?;
            enter(Path::new(dir))?;
            match init::exec_sealed(copy.as_fd(), &argv(&rest[1..])?)? {}
        }
        "chroot" => {
            let dir = rest.first().context("chroot DIR MODE...")?;
            enter(Path::new(dir))?;
            dispatch(&rest[1..])
        }
        "pidns" => {
            let rest = rest.to_vec();
            let pid1 =
                ch02_pid_namespace::namespace::clone_child(CloneFlags::CLONE_NEWPID, || {
                    match dispatch(&rest) {
                        Ok(status) => isize::from(status),
                        Err(err) => {
                            ch01_fork_exec::narrate::notice(format_args!("{err:#}"));
                            125
                        }
                    }
                })?;
            Ok(process::wait_for(pid1)?.status())
        }
        other => bail!("unknown mode {other}"),
    }
}

/// This program's name and `modes`, as the argument vector of a sealed copy.
fn argv(modes: &[OsString]) -> Result<Vec<std::ffi::CString>> {
    let mut argv = vec![c"ttyinit-helper".to_owned()];
    for mode in modes {
        argv.push(std::ffi::CString::new(mode.as_encoded_bytes())?);
    }
    Ok(argv)
}

/// chroot(2) to `dir`, and into it.
fn enter(dir: &Path) -> Result<()> {
    nix::unistd::chroot(dir).context("chroot")?;
    nix::unistd::chdir("/").context("chdir /")?;
    Ok(())
}

/// Splits `[FLAG [VALUE]] -- CMD...`: the flag's value (or `Some("")` for a
/// flag without one, `--group`), and the command.
fn options(args: &[OsString], flag: &str) -> Result<(Option<String>, Command)> {
    let mut value = None;
    let mut i = 0;
    while i < args.len() && args[i] != "--" {
        if args[i] == flag && flag == "--detach-keys" {
            value = Some(args.get(i + 1).context("a value")?.to_string_lossy().into());
            i += 1;
        } else if args[i] == flag {
            value = Some(String::new());
        } else {
            bail!("unknown option {:?}", args[i]);
        }
        i += 1;
    }
    Ok((value, Command::new(args.get(i + 1..).unwrap_or_default())?))
}

/// `minibox run -it` in miniature: a pty, the command on it, the user attached.
fn attach(args: &[OsString]) -> Result<u8> {
    let (keys, command) = options(args, "--detach-keys")?;
    let keys = keys.map_or(Ok(DetachKeys::default()), |k| DetachKeys::parse(&k))?;
    let (master, _) = terminal::open_ptmx(Path::new("/dev/ptmx"))?;
    let slave = terminal::open_peer(master.as_fd())?;
    let child = match process::fork()? {
        Forked::Child => {
            if let Err(err) = terminal::make_controlling(slave) {
                ch01_fork_exec::narrate::notice(format_args!("{err:#}"));
                process::exit_now(125);
            }
            let error = process::exec(&command);
            ch01_fork_exec::narrate::notice(&error);
            process::exit_now(error.status());
        }
        Forked::Parent { child } => child,
    };
    drop(slave); // the container has its own now: its end is the pty's end
    eprintln!("started {child}");
    let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
    let streams = Streams {
        input: Some(stdin.as_fd()),
        output: stdout.as_fd(),
        master: master.as_fd(),
    };
    let ended = terminal::attach(streams, &keys)?;
    eprintln!("{ended}");
    let status = process::wait_for(child)?.status();
    eprintln!("exit {status}");
    Ok(status)
}

/// The container's side of a console socket: a pty from a devpts instance of
/// its own, the master sent out.
fn console(args: &[OsString]) -> Result<u8> {
    let dir = Path::new(args.first().context("console DIR")?);
    nix::sched::unshare(CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS)")?;
    mount(None, "/", None, libc::MS_REC | libc::MS_PRIVATE, None)?;
    let devpts = dir.to_str().context("a UTF-8 path")?;
    let flags = libc::MS_NOSUID | libc::MS_NOEXEC;
    let data = "newinstance,ptmxmode=0666,mode=0620";
    mount(Some("devpts"), devpts, Some("devpts"), flags, Some(data))?;

    let (master, slave_path) = terminal::open_pty_in(dir)?;
    let slave = terminal::open_peer(master.as_fd())?;
    eprintln!("slave {}", slave_path.display());
    // SAFETY: the test passes the socket as fd 3 and nothing else in this
    // process owns that descriptor.
    let socket = unsafe { OwnedFd::from_raw_fd(3) };
    terminal::send_fd(
        socket.as_fd(),
        master.as_fd(),
        &slave_path.to_string_lossy(),
    )?;
    drop(master);
    let mut line = [0u8; 256];
    let n = nix::unistd::read(&slave, &mut line).context("reading the slave")?;
    eprintln!("read {}", String::from_utf8_lossy(&line[..n]).trim_end());
    Ok(0)
}

/// mount(2), for the devpts test (the draft does not enable nix's `mount`).
fn mount(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<()> {
    let c = |s: &str| std::ffi::CString::new(s).expect("no NUL");
    let (source, target) = (source.map(c), c(target));
    let (fstype, data) = (fstype.map(c), data.map(c));
    let ptr = |s: &Option<std::ffi::CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: every pointer is null or points to a NUL-terminated string that
    // lives until the call returns.
    let rc = unsafe {
        libc::mount(
            ptr(&source),
            target.as_ptr(),
            ptr(&fstype),
            flags,
            ptr(&data).cast(),
        )
    };
    nix::errno::Errno::result(rc).with_context(|| format!("mount {target:?}"))?;
    Ok(())
}
