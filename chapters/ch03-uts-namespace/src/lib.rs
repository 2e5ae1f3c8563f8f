//! # Chapter 3: UTS and IPC namespaces — a name of its own
//!
//! `docker run --hostname box` gives the container its own hostname, and without
//! the flag Docker names it after the container's ID. Changing the hostname inside
//! must not rename the host: the *UTS namespace* (`CLONE_NEWUTS`, named after the
//! `utsname` struct that `uname(2)` fills) gives the child its own copy of the
//! hostname and domain name.
//!
//! The second small namespace comes along: the *IPC namespace* (`CLONE_NEWIPC`)
//! gives the child its own System V message queues, semaphores and shared memory
//! segments, and its own POSIX message queues, so containers cannot meet (or
//! disturb) each other through them.
//!
//! What changes over chapter 2: two more clone flags, a container ID, and one more
//! step in the child, between the parent's go and exec: `sethostname`. A failure
//! there is the first real *setup* failure, and travels back through chapter 2's
//! sync pipe.
//!
//! Kernel interfaces: `uts_namespaces(7)`, `sethostname(2)`, `ipc_namespaces(7)`,
//! `sysvipc(7)`.
//!
//! ## Layout
//!
//! - [`cli`]: the command line, with `--hostname`.
//! - [`id`]: container IDs: 64 random hex digits, shown as 12, like Docker's.
//! - [`uts`]: the concept: set the hostname inside the new UTS namespace.
//! - [`run`]: the recipe.

pub mod cli;
pub mod id;
pub mod run;
pub mod uts;
