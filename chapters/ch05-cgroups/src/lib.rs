//! # Chapter 5: cgroups — what a container may use
//!
//! Namespaces decide what a container can *see*; control groups decide what it
//! can *use*. A cgroup is a directory in a special filesystem: the processes
//! listed in its `cgroup.procs` share the limits written in its other files, and
//! the kernel enforces them: past `--memory` the OOM killer ends a process, past
//! `--pids-limit` fork fails, past `--cpus` the scheduler throttles.
//!
//! Two versions of the interface are in use. **cgroup v1** has one hierarchy per
//! controller (`/sys/fs/cgroup/memory/...`, `/sys/fs/cgroup/pids/...`), each with
//! its own tree; **cgroup v2** has one unified tree (`/sys/fs/cgroup/...`) where a
//! parent hands controllers down through `cgroup.subtree_control`. Ubuntu 22.04+
//! and Fedora are pure v2; older hosts and WSL2 are v1 or *hybrid* (controllers on
//! v1, an empty v2 tree beside them). minibox finds out at run time, with
//! `statfs(2)` on /sys/fs/cgroup, and speaks whichever the host has.
//!
//! What changes over chapter 4: before the child may exec, the *parent* creates
//! the container's cgroup, writes the limits and moves the child into it, then
//! releases it through chapter 2's sync pipe, so not one instruction of the
//! container's program runs outside its limits. After the container ends, minibox
//! kills whatever it left in the cgroup, reports an OOM kill, and removes the
//! cgroup.
//!
//! Kernel interfaces: `cgroups(7)`, the kernel's cgroup-v1 and cgroup-v2
//! documentation (Documentation/admin-guide/cgroup-v2.rst), `statfs(2)`.
//!
//! ## Layout
//!
//! - [`cli`]: the command line: Docker's `--memory`, `--pids-limit`, `--cpus`,
//!   `--cpu-shares`, `--cgroup-parent`, and `--stats`.
//! - [`limits`]: Docker's parsing and validation rules for those values.
//! - [`cgroup`]: the concept: one small interface, chosen at run time, over
//!   [`cgroup::v1`] and [`cgroup::v2`].
//! - [`signals`]: minibox stays alive to clean up: signals go to the container.
//! - [`run`]: the recipe.

pub mod cgroup;
pub mod cli;
pub mod limits;
pub mod run;
pub mod signals;
