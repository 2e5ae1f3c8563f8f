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
use std::path::Path;

use anyhow::{Context, Result};
use ch01_fork_exec::exit::StartError;
use ch01_fork_exec::process::Command;
use nix::errno::Errno;
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::unistd::AccessFlags;

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
    let failed = |errno| StartError {
        program: command.program_name(),
        errno,
    };
    let path = env
        .iter()
        .find_map(|entry| entry.to_bytes().strip_prefix(b"PATH="))
        .map(|value| String::from_utf8_lossy(value).into_owned());
    let file = match look_path(command.program(), path.as_deref()) {
        Ok(file) => file,
        Err(errno) => return failed(errno),
    };
    // As in chapter 1: an ignored SIGPIPE would stay ignored across exec.
    // SAFETY: SIG_DFL installs no handler; nothing else to uphold.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    match nix::unistd::execve(&file, command.argv(), env) {
        Err(errno) => failed(errno),
        Ok(never) => match never {},
    }
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
