//! # Chapter 8: the startup command — image config, override rules, PATH inside
//!
//! An image is a filesystem snapshot **plus a startup command**. `docker run
//! busybox` runs busybox's `sh` because the image's config says so; `docker run
//! busybox echo hi` overrides it; `docker run hello-world ls` fails, because the
//! hello-world image has one program and no `ls`. This chapter reads the half
//! of the image that is not files — the config's `Entrypoint`, `Cmd`, `Env`,
//! `WorkingDir` and `User` — and applies Docker's rules to turn it and the
//! command line into the process the container starts.
//!
//! What changes over chapter 7: `run IMAGE [COMMAND] [ARG...]` (the command is
//! now optional); `--entrypoint`, `-e/--env`, `--env-file`, `-w/--workdir` and
//! `-u/--user` are new. The child, after `pivot_root`, resolves the user
//! through the *image's* `/etc/passwd` and `/etc/group`, enters the working
//! directory, drops to the user, looks the program up on the *container's*
//! `PATH` inside its own root, and starts it with `execve(2)` and the
//! container's environment (chapter 1's `execvp(3)` searched the host's PATH
//! and passed on minibox's own environment).
//!
//! Kernel interfaces: `setgroups(2)`, `setgid(2)`, `setuid(2)` (in that order:
//! once the user ID is not root, the group calls are refused), `stat(2)` and
//! `access(2)` for the lookup, `execve(2)`, `chdir(2)`.
//!
//! ## Layout
//!
//! - [`cli`]: the command line: `run [OPTIONS] IMAGE [COMMAND] [ARG...]` and
//!   its new flags; the other commands are chapter 7's.
//! - [`config`]: the image config's runtime defaults, read from the store.
//! - [`command`]: the concept: Docker's rules for the effective command.
//! - [`env`]: the container's environment: image, flags, env files, defaults.
//! - [`user`]: `-u USER[:GROUP]` through the image's passwd and group files.
//! - [`exec`]: the working directory, the PATH lookup inside the container,
//!   and `execve`.
//! - [`run`]: the recipe.

pub mod cli;
pub mod command;
pub mod config;
pub mod env;
pub mod exec;
pub mod run;
pub mod user;
