//! The last steps in the container, just before its program starts: enter
//! the working directory, find the program on the **container's** `PATH`
//! inside its own root, and `execve(2)` it with the container's environment.
//!
//! Chapter 1 used `execvp(3)`, which searches *our* `PATH` (minibox's, the
//! host's) and passes on *our* environment. After `pivot_root` the search
//! happens in the right tree, but with the wrong list of directories; and the
//! container must not inherit the caller's variables at all. So the search is
//! written out here, the way runc does it (Go's `exec.LookPath`), and the
//! environment is handed to `execve` explicitly.
//!
//! Errors keep Docker's words and codes (chapter 1's [`StartError`]): a
//! program not found on `PATH` is `exec: "ls": executable file not found in
//! $PATH` (127); a directory, a file without execute permission, or one the
//! user may not run gives 126.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ch01_fork_exec::exit::StartError;
use ch01_fork_exec::process::{self, Command};
use nix::errno::Errno;
use nix::unistd::AccessFlags;

use crate::config::RunConfig;
use crate::env;
use crate::user::{self, User};

// ANCHOR: process
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

/// What a later chapter does around the switch of user, in the child:
/// chapter 12 keeps only the allowed capabilities while still root, and
/// sets no_new_privs and installs the seccomp filter after it, the last
/// steps before exec. Chapter 8 does nothing there ([`Unhardened`]).
pub trait AroundSwitch {
    /// Still as root, before the switch to `user`.
    fn before_switch(&self, user: &User) -> Result<()>;
    /// As `user`, just before the exec.
    fn after_switch(&self, user: &User) -> Result<()>;
}

/// Nothing around the switch: every chapter before 12.
pub struct Unhardened;

impl AroundSwitch for Unhardened {
    fn before_switch(&self, _: &User) -> Result<()> {
        Ok(())
    }
    fn after_switch(&self, _: &User) -> Result<()> {
        Ok(())
    }
}

/// Who the process has become, and the environment it execs with: what
/// [`Process::enter`] leaves for [`Process::exec`].
#[derive(Debug)]
pub struct Entered {
    /// The user, group and supplementary groups it now runs as.
    pub user: User,
    /// The container's environment, as C strings for `execve`.
    pub env: Vec<CString>,
}

impl Process {
    /// The process of a container whose image says `image`, with the command
    /// line's `-e` (`env`), `-u` (`user`) and `-w` (`workdir`) over it, by
    /// Docker's rules: a flag wins, and the environment is merged (see
    /// [`env::merge`]).
    pub fn new(
        command: Command,
        image: &RunConfig,
        env: &[String],
        user: Option<&str>,
        workdir: Option<&str>,
        hostname: &str,
    ) -> Process {
        let workdir = match (workdir, image.working_dir.as_str()) {
            (Some(dir), _) => dir,
            (None, "") => "/",
            (None, dir) => dir,
        };
        Process {
            command,
            env: env::merge(&image.env, env, hostname),
            user: user.unwrap_or(&image.user).to_string(),
            workdir: PathBuf::from(workdir),
        }
    }

    /// In the child, inside the container (after `pivot_root`) and still
    /// root: the process's last steps before exec. The names are the image's,
    /// so the user is resolved through its /etc/passwd and /etc/group, now at
    /// `/` (never the host's); the working directory is entered (and made)
    /// while root may still do both; the user is switched last, because after
    /// `setuid` the group calls are refused.
    pub fn enter(&self) -> Result<Entered> {
        self.enter_with(&Unhardened)
    }

    /// [`Process::enter`], with a later chapter's steps around the switch of
    /// user (chapter 12's capabilities, no_new_privs and seccomp).
    pub fn enter_with(&self, around: &dyn AroundSwitch) -> Result<Entered> {
        let user = user::resolve_in(Path::new("/"), &self.user)?;
        enter_workdir(&self.workdir)?;
        let env = c_env(&env::with_home(self.env.clone(), &user.home))?;
        around.before_switch(&user)?;
        user::switch_to(&user)?;
        around.after_switch(&user)?;
        Ok(Entered { user, env })
    }

    /// Replaces the child with the container's program (see [`exec`]).
    /// Returns only why it could not.
    pub fn exec(&self, entered: &Entered) -> StartError {
        exec(&self.command, &entered.env)
    }
}
// ANCHOR_END: process

// ANCHOR: workdir
/// Makes `dir` the working directory, creating it (and its parents) first if
/// the image lacks it, as Docker does: owned by root, mode 0755 (minus the
/// umask). Call it while still root, before [`crate::user::switch_to`].
pub fn enter_workdir(dir: &Path) -> Result<()> {
    // SIMPLIFICATION: runc tries the chdir again after switching user when
    // root could not enter the directory (root squashed on NFS); we chdir
    // once, as root.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .with_context(|| format!("creating the working directory {}", dir.display()))?;
    nix::unistd::chdir(dir).with_context(|| format!("chdir {}", dir.display()))?;
    Ok(())
}
// ANCHOR_END: workdir

// ANCHOR: find_executable
/// Whether `path` is something the process may execute: it exists (following
/// symbolic links), is not a directory, and `access(2)` grants execute
/// permission to the process's (already switched) user.
pub fn find_executable(path: &CStr) -> Result<(), Errno> {
    let stat = nix::sys::stat::stat(path)?;
    if stat.st_mode & libc::S_IFMT == libc::S_IFDIR {
        return Err(Errno::EISDIR);
    }
    nix::unistd::access(path, AccessFlags::X_OK)
}
// ANCHOR_END: find_executable

// ANCHOR: look_path
/// The file to execute for `program`, looked up like a shell does, in the
/// directories of `path` (the container's `PATH`): a name with a `/` is used
/// as it is (relative to the working directory); a bare name is tried in each
/// directory in turn (an empty entry means the working directory), and the
/// first executable one wins. `ENOENT` means nothing on `PATH` matched.
pub fn look_path(program: &CStr, path: Option<&str>) -> Result<CString, Errno> {
    let name = program.to_bytes();
    if name.contains(&b'/') {
        find_executable(program)?;
        return Ok(program.to_owned());
    }
    // SIMPLIFICATION: Go 1.19's LookPath refuses a match found through a
    // relative PATH entry (`exec.ErrDot`); like a shell, we accept it.
    // No PATH, or an empty one, has no directories (not even ".").
    let dirs = path.filter(|p| !p.is_empty()).map(|p| p.split(':'));
    for dir in dirs.into_iter().flatten() {
        let dir = if dir.is_empty() { "." } else { dir };
        let mut candidate = Vec::with_capacity(dir.len() + 1 + name.len());
        candidate.extend_from_slice(dir.as_bytes());
        candidate.push(b'/');
        candidate.extend_from_slice(name);
        let Ok(candidate) = CString::new(candidate) else {
            continue;
        };
        if find_executable(&candidate).is_ok() {
            return Ok(candidate);
        }
    }
    Err(Errno::ENOENT)
}
// ANCHOR_END: look_path

// ANCHOR: exec
/// Replaces the calling process's program with `command`, found on the
/// `PATH` of `env` (the container's environment), which becomes the
/// program's whole environment. Returns only why it failed.
pub fn exec(command: &Command, env: &[CString]) -> StartError {
    let file = match program_file(command, env) {
        Ok(file) => file,
        Err(error) => return error,
    };
    process::restore_sigpipe(); // as in chapter 1
    match nix::unistd::execve(&file, command.argv(), env) {
        Err(errno) => StartError {
            program: command.program_name(),
            errno,
        },
        Ok(never) => match never {},
    }
}

/// The file `command`'s program is, looked up on the `PATH` of `env` (see
/// [`look_path`]), or why there is none. Chapter 14 asks before the exec,
/// to fail `create` rather than the start.
pub fn program_file(command: &Command, env: &[CString]) -> Result<CString, StartError> {
    let path = env
        .iter()
        .find_map(|entry| entry.to_bytes().strip_prefix(b"PATH="))
        .map(|value| String::from_utf8_lossy(value).into_owned());
    look_path(command.program(), path.as_deref()).map_err(|errno| StartError {
        program: command.program_name(),
        errno,
    })
}
// ANCHOR_END: exec

/// The environment as C strings for `execve`. Fails on a NUL byte.
pub fn c_env(env: &[String]) -> Result<Vec<CString>> {
    env.iter()
        .map(|entry| {
            CString::new(std::ffi::OsStr::new(entry).as_bytes())
                .with_context(|| format!("environment entry {entry:?} contains a NUL byte"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn c(text: &str) -> CString {
        CString::new(text).unwrap()
    }

    #[test]
    fn lookup_searches_the_given_path_only() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(b.join("tool-dir")).unwrap();
        std::fs::write(a.join("tool"), "not executable").unwrap();
        std::fs::write(b.join("tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(b.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("{}:{}", a.display(), b.display());

        let found = look_path(&c("tool"), Some(&path)).unwrap();
        assert_eq!(found.to_str().unwrap(), b.join("tool").to_str().unwrap());
        assert_eq!(look_path(&c("tool-dir"), Some(&path)), Err(Errno::ENOENT));
        assert_eq!(
            look_path(&c("sh"), Some(&path)),
            Err(Errno::ENOENT),
            "not the host's PATH"
        );
        assert_eq!(look_path(&c("sh"), None), Err(Errno::ENOENT));

        let dir_path = c(b.join("tool-dir").to_str().unwrap());
        assert_eq!(look_path(&dir_path, None), Err(Errno::EISDIR));
        let missing = c(a.join("missing").to_str().unwrap());
        assert_eq!(look_path(&missing, None), Err(Errno::ENOENT));
        let exact = c(b.join("tool").to_str().unwrap());
        assert_eq!(look_path(&exact, None).unwrap(), exact);
    }

    #[test]
    fn the_errors_read_like_dockers() {
        let error = |program: &str, errno| StartError {
            program: program.into(),
            errno,
        };
        assert_eq!(
            error("ls", Errno::ENOENT).to_string(),
            "exec: \"ls\": executable file not found in $PATH"
        );
        assert_eq!(error("ls", Errno::ENOENT).status(), 127);
        assert_eq!(
            error("/etc", Errno::EISDIR).to_string(),
            "exec: \"/etc\": is a directory"
        );
        assert_eq!(error("/etc", Errno::EISDIR).status(), 126);
        assert_eq!(error("/etc/passwd", Errno::EACCES).status(), 126);
    }
}
