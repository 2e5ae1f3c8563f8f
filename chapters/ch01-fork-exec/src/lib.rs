//! # Chapter 1: fork, exec, wait — how one program starts another
//!
//! `docker run redis` ends, after all the image and namespace work, with one
//! process starting another program. This chapter builds only that part:
//! `minibox run CMD [ARGS...]` runs a host command as a child process, waits for it,
//! and exits with the child's status, exactly as `docker run` passes the container's
//! exit status through.
//!
//! We call the three system calls by hand instead of using
//! [`std::process::Command`], because every later chapter needs to act *between*
//! creating the child and starting its program: join namespaces (chapter 2), set a
//! hostname (3), switch the root filesystem (4), enter a cgroup (5). `Command` hides
//! that moment; `fork` + `exec` expose it.
//!
//! Kernel interfaces: `fork(2)` makes a copy of the calling process, `execvp(3)`
//! (over `execve(2)`) replaces the copy's program, `waitpid(2)` waits for it to end
//! and reads its status, `_exit(2)` ends a child whose exec failed.
//!
//! ## Layout
//!
//! - [`cli`]: the command line, parsed by clap and turned into a plain [`cli::Config`].
//! - [`process`]: the concept: fork a child, replace its program, wait for its end.
//! - [`exit`]: how a child's end becomes minibox's exit code, and Docker's codes
//!   125/126/127 for what went wrong before the program ran.
//! - [`narrate`]: the lines on stderr that say what happened, step by step.
//! - [`run`]: the recipe: every step above, in order, on one screen.

pub mod cli;
pub mod exit;
pub mod narrate;
pub mod process;
pub mod run;
