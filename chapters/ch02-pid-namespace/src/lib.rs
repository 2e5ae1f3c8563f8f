//! # Chapter 2: the PID namespace — the child becomes PID 1
//!
//! In chapter 1 the child saw the same process numbers as everyone else. Here it
//! starts in a new *PID namespace*: inside, it is PID 1, the first process of its
//! own little system, while the host still sees it under an ordinary PID.
//!
//! What changes over chapter 1:
//!
//! - The child is created with `clone(2)` and `CLONE_NEWPID` instead of `fork(2)`
//!   ([`namespace`]). `clone` is fork with flags: each `CLONE_NEW*` flag gives the
//!   child a fresh namespace of one kind.
//! - Parent and child now talk through a **sync pipe** ([`sync`]): the child waits
//!   until the parent has done its part of the setup, and if the child fails before
//!   its program runs, the reason travels back to the parent as a message. Chapter 1
//!   could only guess from an exit code. Every later chapter relies on this pipe
//!   (cgroups in chapter 5, networking in chapter 9 are set up by the parent while
//!   the child waits).
//!
//! Kernel interfaces: `clone(2)`, `pid_namespaces(7)`, `pipe2(2)` with `O_CLOEXEC`.
//!
//! ## Layout
//!
//! - [`cli`]: the command line (same as chapter 1's, with a new description).
//! - [`namespace`]: the concept: start a child in new namespaces with `clone(2)`.
//! - [`sync`]: the parent-child sync pipe.
//! - [`run`]: the recipe: clone → wait for the parent → exec; the parent releases
//!   the child, learns whether exec worked, and waits.
//!
//! fork's copy, exec, wait and exit statuses come from chapter 1
//! (`ch01_fork_exec::process`, `ch01_fork_exec::exit`).

pub mod cli;
pub mod namespace;
pub mod run;
pub mod sync;
